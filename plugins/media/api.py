"""The media plugin's contract: ``runtime.service(MEDIA)`` is a ``MediaAPI``. Events:
``learnplat_media.events``."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from learnplat.plugin import Record, ServiceKey


class MediaInfo(Record):
    id: int
    kind: str  # video | attachment
    course_id: int
    module_id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    duration_seconds: int | None
    uploader_id: int
    created_at: dt.datetime


class MediaAPI(Protocol):
    def video(self, course_id: int, module_id: int) -> MediaInfo | None:
        """The current video of a module; None when it has none."""

    def attachments(self, course_id: int, module_id: int) -> list[MediaInfo]:
        """A module's attached files, oldest first."""


MEDIA: ServiceKey[MediaAPI] = ServiceKey("media", MediaAPI)
