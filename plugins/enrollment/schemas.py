"""Request and response schemas of the enrollment routes (validation and OpenAPI in one)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self, cast

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import JsonDict

from learnplat.plugin import PageQuery, Schema, Variant, Variants

from .api import EnrollmentInfo, EnrollmentStatus

if TYPE_CHECKING:
    from .models import Enrollment
    from .services import BulkReport

Source = Literal["self", "bulk", "lti"]
Outcome = Literal["created", "existing", "reactivated", "rejected"]
BULK_MAX = 1000

# The examples of the OpenAPI document (docs/plugins.md, "Examples"): Ada Lovelace (user 1001) in
# course 42, "Introduction to Statistics" (Grace Okafor's, user 1002), halfway through it.
_ENROLLMENT: dict[str, Any] = {
    "id": 501, "course_id": 42, "user_id": 1001, "status": "active",
    "created_at": "2026-09-01T08:30:00Z", "source": "self",
    "updated_at": "2026-09-01T08:30:00Z", "dropped_at": None}
_ADA: dict[str, Any] = {"id": 1001, "email": "ada@example.edu", "name": "Ada Lovelace"}


def _extra(*examples: Any) -> JsonDict:
    """A json_schema_extra with the document's examples of the model."""
    return {"examples": list(examples)}


def _examples(*examples: Any) -> ConfigDict:
    """A model_config with the document's examples of the model."""
    return ConfigDict(json_schema_extra=_extra(*examples))


class EnrollmentOut(EnrollmentInfo):
    model_config = _examples(_ENROLLMENT)

    source: Source
    updated_at: dt.datetime
    dropped_at: dt.datetime | None

    @classmethod
    def of(cls, e: Enrollment, **extra: Any) -> Self:
        """An enrollment row as the API answers it; `extra`: the fields a subclass adds
        (MyEnrollmentOut's course and progress, StudentOut's user)."""
        return cls(id=e.id, course_id=e.course_id, user_id=e.user_id,
                   status=cast(EnrollmentStatus, e.status), source=cast(Source, e.source),
                   created_at=e.created_at, updated_at=e.updated_at,
                   dropped_at=e.dropped_at, **extra)


class CourseBrief(BaseModel):
    model_config = _examples({"id": 42, "title": "Introduction to Statistics",
                              "status": "published"})

    id: int
    title: str
    status: str


class MyEnrollmentOut(EnrollmentOut):
    model_config = _examples({
        **_ENROLLMENT, "course": {"id": 42, "title": "Introduction to Statistics",
                                  "status": "published"},
        "progress": {"percent": 50.0, "completed": False}})

    course: CourseBrief | None = Field(
        description="The course (null only if it no longer exists).")
    progress: dict[str, Any] | None = Field(
        description="The progress summary that plugins add through the enrollment_summaries "
                    "hook (the progress plugin: percent, completed, ...); null when none does.")


class MyEnrollmentPage(BaseModel):
    items: list[MyEnrollmentOut]
    next_cursor: str | None


class UserBrief(BaseModel):
    model_config = _examples(_ADA)

    id: int
    email: str
    name: str


class StudentOut(EnrollmentOut):
    model_config = _examples({**_ENROLLMENT, "user": _ADA})

    user: UserBrief | None = Field(description="The learner (null only if the account is gone).")


class EnrolledStudentPage(BaseModel):
    items: list[StudentOut]
    next_cursor: str | None


class EnrollmentQuery(PageQuery):
    status: EnrollmentStatus | None = Field(None,
                                            description="Only enrollments with this status.")


class RulesIn(Schema):
    """The whole rule set of a course: a field left out or null removes that rule."""

    model_config = _examples({"cap": 60, "opens_at": "2026-08-25T10:00:00Z",
                              "closes_at": "2026-09-15T00:00:00Z"})

    cap: int | None = Field(None, ge=1, le=10_000_000,
                            description="Most active enrollments at once; null: unlimited.")
    opens_at: dt.datetime | None = Field(None, description="Enrollment opens (ISO 8601; "
                                                          "without an offset: UTC).")
    closes_at: dt.datetime | None = Field(None, description="Enrollment closes (exclusive).")

    @model_validator(mode="after")
    def _window(self) -> RulesIn:
        if self.opens_at and self.closes_at and _utc(self.closes_at) <= _utc(self.opens_at):
            raise ValueError("closes_at must be after opens_at")
        return self


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class RulesOut(BaseModel):
    model_config = _examples({"course_id": 42, "cap": 60, "opens_at": "2026-08-25T10:00:00Z",
                              "closes_at": "2026-09-15T00:00:00Z", "active_count": 58,
                              "seats_left": 2, "open": True})

    course_id: int
    cap: int | None
    opens_at: dt.datetime | None
    closes_at: dt.datetime | None
    active_count: int = Field(description="Active enrollments now.")
    seats_left: int | None = Field(description="cap - active_count (never below 0); null: "
                                                "no cap.")
    open: bool = Field(description="Whether the window admits enrollments now.")


class BulkIn(Schema):
    """Learners to enroll, by email and/or by user id (together at most 1000)."""

    model_config = _examples({"emails": ["ben.carter@example.edu", "chloe.diaz@example.edu"],
                              "user_ids": [1001], "dry_run": False})

    emails: list[Annotated[str, Field(min_length=1, max_length=320)]] = Field(
        default_factory=list, max_length=BULK_MAX)
    user_ids: list[Annotated[int, Field(ge=1, le=2_147_483_647)]] = Field(
        default_factory=list, max_length=BULK_MAX)
    dry_run: bool = Field(False, description="Report what would happen; write nothing.")

    # The document gives each way of naming learners as a whole typed model, so that
    # generated clients can build it; validation stays _some's.
    documented_as = Variants(
        Variant("BulkByEmailIn", "Learners to enroll by email (user ids may be added).",
                emails=Field(min_length=1, max_length=BULK_MAX)),
        Variant("BulkByUserIdIn", "Learners to enroll by user id (emails may be added).",
                user_ids=Field(min_length=1, max_length=BULK_MAX)),
        keyword="anyOf")

    @model_validator(mode="after")
    def _some(self) -> BulkIn:
        if not self.emails and not self.user_ids:
            raise ValueError("name at least one learner in emails or user_ids")
        if len(self.emails) + len(self.user_ids) > BULK_MAX:
            raise ValueError(f"at most {BULK_MAX} learners per request")
        return self


_BULK_ROWS: list[dict[str, Any]] = [
    {"ref": "emails[0]", "email": "ben.carter@example.edu", "user_id": 1017,
     "outcome": "created", "reason": None, "enrollment_id": 534},
    {"ref": "emails[1]", "email": "chloe.diaz@example.edu", "user_id": None,
     "outcome": "rejected", "reason": "no account with this email", "enrollment_id": None},
    {"ref": "user_ids[0]", "email": "ada@example.edu", "user_id": 1001,
     "outcome": "existing", "reason": None, "enrollment_id": 501}]


class BulkRowOut(BaseModel):
    model_config = _examples(_BULK_ROWS[0])

    ref: str = Field(description='Where the row came from: "emails[3]", "user_ids[0]" or, '
                                 'from the CLI, the CSV line number.')
    email: str | None
    user_id: int | None
    outcome: Outcome
    reason: str | None = Field(description="Why a row was rejected.")
    enrollment_id: int | None


class BulkOut(BaseModel):
    model_config = _examples({"dry_run": False, "created": 1, "existing": 1, "reactivated": 0,
                              "rejected": 1, "rows": _BULK_ROWS})

    dry_run: bool
    created: int
    existing: int
    reactivated: int
    rejected: int
    rows: list[BulkRowOut]

    @classmethod
    def of(cls, report: BulkReport) -> BulkOut:
        """A bulk enrollment's report: the count of each outcome, then every row."""
        return cls(dry_run=report.dry_run, created=report.count("created"),
                   existing=report.count("existing"), reactivated=report.count("reactivated"),
                   rejected=report.count("rejected"),
                   rows=[BulkRowOut(ref=r.ref, email=r.email, user_id=r.user_id,
                                    outcome=r.outcome, reason=r.reason,
                                    enrollment_id=r.enrollment_id) for r in report.rows])
