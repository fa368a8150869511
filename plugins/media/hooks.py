"""Hook implementations of the media plugin (the module its entry point registers)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from learnplat_courses.events import CourseDeleted, ModuleRemoved

from learnplat.plugin import (
    Event,
    EventHandler,
    EventMessage,
    Permission,
    Route,
    ServiceKey,
    TaskSpec,
    hookimpl,
)

from . import events as ev
from . import resources as r
from .api import MEDIA
from .assignments import AssignmentService
from .avatars import AvatarService
from .direct import DirectUploads
from .models import MODELS
from .services import DELETE_TASK, MediaService, delete_objects, service
from .settings import MediaSettings

if TYPE_CHECKING:
    import click

    from learnplat.plugin import Runtime

USER_ID = "{user_id:int(min=1, max=2147483647)}"  # as identity routes /users/{id}

requires = ("identity", "courses", "enrollment")


@hookimpl
def register_models() -> list[type]:
    return list(MODELS)


@hookimpl
def register_settings() -> dict[str, type]:
    return {"media": MediaSettings}


@hookimpl
def register_permissions() -> list[Permission]:
    return [
        Permission("media.upload", "Upload and remove a course's videos and files",
                   {"admin": "any", "instructor": "own"}),
        Permission("media.watch", "Play videos and download files of courses one may follow",
                   {"admin": "any", "instructor": "any", "student": "any"}),
        Permission("profile.photo", "Upload or remove one's profile photo (admins: anyone's)",
                   {"admin": "any", "instructor": "own", "student": "own"}),
        Permission("assignment.submit", "Hand in assignments of courses one is enrolled in",
                   {"student": "any"}),
        Permission("assignment.grade", "Download and grade a course's submissions",
                   {"admin": "any", "instructor": "own"}),
    ]


@hookimpl
def register_events() -> list[type[Event]]:
    return ev.EVENTS


@hookimpl
def register_services(runtime: Runtime) -> dict[ServiceKey[Any], Any]:
    return {MEDIA: MediaService(runtime)}


@hookimpl
def register_tasks() -> list[TaskSpec]:
    return [TaskSpec(DELETE_TASK, delete_objects, retries=5, retry_delay=30)]


def _module_removed(runtime: Runtime, event: EventMessage[ModuleRemoved]) -> None:
    service(runtime).purge(event.data.course_id, event.data.module_id)


def _course_deleted(runtime: Runtime, event: EventMessage[CourseDeleted]) -> None:
    service(runtime).purge(event.data.course_id)


@hookimpl
def register_event_handlers() -> list[EventHandler]:
    # Idempotent: a second delivery finds no rows left to retire.
    return [EventHandler(ModuleRemoved, "purge_module_media", _module_removed),
            EventHandler(CourseDeleted, "purge_course_media", _course_deleted)]


@hookimpl
def register_routes(runtime: Runtime) -> list[Route]:
    svc = service(runtime)
    a = AssignmentService(svc)
    direct = DirectUploads(svc)
    m = "/courses/{course_id:int}/modules/{module_id:int}"
    return [
        Route(f"{m}/video", r.ModuleVideo(svc)),
        Route(f"{m}/video/direct", r.DirectVideo(svc, direct)),
        Route(f"{m}/video/direct/confirm", r.DirectVideoConfirm(svc, direct)),
        Route(f"{m}/attachments", r.ModuleAttachments(svc)),
        Route(f"{m}/attachments/{{media_id:int}}", r.AttachmentItem(svc)),
        Route(f"{m}/assignment", r.AssignmentResource(svc, a)),
        Route(f"{m}/assignment/submission", r.OwnSubmission(svc, a)),
        Route(f"{m}/assignment/submission/file", r.OwnSubmissionFile(svc, a)),
        Route(f"{m}/assignment/submissions", r.SubmissionCollection(svc, a)),
        Route(f"{m}/assignment/submissions/{{submission_id:int}}/file", r.SubmissionFile(svc, a)),
        Route(f"{m}/assignment/submissions/{{submission_id:int}}/grade",
              r.SubmissionGrade(svc, a)),
        Route(f"/users/{USER_ID}/photo", r.UserPhoto(svc, AvatarService(svc))),
        Route("/media/{tenant_id:int}/{media_id:int}", r.MediaStream(svc), tenant_scoped=False),
    ]


@hookimpl
def register_commands(cli: click.Group) -> None:
    from .cli import media

    cli.add_command(media)
