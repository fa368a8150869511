"""Request and response schemas of the enrollment routes (validation and OpenAPI in one)."""

from __future__ import annotations

import datetime as dt
import inspect
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self, Union, cast

from pydantic import (
    BaseModel,
    Field,
    GetJsonSchemaHandler,
    TypeAdapter,
    create_model,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from learnplat.plugin import PageQuery, Schema

from .api import EnrollmentInfo, EnrollmentStatus

if TYPE_CHECKING:
    from .models import Enrollment
    from .services import BulkReport

Source = Literal["self", "bulk"]
Outcome = Literal["created", "existing", "reactivated", "rejected"]
BULK_MAX = 1000


class EnrollmentOut(EnrollmentInfo):
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
    id: int
    title: str
    status: str


class MyEnrollmentOut(EnrollmentOut):
    course: CourseBrief | None = Field(
        description="The course (null only if it no longer exists).")
    progress: dict[str, Any] | None = Field(
        description="The progress summary that plugins add through the enrollment_summaries "
                    "hook (the progress plugin: percent, completed, ...); null when none does.")


class MyEnrollmentPage(BaseModel):
    items: list[MyEnrollmentOut]
    next_cursor: str | None


class UserBrief(BaseModel):
    id: int
    email: str
    name: str


class StudentOut(EnrollmentOut):
    user: UserBrief | None = Field(description="The learner (null only if the account is gone).")


class EnrolledStudentPage(BaseModel):
    items: list[StudentOut]
    next_cursor: str | None


class EnrollmentQuery(PageQuery):
    status: EnrollmentStatus | None = Field(None,
                                            description="Only enrollments with this status.")


class RulesIn(Schema):
    """The whole rule set of a course: a field left out or null removes that rule."""

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

    emails: list[Annotated[str, Field(min_length=1, max_length=320)]] = Field(
        default_factory=list, max_length=BULK_MAX)
    user_ids: list[Annotated[int, Field(ge=1, le=2_147_483_647)]] = Field(
        default_factory=list, max_length=BULK_MAX)
    dry_run: bool = Field(False, description="Report what would happen; write nothing.")

    @model_validator(mode="after")
    def _some(self) -> BulkIn:
        if not self.emails and not self.user_ids:
            raise ValueError("name at least one learner in emails or user_ids")
        if len(self.emails) + len(self.user_ids) > BULK_MAX:
            raise ValueError(f"at most {BULK_MAX} learners per request")
        return self

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        # The document gives each way of naming learners as a whole typed model (_BULK_DOC),
        # so that generated clients can build it; validation stays _some's.
        return {"title": cls.__name__, "description": inspect.cleandoc(cls.__doc__ or ""),
                "anyOf": handler(_BULK_DOC.core_schema)["anyOf"]}


def _bulk_model(name: str, doc: str, required: str) -> type[Schema]:
    """The document's model of a bulk enrollment naming learners by `required` (at least
    one; the other list may be given too). Never validates."""
    fields: dict[str, Any] = {}
    for field_name, info in BulkIn.model_fields.items():
        fields[field_name] = (info.annotation, info)
        if field_name == required:
            fields[field_name] = (info.annotation, Field(min_length=1, max_length=BULK_MAX))
    return create_model(name, __base__=Schema, __doc__=doc, **fields)


# (A union of classes made at run time: a type only to pydantic, hence the cast.)
_BULK_DOC: TypeAdapter[Any] = TypeAdapter(cast(Any, Union[  # noqa: UP007
    _bulk_model("BulkByEmailIn", "Learners to enroll by email (user ids may be added).",
                "emails"),
    _bulk_model("BulkByUserIdIn", "Learners to enroll by user id (emails may be added).",
                "user_ids")]))


class BulkRowOut(BaseModel):
    ref: str = Field(description='Where the row came from: "emails[3]", "user_ids[0]" or, '
                                 'from the CLI, the CSV line number.')
    email: str | None
    user_id: int | None
    outcome: Outcome
    reason: str | None = Field(description="Why a row was rejected.")
    enrollment_id: int | None


class BulkOut(BaseModel):
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
