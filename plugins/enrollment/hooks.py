"""Hook implementations of the enrollment plugin (the module its entry point registers)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from learnplat_courses.api import cacheable_detail_extras

from learnplat.plugin import Action, Event, Permission, Route, ServiceKey, hookimpl

from . import events as ev
from . import hookspecs as hookspecs  # published for other plugins; the core adds them
from . import resources as r
from .api import ENROLLMENT
from .models import MODELS, Enrollment
from .services import EnrollmentService

if TYPE_CHECKING:
    from learnplat.auth import Principal
    from learnplat.runtime import Runtime

requires = ("courses", "identity")


@hookimpl
def register_models() -> list[type]:
    return list(MODELS)


@hookimpl
def register_permissions() -> list[Permission]:
    everyone = {"admin": "any", "instructor": "any", "student": "any"}
    return [
        Permission("enrollment.enroll", "Enroll in (and drop) courses", {"student": "any"}),
        Permission("enrollment.read", "List one's own enrollments; read a visible course's "
                   "enrollment rules", everyone),
        Permission("enrollment.manage", "Set a course's enrollment rules, list its students, "
                   "enroll learners in bulk", {"admin": "any", "instructor": "own"}),
    ]


@hookimpl
def register_events() -> list[type[Event]]:
    return ev.EVENTS


@hookimpl
def register_actions() -> list[Action]:
    return ev.ACTIONS


@hookimpl
def register_services(runtime: Runtime) -> dict[ServiceKey[Any], Any]:
    return {ENROLLMENT: EnrollmentService(runtime)}


def service(runtime: Runtime) -> EnrollmentService:
    svc = runtime.service(ENROLLMENT)
    assert isinstance(svc, EnrollmentService)
    return svc


@hookimpl
def register_routes(runtime: Runtime) -> list[Route]:
    svc = service(runtime)
    return [
        Route("/courses/{course_id:int}/enroll", r.EnrollResource(svc)),
        Route("/courses/enrollments", r.MyEnrollmentsResource(svc)),
        Route("/courses/{course_id:int}/students", r.StudentsResource(svc)),
        Route("/courses/{course_id:int}/enrollment-rules", r.RulesResource(svc)),
        Route("/courses/{course_id:int}/enrollments/bulk", r.BulkResource(svc)),
    ]


@hookimpl
def register_commands(cli: click.Group) -> None:
    from .cli import enrollments

    cli.add_command(enrollments)


# -- hooks of the courses plugin ------------------------------------------------------------------


@hookimpl
def course_enrollment_status(runtime: Runtime, course_id: int, user_id: Any) -> str | None:
    found = service(runtime).get(course_id, user_id)
    return found.status if found else None


@hookimpl
def course_has_learners(runtime: Runtime, course_id: int) -> bool:
    return Enrollment.select().where(Enrollment.course_id == course_id).exists()


@hookimpl
def course_analytics(runtime: Runtime, course_id: int) -> dict[str, Any]:
    return service(runtime).analytics(course_id)


@hookimpl
@cacheable_detail_extras  # EnrollmentService._event bumps LEARNER_GENERATION
def course_detail_extras(runtime: Runtime, course_id: int, principal: Principal | None
                         ) -> dict[str, Any]:
    """``enrollment``: the caller's status and whether (and how many) seats are open. Active
    enrollments are counted only when the course has a cap (`seats_left` is null without
    one)."""
    svc = service(runtime)
    rules = svc.rules_dict(course_id, count=False)
    mine = svc.get(course_id, principal.user_id) if principal is not None else None
    return {"enrollment": {
        "status": mine.status if mine else None,
        "enrollment_id": mine.id if mine else None,
        "open": rules["open"], "seats_left": rules["seats_left"],
        "opens_at": rules["opens_at"], "closes_at": rules["closes_at"],
    }}
