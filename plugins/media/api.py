"""The media plugin's contract: ``runtime.service(MEDIA)`` is a ``MediaAPI``. Events:
``learnplat_media.events``."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from learnplat.plugin import Field, Record, ServiceKey


class MediaInfo(Record):
    # Each field's example (the OpenAPI document's, and MediaOut's composed from them): the
    # video of module 7 of course 42, uploaded by its instructor (user 1002).
    id: int = Field(examples=[88])
    kind: str = Field(examples=["video"])  # video | attachment
    course_id: int = Field(examples=[42])
    module_id: int = Field(examples=[7])
    filename: str = Field(examples=["what-is-a-distribution.mp4"])
    content_type: str = Field(examples=["video/mp4"])
    size: int = Field(examples=[48234112])
    sha256: str = Field(examples=[
        "0cab1c9617404faf2b24e221e189ca5945813e14d3f766345b09ca13bbe28ffc"])
    duration_seconds: int | None = Field(examples=[600])
    uploader_id: int = Field(examples=[1002])
    created_at: dt.datetime = Field(examples=["2026-08-28T14:05:00Z"])


class MediaAPI(Protocol):
    def video(self, course_id: int, module_id: int) -> MediaInfo | None:
        """The current video of a module; None when it has none."""

    def attachments(self, course_id: int, module_id: int) -> list[MediaInfo]:
        """A module's attached files, oldest first."""


MEDIA: ServiceKey[MediaAPI] = ServiceKey("media", MediaAPI)
