"""Signed playback URLs for local storage: an HMAC-SHA256, under a key derived from the
application's secret key, over the tenant, the object, the expiry and the user. Every API
process with the same secret key accepts every other's URLs, across restarts."""

from __future__ import annotations

import hashlib
import hmac
import time

from learnplat.plugin import PermissionDenied

_PURPOSE = b"learnplat.media.url.v1"  # a key of its own: these MACs mean nothing elsewhere


def _key(secret_key: bytes) -> bytes:
    return hmac.new(secret_key, _PURPOSE, hashlib.sha256).digest()


def signature(secret_key: bytes, tenant_id: int, media_id: int, expires: int,
              user_id: int) -> str:
    message = f"v1|{tenant_id}|{media_id}|{expires}|{user_id}".encode()
    return hmac.new(_key(secret_key), message, hashlib.sha256).hexdigest()


def verify(secret_key: bytes, tenant_id: int, media_id: int, expires: int, user_id: int,
           sig: str, now: float | None = None) -> None:
    """Raise PermissionDenied (403) for a forged, altered or expired URL."""
    expected = signature(secret_key, tenant_id, media_id, expires, user_id)
    if not hmac.compare_digest(expected, sig.lower()):
        raise PermissionDenied("this media URL is not valid", code="bad_signature")
    if expires < (time.time() if now is None else now):
        raise PermissionDenied("this media URL has expired", code="expired")
