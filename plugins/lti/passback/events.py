"""Events of grade passback: each score sent back to a platform ends as one of these."""

from __future__ import annotations

from typing import ClassVar

from learnplat.plugin import Event


class LtiPassbackSettled(Event):
    """A learner's grade sent back to an LTI platform (AGS) reached its outcome: taken by
    the platform ("delivered") or given up ("failed": refused for good, or no success
    within the retry schedule); `http_status` and `error` are the last attempt's. Passbacks
    failed because the platform was disabled are not repeated here: the admins are told."""

    name: ClassVar[str] = "lti.passback_settled.v1"
    passback_id: int  # GET /lti/passbacks/{id}
    platform_id: int
    course_id: int
    module_id: int | None  # None: the course's grade
    user_id: int
    status: str  # delivered | failed
    score_given: float | None
    score_maximum: float | None
    attempts: int
    http_status: int | None
    error: str | None


EVENTS = [LtiPassbackSettled]
