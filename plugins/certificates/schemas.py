"""Request and response schemas of the certificates routes (validation and OpenAPI at once)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from learnplat.plugin import PageQuery, Schema

from .api import CertificateInfo, CertificateStatus

HEX_COLOR = r"^#[0-9a-fA-F]{6}$"
VerifiedStatus = Literal["issued", "revoked"]  # what verification shows (pending is a 404)
JobStatus = Literal["queued", "running", "done"]


# The CertificateInfo with its download links (every URL absolute: resources.certificate_out).
# No docstring: it would become the OpenAPI component's description.
class CertificateOut(CertificateInfo):
    pdf_url: str | None = Field(description="Works without a header until it expires; null "
                                            "while pending.")
    credential_url: str | None = Field(description="The Open Badges 3.0 credential "
                                                   "(VC-JWT); null while pending.")


class AdminCertificateOut(CertificateOut):
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
    id: int
    course_id: int
    status: JobStatus
    total: int
    done: int
    created_at: dt.datetime
    finished_at: dt.datetime | None


class TemplateIn(Schema):
    orientation: Literal["landscape", "portrait"] | None = None
    heading: str | None = Field(None, min_length=1, max_length=120)
    statement: str | None = Field(None, min_length=1, max_length=200)
    signature_label: str | None = Field(None, min_length=1, max_length=120)
    primary_color: str | None = Field(None, pattern=HEX_COLOR)
    accent_color: str | None = Field(None, pattern=HEX_COLOR)
    text_color: str | None = Field(None, pattern=HEX_COLOR)


class TemplateOut(BaseModel):
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
    keys: list[dict[str, Any]]


class IssuerProfileOut(BaseModel):
    """The Open Badges 3.0 Profile of a school (what a credential's `issuer` embeds)."""

    # Made from the document (model_validate: its "@context" key) and written with that key.
    model_config = ConfigDict(serialize_by_alias=True)

    context: list[str] = Field(alias="@context")
    id: str = Field(description="The school's did:web, the credentials' issuer.id and iss.")
    type: list[str]
    name: str
    url: str = Field(description="This document's own address.")


class CriteriaOut(BaseModel):
    narrative: str


class EmbeddedProfileOut(BaseModel):
    """The school's Profile as another document embeds it (an Achievement's `creator`): the
    IssuerProfileOut without an `@context` of its own (the embedding document's applies)."""

    id: str = Field(description="The school's did:web, the credentials' issuer.id and iss.")
    type: list[str]
    name: str
    url: str = Field(description="The issuer profile's address.")


class AchievementOut(BaseModel):
    """The Open Badges 3.0 Achievement of completing a course (what a credential's
    `credentialSubject.achievement` embeds), with the issuer as its creator."""

    # Made from the document (model_validate: its "@context" key) and written with that key.
    model_config = ConfigDict(serialize_by_alias=True)

    context: list[str] = Field(alias="@context")
    id: str = Field(description="This document's own address.")
    type: list[str]
    achievementType: str  # the Open Badges property name
    name: str
    description: str
    criteria: CriteriaOut
    creator: EmbeddedProfileOut
