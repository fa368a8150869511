"""Per-tenant Ed25519 signing keys: created on first use, rotatable, published as JWKS.

Private keys are stored encrypted (Fernet, key derived from app.secret_key), so a database dump
alone cannot mint tokens. Verification keys are cached per process for a short time.
"""

from __future__ import annotations

import base64
import datetime as dt
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

from learnplat import db
from learnplat.models import utcnow
from learnplat.tenancy import current_tenant

from .models import SigningKey

_CACHE_SECONDS = 30


class KeyRing:
    def __init__(self, secret: bytes, access_ttl: int):
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"learnplat-keys",
                       info=b"identity-signing-keys").derive(secret)
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))
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
        key = serialization.load_pem_private_key(
            self._fernet.decrypt(row.private_key.encode()), password=None)
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
            return SigningKey.create(kid=kid, private_key=self._fernet.encrypt(pem).decode(),
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
