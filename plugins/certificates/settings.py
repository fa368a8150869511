"""The [certificates] settings section (LEARNPLAT_CERTIFICATES_<KEY> in the environment)."""

from __future__ import annotations

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
