"""Request and response schemas of the /xapi routes (validation and OpenAPI at once)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from learnplat.plugin import Schema

ActorMode = Literal["account", "mbox_sha1sum"]
StatementStatus = Literal["pending", "delivered", "failed", "cancelled"]
RedeliverStatus = Literal["failed", "delivered", "cancelled"]

# The document's examples: Northfield College ("northfield", home page
# https://northfield.example.edu) sends Ada Lovelace's (user 1001) learning in course 42,
# "Introduction to Statistics", to its LRS.
_LRS: dict[str, Any] = {
    "endpoint": "https://lrs.northfield.example.edu/xapi", "key": "learnplat",
    "secret_set": True, "actor": "account", "home_page": "https://northfield.example.edu",
    "language": "en-US", "enabled": True,
    "delivery": {"disabled_at": None, "disabled_reason": None, "failing_since": None,
                 "consecutive_failures": 0, "last_success_at": "2026-09-12T15:04:02Z"},
    "created_at": "2026-09-01T08:00:00Z", "updated_at": "2026-09-01T08:00:00Z"}
_ENTRY: dict[str, Any] = {
    "id": 5120, "statement_id": "1c2b8f0e-52a4-5d4b-9a43-6f0f4e1b7c21", "verb": "passed",
    "verb_id": "http://adlnet.gov/expapi/verbs/passed", "event_type": "quiz.graded.v1",
    "event_id": 88412, "status": "delivered", "attempts": 1,
    "created_at": "2026-09-12T15:04:00Z", "last_attempt_at": "2026-09-12T15:04:01Z",
    "delivered_at": "2026-09-12T15:04:01Z", "next_attempt_at": None, "last_status": 200,
    "last_error": None}
_STATEMENT: dict[str, Any] = {
    "id": "1c2b8f0e-52a4-5d4b-9a43-6f0f4e1b7c21",
    "actor": {"objectType": "Agent", "account": {"homePage": "https://northfield.example.edu",
                                                 "name": "1001"}},
    "verb": {"id": "http://adlnet.gov/expapi/verbs/passed", "display": {"en-US": "passed"}},
    "object": {"objectType": "Activity", "id": "https://northfield.example.edu/quizzes/7",
               "definition": {"type": "http://adlnet.gov/expapi/activities/assessment",
                              "name": {"en-US": "Week 3 quiz"}}},
    "result": {"score": {"scaled": 0.85, "raw": 85, "min": 0, "max": 100}, "success": True,
               "completion": True},
    "context": {"platform": "learnplat", "language": "en-US",
                "registration": "0f8e2a57-3d6b-5c0e-8e51-2b7d1f4a9c63",
                "contextActivities": {"parent": [{
                    "objectType": "Activity",
                    "id": "https://northfield.example.edu/courses/42",
                    "definition": {"type": "http://adlnet.gov/expapi/activities/course",
                                   "name": {"en-US": "Introduction to Statistics"}}}]}},
    "timestamp": "2026-09-12T15:04:00.000Z"}
_ATTEMPT: dict[str, Any] = {"at": "2026-09-12T15:04:01Z", "status": 200, "latency_ms": 42.5,
                            "answer": '["1c2b8f0e-52a4-5d4b-9a43-6f0f4e1b7c21"]',
                            "error": None}


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """A time without a zone is UTC (so that comparing it with a stored time never fails)."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _examples(*examples: Any) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class LrsIn(Schema):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={
        "examples": [{"endpoint": "https://lrs.northfield.example.edu/xapi",
                      "key": "learnplat", "secret": "s3cr3t-from-the-lrs",
                      "actor": "account", "enabled": True}]})

    endpoint: str = Field(min_length=1, max_length=2000,
                          description="The LRS's xAPI base URL (statements go to "
                                      "<endpoint>/statements).")
    key: str = Field(min_length=1, max_length=300,
                     description="Basic authentication: the LRS's key (user name).")
    secret: str | None = Field(None, min_length=1, max_length=1000,
                               description="Basic authentication: the secret. Required the "
                                           "first time; omitted: the stored one is kept. "
                                           "Never shown again.")
    actor: ActorMode | None = Field(None, description="How learners are identified: "
                                                      "`account` (default) or `mbox_sha1sum`.")
    home_page: str | None = Field(None, min_length=1, max_length=2000,
                                  pattern=r"^https?://[^\s]+$",
                                  description="account.homePage and the base of activity "
                                              "IRIs; default: the school's domain.")
    language: str | None = Field(None, min_length=2, max_length=35,
                                 pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$",
                                 description="RFC 5646 tag of context.language and the "
                                             "names (default en-US).")
    enabled: bool | None = Field(None, description="Send statements (default true).")


class LrsDeliveryOut(BaseModel):
    disabled_at: dt.datetime | None = None
    disabled_reason: str | None = None
    failing_since: dt.datetime | None = None
    consecutive_failures: int = 0
    last_success_at: dt.datetime | None = None


class LrsOut(BaseModel):
    model_config = _examples(_LRS)

    endpoint: str
    key: str
    secret_set: bool = Field(description="Always true: the secret itself is never shown.")
    actor: ActorMode
    home_page: str
    language: str
    enabled: bool
    delivery: LrsDeliveryOut | None = Field(description="The delivery engine's view of the "
                                                     "LRS: failing, disabled (and why).")
    created_at: dt.datetime
    updated_at: dt.datetime


class StatementEntry(BaseModel):
    model_config = _examples(_ENTRY)

    id: int = Field(description="The log entry's id (GET /xapi/statements/{id}).")
    statement_id: str = Field(description="The statement's id (a UUID, stable per event).")
    verb: str
    verb_id: str
    event_type: str
    event_id: int | None
    status: StatementStatus
    attempts: int
    created_at: dt.datetime
    next_attempt_at: dt.datetime | None
    last_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None
    last_status: int | None = Field(description="The HTTP status of the last answer (null: "
                                                "no answer, see last_error).")
    last_error: str | None


class StatementPage(BaseModel):
    model_config = _examples({"items": [_ENTRY], "next_cursor": "5120"})

    items: list[StatementEntry]
    next_cursor: str | None = Field(None, description="Pass as `before` for the next page.")


class StatementAttemptOut(BaseModel):
    at: dt.datetime
    status: int | None
    latency_ms: float
    answer: str = Field(description="The first bytes of the LRS's answer.")
    error: str | None


class StatementDetail(StatementEntry):
    model_config = _examples({**_ENTRY, "statement": _STATEMENT, "attempts_log": [_ATTEMPT]})

    statement: dict[str, Any] = Field(description="The xAPI statement as sent.")
    attempts_log: list[StatementAttemptOut] = Field(description="Every attempt, newest first.")


class StatementQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: StatementStatus | None = None
    event_type: str | None = Field(None, min_length=1, max_length=200)
    since: dt.datetime | None = Field(None, description="Queued at or after.")
    until: dt.datetime | None = Field(None, description="Queued before.")
    before: int | None = Field(None, ge=1, le=2**63 - 1,
                               description="A page's next_cursor: entries older than it.")
    limit: int = Field(50, ge=1, le=200)

    _zone = field_validator("since", "until")(_utc)


class StatementsRedeliverIn(Schema):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"since": "2026-09-12T00:00:00Z", "until": "2026-09-13T00:00:00Z"}]})

    since: dt.datetime = Field(description="Statements queued at or after.")
    until: dt.datetime = Field(description="... and before.")
    statuses: list[RedeliverStatus] = Field(
        default_factory=lambda: list[RedeliverStatus](["failed"]), min_length=1, max_length=3,
        description="Which statements to send again (default the failed ones).")

    _zone = field_validator("since", "until")(_utc)


class StatementsRequeuedOut(BaseModel):
    model_config = _examples({"redelivered": 2, "ids": [5120, 5121]})

    redelivered: int
    ids: list[int]
