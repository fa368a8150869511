"""The school's LTI signing keys: one RSA key ring (LTI 1.3 requires RS256) for both roles."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import jwt

from learnplat.plugin import RsaKeyRing, Runtime

from .models import LtiKey

JWT_LIFETIME = 300  # seconds an id_token, client assertion or Deep Linking response is valid


class LtiKeys:
    """Signs for the current school and publishes its keys (JWKS)."""

    def __init__(self, runtime: Runtime):
        # A retired key stays published a day: what it signed lives minutes.
        self.ring = RsaKeyRing(LtiKey, runtime.secret_keys, info=b"lti-keys", kid_prefix="lti-",
                               retire_after=dt.timedelta(days=1))

    def sign(self, claims: dict[str, Any], lifetime: int = JWT_LIFETIME) -> str:
        """`claims` as an RS256 JWT under the school's active key (``kid`` in the header),
        with ``iat``/``exp`` added unless given."""
        kid, key = self.ring.signing_key()
        now = int(time.time())
        body = {"iat": now, "exp": now + lifetime, **claims}
        return jwt.encode(body, key, algorithm="RS256", headers={"kid": kid})

    def jwks(self) -> dict[str, Any]:
        """The school's published public keys (makes the first key on first use)."""
        self.ring.active()
        return self.ring.jwks()
