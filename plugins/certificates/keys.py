"""Per-tenant Ed25519 keys for signing credentials: created on first use, rotatable, and
published (JWKS, did:web) for as long as a credential they signed may be checked, i.e. always.

Kept apart from the identity plugin's access-token keys (own table, own derived encryption
key): a token-key rotation, which retires keys after one token lifetime, must never make a
certificate unverifiable, and a credential key never signs a login.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

from learnplat.plugin import current_tenant, db, utcnow
from learnplat.secret_keys import SecretBox, SecretScan

from .models import CredentialKey

if TYPE_CHECKING:
    from .credential import Issuer

_CACHE_SECONDS = 30


class CredentialKeys:
    def __init__(self, secrets: bytes | Sequence[bytes]):
        # The runtime's secret_keys: app.secret_key (encrypts) then app.old_secret_keys.
        self._box = SecretBox([secrets] if isinstance(secrets, bytes) else secrets,
                              info=b"certificates-credential-keys")
        self._signing: dict[int, tuple[float, str, Ed25519PrivateKey, dt.datetime]] = {}
        self._lock = threading.Lock()

    def signing_key(self) -> tuple[str, Ed25519PrivateKey]:
        """(kid, private key) of the current tenant's active key; made on first use."""
        kid, key, _ = self.signing_key_since()
        return kid, key

    def signing_key_since(self) -> tuple[str, Ed25519PrivateKey, dt.datetime]:
        """signing_key() and when that key was made (the status list is valid from then at
        the earliest)."""
        tenant_id = current_tenant().id
        hit = self._signing.get(tenant_id)
        if hit and hit[0] > time.monotonic():
            return hit[1], hit[2], hit[3]
        row = self._active()
        if row is None:
            row = self._create()
        key = serialization.load_pem_private_key(self._box.decrypt(row.private_key),
                                                 password=None)
        assert isinstance(key, Ed25519PrivateKey)
        created: dt.datetime = row.created_at
        with self._lock:
            self._signing[tenant_id] = (time.monotonic() + _CACHE_SECONDS, row.kid, key,
                                        created)
        return row.kid, key, created

    @staticmethod
    def _active() -> CredentialKey | None:
        return (CredentialKey.select().where(CredentialKey.retired_at.is_null())
                .order_by(CredentialKey.id.desc()).first())

    def _create(self) -> CredentialKey:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        kid = f"{current_tenant().slug}-cred-{secrets.token_hex(6)}"
        jwk = json.loads(OKPAlgorithm.to_jwk(key.public_key()))
        jwk.update({"kid": kid, "use": "sig", "alg": "EdDSA"})
        with db.transaction():
            return CredentialKey.create(kid=kid, private_key=self._box.encrypt(pem),
                                        public_jwk=jwk)

    def rotate(self) -> str:
        """Sign new credentials with a fresh key; the old ones stay published and verifying."""
        with db.transaction():
            (CredentialKey.update(retired_at=utcnow())
             .where(CredentialKey.retired_at.is_null()).execute())
            row = self._create()
        self.forget()
        return row.kid

    def forget(self) -> None:
        with self._lock:
            self._signing.clear()

    # -- the secret at rest (register_encrypted_at_rest; in a tenant and a transaction) --------

    def scan(self) -> SecretScan:
        """Whether the secrets in force decrypt each of the tenant's credential keys (retired
        ones too: one per rotation)."""
        out = SecretScan()
        for (token,) in CredentialKey.select(CredentialKey.private_key).tuples():
            out.add(self._box.state(token))
        return out

    def reencrypt(self) -> int:
        """Rewrite the tenant's keys that an old secret encrypted with app.secret_key."""
        rewritten = 0
        for row in CredentialKey.select(CredentialKey.id, CredentialKey.private_key):
            token = self._box.reencrypt(row.private_key)
            if token is not None:
                (CredentialKey.update(private_key=token)
                 .where(CredentialKey.id == row.id).execute())
                rewritten += 1
        return rewritten

    @staticmethod
    def all_keys() -> list[CredentialKey]:
        return list(CredentialKey.select().order_by(CredentialKey.id))

    def jwks(self, issuer: Issuer) -> dict[str, Any]:
        """Every key, retired ones too, each `kid` the DID URL the JWT header names."""
        return {"keys": [issuer.public_jwk(row.public_jwk) for row in self.all_keys()]}

    def public_key(self, kid: str) -> Ed25519PublicKey | None:
        row = CredentialKey.select().where(CredentialKey.kid == kid).first()
        if row is None:
            return None
        key = OKPAlgorithm.from_jwk(row.public_jwk)
        return key if isinstance(key, Ed25519PublicKey) else None
