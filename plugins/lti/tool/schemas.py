"""Request and answer shapes of learnplat as tool: platform registrations (/lti/platforms)
and the forms a platform or the content picker posts (login, launch, Deep Linking)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from learnplat.plugin import Schema

from ..schemas import EXAMPLE_TOOL_URLS, LtiToolUrls

URL = r"^[Hh][Tt][Tt][Pp][Ss]?://"
Url = Annotated[str, Field(min_length=1, max_length=2000, pattern=URL)]
DeploymentId = Annotated[str, Field(min_length=1, max_length=255)]

_PLATFORM: dict[str, Any] = {
    "name": "Oak County Canvas", "issuer": "https://lms.example.edu",
    "client_id": "10000000000042",
    "deployment_ids": ["42:8865aa05b4b79b64a91a86042e43af5ea8ae79eb"],
    "auth_login_url": "https://lms.example.edu/api/lti/authorize_redirect",
    "token_url": "https://lms.example.edu/login/oauth2/token",
    "jwks_url": "https://lms.example.edu/api/lti/security/jwks",
    "landing_url": "https://oak.example.org/lti-landing", "enabled": True}
_PLATFORM_OUT: dict[str, Any] = {
    "id": 3, **_PLATFORM, "created_by": 1003, "created_at": "2026-09-01T08:00:00Z",
    "updated_at": "2026-09-01T08:00:00Z", "tool": EXAMPLE_TOOL_URLS}


def _examples(*examples: Any) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class _Deployments(Schema):
    @field_validator("deployment_ids", check_fields=False)
    @classmethod
    def _unique(cls, value: list[str] | None) -> list[str] | None:
        return list(dict.fromkeys(value)) if value is not None else None


class LtiToolPlatformIn(_Deployments):
    """An LMS that launches the school's courses: what its administrator gives learnplat."""

    model_config = _examples(_PLATFORM)

    name: str = Field(min_length=1, max_length=200)
    issuer: str = Field(min_length=1, max_length=2000,
                        description="The platform's issuer (iss of its id_tokens).")
    client_id: str = Field(min_length=1, max_length=200,
                           description="The id the platform gave learnplat's registration.")
    deployment_ids: list[DeploymentId] = Field(
        min_length=1, max_length=100,
        description="The deployments allowed to launch (lti_deployment_id / deployment_id).")
    auth_login_url: Url = Field(description="The platform's OIDC authorization endpoint.")
    token_url: Url = Field(description="Its OAuth 2 token endpoint (grade passback).")
    jwks_url: Url = Field(description="Its public keys (JWKS): id_tokens are checked with them.")
    landing_url: str = Field(
        "", max_length=2000, pattern=r"^$|" + URL,
        description="Where a launched user lands in the school's front end, with a one-time "
                    "`code` (POST /auth/oauth/exchange) and `course_id`; empty: the school's "
                    "setting oauth.redirect_url.")
    enabled: bool = True


class LtiToolPlatformPatch(_Deployments):
    omit_not_null = ("name", "issuer", "client_id", "deployment_ids", "auth_login_url",
                     "token_url", "jwks_url", "landing_url", "enabled")

    name: str | None = Field(None, min_length=1, max_length=200)
    issuer: str | None = Field(None, min_length=1, max_length=2000)
    client_id: str | None = Field(None, min_length=1, max_length=200)
    deployment_ids: list[DeploymentId] | None = Field(None, min_length=1, max_length=100)
    auth_login_url: Url | None = None
    token_url: Url | None = None
    jwks_url: Url | None = None
    landing_url: str | None = Field(None, max_length=2000, pattern=r"^$|" + URL)
    enabled: bool | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be left out, not null")
        return value


class LtiToolPlatformOut(BaseModel):
    model_config = _examples(_PLATFORM_OUT)

    id: int
    name: str
    issuer: str
    client_id: str
    deployment_ids: list[str]
    auth_login_url: str
    token_url: str
    jwks_url: str
    landing_url: str
    enabled: bool
    created_by: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    tool: LtiToolUrls = Field(
        description="What to enter in the platform for learnplat: login, launch (redirect) "
                    "and Deep Linking URLs, learnplat's JWKS. A course is launched with "
                    "target_link_uri = launch_url + `?course=<id>` (`&module=<id>`), or custom "
                    "parameters `course_id`/`module_id`.")


class LtiToolPlatformPage(BaseModel):
    model_config = _examples({"items": [_PLATFORM_OUT], "next_cursor": None})

    items: list[LtiToolPlatformOut]
    next_cursor: str | None = None


class _PeerForm(Schema):
    # Platforms post or append parameters of their own (Canvas: lti_storage_target...):
    # ignored, not refused. Every field is optional so that a missing one is refused by the
    # responder as a launch problem naming it (a page), not as a bare 422.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class LtiToolLoginIn(_PeerForm):
    """OIDC third-party-initiated login (LTI 1.3 core §5.1.1), as query or form fields."""

    iss: str = Field("", max_length=2000)
    login_hint: str = Field("", max_length=2000)
    target_link_uri: str = Field("", max_length=2000)
    lti_message_hint: str = Field("", max_length=4000)
    client_id: str = Field("", max_length=200)
    lti_deployment_id: str = Field("", max_length=255)


class LtiToolLaunchIn(_PeerForm):
    """The platform's authentication response (form_post): the signed id_token and the
    state learnplat sent; or an OIDC error."""

    id_token: str = Field("", max_length=100_000)
    state: str = Field("", max_length=200)
    error: str = Field("", max_length=200)
    error_description: str = Field("", max_length=2000)


class LtiToolDeepLinkIn(_PeerForm):
    """The content picker's choice: the ticket of the request and the item picked
    (``course:<id>`` or ``module:<course id>:<module id>``; a form names a field once, so
    one item per answer)."""

    ticket: str = Field("", max_length=200)
    item: str = Field("", max_length=100)
