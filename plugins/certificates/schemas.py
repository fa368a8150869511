"""Request and response schemas of the certificates routes (validation and OpenAPI at once)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import JsonDict

from learnplat.plugin import PageQuery, Schema

from .api import CertificateInfo, CertificateStatus

HEX_COLOR = r"^#[0-9a-fA-F]{6}$"
VerifiedStatus = Literal["issued", "revoked"]  # what verification shows (pending is a 404)
JobStatus = Literal["queued", "running", "done"]

# The examples of the OpenAPI document (docs/plugins.md, "Examples"): Ada Lovelace's (user 1001)
# certificate of course 42, "Introduction to Statistics" (taught by Grace Okafor), issued by
# Northfield College (tenant "northfield", its API at https://stats.example.edu).
_BASE = "https://stats.example.edu"
_CERT_ID = "4n2zj93t0afe1785kx9h"
_ISSUER = f"{_BASE}/certificates/issuers/northfield"
_DID = "did:web:stats.example.edu:certificates:issuers:northfield"
_CONTEXT = ["https://www.w3.org/ns/credentials/v2",
            "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"]
_PROFILE: dict[str, Any] = {"id": _DID, "type": ["Profile"], "name": "Northfield College",
                            "url": _ISSUER}
_CERTIFICATE: dict[str, Any] = {
    "id": _CERT_ID, "course_id": 42, "user_id": 1001, "status": "issued",
    "issued_at": "2026-09-12T15:04:00Z", "revoked_at": None,
    "verify_url": f"{_BASE}/certificates/{_CERT_ID}/verify",
    "pdf_url": f"{_BASE}/certificates/{_CERT_ID}/pdf?expires=1788464400"
               "&sig=3764654e7b97d6587b471195f3e99c1bbbbd0eb69d4",
    "credential_url": f"{_BASE}/certificates/{_CERT_ID}/credential?expires=1788464400"
                      "&sig=a1d03f58c6e2b7940d1c5e8f27b6a3c90e4d8f1b257"}
_TEMPLATE: dict[str, Any] = {
    "orientation": "landscape", "heading": "Certificate of Completion",
    "statement": "has successfully completed the course", "signature_label": "Instructor",
    "primary_color": "#1f3a5f", "accent_color": "#c9a227", "text_color": "#222222"}


def _extra(*examples: Any) -> JsonDict:
    """A json_schema_extra with the document's examples of the model."""
    return {"examples": list(examples)}


def _examples(*examples: Any) -> ConfigDict:
    """A model_config with the document's examples of the model."""
    return ConfigDict(json_schema_extra=_extra(*examples))


# The CertificateInfo with its download links (every URL absolute: resources.certificate_out).
# No docstring: it would become the OpenAPI component's description.
class CertificateOut(CertificateInfo):
    model_config = _examples(_CERTIFICATE)

    pdf_url: str | None = Field(description="Works without a header until it expires; null "
                                            "while pending.")
    credential_url: str | None = Field(description="The Open Badges 3.0 credential "
                                                   "(VC-JWT); null while pending.")


class AdminCertificateOut(CertificateOut):
    model_config = _examples({**_CERTIFICATE, "learner_name": "Ada Lovelace",
                              "course_title": "Introduction to Statistics",
                              "revoked_reason": ""})

    learner_name: str
    course_title: str
    revoked_reason: str = ""


class CertificatePage(BaseModel):
    items: list[AdminCertificateOut]
    next_cursor: str | None = None


class CertificateQuery(PageQuery):
    course_id: int | None = Field(None, ge=1, le=2**31 - 1)
    user_id: int | None = Field(None, ge=1, le=2**31 - 1)
    status: CertificateStatus | None = None


class RevokeIn(Schema):
    model_config = _examples({"reason": "Issued to the wrong account; reissued to user 1044."})

    reason: str = Field(min_length=1, max_length=500)


class Party(BaseModel):
    name: str


class CourseRef(BaseModel):
    id: int
    title: str


class IssuerOut(BaseModel):
    name: str
    slug: str
    id: str = Field(description="The issuer's did:web identifier.")
    url: str


class VerificationOut(BaseModel):
    model_config = _examples({
        "id": _CERT_ID, "valid": True, "status": "issued", "learner": {"name": "Ada Lovelace"},
        "course": {"id": 42, "title": "Introduction to Statistics"},
        "instructor": {"name": "Grace Okafor"},
        "issuer": {"name": "Northfield College", "slug": "northfield", "id": _DID,
                   "url": _ISSUER},
        "issued_at": "2026-09-12T15:04:00Z", "revoked_at": None,
        "verify_url": f"{_BASE}/certificates/{_CERT_ID}/verify",
        "status_list": f"{_ISSUER}/status/revocation", "jwks_url": f"{_ISSUER}/jwks.json"})

    id: str
    valid: bool = Field(description="Issued and not revoked.")
    status: VerifiedStatus
    learner: Party
    course: CourseRef
    instructor: Party
    issuer: IssuerOut
    issued_at: dt.datetime | None
    revoked_at: dt.datetime | None
    verify_url: str
    status_list: str
    jwks_url: str


class JobOut(BaseModel):
    model_config = _examples({"id": 12, "course_id": 42, "status": "running", "total": 15,
                              "done": 9, "created_at": "2026-09-20T11:00:00Z",
                              "finished_at": None})

    id: int
    course_id: int
    status: JobStatus
    total: int
    done: int
    created_at: dt.datetime
    finished_at: dt.datetime | None


class TemplateIn(Schema):
    model_config = _examples(_TEMPLATE)

    orientation: Literal["landscape", "portrait"] | None = None
    heading: str | None = Field(None, min_length=1, max_length=120)
    statement: str | None = Field(None, min_length=1, max_length=200)
    signature_label: str | None = Field(None, min_length=1, max_length=120)
    primary_color: str | None = Field(None, pattern=HEX_COLOR)
    accent_color: str | None = Field(None, pattern=HEX_COLOR)
    text_color: str | None = Field(None, pattern=HEX_COLOR)


class TemplateOut(BaseModel):
    model_config = _examples({**_TEMPLATE, "logo": True, "signature": False})

    orientation: str
    heading: str
    statement: str
    signature_label: str
    primary_color: str
    accent_color: str
    text_color: str
    logo: bool
    signature: bool


class JWKSOut(BaseModel):
    model_config = _examples({"keys": [{
        "kty": "OKP", "crv": "Ed25519", "x": "4GbkgQ1Lv94j7e0dYWXA9k6SOm9NmTIbhzZVS-I49ZY",
        "kid": f"{_DID}#northfield-cred-92fd3ae316d6", "use": "sig", "alg": "EdDSA"}]})

    keys: list[dict[str, Any]]


class IssuerProfileOut(BaseModel):
    """The Open Badges 3.0 Profile of a school (what a credential's `issuer` embeds)."""

    # Made from the document (model_validate: its "@context" key) and written with that key.
    model_config = ConfigDict(serialize_by_alias=True, json_schema_extra=_extra({
        "@context": _CONTEXT, **_PROFILE}))

    context: list[str] = Field(alias="@context")
    id: str = Field(description="The school's did:web, the credentials' issuer.id and iss.")
    type: list[str]
    name: str
    url: str = Field(description="This document's own address.")


class CriteriaOut(BaseModel):
    model_config = _examples({"narrative": "Completed every required module of the course."})

    narrative: str


class EmbeddedProfileOut(BaseModel):
    """The school's Profile as another document embeds it (an Achievement's `creator`): the
    IssuerProfileOut without an `@context` of its own (the embedding document's applies)."""

    model_config = _examples(_PROFILE)

    id: str = Field(description="The school's did:web, the credentials' issuer.id and iss.")
    type: list[str]
    name: str
    url: str = Field(description="The issuer profile's address.")


class AchievementOut(BaseModel):
    """The Open Badges 3.0 Achievement of completing a course (what a credential's
    `credentialSubject.achievement` embeds), with the issuer as its creator."""

    # Made from the document (model_validate: its "@context" key) and written with that key.
    model_config = ConfigDict(serialize_by_alias=True, json_schema_extra=_extra({
        "@context": _CONTEXT, "id": f"{_ISSUER}/achievements/course-42",
        "type": ["Achievement"], "achievementType": "Course",
        "name": "Introduction to Statistics",
        "description": "Completed the course Introduction to Statistics at Northfield "
                       "College.",
        "criteria": {"narrative": "Completed every required module of the course."},
        "creator": _PROFILE}))

    context: list[str] = Field(alias="@context")
    id: str = Field(description="This document's own address.")
    type: list[str]
    achievementType: str  # the Open Badges property name
    name: str
    description: str
    criteria: CriteriaOut
    creator: EmbeddedProfileOut
