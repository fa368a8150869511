"""Per-tenant Ed25519 keys for signing credentials: the core's key ring (created on first use,
rotatable, private halves encrypted under app.secret_key), published (JWKS, did:web) for as
long as a credential they signed may be checked, i.e. always.

Kept apart from the identity plugin's access-token keys (own table, own derived encryption
key): a token-key rotation, which retires keys after one token lifetime, must never make a
certificate unverifiable, and a credential key never signs a login.
"""

from __future__ import annotations

from collections.abc import Sequence

from learnplat.plugin import TenantKeyRing

from .models import CredentialKey


def credential_keys(secrets: bytes | Sequence[bytes]) -> TenantKeyRing:
    """The key ring of credentials (kids ``<school>-cred-<hex>``, never retired from the
    JWKS); `secrets` the runtime's secret_keys."""
    return TenantKeyRing(CredentialKey, secrets, info=b"certificates-credential-keys",
                         kid_prefix="cred-")
