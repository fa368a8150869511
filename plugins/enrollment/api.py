"""The enrollment plugin's contract: ``runtime.service(ENROLLMENT)`` is an ``EnrollmentAPI``.
Events: ``learnplat_enrollment.events``."""

from __future__ import annotations

import datetime as dt
from typing import Literal, Protocol

from learnplat.plugin import Principal, Record, ServiceKey

EnrollmentStatus = Literal["active", "dropped"]


class EnrollmentInfo(Record):
    id: int
    course_id: int
    user_id: int
    status: EnrollmentStatus
    created_at: dt.datetime


class EnrollmentAPI(Protocol):
    def get(self, course_id: int, user_id: int) -> EnrollmentInfo | None:
        """A user's enrollment in a course, whatever its status; None if never enrolled."""

    def require_active(self, course_id: int, principal: Principal) -> EnrollmentInfo:
        """The caller's active enrollment: NotFound for a course they cannot see,
        PermissionDenied (code not_enrolled) when they see it but are not enrolled."""

    def active_count(self, course_id: int) -> int:
        """How many learners are actively enrolled."""

    def active_user_ids(self, course_id: int, after_id: int = 0, limit: int = 1000
                        ) -> list[int]:
        """Ids of a course's active learners above `after_id`, ascending, at most `limit`
        (page through a large course for a fan-out)."""

    def enroll_from(self, course_id: int, user_id: int, source: str) -> EnrollmentInfo:
        """Enroll a learner because another system says so (`source`: "lti" for a launch
        from an LMS): the enrollment is active afterwards. Idempotent (an active enrollment
        is returned as it is); a dropped one is reactivated. Records the usual
        ``enrollment.created.v1`` (with `source`, no actor). No approval rules, window, cap
        or veto apply: the other system decided. NotFound for an unknown course; the caller
        checks it may be entered (published). Since 0.3."""


ENROLLMENT: ServiceKey[EnrollmentAPI] = ServiceKey("enrollment", EnrollmentAPI)
