"""Request and response schemas of /lti/passbacks (validation and OpenAPI at once)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PassbackStatus = Literal["pending", "delivered", "failed", "cancelled"]

# The examples: Ada (user 1001, the platform's sub "a6d5c443") completed course 42, whose
# grade goes to the school's Canvas at https://lms.example.edu (platform registration 3).
_SCORE: dict[str, Any] = {
    "userId": "a6d5c443", "scoreGiven": 100.0, "scoreMaximum": 100,
    "activityProgress": "Completed", "gradingProgress": "FullyGraded",
    "timestamp": "2026-09-12T15:04:00Z"}
_ENTRY: dict[str, Any] = {
    "id": 7310, "course_id": 42, "module_id": None, "user_id": 1001, "platform_id": 3,
    "target_id": 19, "event_type": "course.completed.v1", "event_id": 88412,
    "lineitem": "https://lms.example.edu/api/lti/courses/5/line_items/61",
    "score_given": 100.0, "score_maximum": 100, "status": "delivered", "attempts": 1,
    "created_at": "2026-09-12T15:04:00Z", "next_attempt_at": None,
    "last_attempt_at": "2026-09-12T15:04:01Z", "delivered_at": "2026-09-12T15:04:01Z",
    "last_status": 200, "last_error": None, "platform_disabled_at": None,
    "platform_disabled_reason": None}
_ATTEMPT: dict[str, Any] = {"at": "2026-09-12T15:04:01Z", "status": 200, "latency_ms": 84.2,
                            "answer": "", "error": None}


class LtiPassbackQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    course_id: int | None = Field(None, ge=1, le=2**63 - 1)
    user_id: int | None = Field(None, ge=1, le=2**63 - 1)
    status: PassbackStatus | None = None
    before: int | None = Field(None, ge=1, le=2**63 - 1,
                               description="A page's next_cursor: entries older than it.")
    limit: int = Field(50, ge=1, le=200)


class LtiPassbackEntry(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_ENTRY]})

    id: int = Field(description="The passback's id (GET /lti/passbacks/{id}).")
    course_id: int
    module_id: int | None = Field(description="None: the course's grade.")
    user_id: int
    platform_id: int = Field(description="The platform registration the score goes to.")
    target_id: int = Field(description="The grade target (the learner's launch) it came of.")
    event_type: str
    event_id: int | None
    lineitem: str = Field(description="The platform's line item (scores go to .../scores).")
    score_given: float | None
    score_maximum: float | None
    status: PassbackStatus
    attempts: int
    created_at: dt.datetime
    next_attempt_at: dt.datetime | None
    last_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None
    last_status: int | None = Field(description="The platform's last HTTP status.")
    last_error: str | None = Field(
        description="Why the last attempt failed (no answer, the token endpoint's refusal).")
    platform_disabled_at: dt.datetime | None = Field(
        description="The delivery engine stopped sending to this platform (failing for days).")
    platform_disabled_reason: str | None


class LtiPassbackPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"items": [_ENTRY], "next_cursor": None}]})

    items: list[LtiPassbackEntry]
    next_cursor: str | None = Field(
        None, description="Pass as `before` for the next page (a page may hold fewer than "
                          "`limit` entries and still have one).")


class LtiPassbackAttemptOut(BaseModel):
    at: dt.datetime
    status: int | None
    latency_ms: float
    answer: str = Field(description="The first bytes of the platform's answer.")
    error: str | None


class LtiPassbackDetail(LtiPassbackEntry):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {**_ENTRY, "score": _SCORE, "attempts_log": [_ATTEMPT]}]})

    score: dict[str, Any] = Field(description="The AGS score as sent.")
    attempts_log: list[LtiPassbackAttemptOut] = Field(description="Every attempt, newest first.")
