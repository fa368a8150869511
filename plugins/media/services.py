"""Domain logic of the media plugin: storing uploads for modules, who may watch them, signed
URLs, and removing objects. No Falcon here.

An upload runs in three steps, none holding a transaction while bytes move: a short
transaction checks the caller owns the course and module; the body streams to storage under a
new key (the old video stays untouched); a second short transaction records the new row, makes
the module a video module and retires the old row, whose object is deleted by a task after
commit. If anything fails after the bytes are stored, the new object is deleted again.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from learnplat_courses.api import COURSES
from learnplat_enrollment.api import ENROLLMENT

from learnplat.plugin import (
    NotFound,
    PermissionDenied,
    Principal,
    Sibling,
    TenantInfo,
    current_tenant,
    db,
    tenant_context,
    uploads,
)

from . import events as ev
from . import signing
from .api import MediaInfo
from .models import Assignment, MediaObject, Submission
from .probe import mp4_duration
from .settings import MediaSettings

if TYPE_CHECKING:
    from learnplat.plugin import Runtime

DELETE_TASK = "media.delete_objects"  # persisted in the queue: never rename
STREAM_PATH = "/media/{tenant_id}/{media_id}"
MANAGE = "media.upload"


def media_info(row: MediaObject) -> MediaInfo:
    return MediaInfo(id=row.id, kind=row.kind, course_id=row.course_id, module_id=row.module_id,
                     filename=row.filename, content_type=row.content_type, size=row.size,
                     sha256=row.sha256, duration_seconds=row.duration_seconds,
                     uploader_id=row.uploader_id, created_at=row.created_at)


class MediaService:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    # -- collaborators -----------------------------------------------------------------------

    courses = Sibling(COURSES)
    enrollment = Sibling(ENROLLMENT)

    @property
    def settings(self) -> MediaSettings:
        return self.runtime.settings_of(MediaSettings)

    @property
    def url_ttl(self) -> int:
        """Seconds a playback or download URL works."""
        own = self.settings.url_ttl_seconds
        return own or self.runtime.settings.storage.signing_ttl_seconds

    def limit(self, kind: str) -> int:
        """This tenant's per-upload limit for `kind`: its own setting, never above ours."""
        ceiling = int(getattr(self.settings, f"max_{kind}_bytes"))
        own = current_tenant().setting(f"media.max_{kind}_bytes")
        return min(ceiling, int(own)) if isinstance(own, int) and own > 0 else ceiling

    # -- MediaAPI ----------------------------------------------------------------------------

    def video(self, course_id: int, module_id: int) -> MediaInfo | None:
        row = self._current_video(course_id, module_id)
        return media_info(row) if row else None

    def attachments(self, course_id: int, module_id: int) -> list[MediaInfo]:
        rows = MediaObject.select().where(
            (MediaObject.course_id == course_id) & (MediaObject.module_id == module_id)
            & (MediaObject.kind == "attachment")).order_by(MediaObject.id)
        return [media_info(r) for r in rows]

    def _current_video(self, course_id: int, module_id: int) -> MediaObject | None:
        return (MediaObject.select().where(
            (MediaObject.course_id == course_id) & (MediaObject.module_id == module_id)
            & (MediaObject.kind == "video")).order_by(MediaObject.id.desc()).first())

    # -- uploads -----------------------------------------------------------------------------

    def check_can_upload(self, principal: Principal, course_id: int, module_id: int) -> None:
        """Refuse before reading the body: the owner instructor (or an admin) of an existing
        module of this tenant. 404 for anything else they cannot see."""
        with db.transaction(write=False):
            self.courses.owned_course(course_id, principal, MANAGE)
            self.courses.get_module(course_id, module_id)

    def receive(self, kind: str, course_id: int, module_id: int, stream: Any,
                filename: str | None, finish: Callable[[], None] | None = None, tag: str = ""
                ) -> tuple[uploads.Received, str]:
        """Stream an upload of `kind` into storage under a new key; `finish()` runs once the
        bytes are stored (the resource reads the rest of the multipart body there, so a
        truncated body fails the upload instead of storing what came before the cut). On
        failure nothing stays stored; on success the caller records the object or deletes it.
        """
        name = uploads.check_filename(filename)
        allowed = getattr(self.settings, f"{kind}_types")
        key = f"media/c{course_id}/m{module_id}/{kind}-{tag}{secrets.token_hex(12)}"
        storage = self.runtime.storage
        got = uploads.receive(storage, key, stream, limit=self.limit(kind), allowed=allowed,
                              filename=name, what=f"the {kind}")
        try:
            if finish is not None:
                finish()
        except BaseException:
            storage.discard(key)
            raise
        return got, name

    def upload(self, principal: Principal, kind: str, course_id: int, module_id: int,
               stream: Any, filename: str | None, duration_seconds: int | None = None,
               finish: Callable[[], None] | None = None) -> MediaInfo:
        """A module's video (replacing the previous one) or an attached file."""
        got, name = self.receive(kind, course_id, module_id, stream, filename, finish)
        storage = self.runtime.storage
        try:
            if kind == "video" and duration_seconds is None and got.content_type in (
                    "video/mp4", "video/quicktime"):
                duration_seconds = mp4_duration(
                    lambda a, b: b"".join(storage.open(got.key, a, min(b, got.size))), got.size)
            return self.record(principal, kind, course_id, module_id, got, name,
                                duration_seconds)
        except BaseException:
            storage.discard(got.key)  # nothing points at it: do not leave an orphan
            raise

    def record(self, principal: Principal, kind: str, course_id: int, module_id: int,
               got: uploads.Received, filename: str, duration: int | None) -> MediaInfo:
        """Make a stored object a module's video (retiring the previous one) or attachment.
        The caller deletes the object if this raises."""
        with db.transaction():
            # Again, now holding the course's lock: it may have changed hands or gone while
            # the bytes were moving.
            self.courses.owned_course(course_id, principal, MANAGE)
            self.courses.get_module(course_id, module_id)
            old = self._current_video(course_id, module_id) if kind == "video" else None
            row = MediaObject.create(
                kind=kind, course_id=course_id, module_id=module_id, key=got.key,
                filename=filename, content_type=got.content_type, size=got.size,
                sha256=got.sha256, duration_seconds=duration, uploader_id=principal.user_id)
            common = dict(media_id=row.id, course_id=course_id, module_id=module_id, kind=kind,
                          content_type=got.content_type, size=got.size, sha256=got.sha256,
                          actor_id=principal.user_id)
            if kind == "video":
                minutes = -(-duration // 60) if duration else None
                self.courses.set_module_kind(course_id, module_id, "video", minutes)
                self.runtime.events.record(ev.VideoUploaded(
                    **common, duration_seconds=duration, replaced_id=old.id if old else None))
                if old is not None:
                    self.retire([old], principal)
            else:
                self.runtime.events.record(ev.AttachmentAdded(**common, filename=filename))
        return media_info(row)

    def remove_attachment(self, principal: Principal, course_id: int, module_id: int,
                          media_id: int) -> None:
        with db.transaction():
            self.courses.owned_course(course_id, principal, MANAGE)
            row = self._get(course_id, module_id, media_id, "attachment")
            self.retire([row], principal)

    def _get(self, course_id: int, module_id: int, media_id: int, kind: str) -> MediaObject:
        row = MediaObject.get_or_none(
            (MediaObject.id == media_id) & (MediaObject.course_id == course_id)
            & (MediaObject.module_id == module_id) & (MediaObject.kind == kind)) \
            if 0 < media_id < 2**31 else None
        if row is None:
            raise NotFound(f"no such {kind} in this module")
        return row

    def retire(self, rows: list[MediaObject], principal: Principal | None) -> None:
        """Forget rows now and delete their objects in a task after commit (a failed delete
        is retried, and the orphan sweep reports what is left)."""
        for row in rows:
            self.runtime.events.record(ev.MediaRemoved(
                media_id=row.id, course_id=row.course_id, module_id=row.module_id,
                kind=row.kind, content_type=row.content_type, size=row.size, sha256=row.sha256,
                actor_id=principal.user_id if principal else None))
            row.delete_instance()
        if rows:
            self.runtime.queue.enqueue_for_tenant(DELETE_TASK, [r.key for r in rows])

    def purge(self, course_id: int, module_id: int | None = None) -> int:
        """Retire every object of a course (or one of its modules): when they are deleted."""
        where = MediaObject.course_id == course_id
        if module_id is not None:
            where &= MediaObject.module_id == module_id
        gone = Assignment.course_id == course_id
        if module_id is not None:
            gone &= Assignment.module_id == module_id
        Submission.delete().where(Submission.assignment.in_(
            Assignment.select(Assignment.id).where(gone))).execute()
        Assignment.delete().where(gone).execute()
        rows = list(MediaObject.select().where(where))
        self.retire(rows, None)
        return len(rows)

    # -- delivery ----------------------------------------------------------------------------

    def check_can_watch(self, principal: Principal, course_id: int, module_id: int) -> None:
        """Enrolled students, the owner and admins; 404 for a course they cannot see, 403
        (not_enrolled) for a visible course they are not enrolled in."""
        course = self.courses.visible_course(course_id, principal)
        module = self.courses.get_module(course_id, module_id)
        if principal.can(MANAGE, owner_id=course.owner_id):
            return
        self.enrollment.require_active(course_id, principal)
        if not module.is_released():
            raise PermissionDenied("this module is not released yet", code="not_released")

    def url_for(self, principal: Principal, course_id: int, module_id: int, kind: str,
                base_url: str, media_id: int | None = None) -> tuple[str, dt.datetime]:
        self.check_can_watch(principal, course_id, module_id)
        if kind == "video":
            row = self._current_video(course_id, module_id)
            if row is None:
                raise NotFound("this module has no video")
        else:
            row = self._get(course_id, module_id, media_id or 0, kind)
        return self.signed_url(row, int(principal.user_id), base_url)

    def signed_url(self, row: MediaObject, user_id: int, base_url: str
                   ) -> tuple[str, dt.datetime]:
        """A URL that reads `row`'s bytes until it expires: presigned by the object store, or
        (local storage) the API's own streaming endpoint with our HMAC."""
        ttl = self.url_ttl
        expires = int(time.time()) + ttl
        name = row.filename if row.kind != "video" and row.filename else None
        presigned = self.runtime.storage.presigned_url(row.key, ttl, download_name=name)
        if presigned is not None:
            url = presigned
        else:
            tenant_id = current_tenant().id
            sig = signing.signature(self.runtime.secret_key, tenant_id, row.id, expires, user_id)
            path = STREAM_PATH.format(tenant_id=tenant_id, media_id=row.id)
            url = f"{base_url}{path}?exp={expires}&u={user_id}&sig={sig}"
        return url, dt.datetime.fromtimestamp(expires, dt.UTC)

    def open_signed(self, tenant_id: int, media_id: int, expires: int, user_id: int, sig: str
                    ) -> tuple[TenantInfo, MediaObject]:
        """The tenant and row a signed URL names: 403 when the URL is forged, altered or
        expired; 404 when the object is gone. Uses its own short connection, so the bytes
        are streamed afterwards holding no database connection."""
        signing.verify(self.runtime.secret_keys, tenant_id, media_id, expires, user_id, sig)
        with db.connection():
            tenant = self._serving_tenant(tenant_id)
            if tenant is None:
                raise NotFound("no such media")
            with tenant_context(tenant), db.transaction(write=False):
                row = MediaObject.get_or_none(MediaObject.id == media_id)
        if row is None:
            raise NotFound("no such media (it was replaced or removed)")
        return tenant, row

    def signed_caller(self, tenant_id: int, media_id: int, expires: str, user_id: str,
                      sig: str) -> tuple[TenantInfo, int] | None:
        """The school and user a valid, unexpired signed URL was issued to, whom the rate
        limits charge for it (a class behind one NAT address each pays for their own range
        requests); None for a forged, altered or expired URL, which the client address pays
        for, so guessing signatures stays limited. Runs before the responder, so it checks
        only the HMAC and the school (cached): the responder checks everything again."""
        try:
            exp, uid = int(expires), int(user_id)
            signing.verify(self.runtime.secret_keys, tenant_id, media_id, exp, uid, sig)
        except (ValueError, PermissionDenied):
            return None
        was_closed = db.database.is_closed()
        try:
            tenant = self._serving_tenant(tenant_id)  # a cache miss takes a connection
        finally:
            if was_closed and not db.database.is_closed():
                db.database.close()  # give it back: the bytes are streamed holding none
        return (tenant, uid) if tenant is not None else None

    def _serving_tenant(self, tenant_id: int) -> TenantInfo | None:
        tenant = self.runtime.tenants.get_by_id(tenant_id)
        if tenant is None or not tenant.enabled or not tenant.plugin_enabled("media"):
            return None
        return tenant
