"""Enrollment: exactly one enrollment per student and course, also under concurrent requests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import peewee

from learnplat import db
from learnplat.auth import Principal
from learnplat.errors import Conflict, NotFound, PermissionDenied
from learnplat.models import utcnow
from learnplat.tenancy import current_tenant

from .api import EnrollmentInfo
from .models import Enrollment, EnrollmentRules

if TYPE_CHECKING:
    from learnplat.runtime import Runtime


def info(e: Enrollment) -> EnrollmentInfo:
    return EnrollmentInfo(id=e.id, course_id=e.course_id, user_id=e.user_id, status=e.status,
                          created_at=e.created_at)


def enrollment_dict(e: Enrollment) -> dict[str, Any]:
    return {"id": e.id, "course_id": e.course_id, "user_id": e.user_id, "status": e.status,
            "source": e.source, "created_at": e.created_at, "updated_at": e.updated_at,
            "dropped_at": e.dropped_at}


class EnrollmentService:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    @property
    def courses(self) -> Any:
        return self.runtime.service("courses")

    # -- for other plugins -------------------------------------------------------------------

    def get(self, course_id: int, user_id: Any) -> EnrollmentInfo | None:
        e = Enrollment.get_or_none((Enrollment.course_id == course_id)
                                   & (Enrollment.user_id == user_id))
        return info(e) if e else None

    def require_active(self, course_id: int, principal: Principal) -> EnrollmentInfo:
        """The caller's active enrollment; 404 for a course they cannot see, 403 when they
        see it but are not enrolled."""
        self.courses.visible_course(course_id, principal)
        found = self.get(course_id, principal.user_id)
        if found is None or found.status != "active":
            raise PermissionDenied("you are not enrolled in this course", code="not_enrolled")
        return found

    def active_count(self, course_id: int) -> int:
        return Enrollment.select().where((Enrollment.course_id == course_id)
                                         & (Enrollment.status == "active")).count()

    # -- enrolling ---------------------------------------------------------------------------

    def enroll(self, principal: Principal, course_id: int, user_id: Any = None,
               source: str = "self") -> tuple[Enrollment, bool]:
        """(enrollment, created). Enrolling again returns the same enrollment; a dropped one
        is reactivated with its progress."""
        user_id = principal.user_id if user_id is None else user_id
        course = self.courses.visible_course(course_id, principal)
        if course.status != "published":
            raise NotFound("no such course")
        with db.transaction():
            existing = Enrollment.get_or_none((Enrollment.course_id == course_id)
                                              & (Enrollment.user_id == user_id))
            if existing is not None and existing.status == "active":
                return existing, False
            self.runtime.before("enrollment.create", current_tenant(), principal,
                                course_id=course_id, user_id=user_id)
            self._check_rules(course_id)
            if existing is not None:
                existing.status, existing.dropped_at = "active", None
                existing.updated_at = utcnow()
                existing.save()
                self._event("enrollment.created.v1", existing, reactivated=True)
                return existing, False
            try:
                with db.database.atomic():  # savepoint: a lost race must not abort the request
                    enrollment = Enrollment.create(course_id=course_id, user_id=user_id,
                                                   source=source)
            except peewee.IntegrityError:
                # Another request enrolled the same student first: answer with that one.
                winner = Enrollment.get((Enrollment.course_id == course_id)
                                        & (Enrollment.user_id == user_id))
                return winner, False
            self._event("enrollment.created.v1", enrollment, reactivated=False)
            return enrollment, True

    def _check_rules(self, course_id: int) -> None:
        query = EnrollmentRules.select().where(EnrollmentRules.course_id == course_id)
        if db.is_postgres():
            query = query.for_update()  # serialises enrollments against the cap
        rules = query.first()
        if rules is None:
            return
        now = utcnow()
        if rules.opens_at and now < rules.opens_at:
            raise Conflict("enrollment has not opened yet", code="enrollment_closed",
                           opens_at=rules.opens_at.isoformat())
        if rules.closes_at and now >= rules.closes_at:
            raise Conflict("enrollment is closed", code="enrollment_closed")
        if rules.cap is not None and self.active_count(course_id) >= rules.cap:
            raise Conflict("the course is full", code="course_full", cap=rules.cap)

    def drop(self, principal: Principal, course_id: int) -> Enrollment:
        self.courses.visible_course(course_id, principal)
        with db.transaction():
            e = Enrollment.get_or_none((Enrollment.course_id == course_id)
                                       & (Enrollment.user_id == principal.user_id))
            if e is None:
                raise NotFound("you are not enrolled in this course")
            if e.status != "dropped":
                e.status, e.dropped_at, e.updated_at = "dropped", utcnow(), utcnow()
                e.save()
                self._event("enrollment.dropped.v1", e)
            return e

    def _event(self, name: str, e: Enrollment, **extra: Any) -> None:
        self.runtime.events.record(name, {"enrollment_id": e.id, "course_id": e.course_id,
                                          "user_id": e.user_id, **extra})
