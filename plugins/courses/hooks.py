"""Hook implementations of the courses plugin (the module its entry point registers)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from learnplat import hookimpl
from learnplat.registry import Permission, Route

from . import hookspecs as hookspecs  # published for other plugins; the core adds them
from . import resources as r
from .models import MODELS
from .services import CoursesService

if TYPE_CHECKING:
    from learnplat.runtime import Runtime

requires = ("identity",)


@hookimpl
def register_models() -> list[type]:
    return list(MODELS)


@hookimpl
def register_permissions() -> list[Permission]:
    everyone = {"admin": "any", "instructor": "any", "student": "any"}
    return [
        Permission("course.read", "Browse the catalogue and open visible courses", everyone),
        Permission("course.create", "Create courses", {"instructor": "any"}),
        Permission("course.update", "Edit a course and its modules",
                   {"admin": "any", "instructor": "own"}),
        Permission("course.delete", "Delete (or archive) a course",
                   {"admin": "any", "instructor": "own"}),
        Permission("course.submit", "Submit a course for review", {"instructor": "own"}),
        Permission("course.review", "Approve, reject or restore courses", {"admin": "any"}),
        Permission("course.archive", "Archive a course", {"admin": "any", "instructor": "own"}),
    ]


@hookimpl
def register_services(runtime: Runtime) -> dict[str, Any]:
    return {"courses": CoursesService(runtime)}


@hookimpl
def register_routes(runtime: Runtime) -> list[Route]:
    svc: CoursesService = runtime.service("courses")
    return [
        Route("/courses", r.CourseCollection(svc)),
        Route("/courses/{course_id:int}", r.CourseItem(svc)),
        Route("/courses/{course_id:int}/submit", r.SubmitResource(svc)),
        Route("/courses/{course_id:int}/approve", r.ApproveResource(svc)),
        Route("/courses/{course_id:int}/reject", r.RejectResource(svc)),
        Route("/courses/{course_id:int}/archive", r.ArchiveResource(svc)),
        Route("/courses/{course_id:int}/modules", r.ModuleCollection(svc)),
        Route("/courses/{course_id:int}/modules/{module_id:int}", r.ModuleItem(svc)),
    ]
