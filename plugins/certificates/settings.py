"""The [certificates] settings section (LEARNPLAT_CERTIFICATES_<KEY> in the environment)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .credential import did_web_problem


class CertificatesSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    public_base_url: str = Field(
        "",
        description="Where the API is reachable from outside for certificates: verification "
                    "URLs (printed as QR codes), the issuers' did:web identifiers and the "
                    "status list URLs are made from it. Empty: app.public_url, or, when that "
                    "is empty too, http://localhost:PORT for a loopback bind (any other bind: "
                    "nothing is issued until one is set). A tenant overrides it with its "
                    "setting certificates.base_url.")
    font_path: str = Field(
        "", description="A TrueType font with the scripts learners' names use. Empty: DejaVu "
                        "Sans from the system (Debian: fonts-dejavu-core), else reportlab's "
                        "Latin-only Vera (a warning is logged).")
    download_ttl_seconds: int = Field(
        3600, ge=60, le=7 * 86_400,
        description="How long a signed download URL of a PDF or credential works.")
    pending_retry_seconds: int = Field(
        60, ge=1, description="A certificate still pending after this long is queued again "
                              "when its learner asks for it (the first task may have died).")

    @field_validator("public_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        if not value:
            return value
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be empty or an http:// or https:// URL")
        problem = did_web_problem(value)
        if problem:  # found at start-up rather than at the first certificate
            raise ValueError(problem)
        return value.rstrip("/")


# A colour of a certificate: #rrggbb (as the template API takes it).
HEX_COLOR = r"^#[0-9a-fA-F]{6}$"


class TemplateTenantSettings(BaseModel):
    """Tenant setting ``certificates.template``: the school's certificate design (what an
    admin saves through PUT /certificates/template overrides it key by key)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    orientation: Literal["landscape", "portrait"] | None = Field(
        None, description="Page orientation.")
    heading: str | None = Field(None, min_length=1, max_length=120,
                                description="The heading above the learner's name.")
    statement: str | None = Field(None, min_length=1, max_length=200,
                                  description="The sentence between name and course title.")
    signature_label: str | None = Field(None, min_length=1, max_length=120,
                                        description="The label under the signature.")
    primary_color: str | None = Field(None, pattern=HEX_COLOR, description="#rrggbb.")
    accent_color: str | None = Field(None, pattern=HEX_COLOR, description="#rrggbb.")
    text_color: str | None = Field(None, pattern=HEX_COLOR, description="#rrggbb.")


class CertificatesTenantSettings(BaseModel):
    """A school's ``[settings.certificates]`` (tenants/<slug>.toml)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    base_url: str | None = Field(
        None, description="The base of the school's certificate URLs (verification, did:web "
                          "issuer, status lists), over certificates.public_base_url: an "
                          "http:// or https:// URL.")
    template: TemplateTenantSettings | None = Field(
        None, description="The certificate design: orientation, heading, statement, "
                          "signature_label, primary_color, accent_color, text_color.")

    @field_validator("base_url")
    @classmethod
    def _a_base_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        problem = did_web_problem(value)
        if problem:
            raise ValueError(problem)
        return value
