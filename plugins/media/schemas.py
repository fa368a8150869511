"""Request and response schemas of the media plugin (validation and OpenAPI in one place)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from learnplat.plugin import Field, Schema

from .api import MediaInfo

# The examples of the OpenAPI document: course 42 ("Introduction to Statistics"), its video
# module 7 and assignment module 9, instructor 1002 and student 1001 (MediaInfo's fields hold
# the video's).
_SIG = "9d2c51f0a7e34b6f8c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7"
_REPORT_SHA256 = "845e91831319e89c4d656bdb80c278ac09a7230d61e5dfd2e1b1fbb436ac8917"
_PDF_SHA256 = "c35b21d6ca39aa7cc3b79a705d989f1a6e88b99ab43988d74048799e3db926a3"
_UPLOAD_TOKEN = (
    "eyJ0IjozLCJjIjo0MiwibSI6NywidSI6MTAwMiwiayI6Im1lZGlhL2M0Mi9tNy92aWRlby01ZjBjMmE5ZDQxYmU3"
    "ZTNhNjFjMDhkMmYiLCJmIjoid2hhdC1pcy1hLWRpc3RyaWJ1dGlvbi5tcDQiLCJlIjoxNzg4NDYyMDAwfQ"
    ".uA_KB_lU9Ajl6LAi1s6sFVGxdohnQGOCfEYoEHqVLvo")
_INSTRUCTIONS = ("Pick a public data set (for example a city's daily rainfall), describe its "
                 "distribution with the measures from modules 7 and 8, and hand in a PDF of "
                 "at most 4 pages.")
_FEEDBACK = "Clear summary and good choice of plots; the outliers deserved a sentence."


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
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [{
        "id": 91, "kind": "attachment", "course_id": 42, "module_id": 7,
        "filename": "distributions-cheat-sheet.pdf", "content_type": "application/pdf",
        "size": 182340, "sha256": _PDF_SHA256, "duration_seconds": None, "uploader_id": 1002,
        "created_at": "2026-08-28T14:12:00Z"}]}]})

    items: list[MediaOut]


class SignedUrlOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "url": "https://stats.example.edu/media/3/88?exp=1788462000&u=1001&sig=" + _SIG,
        "expires_at": "2026-09-03T19:00:00Z"}]})

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
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "instructions": _INSTRUCTIONS, "due_at": "2026-09-30T21:59:00Z", "max_points": 100}]})

    instructions: str = Field("", max_length=20_000)
    due_at: Annotated[dt.datetime | None, AfterValidator(_due_at)] = Field(
        None, description="ISO 8601 (naive: UTC); none: no deadline")
    max_points: int = Field(100, ge=1, le=10_000)


class AssignmentOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 5, "course_id": 42, "module_id": 9, "instructions": _INSTRUCTIONS,
        "due_at": "2026-09-30T21:59:00Z", "max_points": 100,
        "created_at": "2026-08-29T10:00:00Z", "updated_at": "2026-08-29T10:00:00Z"}]})

    id: int
    course_id: int
    module_id: int
    instructions: str
    due_at: dt.datetime | None
    max_points: int
    created_at: dt.datetime
    updated_at: dt.datetime


class AssignmentSubmissionOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 17, "assignment_id": 5, "course_id": 42, "module_id": 9, "student_id": 1001,
        "attempt": 1, "status": "graded", "points": 87, "feedback": _FEEDBACK,
        "submitted_at": "2026-09-28T20:14:03Z", "graded_at": "2026-10-02T09:30:00Z",
        "filename": "rainfall-in-lisbon.pdf", "content_type": "application/pdf",
        "size": 284113, "sha256": _REPORT_SHA256}]})

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
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "points": 87, "feedback": _FEEDBACK}]})

    points: int = Field(ge=0, le=10_000)
    feedback: str = Field("", max_length=20_000)


class PhotoOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "avatar_url": "https://stats.example.edu/users/1001/photo?v=3f2a9c1e8b7d6a50",
        "size": 48213, "content_type": "image/jpeg"}]})

    avatar_url: str
    size: int
    content_type: str


class DirectStartIn(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "size": 48234112, "filename": "what-is-a-distribution.mp4"}]})

    size: int = Field(ge=1, description="The video's size in bytes (checked again on confirm)")
    filename: str = Field("", max_length=1000)


class DirectStartOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "upload_url": "https://storage.example.edu/learnplat/media/c42/m7/"
                      "video-5f0c2a9d41be7e3a61c08d2f?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                      "&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature="
                      "5b1f0e7c2d9a4b83e6f17a20c4d5b6e7f8091a2b3c4d5e6f708192a3b4c5d6e7",
        "method": "PUT", "upload_token": _UPLOAD_TOKEN, "expires_at": "2026-09-03T19:00:00Z"}]})

    upload_url: str = Field(description="PUT the file's bytes here, before expires_at")
    method: str
    upload_token: str = Field(description="Send it to .../video/direct/confirm afterwards")
    expires_at: dt.datetime


class DirectConfirmIn(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "upload_token": _UPLOAD_TOKEN, "duration_seconds": 600}]})

    upload_token: str = Field(min_length=10, max_length=2000)
    duration_seconds: int | None = Field(None, ge=1, le=100 * 3600)
