"""The media plugin's object: its hooks, and its services once the runtime is built (the
class its entry point names)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from learnplat_courses.events import CourseDeleted, ModuleRemoved

from learnplat.plugin import (
    Event,
    EventHandler,
    EventMessage,
    Permission,
    Plugin,
    ProblemCode,
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
from .cli import media as media_commands
from .direct import DirectUploads
from .models import MODELS
from .services import MediaService
from .settings import MediaSettings, MediaTenantSettings
from .tasks import tasks

if TYPE_CHECKING:
    import click

    from learnplat.plugin import Runtime

USER_ID = "{user_id:int(min=1, max=2147483647)}"  # as identity routes /users/{id}


class MediaPlugin(Plugin):
    """Videos and files of modules, assignments and their submissions, profile photos."""

    tenant_settings = MediaTenantSettings  # [settings.media] of a school
    requires = ("identity", "courses", "enrollment")
    # The problem codes of its answers (the reference page's catalogue, /docs#problem-<code>).
    problems = {
        "bad_signature": ProblemCode(
            403, "A media URL that was altered or is not valid: ask the API for the module's "
            "media again for a fresh URL."),
        "expired": ProblemCode(
            403, "A signed media URL or an upload token whose time ran out: ask for a new "
            "one."),
        "bad_token": ProblemCode(
            403, "An upload token that is not valid (altered, or issued for another course, "
            "module or user)."),
        "not_released": ProblemCode(
            403, "The module is not released yet (its release date is still to come)."),
        "points": ProblemCode(
            409, "Points above the assignment's maximum, or a maximum below points already "
            "given."),
        "past_due": ProblemCode(
            409, "The assignment's due date (`due_at`) has passed: no more hand-ins."),
        "graded": ProblemCode(409, "The submission is graded: it cannot be replaced."),
        "concurrent_submission": ProblemCode(
            409, "Two hand-ins of one student arrived at the same time: try again."),
        "direct_unsupported": ProblemCode(
            409, "The school's file store takes no direct uploads: send the file as "
            "multipart to the module's video endpoint instead."),
        "not_uploaded": ProblemCode(
            409, "Nothing was uploaded to the upload URL yet: PUT the file there first, then "
            "confirm the upload."),
        "unsupported_type": ProblemCode(
            415, "The video's type (read from its content) is not one the school takes."),
    }
    # Built by register_services: the service other plugins reach as MEDIA, and the parts of
    # the plugin built on it.
    media: MediaService
    assignments: AssignmentService
    avatars: AvatarService
    direct: DirectUploads

    @hookimpl
    def register_models(self) -> list[type]:
        return list(MODELS)

    @hookimpl
    def register_settings(self) -> dict[str, type]:
        return {"media": MediaSettings}

    @hookimpl
    def register_permissions(self) -> list[Permission]:
        return [
            Permission("media.upload", "Upload and remove a course's videos and files",
                       {"admin": "any", "instructor": "own"}),
            Permission("media.watch", "Play videos and download files of courses one may "
                       "follow", {"admin": "any", "instructor": "any", "student": "any"}),
            Permission("profile.photo", "Upload or remove one's profile photo (admins: "
                       "anyone's)", {"admin": "any", "instructor": "own", "student": "own"}),
            Permission("assignment.submit", "Hand in assignments of courses one is enrolled in",
                       {"student": "any"}),
            Permission("assignment.grade", "Download and grade a course's submissions",
                       {"admin": "any", "instructor": "own"}),
        ]

    @hookimpl
    def register_events(self) -> list[type[Event]]:
        return ev.EVENTS

    @hookimpl
    def register_services(self, runtime: Runtime) -> dict[ServiceKey[Any], Any]:
        self.media = MediaService(runtime)
        self.assignments = AssignmentService(self.media)
        self.avatars = AvatarService(self.media)
        self.direct = DirectUploads(self.media)
        return {MEDIA: self.media}

    @hookimpl
    def register_tasks(self) -> list[TaskSpec]:
        return tasks()

    @hookimpl
    def register_event_handlers(self) -> list[EventHandler]:
        # Idempotent: a second delivery finds no rows left to retire.
        return [EventHandler(ModuleRemoved, "purge_module_media", self._module_removed),
                EventHandler(CourseDeleted, "purge_course_media", self._course_deleted)]

    def _module_removed(self, runtime: Runtime, event: EventMessage[ModuleRemoved]) -> None:
        self.media.purge(event.data.course_id, event.data.module_id)

    def _course_deleted(self, runtime: Runtime, event: EventMessage[CourseDeleted]) -> None:
        self.media.purge(event.data.course_id)

    @hookimpl
    def register_routes(self, runtime: Runtime) -> list[Route]:
        svc, a, direct = self.media, self.assignments, self.direct
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
            Route(f"{m}/assignment/submissions/{{submission_id:int}}/file",
                  r.SubmissionFile(svc, a)),
            Route(f"{m}/assignment/submissions/{{submission_id:int}}/grade",
                  r.SubmissionGrade(svc, a)),
            Route(f"/users/{USER_ID}/photo", r.UserPhoto(svc, self.avatars)),
            Route("/media/{tenant_id:int}/{media_id:int}", r.MediaStream(svc),
                  tenant_scoped=False),
        ]

    @hookimpl
    def register_commands(self, cli: click.Group) -> None:
        cli.add_command(media_commands)
