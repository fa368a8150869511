"""Signed playback URLs for local storage: an HMAC-SHA256, under a key derived from the
application's secret key, over the tenant, the object, the expiry and the user. Every API
process with the same secret key accepts every other's URLs, across restarts."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

from learnplat.plugin import PermissionDenied

_PURPOSE = b"learnplat.media.url.v1"  # a key of its own: these MACs mean nothing elsewhere


def _key(secret_key: bytes) -> bytes:
    return hmac.new(secret_key, _PURPOSE, hashlib.sha256).digest()


def signature(secret_key: bytes, tenant_id: int, media_id: int, expires: int,
              user_id: int) -> str:
    message = f"v1|{tenant_id}|{media_id}|{expires}|{user_id}".encode()
    return hmac.new(_key(secret_key), message, hashlib.sha256).hexdigest()


def verify(secret_key: bytes | Sequence[bytes], tenant_id: int, media_id: int, expires: int,
           user_id: int, sig: str, now: float | None = None) -> None:
    """Raise PermissionDenied (403) for a forged, altered or expired URL. `secret_key` may be
    the runtime's secret_keys (app.secret_key, then app.old_secret_keys): a URL signed just
    before the secret was rotated plays until it expires."""
    keys = [secret_key] if isinstance(secret_key, bytes) else secret_key
    if not any(hmac.compare_digest(signature(key, tenant_id, media_id, expires, user_id),
                                   sig.lower()) for key in keys):
        raise PermissionDenied("this media URL is not valid", code="bad_signature")
    if expires < (time.time() if now is None else now):
        raise PermissionDenied("this media URL has expired", code="expired")
