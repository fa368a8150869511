"""Per-tenant Ed25519 keys for signing credentials: created on first use, rotatable, and
published (JWKS, did:web) for as long as a credential they signed may be checked, i.e. always.

Kept apart from the identity plugin's access-token keys (own table, own derived encryption
key): a token-key rotation, which retires keys after one token lifetime, must never make a
certificate unverifiable, and a credential key never signs a login.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from typing import Any

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from jwt.algorithms import OKPAlgorithm

from learnplat.plugin import current_tenant, db, utcnow

from .models import CredentialKey

_CACHE_SECONDS = 30


class CredentialKeys:
    def __init__(self, secret: bytes):
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"learnplat-keys",
                       info=b"certificates-credential-keys").derive(secret)
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))
        self._signing: dict[int, tuple[float, str, Ed25519PrivateKey]] = {}
        self._lock = threading.Lock()

    def signing_key(self) -> tuple[str, Ed25519PrivateKey]:
        """(kid, private key) of the current tenant's active key; made on first use."""
        tenant_id = current_tenant().id
        hit = self._signing.get(tenant_id)
        if hit and hit[0] > time.monotonic():
            return hit[1], hit[2]
        row = self._active()
        if row is None:
            row = self._create()
        key = serialization.load_pem_private_key(
            self._fernet.decrypt(row.private_key.encode()), password=None)
        assert isinstance(key, Ed25519PrivateKey)
        with self._lock:
            self._signing[tenant_id] = (time.monotonic() + _CACHE_SECONDS, row.kid, key)
        return row.kid, key

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
            return CredentialKey.create(kid=kid, private_key=self._fernet.encrypt(pem).decode(),
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

    @staticmethod
    def all_keys() -> list[CredentialKey]:
        return list(CredentialKey.select().order_by(CredentialKey.id))

    def jwks(self) -> dict[str, Any]:
        return {"keys": [row.public_jwk for row in self.all_keys()]}

    def public_key(self, kid: str) -> Ed25519PublicKey | None:
        row = CredentialKey.select().where(CredentialKey.kid == kid).first()
        if row is None:
            return None
        key = OKPAlgorithm.from_jwk(row.public_jwk)
        return key if isinstance(key, Ed25519PublicKey) else None
