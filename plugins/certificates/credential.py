"""The Open Badges 3.0 credential of a certificate, signed as a VC-JWT (EdDSA / Ed25519), the
issuer's did:web document, and the revocation status list (W3C Bitstring Status List).

docs/certificates.md explains the format and how a third party verifies it offline.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import hmac
import ipaddress
import uuid
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
        """The DID URL of a key: the JWT header's `kid`, and the same string is the key's `kid`
        in the JWKS and its verification method's `id` in the DID document, so a stock JOSE
        library finds the key by the header alone (RFC 7515 4.1.4, RFC 7517 4.5)."""
        return f"{self.did}#{kid}"

    def public_jwk(self, stored: dict[str, Any]) -> dict[str, Any]:
        """A stored public JWK (its `kid` the bare key name) as published: `kid` the DID URL."""
        return {**stored, "kid": self.key_id(stored["kid"])}

    def achievement_url(self, course_id: int) -> str:
        return f"{self.url}/achievements/course-{course_id}"


def did_web_problem(base_url: str) -> str | None:
    """Why `base_url` cannot carry a did:web (None when it can): the method names a domain,
    never an IP address (did:web specification, 3.1 "Method-specific identifier")."""
    host = urlparse(base_url).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None if host else f"{base_url!r} names no host"
    return (f"{base_url!r} names the IP address {host}, and a did:web must name a domain "
            "(for this machine: localhost)")


def subject_id(key: bytes, tenant_id: int, user_id: int) -> str:
    """The learner's credentialSubject.id (and the JWT's `sub`): a urn:uuid (RFC 9562 version 8,
    custom) of a keyed hash of (school, user). Stable, so a holder's credentials from one school
    name the same subject; keyed, so nobody without app.secret_key can tell whose it is or
    link it to another school's credentials, and no e-mail address appears in clear."""
    digest = bytearray(hmac.new(key, f"{tenant_id}:{user_id}".encode(), hashlib.sha256)
                       .digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x80  # version 8
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122/9562 variant
    return f"urn:uuid:{uuid.UUID(bytes=bytes(digest))}"


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
    subject_id: str


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def identity_hash(email: str, salt: str) -> str:
    """OB 3.0 IdentityObject hash: "sha256$" + hex(sha256(identity + salt))."""
    return "sha256$" + hashlib.sha256((email.strip().lower() + salt).encode()).hexdigest()


def issuer_profile(issuer: Issuer) -> dict[str, Any]:
    """The OB 3.0 Profile of the school, as the credential embeds it (and as its `url`
    serves it)."""
    return {"id": issuer.did, "type": ["Profile"], "name": issuer.name, "url": issuer.url}


def achievement(issuer: Issuer, course_id: int, course_title: str) -> dict[str, Any]:
    """The OB 3.0 Achievement of completing a course, as the credential embeds it (and as its
    `id` serves it)."""
    return {
        "id": issuer.achievement_url(course_id),
        "type": ["Achievement"],
        "achievementType": "Course",
        "name": course_title,
        "description": f"Completed the course {course_title} at {issuer.name}.",
        "criteria": {"narrative": "Completed every required module of the course."},
    }


def build_credential(issuer: Issuer, facts: CredentialFacts) -> dict[str, Any]:
    """The OpenBadgeCredential (W3C VC Data Model 2.0) of one certificate."""
    salt = facts.public_id  # public, per credential: the hash cannot be joined across badges
    return {
        "@context": [VC_CONTEXT, OB_CONTEXT],
        "id": f"urn:learnplat:certificate:{facts.public_id}",
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "issuer": issuer_profile(issuer),
        "validFrom": _iso(facts.issued_at),
        "name": f"{facts.course_title}: certificate of completion",
        "credentialSubject": {
            # OB 3.0 VC-JWT: `sub` is this id (sign() copies it), which verifiers compare.
            "id": facts.subject_id,
            "type": ["AchievementSubject"],
            "identifier": [
                {"type": "IdentityObject", "identityType": "emailAddress", "hashed": True,
                 "identityHash": identity_hash(facts.learner_email, salt), "salt": salt},
                {"type": "IdentityObject", "identityType": "name", "hashed": False,
                 "identityHash": facts.learner_name},
            ],
            "achievement": achievement(issuer, facts.course_id, facts.course_title),
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
    """The issuer's DID document: every credential key (`jwks`, as published: `kid` the DID
    URL), retired ones included, as an assertion method, so credentials signed before a
    rotation still verify. Each method's `id` and its publicKeyJwk's `kid` are the JWT
    header's `kid`: the publicKeyJwk values alone make a JWKS a stock library verifies with."""
    methods = []
    for jwk in jwks:
        public = {k: jwk[k] for k in ("kty", "crv", "x", "kid", "alg", "use") if k in jwk}
        methods.append({"id": jwk["kid"], "type": "JsonWebKey2020",
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
                           valid_from: dt.datetime) -> dict[str, Any]:
    """The revocation list. Everything in it comes from its arguments (no clock): the same
    revocations signed with the same key are the same bytes (Ed25519 is deterministic), in
    every process."""
    return {
        "@context": [VC_CONTEXT],
        "id": issuer.status_list_url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer.did,
        "validFrom": _iso(valid_from),
        "credentialSubject": {
            "id": f"{issuer.status_list_url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": "revocation",
            "encodedList": encode_bitstring(revoked, size),
        },
    }
