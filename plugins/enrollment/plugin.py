"""The enrollment plugin's object: its hooks, and its service once the runtime is built
(the class its entry point names)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import click
from learnplat_courses.api import cacheable_detail_extras

from learnplat.plugin import (
    Action,
    Event,
    Permission,
    Plugin,
    ProblemCode,
    Route,
    ServiceKey,
    hookimpl,
)

from . import events as ev
from . import hookspecs
from . import resources as r
from . import seed as generated
from .api import ENROLLMENT
from .cli import enrollments
from .models import MODELS, Enrollment
from .services import EnrollmentService

if TYPE_CHECKING:
    from learnplat.plugin import Principal, Runtime, Seed


class EnrollmentPlugin(Plugin):
    """Enrollment in courses: rules (window, seats), enroll and drop, bulk enrollment."""

    requires = ("courses", "identity")
    # The problem codes of its answers (the reference page's catalogue, /docs#problem-<code>).
    problems = {
        "not_enrolled": ProblemCode(
            (403, 404), "The caller is not (or no longer) enrolled in this course, which "
            "this needs: enroll first (`POST /courses/{course_id}/enroll`). 404 when dropping "
            "an enrollment that does not exist."),
        "enrollment_not_open": ProblemCode(
            409, "The course's enrollment window has not opened yet; `opens_at` says when."),
        "enrollment_closed": ProblemCode(
            409, "The course's enrollment window has closed (`closes_at`)."),
        "course_full": ProblemCode(409, "Every seat of the course is taken (`cap`)."),
        "course_not_published": ProblemCode(
            409, "Only a published course takes enrollments."),
    }
    hookspecs: ClassVar[Any] = hookspecs  # published for other plugins; the core adds them
    enrollment: EnrollmentService  # built by register_services

    @hookimpl
    def register_models(self) -> list[type]:
        return list(MODELS)

    @hookimpl
    def register_permissions(self) -> list[Permission]:
        everyone = {"admin": "any", "instructor": "any", "student": "any"}
        return [
            Permission("enrollment.enroll", "Enroll in (and drop) courses",
                       {"student": "any"}),
            Permission("enrollment.read", "List one's own enrollments; read a visible "
                       "course's enrollment rules", everyone),
            Permission("enrollment.manage", "Set a course's enrollment rules, list its "
                       "students, enroll learners in bulk",
                       {"admin": "any", "instructor": "own"}),
        ]

    @hookimpl
    def register_events(self) -> list[type[Event]]:
        return ev.EVENTS

    @hookimpl
    def register_actions(self) -> list[Action]:
        return ev.ACTIONS

    @hookimpl
    def register_services(self, runtime: Runtime) -> dict[ServiceKey[Any], Any]:
        self.enrollment = EnrollmentService(runtime)
        return {ENROLLMENT: self.enrollment}

    @hookimpl
    def register_routes(self, runtime: Runtime) -> list[Route]:
        svc = self.enrollment
        return [
            Route("/courses/{course_id:int}/enroll", r.EnrollResource(svc)),
            Route("/courses/enrollments", r.MyEnrollmentsResource(svc)),
            Route("/courses/{course_id:int}/students", r.StudentsResource(svc)),
            Route("/courses/{course_id:int}/enrollment-rules", r.RulesResource(svc)),
            Route("/courses/{course_id:int}/enrollments/bulk", r.BulkResource(svc)),
        ]

    @hookimpl
    def register_commands(self, cli: click.Group) -> None:
        cli.add_command(enrollments)

    # -- hooks of the courses plugin ------------------------------------------------------------

    @hookimpl
    def course_enrollment_status(self, runtime: Runtime, course_id: int, user_id: Any
                                 ) -> str | None:
        found = self.enrollment.get(course_id, user_id)
        return found.status if found else None

    @hookimpl
    def course_has_learners(self, runtime: Runtime, course_id: int) -> bool:
        return bool(Enrollment.select().where(Enrollment.course_id == course_id).exists())

    @hookimpl
    def course_analytics(self, runtime: Runtime, course_id: int) -> dict[str, Any]:
        return self.enrollment.analytics(course_id)

    @hookimpl
    @cacheable_detail_extras  # EnrollmentService._event bumps LEARNER_GENERATION
    def course_detail_extras(self, runtime: Runtime, course_id: int,
                             principal: Principal | None) -> dict[str, Any]:
        """``enrollment``: the caller's status and whether (and how many) seats are open.
        Active enrollments are counted only when the course has a cap (`seats_left` is null
        without one)."""
        svc = self.enrollment
        rules = svc.rules_dict(course_id, count=False)
        mine = svc.get(course_id, principal.user_id) if principal is not None else None
        return {"enrollment": {
            "status": mine.status if mine else None,
            "enrollment_id": mine.id if mine else None,
            "open": rules["open"], "seats_left": rules["seats_left"],
            "opens_at": rules["opens_at"], "closes_at": rules["closes_at"],
        }}

    @hookimpl
    def seed_tenant(self, seed: Seed) -> None:
        """This plugin's part of a generated data set (seed.py)."""
        generated.seed_tenant(seed)
