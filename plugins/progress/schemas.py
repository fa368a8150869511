"""Request and response schemas of the progress routes."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator

from learnplat.plugin import Schema, Variant, Variants

from .api import CourseFigures, LockReason

# Far beyond any real video; finer limits (max_video_seconds, position vs. duration) are
# checked by the service against the settings.
_ABSURD = 10_000_000

StudentStatus = Literal["active", "dropped"]
"""A student's progress row mirrors their enrollment's status."""


class ProgressIn(Schema):
    """Either ``{module_id, completed}`` (mark complete / not complete) or
    ``{module_id, position_seconds, duration_seconds}`` (a video playback heartbeat)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False,
                              json_schema_extra={"examples": [
                                  {"module_id": 7, "position_seconds": 312.5,
                                   "duration_seconds": 600.0},
                                  {"module_id": 6, "completed": True}]})

    module_id: int = Field(ge=1)
    completed: bool | None = None
    position_seconds: float | None = Field(None, ge=0, le=_ABSURD)
    duration_seconds: float | None = Field(None, gt=0, le=_ABSURD)

    # The document gives each kind of request as a whole typed model, so that generated
    # clients can build it; validation stays _one_kind's.
    documented_as = Variants(
        Variant("CompletionIn", "Mark a module complete (or not complete).",
                completed=(bool, ...), position_seconds=(None, None),
                duration_seconds=(None, None)),
        Variant("HeartbeatIn", "A video playback heartbeat: where the student is in it.",
                completed=(None, None),
                position_seconds=(float, Field(ge=0, le=_ABSURD)),
                duration_seconds=(float, Field(gt=0, le=_ABSURD))),
        keyword="oneOf")

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


# The examples of the OpenAPI document: a student of course 42 ("Introduction to Statistics")
# halfway through it: the welcome text and the video done, the quiz open, the assignment
# waiting for the quiz.
# (Lists of JSON objects typed list[Any]: pydantic's json_schema_extra takes JSON values.)
_MILESTONES: dict[str, Any] = {"50": "2026-09-03T18:42:10Z", "100": None}
_NO_VIDEO: dict[str, Any] = {"video_percent": None, "position_seconds": None,
                             "furthest_position": None, "watched_seconds": None,
                             "duration_seconds": None}
_MODULES: list[Any] = [
    {"module_id": 6, "title": "Welcome and course overview", "position": 1, "kind": "text",
     "required": True, "completed": True, "completed_at": "2026-09-01T08:30:00Z",
     "completed_source": "manual", "locked": False, "locked_reason": None, **_NO_VIDEO},
    {"module_id": 7, "title": "What is a distribution?", "position": 2, "kind": "video",
     "required": True, "completed": True, "completed_at": "2026-09-03T18:42:10Z",
     "completed_source": "video", "locked": False, "locked_reason": None,
     "video_percent": 92.5, "position_seconds": 555.0, "furthest_position": 555.0,
     "watched_seconds": 555.0, "duration_seconds": 600.0},
    {"module_id": 8, "title": "Check your understanding", "position": 3, "kind": "quiz",
     "required": True, "completed": False, "completed_at": None, "completed_source": None,
     "locked": False, "locked_reason": None, **_NO_VIDEO},
    {"module_id": 9, "title": "Project: describe a data set", "position": 4,
     "kind": "assignment", "required": True, "completed": False, "completed_at": None,
     "completed_source": None, "locked": True, "locked_reason": "prerequisite", **_NO_VIDEO},
]


class Milestones(BaseModel):
    # Built by field name (``Milestones(fifty=...)``), written by alias ("50", "100"): the
    # body encoder (learnplat.plugin.dump) writes a model's fields by name unless it says so.
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True,
                              json_schema_extra={"examples": [_MILESTONES]})

    fifty: dt.datetime | None = Field(None, alias="50")
    hundred: dt.datetime | None = Field(None, alias="100")


class ModuleState(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_MODULES[1]]})

    module_id: int
    title: str
    position: int
    kind: str
    required: bool
    completed: bool
    completed_at: dt.datetime | None
    completed_source: Literal["manual", "video", "quiz", "assignment", "lti"] | None = Field(
        description="What completed it: the student (manual), watching the video, passing "
                    "the quiz, a graded assignment (media plugin), or the LTI tool's score "
                    "(Completed or FullyGraded: lti plugin).")
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

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "course_id": 42, "percent": 50.0, "completed": False, "completed_modules": 2,
        "required_modules": 4, "completed_at": None, "last_activity_at": "2026-09-03T18:45:00Z",
        "milestones": _MILESTONES, "modules": _MODULES}]})

    course_id: int
    last_activity_at: dt.datetime | None
    milestones: Milestones
    modules: list[ModuleState]


class HeartbeatOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "course_id": 42, "module_id": 7, "position_seconds": 312.5, "furthest_position": 312.5,
        "watched_seconds": 300.0, "duration_seconds": 600.0, "video_percent": 50.0,
        "completed_now": False}]})

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
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "user_id": 1001, "status": "active", "percent": 50.0, "completed": False,
        "completed_modules": 2, "required_modules": 4, "completed_at": None,
        "last_activity_at": "2026-09-03T18:45:00Z", "milestones": _MILESTONES}]})

    user_id: int
    status: StudentStatus
    last_activity_at: dt.datetime
    milestones: Milestones


class StudentProgressPage(BaseModel):
    items: list[StudentProgressOut]
    next_cursor: str | None
