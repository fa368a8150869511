"""The courses plugin's object: its hooks, and its services once the runtime is built (the
class its entry point names)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from learnplat.plugin import (
    Action,
    Event,
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
from .analytics import AnalyticsService
from .api import COURSES
from .feedback import FeedbackService
from .images import ImageService
from .images import tasks as image_tasks
from .models import MODELS
from .ratings import RatingService
from .services import CoursesService
from .settings import CoursesSettings, CoursesTenantSettings

if TYPE_CHECKING:
    from learnplat.plugin import Runtime, Seed

OWNER_OR_ADMIN = {"admin": "any", "instructor": "own"}
EVERYONE = {"admin": "any", "instructor": "any", "student": "any"}


class CoursesPlugin(Plugin):
    """Courses and their modules, the review workflow, the catalogue, course images, ratings,
    feedback threads and analytics."""

    tenant_settings = CoursesTenantSettings  # [settings.courses] of a school
    requires = ("identity",)
    # The problem codes of its answers (the reference page's catalogue, /docs#problem-<code>).
    problems = {
        "invalid_transition": ProblemCode(
            409, "The course's status does not allow this lifecycle action (submit, approve, "
            "publish, archive...): `current_status` and `allowed_actions` say what it does "
            "allow."),
        "archived_by_admin": ProblemCode(
            409, "An administrator archived this course: only an administrator can restore "
            "it."),
        "not_enrolled": ProblemCode(
            403, "The caller is not (or no longer) enrolled in this course, which this "
            "needs (rating a course, for one): enroll first."),
    }
    hookspecs: ClassVar[Any] = hookspecs  # published for other plugins; the core adds them
    # Built by register_services:
    courses: CoursesService  # the COURSES service other plugins use
    ratings: RatingService
    feedback: FeedbackService
    images: ImageService
    analytics: AnalyticsService

    @hookimpl
    def register_models(self) -> list[type]:
        return list(MODELS)

    @hookimpl
    def register_settings(self) -> dict[str, type]:
        return {"courses": CoursesSettings}

    @hookimpl
    def register_permissions(self) -> list[Permission]:
        return [
            Permission("course.read", "Browse the catalogue and open visible courses",
                       EVERYONE),
            Permission("course.create", "Create courses", {"instructor": "any"}),
            Permission("course.update", "Edit a course, its modules and its image",
                       OWNER_OR_ADMIN),
            Permission("course.delete", "Delete (or archive) a course", OWNER_OR_ADMIN),
            Permission("course.submit", "Submit a course for review, or withdraw it",
                       {"instructor": "own"}),
            Permission("course.review", "Approve or reject courses", {"admin": "any"}),
            Permission("course.archive", "Archive a course", OWNER_OR_ADMIN),
            Permission("course.restore", "Restore an archived course (owners: only what they "
                                         "archived themselves)", OWNER_OR_ADMIN),
            Permission("course.history", "See a course's status history", OWNER_OR_ADMIN),
            Permission("course.rate", "Rate courses one is enrolled in", {"student": "any"}),
            Permission("course.reply", "Reply to a course's ratings", OWNER_OR_ADMIN),
            Permission("course.feedback.ask", "Send feedback or questions to an instructor",
                       {"student": "any"}),
            Permission("course.feedback.read", "Read and reply to feedback threads one takes "
                                               "part in", EVERYONE),
            Permission("course.feedback.answer", "Read and answer every feedback thread of a "
                                                 "course", OWNER_OR_ADMIN),
            Permission("course.analytics", "See a course's analytics", OWNER_OR_ADMIN),
        ]

    @hookimpl
    def register_events(self) -> list[type[Event]]:
        return ev.EVENTS

    @hookimpl
    def register_actions(self) -> list[Action]:
        return ev.ACTIONS

    @hookimpl
    def register_services(self, runtime: Runtime) -> dict[ServiceKey[Any], Any]:
        self.courses = CoursesService(runtime)
        self.ratings = RatingService(self.courses)
        self.feedback = FeedbackService(self.courses)
        self.images = ImageService(self.courses)
        self.analytics = AnalyticsService(self.courses, self.ratings)
        return {COURSES: self.courses}

    @hookimpl
    def register_tasks(self) -> list[TaskSpec]:
        return image_tasks()

    @hookimpl
    def register_routes(self, runtime: Runtime) -> list[Route]:
        svc, ratings, feedback, images = self.courses, self.ratings, self.feedback, self.images
        c = "/courses/{course_id:int}"
        return [
            Route("/courses", r.CourseCollection(svc)),
            Route(c, r.CourseItem(svc)),
            Route(f"{c}/submit", r.SubmitResource(svc, "submit")),
            Route(f"{c}/withdraw", r.WithdrawResource(svc, "withdraw")),
            Route(f"{c}/approve", r.ApproveResource(svc, "approve")),
            Route(f"{c}/reject", r.RejectResource(svc, "reject")),
            Route(f"{c}/archive", r.ArchiveResource(svc, "archive")),
            Route(f"{c}/restore", r.RestoreResource(svc, "restore")),
            Route(f"{c}/history", r.HistoryResource(svc)),
            Route(f"{c}/modules", r.ModuleCollection(svc)),
            Route(f"{c}/modules/order", r.ModuleOrder(svc)),
            Route(f"{c}/modules/{{module_id:int}}", r.ModuleItem(svc)),
            Route(f"{c}/image", r.CourseImage(svc, images, "image")),
            Route(f"{c}/thumbnail", r.CourseThumbnail(svc, images, "thumbnail")),
            Route(f"{c}/ratings", r.RatingCollection(svc, ratings)),
            Route(f"{c}/ratings/{{rating_id:int}}/reply", r.RatingReplyResource(svc, ratings)),
            Route(f"{c}/feedback", r.FeedbackCollection(svc, feedback)),
            Route(f"{c}/feedback/{{thread_id:int}}", r.FeedbackItem(svc, feedback)),
            Route(f"{c}/feedback/{{thread_id:int}}/messages",
                  r.FeedbackMessages(svc, feedback)),
            Route(f"{c}/analytics", r.AnalyticsResource(svc, self.analytics)),
        ]

    @hookimpl
    def seed_tenant(self, seed: Seed) -> None:
        """This plugin's part of a generated data set (seed.py)."""
        generated.seed_tenant(seed)
