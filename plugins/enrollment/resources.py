"""Falcon resources of the enrollment plugin: thin adapters from HTTP to EnrollmentService."""

from __future__ import annotations

from typing import Any

import falcon

from learnplat.plugin import endpoint

from .schemas import (
    BulkIn,
    BulkOut,
    EnrolledStudentPage,
    EnrollmentOut,
    EnrollmentQuery,
    MyEnrollmentPage,
    RulesIn,
    RulesOut,
)
from .services import BulkEntry, EnrollmentService

TAGS = ("enrollment",)


class EnrollResource:
    def __init__(self, service: EnrollmentService):
        self.service = service

    @endpoint(permission="enrollment.enroll", response=EnrollmentOut, status=201, also=(200,),
              errors=(404, 409), tags=TAGS)
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int) -> Any:
        """Enroll in a published course: 201 the first time, then 200 with the same enrollment.

        A dropped enrollment is reactivated (200, with its progress). 409 with code
        `course_full`, `enrollment_not_open` or `enrollment_closed` when the course's rules
        refuse; 404 for a course that is not published or not in this school."""
        enrollment, created = self.service.enroll(req.context.principal, course_id)
        if not created:
            resp.status = 200
        return EnrollmentOut.of(enrollment)

    @endpoint(permission="enrollment.enroll", response=EnrollmentOut, errors=(404,), tags=TAGS)
    def on_delete(self, req: falcon.Request, resp: falcon.Response, course_id: int) -> Any:
        """Unenroll: the enrollment is kept as "dropped", with its progress.

        404 when the caller never enrolled; dropping again answers the same dropped
        enrollment."""
        return EnrollmentOut.of(self.service.drop(req.context.principal, course_id))


class MyEnrollmentsResource:
    def __init__(self, service: EnrollmentService):
        self.service = service

    @endpoint(permission="enrollment.read", query=EnrollmentQuery, response=MyEnrollmentPage,
              tags=TAGS, etag=True)
    def on_get(self, req: falcon.Request, resp: falcon.Response, *,
               query: EnrollmentQuery) -> Any:
        """The caller's enrollments, newest first, each with its course and progress summary."""
        return self.service.my_enrollments(req.context.principal, query, query.status)


class StudentsResource:
    def __init__(self, service: EnrollmentService):
        self.service = service

    @endpoint(permission="enrollment.manage", query=EnrollmentQuery, response=EnrolledStudentPage,
              errors=(404,), tags=TAGS)
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int, *,
               query: EnrollmentQuery) -> Any:
        """A course's learners (owner instructor, admin), newest first; `?status=` filters."""
        return self.service.students(req.context.principal, course_id, query, query.status)


class RulesResource:
    def __init__(self, service: EnrollmentService):
        self.service = service

    @endpoint(permission="enrollment.read", response=RulesOut, errors=(404,), tags=TAGS)
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int) -> Any:
        """A course's enrollment cap and window, with the seats left now."""
        return self.service.get_rules(req.context.principal, course_id)

    @endpoint(permission="enrollment.manage", body=RulesIn, response=RulesOut, errors=(404,),
              tags=TAGS)
    def on_put(self, req: falcon.Request, resp: falcon.Response, course_id: int, *,
               body: RulesIn) -> Any:
        """Set a course's cap and window (owner instructor, admin); null or absent removes a
        rule. A cap below the active count removes nobody, it only refuses new learners."""
        return self.service.set_rules(req.context.principal, course_id, body.cap,
                                      body.opens_at, body.closes_at)


class BulkResource:
    def __init__(self, service: EnrollmentService):
        self.service = service

    @endpoint(permission="enrollment.manage", body=BulkIn, response=BulkOut,
              errors=(404, 409), tags=TAGS, cost=20)
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int, *,
                body: BulkIn) -> Any:
        """Enroll many learners by email or user id (owner instructor, admin).

        Valid rows are applied and every row is reported: created, existing, reactivated or
        rejected with a reason (unknown account, not a student, deactivated, repeated, no seat
        left). The enrollment window does not apply to staff; the cap does. `dry_run` reports
        without writing. 409 when the course is not published."""
        entries = [BulkEntry(f"emails[{i}]", email=e) for i, e in enumerate(body.emails)]
        entries += [BulkEntry(f"user_ids[{i}]", user_id=u) for i, u in enumerate(body.user_ids)]
        report = self.service.bulk_enroll(req.context.principal, course_id, entries,
                                          dry_run=body.dry_run)
        return BulkOut.of(report)
