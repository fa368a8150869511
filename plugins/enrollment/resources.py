"""Falcon resources of the enrollment plugin."""

from __future__ import annotations

from typing import Any

import falcon

from learnplat.http.endpoint import endpoint

from .schemas import EnrollmentOut
from .services import EnrollmentService, enrollment_dict


class EnrollResource:
    def __init__(self, service: EnrollmentService):
        self.service = service

    @endpoint(permission="enrollment.enroll", response=EnrollmentOut, status=201,
              errors=(409,), summary="Enroll in a published course (201 first, then 200)")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int) -> Any:
        enrollment, created = self.service.enroll(req.context.principal, course_id)
        if not created:
            resp.status = 200
        return enrollment_dict(enrollment)

    @endpoint(permission="enrollment.enroll", response=EnrollmentOut,
              summary="Unenroll: the enrollment is kept as dropped, with its progress")
    def on_delete(self, req: falcon.Request, resp: falcon.Response, course_id: int) -> Any:
        return enrollment_dict(self.service.drop(req.context.principal, course_id))
