"""Per-tenant Ed25519 keys that sign access tokens: the core's key ring (created on first use,
rotatable, published as JWKS, private halves encrypted under app.secret_key) on the identity
plugin's own table and derivation. A retired key keeps verifying for one access-token lifetime
(+60 s), then leaves the JWKS: docs/decisions/0100-eddsa-per-tenant-signing-keys.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from learnplat.plugin import TenantKeyRing

from .models import SigningKey


def token_keys(secrets: bytes | Sequence[bytes], access_ttl: int) -> TenantKeyRing:
    """The key ring of access tokens; `secrets` the runtime's secret_keys."""
    return TenantKeyRing(SigningKey, secrets, info=b"identity-signing-keys",
                         retire_after=dt.timedelta(seconds=access_ttl + 60))
