"""The Open Badges 3.0 credential of a certificate, signed as a VC-JWT (EdDSA / Ed25519), the
issuer's did:web document, and the revocation status list (W3C Bitstring Status List).

docs/certificates.md explains the format and how a third party verifies it offline.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlparse

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
OB_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
# W3C recommends at least 131,072 entries so that an index says little about who it is.
STATUS_LIST_MIN_BITS = 131_072


@dataclass(frozen=True)
class Issuer:
    """The school as a credential issuer, resolvable with did:web."""

    slug: str
    name: str
    base_url: str  # e.g. https://api.example.org (no trailing slash)

    @property
    def path(self) -> str:
        return f"/certificates/issuers/{self.slug}"

    @property
    def url(self) -> str:
        return f"{self.base_url}{self.path}"

    @property
    def did(self) -> str:
        """did:web of `<base>/certificates/issuers/<slug>/did.json` (the method's rule: host,
        with ':' of a port percent-encoded, then the path segments joined by ':')."""
        parsed = urlparse(self.base_url)
        host = quote(parsed.netloc, safe="")
        segments = [s for s in parsed.path.split("/") if s]
        segments += ["certificates", "issuers", self.slug]
        return ":".join(["did:web", host, *segments])

    @property
    def status_list_url(self) -> str:
        return f"{self.url}/status/revocation"

    def key_id(self, kid: str) -> str:
        return f"{self.did}#{kid}"


@dataclass(frozen=True)
class CredentialFacts:
    public_id: str
    course_id: int
    course_title: str
    learner_name: str
    learner_email: str
    issued_at: dt.datetime
    verify_url: str
    status_index: int


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def identity_hash(email: str, salt: str) -> str:
    """OB 3.0 IdentityObject hash: "sha256$" + hex(sha256(identity + salt))."""
    return "sha256$" + hashlib.sha256((email.strip().lower() + salt).encode()).hexdigest()


def build_credential(issuer: Issuer, facts: CredentialFacts) -> dict[str, Any]:
    """The OpenBadgeCredential (W3C VC Data Model 2.0) of one certificate."""
    salt = facts.public_id  # public, per credential: the hash cannot be joined across badges
    return {
        "@context": [VC_CONTEXT, OB_CONTEXT],
        "id": f"urn:learnplat:certificate:{facts.public_id}",
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "issuer": {"id": issuer.did, "type": ["Profile"], "name": issuer.name,
                   "url": issuer.url},
        "validFrom": _iso(facts.issued_at),
        "name": f"{facts.course_title}: certificate of completion",
        "credentialSubject": {
            "type": ["AchievementSubject"],
            "identifier": [
                {"type": "IdentityObject", "identityType": "emailAddress", "hashed": True,
                 "identityHash": identity_hash(facts.learner_email, salt), "salt": salt},
                {"type": "IdentityObject", "identityType": "name", "hashed": False,
                 "identityHash": facts.learner_name},
            ],
            "achievement": {
                "id": f"{issuer.url}/achievements/course-{facts.course_id}",
                "type": ["Achievement"],
                "achievementType": "Course",
                "name": facts.course_title,
                "description": f"Completed the course {facts.course_title} at {issuer.name}.",
                "criteria": {"narrative": "Completed every required module of the course."},
            },
        },
        "evidence": [{"id": facts.verify_url, "type": ["Evidence"],
                      "name": "Public verification page"}],
        "credentialStatus": {
            "id": f"{issuer.status_list_url}#{facts.status_index}",
            "type": "BitstringStatusListEntry",
            "statusPurpose": "revocation",
            "statusListIndex": str(facts.status_index),
            "statusListCredential": issuer.status_list_url,
        },
    }


def sign(payload_credential: dict[str, Any], issuer: Issuer, kid: str,
         key: Ed25519PrivateKey) -> str:
    """VC-JWT as Open Badges 3.0 §8.2 has it: the credential's properties are the JWT payload,
    with the registered claims iss, jti, nbf (and sub when the subject has an id)."""
    claims = dict(payload_credential)
    claims["iss"] = issuer.did
    claims["jti"] = payload_credential["id"]
    valid_from = dt.datetime.fromisoformat(payload_credential["validFrom"].replace("Z", "+00:00"))
    claims["nbf"] = int(valid_from.timestamp())  # validFrom; OB 3.0 has no iat
    subject_id = payload_credential["credentialSubject"].get("id")
    if subject_id:
        claims["sub"] = subject_id
    return jwt.encode(claims, key, algorithm="EdDSA",
                      headers={"kid": issuer.key_id(kid), "typ": "JWT"})


def did_document(issuer: Issuer, jwks: list[dict[str, Any]]) -> dict[str, Any]:
    """The issuer's DID document: every credential key, retired ones included, as an assertion
    method, so credentials signed before a rotation still verify."""
    methods = []
    for jwk in jwks:
        public = {k: jwk[k] for k in ("kty", "crv", "x") if k in jwk}
        methods.append({"id": issuer.key_id(jwk["kid"]), "type": "JsonWebKey2020",
                        "controller": issuer.did, "publicKeyJwk": public})
    return {
        "@context": ["https://www.w3.org/ns/did/v1",
                     "https://w3id.org/security/suites/jws-2020/v1"],
        "id": issuer.did,
        "alsoKnownAs": [issuer.url],
        "verificationMethod": methods,
        "assertionMethod": [m["id"] for m in methods],
    }


def encode_bitstring(revoked: list[int], size: int | None = None) -> str:
    """Bitstring Status List encodedList: multibase base64url (no padding, prefix "u") of the
    GZIP-compressed bitstring; bit i (most significant bit first) set = index i revoked."""
    highest = max(revoked, default=0)
    bits = max(size or 0, STATUS_LIST_MIN_BITS, highest + 1)
    bits += (-bits) % 8
    data = bytearray(bits // 8)
    for index in revoked:
        data[index // 8] |= 0x80 >> (index % 8)
    raw = gzip.compress(bytes(data), mtime=0)
    return "u" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_bitstring(encoded: str) -> bytes:
    """The inverse of encode_bitstring (for verifiers and tests)."""
    body = encoded[1:] if encoded.startswith("u") else encoded
    return gzip.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def is_set(bitstring: bytes, index: int) -> bool:
    return index // 8 < len(bitstring) and bool(bitstring[index // 8] & (0x80 >> (index % 8)))


def status_list_credential(issuer: Issuer, revoked: list[int], size: int,
                           now: dt.datetime) -> dict[str, Any]:
    return {
        "@context": [VC_CONTEXT],
        "id": issuer.status_list_url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer.did,
        "validFrom": _iso(now),
        "credentialSubject": {
            "id": f"{issuer.status_list_url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": "revocation",
            "encodedList": encode_bitstring(revoked, size),
        },
    }
