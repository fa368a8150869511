"""Direct uploads of large videos to S3-compatible storage: the API issues a presigned PUT URL
and a signed upload token; the client PUTs the bytes to the store, then confirms with the
token. Confirming checks the stored object the way an upload through the API is checked
(size limit, type by its first bytes, sha256 streamed from the store) and records it; a
refused object is deleted. Nothing is recorded for a URL that was never used."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import time
from typing import Any

import orjson

from learnplat.plugin import (
    Conflict,
    PayloadTooLarge,
    PermissionDenied,
    Principal,
    UnsupportedMediaType,
    ValidationFailed,
    current_tenant,
    db,
    uploads,
)

from .api import MediaInfo
from .probe import mp4_duration
from .schemas import DirectStartOut
from .services import MANAGE, MediaService

_PURPOSE = b"learnplat.media.direct-upload.v1"


def _mac(secret: bytes, payload: bytes) -> str:
    key = hmac.new(secret, _PURPOSE, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(hmac.new(key, payload, hashlib.sha256).digest()
                                    ).rstrip(b"=").decode()


class DirectUploads:
    def __init__(self, media: MediaService):
        self.media = media
        self.runtime = media.runtime

    def start(self, principal: Principal, course_id: int, module_id: int, size: int,
              filename: str) -> DirectStartOut:
        name = uploads.check_filename(filename, "filename")
        self.media.courses.owned_course(course_id, principal, MANAGE)
        self.media.courses.get_module(course_id, module_id)
        limit = self.media.limit("video")
        if size > limit:
            raise PayloadTooLarge(f"the video is over {limit} bytes", limit=limit)
        key = f"media/c{course_id}/m{module_id}/video-{secrets.token_hex(12)}"
        ttl = self.media.url_ttl
        url = self.runtime.storage.presigned_put_url(key, ttl)
        if url is None:
            raise Conflict("this school's storage takes uploads through the API only: POST the "
                           "file as multipart to the video endpoint", code="direct_unsupported")
        expires = int(time.time()) + ttl
        payload = orjson.dumps({"t": current_tenant().id, "c": course_id, "m": module_id,
                                "u": principal.user_id, "k": key, "f": name, "e": expires})
        token = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
        token += "." + _mac(self.runtime.secret_key, payload)
        return DirectStartOut(upload_url=url, method="PUT", upload_token=token,
                              expires_at=dt.datetime.fromtimestamp(expires, dt.UTC))

    def _read_token(self, token: str, principal: Principal, course_id: int, module_id: int
                    ) -> dict[str, Any]:
        try:
            body, mac = token.split(".", 1)
            payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            data: dict[str, Any] = orjson.loads(payload)
        except (ValueError, orjson.JSONDecodeError):
            raise PermissionDenied("this upload token is not valid", code="bad_token") from None
        # Any secret in force: a token handed out just before app.secret_key was rotated.
        if not any(hmac.compare_digest(mac, _mac(secret, payload))
                   for secret in self.runtime.secret_keys) or (
                data.get("t"), data.get("c"), data.get("m"), data.get("u")) != (
                current_tenant().id, course_id, module_id, principal.user_id):
            raise PermissionDenied("this upload token is not valid", code="bad_token")
        # Confirming may come a little after the URL expired (a slow PUT that started in
        # time); beyond a day the object is the sweep's.
        if data["e"] + 24 * 3600 < time.time():
            raise PermissionDenied("this upload token has expired", code="expired")
        return data

    def confirm(self, principal: Principal, course_id: int, module_id: int, token: str,
                duration: int | None) -> MediaInfo:
        with db.transaction(write=False):
            self.media.courses.owned_course(course_id, principal, MANAGE)  # 404 first
            data = self._read_token(token, principal, course_id, module_id)
        storage, key = self.runtime.storage, data["k"]
        if not storage.exists(key):
            raise Conflict("nothing was uploaded to the URL yet", code="not_uploaded")
        try:
            got = self._check(key)
            if duration is None and got.content_type in ("video/mp4", "video/quicktime"):
                duration = mp4_duration(
                    lambda a, b: b"".join(storage.open(key, a, min(b, got.size))), got.size)
            return self.media.record(principal, "video", course_id, module_id, got, data["f"],
                                      duration)
        except BaseException:
            storage.delete(key)
            raise

    def _check(self, key: str) -> uploads.Received:
        storage = self.runtime.storage
        size, limit = storage.stat(key).size, self.media.limit("video")
        if size == 0:
            raise ValidationFailed.field("upload_token", "the uploaded video is empty", "empty")
        if size > limit:
            raise PayloadTooLarge(f"the video is over {limit} bytes", limit=limit)
        content_type = uploads.sniff(b"".join(storage.open(key, 0, min(size, 4096))))
        allowed = self.media.settings.video_types
        if content_type not in allowed:
            raise UnsupportedMediaType(
                f"the video is {content_type or 'of an unknown type'}; accepted: "
                f"{', '.join(sorted(allowed))}", code="unsupported_type")
        sha = hashlib.sha256()
        for chunk in storage.open(key, chunk_size=uploads.CHUNK):
            sha.update(chunk)
        return uploads.Received(key=key, size=size, sha256=sha.hexdigest(),
                                content_type=content_type)
