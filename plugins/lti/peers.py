"""Checking what a peer signed (an LTI platform's id_token, a tool's client assertion or Deep
Linking response): its public keys from its JWKS URL (fetched through the outbound policy:
private addresses refused; cached per process, fetched again for an unknown ``kid``) or one
key registered by hand, and the JWT's signature (RS256 only), issuer, audience and times."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from learnplat.plugin import OutboundRequest, Runtime

JWKS_SECONDS = 300  # how long fetched keys are trusted before they are fetched again
REFETCH_SECONDS = 10  # an unknown kid fetches again at most this often per URL
LEEWAY = 60  # seconds of clock difference allowed on exp/iat/nbf


class PeerTokenError(Exception):
    """A peer's JWT failed a check. `check` names it: "malformed", "keys_unavailable",
    "unknown_key", "bad_signature", "expired", "not_yet_valid", "wrong_issuer",
    "wrong_audience", "missing_claim"; the message says what, for a person."""

    def __init__(self, check: str, message: str):
        super().__init__(message)
        self.check = check


@dataclass
class _Fetched:
    expires: float
    tried: float
    keys: dict[str, Any]


class PeerKeys:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self._cache: dict[str, _Fetched] = {}
        self._lock = threading.Lock()

    def _fetch(self, url: str) -> dict[str, Any]:
        answer = self.runtime.outbound.fetch(OutboundRequest(
            url, b"", {"Accept": "application/json"}, method="GET"))
        if not answer.ok:
            why = answer.error or f"HTTP {answer.status}"
            raise PeerTokenError("keys_unavailable", f"the keys at {url} could not be read: {why}")
        try:
            jwks = jwt.PyJWKSet.from_dict(json.loads(answer.head))
        except (ValueError, jwt.PyJWKSetError, jwt.InvalidKeyError) as exc:
            raise PeerTokenError("keys_unavailable",
                                 f"{url} does not answer a JSON Web Key Set: {exc}") from None
        return {k.key_id or "": k.key for k in jwks.keys}

    def _keys(self, url: str, kid: str) -> dict[str, Any]:
        now = time.monotonic()
        hit = self._cache.get(url)
        if hit is not None and hit.expires > now and (
                kid in hit.keys or now - hit.tried < REFETCH_SECONDS):
            return hit.keys
        keys = self._fetch(url)
        with self._lock:
            self._cache[url] = _Fetched(now + JWKS_SECONDS, now, keys)
        return keys

    def key_for(self, token: str, jwks_url: str = "", jwk: dict[str, Any] | None = None
                ) -> Any:
        """The public key that must have signed `token`: from `jwk` when given, else the
        key of the token's ``kid`` at `jwks_url` (or its only key when the token names none)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise PeerTokenError("malformed", f"not a JWT: {exc}") from None
        if header.get("alg") != "RS256":
            raise PeerTokenError("bad_signature",
                                 f"signed with {header.get('alg')!r}; LTI 1.3 requires RS256")
        if jwk:
            try:
                return jwt.PyJWK.from_dict(jwk).key
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError) as exc:
                raise PeerTokenError("keys_unavailable",
                                     f"the registered key is not usable: {exc}") from None
        if not jwks_url:
            raise PeerTokenError("keys_unavailable", "no key or JWKS URL is registered")
        kid = str(header.get("kid") or "")
        keys = self._keys(jwks_url, kid)
        if kid in keys:
            return keys[kid]
        if not kid and len(keys) == 1:
            return next(iter(keys.values()))
        raise PeerTokenError("unknown_key", f"no key {kid!r} at {jwks_url}")

    def verify(self, token: str, *, issuer: str | None, audience: str | Sequence[str] | None,
               jwks_url: str = "", jwk: dict[str, Any] | None = None,
               require: Sequence[str] = ("exp", "iat")) -> dict[str, Any]:
        """The claims of `token` once its signature, ``iss`` (when `issuer` is given),
        ``aud`` (contains `audience`, when given), ``exp``/``iat``/``nbf`` (LEEWAY) and the
        `require`d claims are checked; PeerTokenError naming the failed check otherwise."""
        key = self.key_for(token, jwks_url, jwk)
        options: jwt.types.Options = {"require": list(require),
                                      "verify_aud": audience is not None}
        try:
            return jwt.decode(token, key, algorithms=["RS256"], issuer=issuer,
                              audience=audience, leeway=LEEWAY, options=options)
        except jwt.ExpiredSignatureError:
            raise PeerTokenError("expired", "the token has expired (exp is past)") from None
        except jwt.ImmatureSignatureError:
            raise PeerTokenError("not_yet_valid", "the token is not valid yet (iat/nbf)"
                                 ) from None
        except jwt.InvalidIssuerError:
            raise PeerTokenError("wrong_issuer", f"the token's issuer is not {issuer!r}"
                                 ) from None
        except jwt.InvalidAudienceError:
            raise PeerTokenError("wrong_audience", f"the token is not meant for {audience!r}"
                                 ) from None
        except jwt.MissingRequiredClaimError as exc:
            raise PeerTokenError("missing_claim", f"the token has no {exc.claim!r} claim"
                                 ) from None
        except jwt.InvalidSignatureError:
            raise PeerTokenError("bad_signature", "the signature does not match the peer's key"
                                 ) from None
        except jwt.InvalidTokenError as exc:
            raise PeerTokenError("malformed", f"the token cannot be read: {exc}") from None
