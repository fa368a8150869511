"""Hook implementations of the progress plugin (the module its entry point registers)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from learnplat_courses.api import cacheable_detail_extras
from learnplat_enrollment.events import EnrollmentCreated, EnrollmentDropped, EnrollmentEvent

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
from . import hookspecs as hookspecs  # published for other plugins; the core adds them
from . import resources as r
from .api import PROGRESS
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
def register_events() -> list[type[Event]]:
    return ev.EVENTS


@hookimpl
def register_services(runtime: Runtime) -> dict[ServiceKey[Any], Any]:
    return {PROGRESS: ProgressService(runtime)}


def service(runtime: Runtime) -> ProgressService:
    svc = runtime.service(PROGRESS)
    assert isinstance(svc, ProgressService)
    return svc


@hookimpl
def register_routes(runtime: Runtime) -> list[Route]:
    svc = service(runtime)
    return [
        Route("/progress/{course_id:int}", r.ProgressResource(svc)),
        Route("/progress/{course_id:int}/students", r.StudentsResource(svc)),
    ]


@hookimpl
def register_tasks() -> list[TaskSpec]:
    return tasks()


def _on_quiz_passed(runtime: Runtime, event: Any) -> None:
    p = event.payload
    service(runtime).complete_from_event(
        event.id, int(p["course_id"]), int(p["module_id"]), int(p["user_id"]), "quiz",
        "quiz_passed")


def _on_assignment_graded(runtime: Runtime, event: Any) -> None:
    p = event.payload
    service(runtime).complete_from_event(
        event.id, int(p["course_id"]), int(p["module_id"]), int(p["student_id"]), "assignment",
        "assignment_graded")


def _on_enrollment(status: str) -> Any:
    def handle(runtime: Runtime, event: EventMessage[EnrollmentEvent]) -> None:
        service(runtime).set_enrollment_status(
            event.data.course_id, event.data.user_id, status, event.tenant_id)

    return handle


@hookimpl
def register_event_handlers() -> list[EventHandler]:
    return [
        EventHandler(ev.QUIZ_PASSED, "complete_quiz_module", _on_quiz_passed, optional=True),
        EventHandler(ev.ASSIGNMENT_GRADED, "complete_assignment_module", _on_assignment_graded,
                     optional=True),
        EventHandler(EnrollmentCreated, "track_enrollment", _on_enrollment("active")),
        EventHandler(EnrollmentDropped, "untrack_enrollment", _on_enrollment("dropped")),
    ]


@hookimpl
@cacheable_detail_extras  # ProgressService._lock and persist_playback bump LEARNER_GENERATION
def course_detail_extras(runtime: Runtime, course_id: int, principal: Principal | None
                         ) -> dict[str, Any] | None:
    """An enrolled student's progress summary on GET /courses/{id}."""
    if principal is None or not principal.has("progress.track"):
        return None
    summary = service(runtime).summary(course_id, principal.user_id)
    if summary is None:
        return None
    return {"progress": summary.as_dict()}


@hookimpl
def course_analytics(runtime: Runtime, course_id: int) -> dict[str, Any] | None:
    """completion_rate, average_progress and per-module completions (drop-off)."""
    stats = service(runtime).course_stats(course_id)
    return {"completion_rate": stats["completion_rate"],
            "average_progress": stats["average_progress"],
            "drop_off": stats["modules"], "progress": stats}


@hookimpl
def enrollment_summaries(runtime: Runtime, course_ids: list[int], user_id: Any
                         ) -> dict[int, dict[str, Any]] | None:
    """{course_id: {"percent", "completed"}} for GET /courses/enrollments, in one query."""
    return service(runtime).summaries(course_ids, user_id)
