"""Hook implementations of the notifications plugin (the module its entry point registers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from learnplat_courses.api import COURSES
from learnplat_courses.events import (
    CourseEvent,
    CoursePublished,
    CourseRated,
    CourseRejected,
    FeedbackOpened,
    ModuleAdded,
    ModuleUpdated,
)
from learnplat_enrollment.api import ENROLLMENT
from learnplat_enrollment.events import EnrollmentCreated
from learnplat_progress.events import CourseCompleted, Milestone

from learnplat.plugin import (
    Event,
    EventHandler,
    EventMessage,
    Permission,
    Route,
    ServiceKey,
    TaskSpec,
    hookimpl,
    utcnow,
)

from . import events as ev
from . import resources as r
from .api import NOTIFICATIONS
from .models import MODELS
from .services import BATCH, NotificationsService
from .settings import NotificationsSettings
from .tasks import RELEASE_TASK, tasks
from .ws import NotificationSocket

if TYPE_CHECKING:
    from learnplat.plugin import Runtime

requires = ("identity", "courses", "enrollment", "progress")


@hookimpl
def register_models() -> list[type]:
    return list(MODELS)


@hookimpl
def register_settings() -> dict[str, type]:
    return {"notifications": NotificationsSettings}


@hookimpl
def register_permissions() -> list[Permission]:
    return [Permission("notifications.broadcast",
                       "Notify users, a course's students, a role or the whole school",
                       {"admin": "any"})]


@hookimpl
def register_events() -> list[type[Event]]:
    return ev.EVENTS


@hookimpl
def register_services(runtime: Runtime) -> dict[ServiceKey[Any], Any]:
    return {NOTIFICATIONS: NotificationsService(runtime)}


def service(runtime: Runtime) -> NotificationsService:
    svc = runtime.service(NOTIFICATIONS)
    assert isinstance(svc, NotificationsService)
    return svc


@hookimpl
def register_routes(runtime: Runtime) -> list[Route]:
    svc = service(runtime)
    return [
        Route("/notifications", r.NotificationsResource(svc)),
        Route("/notifications/{notification_id:int}", r.NotificationResource(svc)),
        Route("/notifications/{notification_id:int}/read", r.ReadResource(svc)),
        Route("/notifications/read-all", r.ReadAllResource(svc)),
        Route("/notifications/unread-count", r.UnreadCountResource(svc)),
        Route("/notifications/preferences", r.PreferencesResource(svc)),
        Route("/notifications/broadcasts/{broadcast_id:int}", r.BroadcastResource(svc)),
        # An `on_websocket` resource: served by the ASGI entry (learnplat.http.asgi).
        Route("/notifications/ws", NotificationSocket(runtime, svc)),
    ]


@hookimpl
def register_tasks() -> list[TaskSpec]:
    return tasks()


# -- event handlers: every one is idempotent on the event id (source "event:<id>") -----------


def _course_title(runtime: Runtime, course_id: int) -> str:
    course = runtime.service(COURSES).get_course(course_id)
    return course.title if course else ""


def _to_learner(kind: str, extra: Callable[[dict[str, Any]], dict[str, Any]] | None = None
                ) -> Callable[[Runtime, EventMessage[Any]], None]:
    """A handler notifying the event's learner (`user_id`, or `student_id` as the media
    plugin's assignment events name it) about its `course_id`."""

    def handle(runtime: Runtime, event: EventMessage[Any]) -> None:
        p = event.payload
        course_id = int(p["course_id"])
        user_id = int(p["user_id"] if "user_id" in p else p["student_id"])
        values = {"course_title": _course_title(runtime, course_id), "course_id": course_id,
                  **p, **(extra(p) if extra else {})}
        data = {"course_id": course_id, "event": event.name}
        service(runtime).notify_kind([user_id], kind, values, data, f"event:{event.id}")

    return handle


def _score(p: dict[str, Any]) -> dict[str, Any]:
    """$score of a grading: "8/10" (assignments: points of max_points), "85%" (quizzes:
    percent), else the payload's own score."""
    if "points" in p and "max_points" in p:
        return {"score": f"{p['points']}/{p['max_points']}"}
    if "percent" in p and "score" not in p:
        return {"score": f"{float(p['percent']):g}%"}
    return {}


def _quiz_graded(runtime: Runtime, event: EventMessage[Any]) -> None:
    """Only a grading the learner is not looking at already: an instructor's review or a
    regrade. A quiz graded at submission shows its result on the spot; a notification (and an
    email) on top of it is the noise schools complain about."""
    p = event.payload
    if "reviewed" in p and not (p.get("reviewed") or p.get("regraded")):
        return
    _to_learner("quiz_graded", _score)(runtime, event)


def _milestone(runtime: Runtime, event: EventMessage[Milestone]) -> None:
    if event.data.milestone != 50:
        return
    _to_learner("milestone", lambda p: {"percent": int(p["milestone"])})(runtime, event)


def _to_owner(kind: str) -> Callable[[Runtime, EventMessage[Any]], None]:
    """A handler notifying a course's owner (instructor) of something about the course."""

    def handle(runtime: Runtime, event: EventMessage[CourseEvent]) -> None:
        d = event.data
        values = {**event.payload, "course_title": d.title}
        data = {"course_id": d.course_id, "event": event.name}
        service(runtime).notify_kind([d.owner_id], kind, values, data, f"event:{event.id}")

    return handle


def _module_added(runtime: Runtime, event: EventMessage[ModuleAdded]) -> None:
    """A module added to a published course: every active student of it. A module released
    later (drip) is announced when it is released, by a delayed task."""
    d = event.data
    if d.status != "published":
        return
    if d.release_at is not None and d.release_at > utcnow():
        delay = (d.release_at - utcnow()).total_seconds()
        runtime.queue.enqueue_for_tenant(RELEASE_TASK, d.course_id, d.module_id, event.id,
                                         delay=delay)
        return
    announce_module(runtime, d.course_id, d.module_id, d.module_title, d.kind, d.title,
                    f"event:{event.id}")


def _module_updated(runtime: Runtime, event: EventMessage[ModuleUpdated]) -> None:
    """A module of a published course became a quiz (the quizzes plugin attaches a quiz to an
    existing module): "new quiz", once per module and student however often it is set."""
    d = event.data
    if "kind" not in d.fields or d.kind != "quiz" or d.status != "published":
        return
    if d.release_at is not None and d.release_at > utcnow():
        return  # announced (as a quiz) when released
    announce_module(runtime, d.course_id, d.module_id, d.module_title, d.kind, d.title,
                    f"quiz:{d.module_id}")


def announce_module(runtime: Runtime, course_id: int, module_id: int, module_title: str,
                    module_kind: str, course_title: str, source: str) -> None:
    """Notify every active student of the course, a page at a time (a retried delivery
    skips those already notified: `source` is unique per student)."""
    kind = "quiz_published" if module_kind == "quiz" else "module_published"
    values = {"course_title": course_title, "module_title": module_title,
              "course_id": course_id}
    data = {"course_id": course_id, "module_id": module_id}
    svc, after = service(runtime), 0
    while True:
        ids = runtime.service(ENROLLMENT).active_user_ids(course_id, after_id=after,
                                                          limit=BATCH)
        if ids:
            svc.notify_kind(ids, kind, values, data, source)
        if len(ids) < BATCH:
            return
        after = max(ids)


@hookimpl
def register_event_handlers() -> list[EventHandler]:
    return [
        EventHandler(EnrollmentCreated, "enrolled", _to_learner("enrolled")),
        EventHandler(ModuleAdded, "module_published", _module_added),
        EventHandler(ModuleUpdated, "quiz_published", _module_updated),
        EventHandler(Milestone, "milestone", _milestone),
        EventHandler(CourseCompleted, "course_completed", _to_learner("course_completed")),
        EventHandler(CoursePublished, "course_approved", _to_owner("course_approved")),
        EventHandler(CourseRejected, "course_rejected", _to_owner("course_rejected")),
        EventHandler(CourseRated, "course_rated", _to_owner("course_rated")),
        EventHandler(FeedbackOpened, "course_question", _to_owner("course_question")),
        # Published by plugins that may not be installed: by name.
        EventHandler(ev.QUIZ_GRADED, "quiz_graded", _quiz_graded, optional=True),
        EventHandler(ev.ASSIGNMENT_GRADED, "assignment_graded",
                     _to_learner("assignment_graded", _score), optional=True),
        EventHandler(ev.CERTIFICATE_ISSUED, "certificate_issued",
                     _to_learner("certificate_issued"), optional=True),
    ]
