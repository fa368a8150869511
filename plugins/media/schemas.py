"""Request and response schemas of the media plugin (validation and OpenAPI in one place)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, BaseModel

from learnplat.plugin import Field, Schema

from .api import MediaInfo


class VideoUploadQuery(Schema):
    duration_seconds: int | None = Field(
        None, ge=1, le=100 * 3600,
        description="The video's length, when it cannot be read from the file (WebM, Ogg)")


class MediaOut(MediaInfo):
    # MediaInfo as the HTTP answer shows it, adding nothing (a class of its own for the
    # OpenAPI component name; a comment, not a docstring, which would become its description).

    @classmethod
    def of(cls, info: MediaInfo) -> MediaOut:
        # Not validated again: a MediaInfo is validated when it is made.
        return cls.model_construct(**dict(info))


class MediaList(BaseModel):
    items: list[MediaOut]


class SignedUrlOut(BaseModel):
    url: str = Field(description="Works on its own (no headers) until expires_at")
    expires_at: dt.datetime


class StreamQuery(Schema):
    # Plain strings: a missing or altered part is a 403 from the signature check, not a 422.
    exp: str = Field("", max_length=20)
    u: str = Field("", max_length=20)
    sig: str = Field("", max_length=128)


def _due_at(v: dt.datetime | None) -> dt.datetime | None:
    if v is None:
        return None
    v = (v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v).astimezone(dt.UTC)  # naive: UTC
    if not dt.datetime(2000, 1, 1, tzinfo=dt.UTC) <= v < dt.datetime(2200, 1, 1, tzinfo=dt.UTC):
        raise ValueError("due_at must be between 2000 and 2200")
    return v


class AssignmentIn(Schema):
    instructions: str = Field("", max_length=20_000)
    due_at: Annotated[dt.datetime | None, AfterValidator(_due_at)] = Field(
        None, description="ISO 8601 (naive: UTC); none: no deadline")
    max_points: int = Field(100, ge=1, le=10_000)


class AssignmentOut(BaseModel):
    id: int
    course_id: int
    module_id: int
    instructions: str
    due_at: dt.datetime | None
    max_points: int
    created_at: dt.datetime
    updated_at: dt.datetime


class AssignmentSubmissionOut(BaseModel):
    id: int
    assignment_id: int
    course_id: int
    module_id: int
    student_id: int
    attempt: int
    status: str  # submitted | graded
    points: int | None
    feedback: str
    submitted_at: dt.datetime
    graded_at: dt.datetime | None
    filename: str
    content_type: str
    size: int
    sha256: str


class AssignmentSubmissionPage(BaseModel):
    items: list[AssignmentSubmissionOut]
    next_cursor: str | None


class AssignmentGradeIn(Schema):
    points: int = Field(ge=0, le=10_000)
    feedback: str = Field("", max_length=20_000)


class PhotoOut(BaseModel):
    avatar_url: str
    size: int
    content_type: str


class DirectStartIn(Schema):
    size: int = Field(ge=1, description="The video's size in bytes (checked again on confirm)")
    filename: str = Field("", max_length=1000)


class DirectStartOut(BaseModel):
    upload_url: str = Field(description="PUT the file's bytes here, before expires_at")
    method: str
    upload_token: str = Field(description="Send it to .../video/direct/confirm afterwards")
    expires_at: dt.datetime


class DirectConfirmIn(Schema):
    upload_token: str = Field(min_length=10, max_length=2000)
    duration_seconds: int | None = Field(None, ge=1, le=100 * 3600)
