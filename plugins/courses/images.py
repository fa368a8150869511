"""Course images: validated with Pillow, stored through the core's storage, thumbnailed in a
Huey task after commit (never in the request)."""

from __future__ import annotations

import io
import logging
import secrets
import tempfile
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from PIL import Image, ImageOps

from learnplat.plugin import (
    NotFound,
    Principal,
    TaskSpec,
    bump_generation,
    current_tenant,
    db,
    tenant_context,
    uploads,
)

from . import events as ev
from .api import CATALOGUE_GENERATION
from .models import Course
from .settings import CoursesSettings

if TYPE_CHECKING:
    from learnplat.plugin import Runtime

    from .services import CoursesService

log = logging.getLogger(__name__)

THUMBNAIL_TASK = "courses.make_thumbnail"  # persisted in the queue: never rename
_EXT = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
_TYPE_OF_EXT = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp",
                "gif": "image/gif"}


def inspect_image(fp: IO[bytes], settings: CoursesSettings) -> tuple[str, int, int]:
    """(format, width, height) of a real, whole image within the course image limits."""
    return uploads.inspect_image(fp, uploads.ImageLimits(
        formats=tuple(settings.image_formats), max_width=settings.image_max_width,
        max_height=settings.image_max_height, min_side=settings.image_min_side))


class ImageService:
    def __init__(self, courses: CoursesService):
        self.courses = courses
        self.runtime = courses.runtime

    @property
    def settings(self) -> CoursesSettings:
        return self.runtime.plugin_settings.get("courses") or CoursesSettings()

    def check_can_upload(self, principal: Principal, course_id: int) -> None:
        """Refuse before reading the body: only the owner or an admin uploads."""
        self.courses.owned(course_id, principal, lock=False)

    def upload(self, principal: Principal, course_id: int, stream: Any) -> Course:
        settings = self.settings
        with uploads.spool(stream, settings.image_max_bytes, "the image") as fp:
            fmt, _w, _h = inspect_image(fp, settings)
            key = f"courses/{course_id}/image-{secrets.token_hex(8)}.{_EXT.get(fmt, 'img')}"
            content_type = Image.MIME.get(fmt, "application/octet-stream")
            storage = self.runtime.storage
            storage.put(key, uploads.file_chunks(fp), content_type)
        try:
            return self._attach(principal, course_id, key, content_type)
        except BaseException:
            storage.discard(key)  # the course did not change: do not keep an orphan object
            raise

    def _attach(self, principal: Principal, course_id: int, key: str, content_type: str
                ) -> Course:
        with db.transaction():
            course = self.courses.owned(course_id, principal)
            old = [k for k in (course.image_key, course.thumbnail_key) if k]
            course.image_key, course.image_content_type = key, content_type
            course.thumbnail_key = ""
            course.save()
            self.courses._touch(course)
            self.courses._event(ev.ImageChanged, course, principal, image_key=key)
            self._delete_after_commit(old)
            self.runtime.queue.enqueue_for_tenant(THUMBNAIL_TASK, course.id, key)
        return course

    def remove(self, principal: Principal, course_id: int) -> Course:
        with db.transaction():
            course = self.courses.owned(course_id, principal)
            old = [k for k in (course.image_key, course.thumbnail_key) if k]
            if not old:
                raise NotFound("this course has no image")
            course.image_key = course.thumbnail_key = course.image_content_type = ""
            course.save()
            self.courses._touch(course)
            self.courses._event(ev.ImageChanged, course, principal, image_key=None)
            self._delete_after_commit(old)
        return course

    def _delete_after_commit(self, keys: list[str]) -> None:
        if not keys:
            return
        storage, tenant = self.runtime.storage, current_tenant()

        def remove() -> None:
            with tenant_context(tenant):
                for key in keys:
                    storage.delete(key)

        db.on_commit(remove)

    def open(self, principal: Principal | None, course_id: int, which: str
             ) -> tuple[str, str, int, Iterator[bytes]]:
        """(key, content type, size, byte stream) of the image or its thumbnail."""
        course = self.courses._visible(course_id, principal)
        key = course.image_key if which == "image" else course.thumbnail_key
        if not key:
            raise NotFound(f"this course has no {which} (yet)")
        storage = self.runtime.storage
        stat = storage.stat(key)
        # Not every storage driver keeps the content type (local disk does not): we know it.
        content_type = (course.image_content_type if which == "image" else None) or \
            _TYPE_OF_EXT.get(key.rsplit(".", 1)[-1]) or stat.content_type or \
            "application/octet-stream"
        return key, content_type, stat.size, storage.open(key)


def make_thumbnail(runtime: Runtime, course_id: int, image_key: str) -> str | None:
    """The task: a thumbnail of the course's current image (skipped if it changed since)."""
    course = Course.get_or_none(Course.id == course_id)
    if course is None or course.image_key != image_key:
        return None  # replaced or deleted meanwhile: nothing to do
    settings: CoursesSettings = runtime.plugin_settings.get("courses") or CoursesSettings()
    storage = runtime.storage
    with tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024) as src:
        for chunk in storage.open(image_key):
            src.write(chunk)
        src.seek(0)
        with Image.open(src) as opened:
            im: Image.Image = ImageOps.exif_transpose(opened)
            im.thumbnail((settings.thumbnail_width, settings.thumbnail_height))
            alpha = im.mode in ("RGBA", "LA", "P") and (
                im.mode != "P" or "transparency" in im.info)
            out = io.BytesIO()
            if alpha:
                im.convert("RGBA").save(out, "PNG", optimize=True)
                ext, content_type = "png", "image/png"
            else:
                im.convert("RGB").save(out, "JPEG", quality=85, optimize=True)
                ext, content_type = "jpg", "image/jpeg"
    thumb_key = f"courses/{course_id}/thumb-{secrets.token_hex(8)}.{ext}"
    storage.put(thumb_key, [out.getvalue()], content_type)
    updated = Course.update(thumbnail_key=thumb_key).where(
        (Course.id == course_id) & (Course.image_key == image_key)).execute()
    old = course.thumbnail_key
    if not updated:
        storage.delete(thumb_key)
        return None
    if old and old != thumb_key:
        storage.delete(old)
    bump_generation(runtime, CATALOGUE_GENERATION)  # pages show the thumbnail's URL
    runtime.events.record(ev.ThumbnailReady(course_id=course_id, image_key=image_key,
                                            thumbnail_key=thumb_key))
    return thumb_key


def tasks() -> list[TaskSpec]:
    return [TaskSpec(THUMBNAIL_TASK, make_thumbnail, retries=3, retry_delay=10)]
