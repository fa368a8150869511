"""Hook implementations of the enrollment plugin (the module its entry point registers)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from learnplat import hookimpl
from learnplat.registry import Permission, Route

from . import resources as r
from .models import MODELS
from .services import EnrollmentService

if TYPE_CHECKING:
    from learnplat.runtime import Runtime

requires = ("courses",)


@hookimpl
def register_models() -> list[type]:
    return list(MODELS)


@hookimpl
def register_permissions() -> list[Permission]:
    return [
        Permission("enrollment.enroll", "Enroll in (and drop) courses", {"student": "any"}),
    ]


@hookimpl
def register_services(runtime: Runtime) -> dict[str, Any]:
    return {"enrollment": EnrollmentService(runtime)}


@hookimpl
def register_routes(runtime: Runtime) -> list[Route]:
    svc: EnrollmentService = runtime.service("enrollment")
    return [Route("/courses/{course_id:int}/enroll", r.EnrollResource(svc))]


@hookimpl
def course_enrollment_status(runtime: Runtime, course_id: int, user_id: Any) -> str | None:
    found = runtime.service("enrollment").get(course_id, user_id)
    return found.status if found else None


@hookimpl
def course_has_learners(runtime: Runtime, course_id: int) -> bool:
    from .models import Enrollment

    return Enrollment.select().where(Enrollment.course_id == course_id).exists()
