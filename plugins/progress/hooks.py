"""Hook implementations of the progress plugin (the module its entry point registers)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from learnplat import hookimpl
from learnplat.registry import EventHandler, Permission, Route, TaskSpec

from . import events as ev
from . import hookspecs as hookspecs  # published for other plugins; the core adds them
from . import resources as r
from .models import MODELS
from .services import ProgressService
from .settings import ProgressSettings
from .tasks import tasks

if TYPE_CHECKING:
    from learnplat.auth import Principal
    from learnplat.runtime import Runtime

requires = ("courses", "enrollment")


@hookimpl
def register_models() -> list[type]:
    return list(MODELS)


@hookimpl
def register_settings() -> dict[str, type]:
    return {"progress": ProgressSettings}


@hookimpl
def register_permissions() -> list[Permission]:
    return [
        Permission("progress.track", "Record and read one's own progress", {"student": "any"}),
        Permission("progress.view_course", "See the progress of a course's students",
                   {"admin": "any", "instructor": "own"}),
    ]


@hookimpl
def register_services(runtime: Runtime) -> dict[str, Any]:
    return {"progress": ProgressService(runtime)}


@hookimpl
def register_routes(runtime: Runtime) -> list[Route]:
    svc: ProgressService = runtime.service("progress")
    return [
        Route("/progress/{course_id:int}", r.ProgressResource(svc)),
        Route("/progress/{course_id:int}/students", r.StudentsResource(svc)),
    ]


@hookimpl
def register_tasks() -> list[TaskSpec]:
    return tasks()


def _on_quiz_passed(runtime: Runtime, event: Any) -> None:
    p = event.payload
    runtime.service("progress").complete_from_event(
        event.id, int(p["course_id"]), int(p["module_id"]), int(p["user_id"]), "quiz",
        "quiz_passed")


def _on_enrollment(status: str) -> Any:
    def handle(runtime: Runtime, event: Any) -> None:
        p = event.payload
        runtime.service("progress").set_enrollment_status(
            int(p["course_id"]), int(p["user_id"]), status, event.tenant_id)

    return handle


@hookimpl
def register_event_handlers() -> list[EventHandler]:
    return [
        EventHandler(ev.QUIZ_PASSED, "complete_quiz_module", _on_quiz_passed),
        EventHandler(ev.ENROLLMENT_CREATED, "track_enrollment", _on_enrollment("active")),
        EventHandler(ev.ENROLLMENT_DROPPED, "untrack_enrollment", _on_enrollment("dropped")),
    ]


@hookimpl
def course_detail_extras(runtime: Runtime, course_id: int, principal: Principal | None
                         ) -> dict[str, Any] | None:
    """An enrolled student's progress summary on GET /courses/{id}."""
    if principal is None or not principal.has("progress.track"):
        return None
    summary = runtime.service("progress").summary(course_id, principal.user_id)
    if summary is None:
        return None
    return {"progress": summary.as_dict()}


@hookimpl
def course_analytics(runtime: Runtime, course_id: int) -> dict[str, Any] | None:
    """completion_rate, average_progress and per-module completions (drop-off)."""
    stats = runtime.service("progress").course_stats(course_id)
    return {"completion_rate": stats["completion_rate"],
            "average_progress": stats["average_progress"],
            "drop_off": stats["modules"], "progress": stats}


@hookimpl
def enrollment_summaries(runtime: Runtime, course_ids: list[int], user_id: Any
                         ) -> dict[int, dict[str, Any]] | None:
    """{course_id: {"percent", "completed"}} for GET /courses/enrollments, in one query."""
    return runtime.service("progress").summaries(course_ids, user_id)
