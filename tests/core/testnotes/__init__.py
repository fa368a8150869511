"""A tiny plugin for the core's own tests: one tenant-owned table with a migration, routes that
record events and ask for vetoes, and a fake `authenticate` so no identity plugin is needed.

Tokens are ``Bearer note:<tenant_id>:<role>:<user_id>``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import falcon
import peewee
from pydantic import BaseModel, Field

from learnplat import hookimpl
from learnplat.auth import PUBLIC, Principal
from learnplat.errors import NotFound, Unauthorized, Vetoed
from learnplat.http.endpoint import endpoint
from learnplat.models import TenantModel, UTCDateTimeField, utcnow
from learnplat.pagination import PageQuery, paginate
from learnplat.plugin import Action, Event, Veto
from learnplat.registry import EventHandler, Permission, Route


class NoteCreated(Event):
    """A note was written."""
    name: ClassVar[str] = "testnotes.created.v1"
    id: int
    title: str


CREATED = NoteCreated.name
CREATE = Action("testnotes.create", "A note is about to be written", ("title",))


class Note(TenantModel):
    title = peewee.CharField(max_length=100)
    body = peewee.TextField(default="")
    author = peewee.IntegerField(null=True)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "testnotes_note"


class NoteIn(BaseModel):
    title: str = Field(min_length=1, max_length=100)
    body: str = ""
    stars: int = Field(3, ge=1, le=5)


class NoteOut(BaseModel):
    id: int
    title: str
    body: str


class NotePage(BaseModel):
    items: list[NoteOut]
    next_cursor: str | None = None


def _out(note: Note) -> NoteOut:
    return NoteOut(id=note.id, title=note.title, body=note.body)


class NoteCollection:
    def __init__(self, runtime: Any):
        self.runtime = runtime

    @endpoint(permission=PUBLIC, query=PageQuery, response=NotePage)
    def on_get(self, req: falcon.Request, resp: falcon.Response, *, query: PageQuery) -> Any:
        """List the tenant's notes."""
        return NotePage(**paginate(Note.select(), [Note.id], query, _out))

    @endpoint(permission="testnotes.create", body=NoteIn, response=NoteOut, status=201)
    def on_post(self, req: falcon.Request, resp: falcon.Response, *, body: NoteIn) -> Any:
        """Create a note (vetoable; records testnotes.created.v1)."""
        ctx = req.context
        self.runtime.before(CREATE, ctx.tenant, ctx.principal, title=body.title)
        note = Note.create(title=body.title, body=body.body, author=ctx.principal.user_id)
        self.runtime.events.record(NoteCreated(id=note.id, title=note.title))
        return _out(note)


class NoteItem:
    @endpoint(permission=PUBLIC, response=NoteOut)
    def on_get(self, req: falcon.Request, resp: falcon.Response, note_id: int) -> Any:
        note = Note.get_or_none(Note.id == note_id)
        if note is None:
            raise NotFound(f"no note {note_id}")
        return _out(note)


class Boom:
    @endpoint(permission=PUBLIC)
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> Any:
        raise RuntimeError("secret internals: /etc/learnplat password=hunter2")


@hookimpl
def register_models() -> list[type]:
    return [Note]


@hookimpl
def register_permissions() -> list[Permission]:
    return [Permission("testnotes.create", "Write a note",
                       grants={"admin": "any", "instructor": "any", "student": "any"})]


@hookimpl
def register_routes(runtime: Any) -> list[Route]:
    return [
        Route("/notes", NoteCollection(runtime)),
        Route("/notes/{note_id:int}", NoteItem()),
        Route("/notes-boom", Boom()),
    ]


@hookimpl
def register_events() -> list[type[Event]]:
    return [NoteCreated]


@hookimpl
def register_actions() -> list[Action]:
    return [CREATE]


@hookimpl
def register_event_handlers() -> list[EventHandler]:
    return [EventHandler(NoteCreated, "count", lambda runtime, event: None)]


@hookimpl
def authenticate(runtime: Any, credentials: Any, tenant: Any) -> Principal | None:
    token = credentials.bearer or ""
    if not token.startswith("note:"):
        return None
    try:
        _, tenant_id, role, user = token.split(":")
        return Principal(user_id=int(user), tenant_id=int(tenant_id), role=role,
                         grants=runtime.registry.grants_for(role))
    except ValueError:
        raise Unauthorized("malformed note token") from None


def _refuse_forbidden(runtime: Any, tenant: Any, principal: Any, data: dict[str, Any]) -> None:
    if data.get("title") == "forbidden":
        raise Vetoed("notes titled 'forbidden' are refused")


@hookimpl
def register_vetoes() -> list[Veto]:
    return [Veto(CREATE, "forbidden_titles", _refuse_forbidden)]
