"""Request and response schemas of the media plugin (validation and OpenAPI in one place)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel

from learnplat.plugin import Field, Schema


class VideoUploadQuery(Schema):
    duration_seconds: int | None = Field(
        None, ge=1, le=100 * 3600,
        description="The video's length, when it cannot be read from the file (WebM, Ogg)")


class MediaOut(BaseModel):
    id: int
    kind: str
    course_id: int
    module_id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    duration_seconds: int | None
    uploader_id: int
    created_at: dt.datetime


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
