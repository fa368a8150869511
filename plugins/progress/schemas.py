"""Request and response schemas of the progress routes."""

from __future__ import annotations

import datetime as dt
import inspect
from typing import Any, Literal, Union, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    RootModel,
    TypeAdapter,
    create_model,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from learnplat.plugin import Schema

from .api import CourseFigures, LockReason

# Far beyond any real video; finer limits (max_video_seconds, position vs. duration) are
# checked by the service against the settings.
_ABSURD = 10_000_000

StudentStatus = Literal["active", "dropped"]
"""A student's progress row mirrors their enrollment's status."""


class ProgressIn(Schema):
    """Either ``{module_id, completed}`` (mark complete / not complete) or
    ``{module_id, position_seconds, duration_seconds}`` (a video playback heartbeat)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)

    module_id: int = Field(ge=1)
    completed: bool | None = None
    position_seconds: float | None = Field(None, ge=0, le=_ABSURD)
    duration_seconds: float | None = Field(None, gt=0, le=_ABSURD)

    @model_validator(mode="after")
    def _one_kind(self) -> ProgressIn:
        video = self.position_seconds is not None or self.duration_seconds is not None
        if self.completed is not None and video:
            raise ValueError("send either completed or position_seconds/duration_seconds")
        if self.completed is None and not video:
            raise ValueError("send completed, or position_seconds and duration_seconds")
        if video and (self.position_seconds is None or self.duration_seconds is None):
            raise ValueError("a heartbeat needs both position_seconds and duration_seconds")
        return self

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        # The document gives each kind of request as a whole typed model (_KIND_DOC), so
        # that generated clients can build it; validation stays _one_kind's.
        return {"title": cls.__name__, "description": inspect.cleandoc(cls.__doc__ or ""),
                "oneOf": handler(_KIND_DOC.core_schema)["anyOf"]}


def _kind_model(name: str, doc: str, **fields: Any) -> type[Schema]:
    """The document's model of one kind of progress request (never validates)."""
    module_id = ProgressIn.model_fields["module_id"]
    fields = {"module_id": (module_id.annotation, module_id), **fields}
    return create_model(name, __base__=Schema, __doc__=doc, **fields)


# (A union of classes made at run time: a type only to pydantic, hence the cast.)
_KIND_DOC: TypeAdapter[Any] = TypeAdapter(cast(Any, Union[  # noqa: UP007
    _kind_model("CompletionIn", "Mark a module complete (or not complete).",
                completed=(bool, ...), position_seconds=(None, None),
                duration_seconds=(None, None)),
    _kind_model("HeartbeatIn", "A video playback heartbeat: where the student is in it.",
                completed=(None, None),
                position_seconds=(float, Field(ge=0, le=_ABSURD)),
                duration_seconds=(float, Field(gt=0, le=_ABSURD)))]))


class Milestones(BaseModel):
    # Built by field name (``Milestones(fifty=...)``), written by alias ("50", "100"): the
    # body encoder (learnplat.plugin.dump) writes a model's fields by name unless it says so.
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    fifty: dt.datetime | None = Field(None, alias="50")
    hundred: dt.datetime | None = Field(None, alias="100")


class ModuleState(BaseModel):
    module_id: int
    title: str
    position: int
    kind: str
    required: bool
    completed: bool
    completed_at: dt.datetime | None
    completed_source: Literal["manual", "video", "quiz", "assignment"] | None = Field(
        description="What completed it: the student (manual), watching the video, passing "
                    "the quiz, or a graded assignment (media plugin).")
    locked: bool
    locked_reason: LockReason | None
    video_percent: float | None = Field(description="Share of the video watched, 0..100 "
                                                    "(video modules only).")
    position_seconds: float | None
    furthest_position: float | None
    watched_seconds: float | None
    duration_seconds: float | None


class ProgressOut(CourseFigures):
    """A student's progress in a course. Plugins may add keys (progress_extras hook)."""

    model_config = ConfigDict(extra="allow")

    course_id: int
    last_activity_at: dt.datetime | None
    milestones: Milestones
    modules: list[ModuleState]


class HeartbeatOut(BaseModel):
    course_id: int
    module_id: int
    position_seconds: float
    furthest_position: float
    watched_seconds: float
    duration_seconds: float
    video_percent: float
    completed_now: bool = Field(description="This heartbeat completed the module.")


class ProgressPostOut(RootModel[ProgressOut | HeartbeatOut]):
    """The course progress after marking a module, or the playback state after a heartbeat."""


class StudentsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = None
    sort: Literal["percent", "-percent", "last_activity", "-last_activity"] = "-last_activity"
    status: Literal["active", "dropped", "all"] = "active"


class StudentProgressOut(CourseFigures):
    user_id: int
    status: StudentStatus
    last_activity_at: dt.datetime
    milestones: Milestones


class StudentProgressPage(BaseModel):
    items: list[StudentProgressOut]
    next_cursor: str | None
