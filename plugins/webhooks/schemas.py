"""Request and response schemas of the /webhooks routes (validation and OpenAPI at once)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from learnplat.plugin import PageQuery, Schema

# The OpenAPI document's examples: Northfield College's ("northfield") student information
# system receives enrollments and completions of course 42, "Introduction to Statistics"
# (Ada Lovelace, user 1001, enrolled by herself; the endpoint made by admin 1003).
_URL = "https://sis.northfield.example.edu/learnplat/webhooks"
_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
_ENDPOINT: dict[str, Any] = {
    "id": 7, "url": _URL, "description": "Student information system: enrollments",
    "event_types": ["enrollment.*", "course.completed.v1"], "enabled": True,
    "disabled_reason": None, "disabled_at": None, "created_by": 1003,
    "created_at": "2026-09-01T08:00:00Z", "updated_at": "2026-09-01T08:00:00Z"}
_DELIVERY: dict[str, Any] = {
    "id": 5521, "endpoint_id": 7, "webhook_id": "msg_88213", "event_id": 88213,
    "event_type": "enrollment.created.v1", "status": "delivered", "attempts": 2,
    "created_at": "2026-09-03T09:12:44Z", "next_attempt_at": None,
    "last_attempt_at": "2026-09-03T09:12:50Z", "delivered_at": "2026-09-03T09:12:50Z",
    "last_status": 200, "last_error": None}
_PAYLOAD: dict[str, Any] = {
    "type": "enrollment.created.v1", "timestamp": "2026-09-03T09:12:44Z",
    "data": {"enrollment_id": 3100, "course_id": 42, "user_id": 1001, "actor_id": 1001,
             "reactivated": False, "source": "self"}}
_ATTEMPTS: list[dict[str, Any]] = [
    {"id": 9101, "at": "2026-09-03T09:12:45Z", "status": 503, "latency_ms": 48.2,
     "answer": "Service Unavailable", "error": None},
    {"id": 9102, "at": "2026-09-03T09:12:50Z", "status": 200, "latency_ms": 31.0,
     "answer": "ok", "error": None}]

# An event type or a pattern: lower-case names, dots, digits and `*` (any run of characters).
PATTERN = r"^[a-z0-9_.*]+$"
EventPattern = Annotated[str, Field(min_length=1, max_length=120, pattern=PATTERN)]
URL = r"^[Hh][Tt][Tt][Pp][Ss]?://"
MessageStatus = Literal["pending", "delivered", "failed", "cancelled"]
RedeliverStatus = Literal["failed", "delivered", "cancelled", "any"]


def _examples(*examples: Any) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class _EndpointFields(Schema):
    @field_validator("event_types", check_fields=False)
    @classmethod
    def _unique(cls, value: list[str] | None) -> list[str] | None:
        return list(dict.fromkeys(value)) if value is not None else None


class EndpointIn(_EndpointFields):
    model_config = _examples({"url": _URL, "description": _ENDPOINT["description"],
                              "event_types": _ENDPOINT["event_types"]})

    url: str = Field(min_length=1, max_length=2000, pattern=URL,
                     description="Where deliveries are POSTed: https:// (plain http:// and "
                                 "private addresses only where the operator allows them).")
    description: str = Field("", max_length=500)
    event_types: list[EventPattern] = Field(
        min_length=1, max_length=50,
        description="Published event types (`enrollment.created.v1`) or patterns "
                    "(`enrollment.*`, `*`), each matching at least one published event "
                    "(GET /webhooks/event-types).")
    enabled: bool = True


class EndpointPatch(_EndpointFields):
    model_config = _examples({"event_types": ["enrollment.*"], "enabled": True})
    omit_not_null = ("url", "description", "event_types", "enabled")

    url: str | None = Field(None, min_length=1, max_length=2000, pattern=URL)
    description: str | None = Field(None, max_length=500)
    event_types: list[EventPattern] | None = Field(None, min_length=1, max_length=50)
    enabled: bool | None = Field(
        None, description="false: nothing is queued or sent to it (deliveries already "
                          "queued wait); true: re-enables an endpoint the delivery engine or "
                          "an admin disabled, and sends what waited.")

    @field_validator("url", "description", "event_types", "enabled", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be left out, not null")
        return value


class EndpointOut(BaseModel):
    model_config = _examples(_ENDPOINT)

    id: int
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None = Field(
        description="Why it is disabled: an admin, a 410 answer, or days without a success.")
    disabled_at: dt.datetime | None
    created_by: int | None
    created_at: dt.datetime
    updated_at: dt.datetime


class EndpointCreatedOut(EndpointOut):
    model_config = _examples({**_ENDPOINT, "secret": _SECRET})

    secret: str = Field(description="The signing secret (`whsec_...`): shown this once, never "
                                    "again. Keep it where the receiver can read it.")


class EndpointPage(BaseModel):
    items: list[EndpointOut]
    next_cursor: str | None = None


class EndpointQuery(PageQuery):
    enabled: bool | None = None


class RotateIn(Schema):
    model_config = _examples({"overlap_hours": 24})

    overlap_hours: int = Field(24, ge=0, le=168,
                               description="How long the current secret keeps signing beside "
                                           "the new one (0: it stops now).")


class RotateOut(BaseModel):
    model_config = _examples({"endpoint_id": 7, "secret": _SECRET,
                              "previous_expires_at": "2026-09-11T10:00:00Z"})

    endpoint_id: int
    secret: str = Field(description="The new signing secret: shown this once.")
    previous_expires_at: dt.datetime | None = Field(
        description="Until when the previous secret(s) still sign; null: there was none.")


class DeliveryOut(BaseModel):
    model_config = _examples(_DELIVERY)

    id: int
    endpoint_id: int
    webhook_id: str = Field(description="The `webhook-id` header: the same on every attempt "
                                        "and redelivery (deduplicate on it).")
    event_id: int | None
    event_type: str
    status: MessageStatus
    attempts: int
    created_at: dt.datetime
    next_attempt_at: dt.datetime | None
    last_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None
    last_status: int | None = Field(description="The last answer's HTTP status (null: none).")
    last_error: str | None


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None = None


class DeliveryAttemptOut(BaseModel):
    model_config = _examples(_ATTEMPTS[0])

    id: int
    at: dt.datetime
    status: int | None = Field(description="The answer's HTTP status; null: no answer "
                                           "(`error` says why).")
    latency_ms: float
    answer: str = Field(description="The first bytes of the answer's body.")
    error: str | None


class DeliveryDetailOut(DeliveryOut):
    model_config = _examples({**_DELIVERY, "payload": _PAYLOAD, "attempt_log": _ATTEMPTS})

    payload: dict[str, Any] = Field(description="The body sent: {type, timestamp, data}.")
    attempt_log: list[DeliveryAttemptOut] = Field(description="Every attempt, newest first.")


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """An aware moment in UTC; one beyond what UTC can hold (9999-12-31T23:00-05:00) is
    clamped, as a filter it means the same."""
    if value is None:
        return None
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        edge = dt.datetime.max if value.year > 5000 else dt.datetime.min
        return edge.replace(tzinfo=dt.UTC)


class DeliveryQuery(PageQuery):
    status: MessageStatus | None = None
    event_type: str | None = Field(None, min_length=1, max_length=120, pattern=r"^[a-z0-9_.]+$")
    since: AwareDatetime | None = Field(None, description="Queued at or after.")
    until: AwareDatetime | None = Field(None, description="Queued before.")
    cursor: str | None = Field(None, max_length=18, pattern=r"^[0-9]+$",
                               description="The next_cursor of the previous page.")

    _utc = field_validator("since", "until")(utc)


class RedeliverRangeIn(Schema):
    model_config = _examples({"since": "2026-09-03T00:00:00Z", "until": "2026-09-04T00:00:00Z",
                              "status": "failed"})

    since: AwareDatetime = Field(description="Deliveries queued at or after this moment.")
    until: AwareDatetime | None = Field(None, description="... and before this one (default: "
                                                          "now).")
    status: RedeliverStatus = Field("failed", description="Which of them: failed (default), "
                                                          "delivered, cancelled or any.")

    _utc = field_validator("since", "until")(utc)


class DeliveriesRequeuedOut(BaseModel):
    model_config = _examples({"redelivered": 2, "ids": [5521, 5530]})

    redelivered: int
    ids: list[int]


class EventTypeOut(BaseModel):
    name: str
    description: str
    publisher: str = Field(description="The plugin that records it.")
    schema_: dict[str, Any] = Field(alias="schema",
                                    description="JSON schema of the delivery's `data`.")

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True,
                              json_schema_extra={"examples": [{
                                  "name": "enrollment.created.v1",
                                  "description": "A learner was enrolled in a course.",
                                  "publisher": "enrollment",
                                  "schema": {"type": "object", "title": "EnrollmentCreated",
                                             "properties": {
                                                 "course_id": {"type": "integer"}}}}]})


class EventTypeList(BaseModel):
    items: list[EventTypeOut]
