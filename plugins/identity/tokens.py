"""Access tokens: short-lived EdDSA JWTs with sub, tenant, role, jti, iat, exp, iss, aud.

Only EdDSA is accepted (never "none", never HMAC with a public key as secret); the key is found
by `kid` among the tenant's own keys, so a token of another tenant fails verification here.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt

from learnplat.plugin import TenantInfo, TenantKeyRing, Unauthorized

ALGORITHM = "EdDSA"


def audience(tenant: TenantInfo) -> str:
    return f"learnplat:{tenant.slug}"


@dataclass(frozen=True)
class IssuedToken:
    token: str
    jti: str
    expires_in: int


# Verified tokens kept per process: a token's signature and claims never change, so a token
# seen before costs a dict lookup instead of parsing and an Ed25519 verification (~250 us).
# Revocation is not cached: the caller checks it on every request.
_VERIFIED_MAX = 50_000


class TokenCodec:
    def __init__(self, keys: TenantKeyRing, issuer: str, ttl: int):
        self.keys = keys
        self.issuer = issuer
        self.ttl = ttl
        self._verified: dict[tuple[int, str], tuple[str, dict[str, Any]]] = {}

    def issue(self, tenant: TenantInfo, user_id: int, role: str, version: int,
              family: str | None) -> IssuedToken:
        now = int(time.time())
        jti = secrets.token_urlsafe(16)
        claims: dict[str, Any] = {
            "sub": str(user_id), "tenant": tenant.id, "role": role, "jti": jti, "iat": now,
            "exp": now + self.ttl, "iss": self.issuer, "aud": audience(tenant), "ver": version,
        }
        if family:
            claims["fam"] = family
        kid, key = self.keys.signing_key()
        token = jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid})
        return IssuedToken(token, jti, self.ttl)

    def verify(self, token: str, tenant: TenantInfo) -> dict[str, Any]:
        hit = self._verified.get((tenant.id, token))
        if hit is not None:
            kid, claims = hit
            # Still unexpired, and its key still usable (a retired key's tokens end with it).
            if claims["exp"] > time.time() and self.keys.public_key(kid) is not None:
                return claims
            self._verified.pop((tenant.id, token), None)
        claims = self._verify(token, tenant)
        if len(self._verified) >= _VERIFIED_MAX:
            self._verified.clear()
        self._verified[(tenant.id, token)] = (jwt.get_unverified_header(token)["kid"], claims)
        return claims

    def _verify(self, token: str, tenant: TenantInfo) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("malformed token") from None
        if header.get("alg") != ALGORITHM or not isinstance(header.get("kid"), str):
            raise Unauthorized("unsupported token algorithm")
        key = self.keys.public_key(header["kid"])
        if key is None:
            raise Unauthorized("token signed by an unknown key")
        try:
            claims = jwt.decode(
                token, key, algorithms=[ALGORITHM], audience=audience(tenant),
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "jti", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
        if claims.get("tenant") != tenant.id:
            raise Unauthorized("the token belongs to another school")
        return claims
