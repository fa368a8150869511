"""Per-tenant Ed25519 key rings for plugins that sign (identity's access tokens, certificates'
credentials): a key made on first use, its private half stored encrypted under app.secret_key
(`SecretBox`, so a database dump alone cannot sign and app.old_secret_keys still decrypt) in
the plugin's own table, cached per process for a short time, rotated, and published as JWKS;
and the scan and re-encryption a ``register_encrypted_at_rest`` declaration runs.

What stays the plugin's own: its table (a `TenantModel` with the columns `kid`,
`private_key`, `public_jwk`, `created_at`, `retired_at`), its derivation of the secret
(`info`), its kid prefix, how long a retired key stays published, and how a published key
names itself (`jwks(render)`).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm

from . import db
from .models import TenantModel, utcnow
from .secret_keys import SecretBox, SecretScan
from .tenancy import current_tenant

CACHE_SECONDS = 30


@dataclass(frozen=True)
class ActiveKey:
    """The current tenant's active key: its `kid`, private half and when it was made."""

    kid: str
    private_key: Any  # Ed25519PrivateKey (TenantKeyRing) or RSAPrivateKey (RsaKeyRing)
    created_at: dt.datetime


def public_key_of(jwk: dict[str, Any]) -> Ed25519PublicKey | None:
    """The Ed25519 public key a stored JWK holds (None: not one)."""
    key = OKPAlgorithm.from_jwk(jwk)
    return key if isinstance(key, Ed25519PublicKey) else None


class TenantKeyRing:
    """One plugin's Ed25519 keys, one active key per tenant (plus the retired ones).

    `model` is the plugin's key table; `secrets` the runtime's `secret_keys` (app.secret_key,
    which encrypts, then app.old_secret_keys); `info` the plugin's own HKDF derivation, so two
    rings never share an encryption key; kids are ``<tenant slug>-<kid_prefix><12 hex>``.
    A retired key stays published (`published`, `jwks`, `public_key`) for `retire_after`,
    or for ever when None. Methods other than `forget` run in a tenant's context."""

    def __init__(self, model: type[TenantModel], secrets: bytes | Sequence[bytes], *,
                 info: bytes, kid_prefix: str = "", retire_after: dt.timedelta | None = None,
                 cache_seconds: float = CACHE_SECONDS):
        self.model: Any = model
        self._box = SecretBox([secrets] if isinstance(secrets, bytes) else secrets, info=info)
        self._kid_prefix = kid_prefix
        self._retire_after = retire_after
        self._cache_seconds = cache_seconds
        self._signing: dict[int, tuple[float, ActiveKey]] = {}
        self._public: dict[int, tuple[float, dict[str, Ed25519PublicKey]]] = {}
        self._lock = threading.Lock()

    # -- signing -------------------------------------------------------------------------------

    def active(self) -> ActiveKey:
        """The current tenant's active key, made on first use."""
        tenant_id = current_tenant().id
        hit = self._signing.get(tenant_id)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        m = self.model
        row = m.select().where(m.retired_at.is_null()).order_by(m.id.desc()).first()
        if row is None:
            row = self._create()
        key = self._load(self._box.decrypt(row.private_key))
        active = ActiveKey(row.kid, key, row.created_at)
        with self._lock:
            self._signing[tenant_id] = (time.monotonic() + self._cache_seconds, active)
        return active

    def signing_key(self) -> tuple[str, Ed25519PrivateKey]:
        """(kid, private key) of the current tenant's active key; made on first use."""
        active = self.active()
        return active.kid, active.private_key

    # The key type: Ed25519 here, RSA in RsaKeyRing.
    alg = "EdDSA"

    @staticmethod
    def _load(pem: bytes) -> Any:
        key = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(key, Ed25519PrivateKey)
        return key

    @staticmethod
    def _generate() -> tuple[Any, dict[str, Any]]:
        """A new private key and its public half as a JWK."""
        key = Ed25519PrivateKey.generate()
        return key, json.loads(OKPAlgorithm.to_jwk(key.public_key()))

    @staticmethod
    def _public_of(jwk: dict[str, Any]) -> Any:
        return public_key_of(jwk)

    def _create(self) -> Any:
        key, jwk = self._generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        kid = f"{current_tenant().slug}-{self._kid_prefix}{secrets.token_hex(6)}"
        jwk.update({"kid": kid, "use": "sig", "alg": self.alg})
        with db.transaction():
            return self.model.create(kid=kid, private_key=self._box.encrypt(pem),
                                     public_jwk=jwk)

    def rotate(self) -> str:
        """Retire the active key and sign with a new one (its kid); the retired key keeps
        verifying what it signed while it stays published."""
        m = self.model
        with db.transaction():
            m.update(retired_at=utcnow()).where(m.retired_at.is_null()).execute()
            row = self._create()
        self.forget()
        return str(row.kid)

    def forget(self) -> None:
        """Drop this process's cached keys (every tenant's)."""
        with self._lock:
            self._signing.clear()
            self._public.clear()

    # -- publishing and verifying ----------------------------------------------------------------

    def published(self) -> list[Any]:
        """The tenant's key rows that verify, in the order they were made: the active key and
        those retired less than `retire_after` ago (all of them when it is None)."""
        m = self.model
        query = m.select()
        if self._retire_after is not None:
            horizon = utcnow() - self._retire_after
            query = query.where(m.retired_at.is_null() | (m.retired_at > horizon))
        return list(query.order_by(m.id))

    def jwks(self, render: Callable[[dict[str, Any]], dict[str, Any]] | None = None
             ) -> dict[str, Any]:
        """The published public keys as a JWK Set; `render` rewrites each stored JWK (whose
        `kid` is the bare key name) as the plugin publishes it."""
        return {"keys": [render(row.public_jwk) if render else row.public_jwk
                         for row in self.published()]}

    def public_key(self, kid: str) -> Ed25519PublicKey | None:
        """The published key named `kid` (bare), cached per tenant; an unknown kid reloads."""
        tenant_id = current_tenant().id
        hit = self._public.get(tenant_id)
        if hit is None or hit[0] <= time.monotonic() or kid not in hit[1]:
            keys = {row.kid: key for row in self.published()
                    if (key := self._public_of(row.public_jwk)) is not None}
            with self._lock:
                self._public[tenant_id] = (time.monotonic() + self._cache_seconds, keys)
            hit = self._public[tenant_id]
        return hit[1].get(kid)

    # -- the secret at rest (register_encrypted_at_rest; in a tenant and a transaction) --------

    def scan(self) -> SecretScan:
        """Whether the secrets in force decrypt each of the tenant's keys, retired ones too
        (they are few: one per rotation)."""
        m = self.model
        out = SecretScan()
        for (token,) in m.select(m.private_key).tuples():
            out.add(self._box.state(token))
        return out

    def reencrypt(self) -> int:
        """Rewrite the tenant's keys that an old secret encrypted with app.secret_key."""
        m = self.model
        rewritten = 0
        for row in m.select(m.id, m.private_key):
            token = self._box.reencrypt(row.private_key)
            if token is not None:
                m.update(private_key=token).where(m.id == row.id).execute()
                rewritten += 1
        return rewritten


class RsaKeyRing(TenantKeyRing):
    """The same ring with RSA keys (2048 bits, published with ``alg`` RS256), for standards
    that require RS256: LTI 1.3 (the IMS Security Framework), and peers whose libraries know
    no EdDSA. `signing_key` gives an ``RSAPrivateKey``, `public_key` an ``RSAPublicKey``."""

    alg = "RS256"

    @staticmethod
    def _load(pem: bytes) -> Any:
        key = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key

    @staticmethod
    def _generate() -> tuple[Any, dict[str, Any]]:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return key, json.loads(RSAAlgorithm.to_jwk(key.public_key()))

    @staticmethod
    def _public_of(jwk: dict[str, Any]) -> Any:
        key = RSAAlgorithm.from_jwk(jwk)
        return key if isinstance(key, rsa.RSAPublicKey) else None
