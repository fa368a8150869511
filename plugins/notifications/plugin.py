"""The notifications plugin's object: its hooks, and its service once the runtime is built
(the class its entry point names)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

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
from learnplat_enrollment.events import EnrollmentCreated
from learnplat_progress.events import CourseCompleted, Milestone

from learnplat.plugin import (
    Event,
    EventHandler,
    EventMessage,
    Permission,
    Plugin,
    Route,
    ServiceKey,
    TaskSpec,
    hookimpl,
    utcnow,
)

from . import events as ev
from . import resources as r
from . import seed as generated
from .api import NOTIFICATIONS
from .models import MODELS
from .services import NotificationsService
from .settings import NotificationsSettings, NotificationsTenantSettings
from .tasks import RELEASE_TASK, tasks
from .ws import NotificationSocket

if TYPE_CHECKING:
    from learnplat.plugin import Runtime, Seed

Handler = Callable[["Runtime", EventMessage[Any]], None]


class Learner(Protocol):
    """What a learner's event gives a handler as ``event.data``: the course and the learner."""

    @property
    def course_id(self) -> int: ...

    @property
    def user_id(self) -> int: ...


L = TypeVar("L", bound=Learner)


class NotificationsPlugin(Plugin):
    """A notification centre per user, notifications from other plugins' events, real-time
    delivery over a WebSocket and email (immediate or daily digest)."""

    requires = ("identity", "courses", "enrollment", "progress")
    tenant_settings = NotificationsTenantSettings  # [settings.notifications] of a school
    notifications: NotificationsService  # built by register_services

    @hookimpl
    def register_models(self) -> list[type]:
        return list(MODELS)

    @hookimpl
    def register_settings(self) -> dict[str, type]:
        return {"notifications": NotificationsSettings}

    @hookimpl
    def register_permissions(self) -> list[Permission]:
        return [Permission("notifications.broadcast",
                           "Notify users, a course's students, a role or the whole school",
                           {"admin": "any"})]

    @hookimpl
    def register_events(self) -> list[type[Event]]:
        return ev.EVENTS

    @hookimpl
    def register_services(self, runtime: Runtime) -> dict[ServiceKey[Any], Any]:
        self.notifications = NotificationsService(runtime)
        return {NOTIFICATIONS: self.notifications}

    @hookimpl
    def register_routes(self, runtime: Runtime) -> list[Route]:
        svc = self.notifications
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
    def register_tasks(self) -> list[TaskSpec]:
        return tasks()

    # -- event handlers: every one is idempotent on the event id (source "event:<id>") -------

    @hookimpl
    def register_event_handlers(self) -> list[EventHandler]:
        return [
            EventHandler(EnrollmentCreated, "enrolled", self._to_learner("enrolled")),
            EventHandler(ModuleAdded, "module_published", self._module_added),
            EventHandler(ModuleUpdated, "quiz_published", self._module_updated),
            EventHandler(Milestone, "milestone", self._milestone),
            EventHandler(CourseCompleted, "course_completed",
                         self._to_learner("course_completed")),
            EventHandler(CoursePublished, "course_approved", self._to_owner("course_approved")),
            EventHandler(CourseRejected, "course_rejected", self._to_owner("course_rejected")),
            EventHandler(CourseRated, "course_rated", self._to_owner("course_rated")),
            EventHandler(FeedbackOpened, "course_question", self._to_owner("course_question")),
            # Published by plugins that may not be installed: by name, with the model of the
            # fields read (event.data is one, parsed from the payload).
            EventHandler(ev.QUIZ_GRADED, "quiz_graded", self._quiz_graded, optional=True,
                         payload=ev.QuizGradedPayload),
            EventHandler(ev.ASSIGNMENT_GRADED, "assignment_graded",
                         self._to_learner("assignment_graded", _points), optional=True,
                         payload=ev.AssignmentGradedPayload),
            EventHandler(ev.CERTIFICATE_ISSUED, "certificate_issued",
                         self._to_learner("certificate_issued"), optional=True,
                         payload=ev.CertificateIssuedPayload),
        ]

    def _to_learner(self, kind: str, extra: Callable[[L], dict[str, Any]] | None = None
                    ) -> Callable[[Runtime, EventMessage[L]], None]:
        """A handler notifying the event's learner (``event.data.user_id``) about its course.
        The template values are the payload's fields (a tenant's template may name any of
        them), the course's title and what `extra` makes of ``event.data``."""

        def handle(runtime: Runtime, event: EventMessage[L]) -> None:
            d = event.data
            course = runtime.service(COURSES).get_course(d.course_id)
            values = {"course_title": course.title if course else "", "course_id": d.course_id,
                      **event.payload, **(extra(d) if extra else {})}
            data = {"course_id": d.course_id, "event": event.name}
            self.notifications.notify_kind([d.user_id], kind, values, data,
                                           f"event:{event.id}")

        return handle

    def _quiz_graded(self, runtime: Runtime, event: EventMessage[ev.QuizGradedPayload]
                     ) -> None:
        """Only a grading the learner is not looking at already: an instructor's review or a
        regrade. A quiz graded at submission shows its result on the spot; a notification (and
        an email) on top of it is the noise schools complain about."""
        d = event.data
        if d.reviewed is not None and not (d.reviewed or d.regraded):
            return
        self._to_learner("quiz_graded", _percent_score)(runtime, event)

    def _milestone(self, runtime: Runtime, event: EventMessage[Milestone]) -> None:
        if event.data.milestone != 50:
            return
        self._to_learner("milestone", _percent)(runtime, event)

    def _to_owner(self, kind: str) -> Handler:
        """A handler notifying a course's owner (instructor) of something about the course."""

        def handle(runtime: Runtime, event: EventMessage[CourseEvent]) -> None:
            d = event.data
            values = {**event.payload, "course_title": d.title}
            data = {"course_id": d.course_id, "event": event.name}
            self.notifications.notify_kind([d.owner_id], kind, values, data,
                                           f"event:{event.id}")

        return handle

    def _module_added(self, runtime: Runtime, event: EventMessage[ModuleAdded]) -> None:
        """A module added to a published course: every active student of it. A module
        released later (drip) is announced when it is released, by a delayed task."""
        d = event.data
        if d.status != "published":
            return
        if d.release_at is not None and d.release_at > utcnow():
            delay = (d.release_at - utcnow()).total_seconds()
            runtime.queue.enqueue_for_tenant(RELEASE_TASK, d.course_id, d.module_id, event.id,
                                             delay=delay)
            return
        self.notifications.announce_module(d.course_id, d.module_id, d.module_title, d.kind,
                                           d.title, f"event:{event.id}")

    def _module_updated(self, runtime: Runtime, event: EventMessage[ModuleUpdated]) -> None:
        """A module of a published course became a quiz (the quizzes plugin attaches a quiz to
        an existing module): "new quiz", once per module and student however often it is
        set."""
        d = event.data
        if "kind" not in d.fields or d.kind != "quiz" or d.status != "published":
            return
        if d.release_at is not None and d.release_at > utcnow():
            return  # announced (as a quiz) when released
        self.notifications.announce_module(d.course_id, d.module_id, d.module_title, d.kind,
                                           d.title, f"quiz:{d.module_id}")

    @hookimpl
    def seed_tenant(self, seed: Seed) -> None:
        """This plugin's part of a generated data set (seed.py)."""
        generated.seed_tenant(self.notifications, seed)


def _points(d: ev.AssignmentGradedPayload) -> dict[str, Any]:
    """$score of an assignment's grading: points of max_points ("8/10")."""
    return {"score": f"{d.points}/{d.max_points}"}


def _percent_score(d: ev.QuizGradedPayload) -> dict[str, Any]:
    """$score of a quiz's grading: its percent ("85%")."""
    return {"score": f"{d.percent:g}%"}


def _percent(d: Milestone) -> dict[str, Any]:
    """$percent of a milestone: the milestone (50), not the exact progress."""
    return {"percent": d.milestone}
