"""The progress plugin's object: its hooks, and its service once the runtime is built (the
class its entry point names)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from learnplat_courses.api import cacheable_detail_extras
from learnplat_enrollment.events import EnrollmentCreated, EnrollmentDropped, EnrollmentEvent

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
from . import hookspecs
from . import resources as r
from . import seed as generated
from .api import PROGRESS
from .models import MODELS
from .services import ProgressService
from .settings import ProgressSettings
from .tasks import tasks

if TYPE_CHECKING:
    from learnplat.plugin import Principal, Runtime, Seed


class ProgressPlugin(Plugin):
    """Module completion, video playback (heartbeats, write-behind through Redis), course
    percent and milestones."""

    requires = ("courses", "enrollment")
    # The problem codes of its answers (the reference page's catalogue, /docs#problem-<code>).
    problems = {
        "not_a_video": ProblemCode(
            409, "Playback heartbeats are for video modules only (`kind` says what the module "
            "is)."),
        "module_locked": ProblemCode(
            409, "The module is locked: not released yet (`release_at`) or its prerequisite "
            "module is not completed (`prerequisite_id`); `reason` says which."),
    }
    hookspecs: ClassVar[Any] = hookspecs  # published for other plugins; the core adds them
    progress: ProgressService  # built by register_services

    @hookimpl
    def register_models(self) -> list[type]:
        return list(MODELS)

    @hookimpl
    def register_settings(self) -> dict[str, type]:
        return {"progress": ProgressSettings}

    @hookimpl
    def register_permissions(self) -> list[Permission]:
        return [
            Permission("progress.track", "Record and read one's own progress",
                       {"student": "any"}),
            Permission("progress.view_course", "See the progress of a course's students",
                       {"admin": "any", "instructor": "own"}),
        ]

    @hookimpl
    def register_events(self) -> list[type[Event]]:
        return ev.EVENTS

    @hookimpl
    def register_services(self, runtime: Runtime) -> dict[ServiceKey[Any], Any]:
        self.progress = ProgressService(runtime)
        return {PROGRESS: self.progress}

    @hookimpl
    def register_routes(self, runtime: Runtime) -> list[Route]:
        svc = self.progress
        return [
            Route("/progress/{course_id:int}", r.ProgressResource(svc)),
            Route("/progress/{course_id:int}/students", r.StudentsResource(svc)),
        ]

    @hookimpl
    def register_tasks(self) -> list[TaskSpec]:
        return tasks()

    # -- event handlers --------------------------------------------------------------------------

    def on_quiz_passed(self, runtime: Runtime, event: Any) -> None:
        p = event.payload
        self.progress.complete_from_event(
            event.id, int(p["course_id"]), int(p["module_id"]), int(p["user_id"]), "quiz",
            "quiz_passed")

    def on_assignment_graded(self, runtime: Runtime, event: Any) -> None:
        p = event.payload
        self.progress.complete_from_event(
            event.id, int(p["course_id"]), int(p["module_id"]), int(p["student_id"]),
            "assignment", "assignment_graded")

    def on_lti_score(self, runtime: Runtime, event: Any) -> None:
        p = event.payload
        done = any(p.get(k) == v for k, v in ev.LTI_DONE.items())
        if done and p.get("module_id") is not None:
            self.progress.complete_from_event(
                event.id, int(p["course_id"]), int(p["module_id"]), int(p["user_id"]), "lti",
                "lti_score_received")

    def on_enrollment_created(self, runtime: Runtime,
                              event: EventMessage[EnrollmentEvent]) -> None:
        self.progress.set_enrollment_status(
            event.data.course_id, event.data.user_id, "active", event.tenant_id)

    def on_enrollment_dropped(self, runtime: Runtime,
                              event: EventMessage[EnrollmentEvent]) -> None:
        self.progress.set_enrollment_status(
            event.data.course_id, event.data.user_id, "dropped", event.tenant_id)

    @hookimpl
    def register_event_handlers(self) -> list[EventHandler]:
        return [
            EventHandler(ev.QUIZ_PASSED, "complete_quiz_module", self.on_quiz_passed,
                         optional=True),
            EventHandler(ev.ASSIGNMENT_GRADED, "complete_assignment_module",
                         self.on_assignment_graded, optional=True),
            EventHandler(ev.LTI_SCORE_RECEIVED, "complete_lti_module", self.on_lti_score,
                         optional=True),
            EventHandler(EnrollmentCreated, "track_enrollment", self.on_enrollment_created),
            EventHandler(EnrollmentDropped, "untrack_enrollment", self.on_enrollment_dropped),
        ]

    # -- hooks of the courses and enrollment plugins ---------------------------------------------

    @hookimpl
    @cacheable_detail_extras  # ProgressService._lock and persist_playback bump LEARNER_GENERATION
    def course_detail_extras(self, runtime: Runtime, course_id: int,
                             principal: Principal | None) -> dict[str, Any] | None:
        """An enrolled student's progress summary on GET /courses/{id}."""
        if principal is None or not principal.has("progress.track"):
            return None
        summary = self.progress.summary(course_id, principal.user_id)
        if summary is None:
            return None
        return {"progress": summary.as_dict()}

    @hookimpl
    def course_analytics(self, runtime: Runtime, course_id: int) -> dict[str, Any] | None:
        """completion_rate, average_progress and per-module completions (drop-off)."""
        stats = self.progress.course_stats(course_id)
        return {"completion_rate": stats["completion_rate"],
                "average_progress": stats["average_progress"],
                "drop_off": stats["modules"], "progress": stats}

    @hookimpl
    def enrollment_summaries(self, runtime: Runtime, course_ids: list[int], user_id: Any
                             ) -> dict[int, dict[str, Any]] | None:
        """{course_id: {"percent", "completed"}} for GET /courses/enrollments, in one query."""
        return self.progress.summaries(course_ids, user_id)

    @hookimpl
    def seed_tenant(self, seed: Seed) -> None:
        """This plugin's part of a generated data set (seed.py)."""
        generated.seed_tenant(seed)
