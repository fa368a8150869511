"""Per-tenant Ed25519 signing keys: created on first use, rotatable, published as JWKS.

Private keys are stored encrypted (Fernet, key derived from app.secret_key), so a database dump
alone cannot mint tokens; keys made under a secret listed in app.old_secret_keys still decrypt
(learnplat.secret_keys). Verification keys are cached per process for a short time.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
import time
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

from learnplat import db
from learnplat.models import utcnow
from learnplat.secret_keys import SecretBox, SecretScan
from learnplat.tenancy import current_tenant

from .models import SigningKey

_CACHE_SECONDS = 30


class KeyRing:
    def __init__(self, secrets: bytes | Sequence[bytes], access_ttl: int):
        # The runtime's secret_keys: app.secret_key (encrypts) then app.old_secret_keys.
        self._box = SecretBox([secrets] if isinstance(secrets, bytes) else secrets,
                              info=b"identity-signing-keys")
        self._access_ttl = access_ttl
        self._cache: dict[int, tuple[float, dict[str, Ed25519PublicKey]]] = {}
        self._signing: dict[int, tuple[float, str, Ed25519PrivateKey]] = {}
        self._lock = threading.Lock()

    # -- signing -------------------------------------------------------------------------------

    def signing_key(self) -> tuple[str, Ed25519PrivateKey]:
        tenant_id = current_tenant().id
        hit = self._signing.get(tenant_id)
        if hit and hit[0] > time.monotonic():
            return hit[1], hit[2]
        row = (SigningKey.select().where(SigningKey.retired_at.is_null())
               .order_by(SigningKey.id.desc()).first())
        if row is None:
            row = self._create()
        key = serialization.load_pem_private_key(self._box.decrypt(row.private_key),
                                                 password=None)
        assert isinstance(key, Ed25519PrivateKey)
        with self._lock:
            self._signing[tenant_id] = (time.monotonic() + _CACHE_SECONDS, row.kid, key)
        return row.kid, key

    def _create(self) -> SigningKey:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        kid = f"{current_tenant().slug}-{secrets.token_hex(6)}"
        jwk = json.loads(OKPAlgorithm.to_jwk(key.public_key()))
        jwk.update({"kid": kid, "use": "sig", "alg": "EdDSA"})
        with db.transaction():
            return SigningKey.create(kid=kid, private_key=self._box.encrypt(pem),
                                     public_jwk=jwk)

    def rotate(self) -> str:
        """Start signing with a new key; the old one keeps verifying the tokens it signed."""
        with db.transaction():
            (SigningKey.update(retired_at=utcnow())
             .where(SigningKey.retired_at.is_null()).execute())
            row = self._create()
        self.forget()
        return row.kid

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()
            self._signing.clear()

    # -- the secret at rest (register_encrypted_at_rest; in a tenant and a transaction) --------

    def scan(self) -> SecretScan:
        """Whether the secrets in force decrypt each of the tenant's keys, retired ones too
        (they are few: one per rotation)."""
        out = SecretScan()
        for (token,) in SigningKey.select(SigningKey.private_key).tuples():
            out.add(self._box.state(token))
        return out

    def reencrypt(self) -> int:
        """Rewrite the tenant's keys that an old secret encrypted with app.secret_key."""
        rewritten = 0
        for row in SigningKey.select(SigningKey.id, SigningKey.private_key):
            token = self._box.reencrypt(row.private_key)
            if token is not None:
                SigningKey.update(private_key=token).where(SigningKey.id == row.id).execute()
                rewritten += 1
        return rewritten

    # -- verifying -------------------------------------------------------------------------------

    def _usable(self) -> list[SigningKey]:
        # A retired key stays valid for one access-token lifetime after retirement.
        horizon = utcnow() - dt.timedelta(seconds=self._access_ttl + 60)
        return list(SigningKey.select().where(
            SigningKey.retired_at.is_null() | (SigningKey.retired_at > horizon)))

    def public_key(self, kid: str) -> Ed25519PublicKey | None:
        tenant_id = current_tenant().id
        hit = self._cache.get(tenant_id)
        if hit is None or hit[0] <= time.monotonic() or kid not in hit[1]:
            keys = {row.kid: OKPAlgorithm.from_jwk(row.public_jwk) for row in self._usable()}
            with self._lock:
                self._cache[tenant_id] = (time.monotonic() + _CACHE_SECONDS, keys)
            hit = self._cache[tenant_id]
        key = hit[1].get(kid)
        return key if isinstance(key, Ed25519PublicKey) else None

    def jwks(self) -> dict[str, Any]:
        return {"keys": [row.public_jwk for row in self._usable()]}
