"""Notes: a school's short notes; one is added when a course is published."""

import datetime as dt
from typing import Any

import click
import peewee
from huey import crontab
from learnplat_courses.events import CoursePublished

import learnplat.plugin as lp


class Note(lp.TenantModel):  # table notes_note; every query is scoped to the current school
    title = peewee.CharField(max_length=200)
    created_at = lp.UTCDateTimeField(default=lp.utcnow)


class NoteIn(lp.Schema):  # unknown fields are a 422
    title: str = lp.Field(min_length=1, max_length=200)


class NoteOut(lp.Record):  # the answer's one shape: what responders return, what the docs show
    id: int
    title: str
    created_at: dt.datetime

    @classmethod
    def of(cls, note: Note) -> "NoteOut":
        return cls(id=note.id, title=note.title, created_at=note.created_at)


class NotePage(lp.Page[NoteOut]):
    pass


class Notes:
    @lp.endpoint(permission=lp.AUTHENTICATED, query=lp.PageQuery, response=NotePage)
    def on_get(self, req: Any, resp: Any, *, query: lp.PageQuery) -> NotePage:
        """The school's notes, newest first."""
        return NotePage(**lp.paginate(Note.select(), [Note.id.desc()], query, NoteOut.of))

    @lp.endpoint(permission="notes.create", body=NoteIn, status=201, response=NoteOut)
    def on_post(self, req: Any, resp: Any, *, body: NoteIn) -> NoteOut:
        """Write a note."""
        return NoteOut.of(Note.create(title=body.title))


def purge(runtime: lp.Runtime) -> int:  # runs in one school, in its own transaction
    return Note.delete().where(Note.created_at < lp.utcnow() - dt.timedelta(days=365)).execute()


def announce(runtime: lp.Runtime, event: lp.EventMessage[CoursePublished]) -> None:
    Note.create(title=f"New course: {event.data.title}")


class NotesPlugin(lp.Plugin):  # the entry point names this class; its hooks are methods
    @lp.hookimpl
    def register_models(self) -> list[type]:
        return [Note]

    @lp.hookimpl
    def register_permissions(self) -> list[lp.Permission]:
        return [lp.Permission("notes.create", "Write notes", {"admin": "any", "instructor": "any"})]

    @lp.hookimpl
    def register_routes(self, runtime: lp.Runtime) -> list[lp.Route]:
        return [lp.Route("/notes", Notes())]

    @lp.hookimpl
    def register_tasks(self) -> list[lp.TaskSpec]:  # nightly, in every school that has notes on
        return [lp.TaskSpec("notes.purge", lambda rt: lp.each_tenant(rt, purge, plugin=self.name),
                            tenant_scoped=False, periodic=crontab(minute="0", hour="3"))]

    @lp.hookimpl
    def register_event_handlers(self) -> list[lp.EventHandler]:
        return [lp.EventHandler(CoursePublished, "announce", announce)]

    @lp.hookimpl
    def register_commands(self, cli: click.Group) -> None:
        @lp.tenant_command(cli, "notes-count")
        def count(runtime: lp.Runtime, tenant: lp.TenantInfo) -> None:
            """How many notes a school has."""
            click.echo(Note.select().count())
