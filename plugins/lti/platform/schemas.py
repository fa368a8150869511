"""Request and answer shapes of learnplat as platform: tool registrations (/lti/tools),
lti modules, launches, and the forms a browser brings from a tool (the OIDC authorization
request, the Deep Linking response)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from learnplat.plugin import OMIT, Schema, Variant, Variants

from ..schemas import EXAMPLE_PLATFORM_URLS, LtiPlatformUrls

URL = r"^[Hh][Tt][Tt][Pp][Ss]?://"
Url = Annotated[str, Field(min_length=1, max_length=2000, pattern=URL)]
DeploymentId = Annotated[str, Field(min_length=1, max_length=255)]
CustomKey = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")]
# The LTI Advantage scopes a registration may allow (claims.ADVANTAGE_SCOPES), as an enum.
Scope = Literal[
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"]
# Names outside the pattern are refused: the document says so (additionalProperties).
Custom = Annotated[dict[CustomKey, Annotated[str, Field(max_length=1000)]],
                   Field(json_schema_extra={"additionalProperties": False})]

_TOOL: dict[str, Any] = {
    "name": "Chem Lab Simulator", "description": "Virtual titrations",
    "login_url": "https://tool.example.com/lti/login",
    "launch_url": "https://tool.example.com/lti/launch",
    "redirect_uris": ["https://tool.example.com/lti/launch"],
    "deep_linking_url": "https://tool.example.com/lti/deep-link",
    "jwks_url": "https://tool.example.com/.well-known/jwks.json",
    "scopes": ["https://purl.imsglobal.org/spec/lti-ags/scope/score"],
    "send_name": True, "send_email": False, "custom": {"user": "$User.id"}, "enabled": True}
# As registered in the school "oak" (tool 5, by admin 1003): learnplat made its client_id and
# deployment id. Module 9 of course 42 launches it.
_CLIENT_ID = "lp-3kTzrnSu_yW67d7yvRCXXEjosearwDEl"
_DEPLOYMENT_ID = "2e74c703bb611325"
_TOOL_OUT: dict[str, Any] = {
    "id": 5, **_TOOL, "client_id": _CLIENT_ID, "deployment_ids": [_DEPLOYMENT_ID],
    "public_jwk": None, "created_by": 1003, "created_at": "2026-09-01T08:00:00Z",
    "updated_at": "2026-09-01T08:00:00Z", "platform": EXAMPLE_PLATFORM_URLS}
_MODULE: dict[str, Any] = {
    "tool_id": 5, "target_link_uri": "https://tool.example.com/lti/launch?lab=titration-1",
    "custom": {"lab": "titration-1"}, "max_score": 20.0}
_LOGIN_QUERY = urlencode({
    "iss": EXAMPLE_PLATFORM_URLS["issuer"],
    "login_hint": "hrRC8kH3cFtWewCBCcrT_fpXUvh54PvuHZWPxNdCAMo",
    "target_link_uri": _MODULE["target_link_uri"],
    "lti_message_hint": "2BsnIhNns6_Lk7yFH0yiEToNOS0BUNDARLaGFBjA1Cc",
    "client_id": _CLIENT_ID, "lti_deployment_id": _DEPLOYMENT_ID})


class _Checks(Schema):
    @field_validator("scopes", "deployment_ids", "redirect_uris", check_fields=False)
    @classmethod
    def _unique(cls, value: list[str] | None) -> list[str] | None:
        return list(dict.fromkeys(value)) if value is not None else None


class LtiPlatformToolIn(_Checks):
    """An external tool the school's courses may launch: what its vendor gives the admin."""

    model_config = ConfigDict(json_schema_extra={"examples": [_TOOL]})

    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=5000)
    deployment_ids: list[DeploymentId] | None = Field(
        None, min_length=1, max_length=100,
        description="The deployment ids (the first is sent in launches); omitted: one is made.")
    login_url: Url = Field(description="The tool's OIDC login initiation URL.")
    launch_url: Url = Field(description="The tool's launch URL (target_link_uri by default).")
    redirect_uris: list[Url] | None = Field(
        None, min_length=1, max_length=20,
        description="Where id_tokens may be posted; omitted: [launch_url] (and "
                    "deep_linking_url).")
    deep_linking_url: str = Field("", max_length=2000, pattern=r"^$|" + URL,
                                  description="Deep Linking request URL; empty: launch_url.")
    jwks_url: str = Field("", max_length=2000, pattern=r"^$|" + URL,
                          description="The tool's public keys (one of jwks_url, public_jwk).")
    public_jwk: dict[str, Any] | None = Field(None, description="One RSA public key (JWK).")
    scopes: list[Scope] = Field(default_factory=list, max_length=10,
                                description="LTI Advantage scopes the tool may ask for.")
    send_name: bool = True
    send_email: bool = True
    custom: Custom = Field(default_factory=dict, max_length=50,
                           description="Custom parameters of every launch ($ variables "
                                       "substituted).")
    enabled: bool = True

    # Exactly one way to give the tool's keys: a typed class per shape in generated clients.
    documented_as = Variants(
        Variant("LtiPlatformToolKeysetIn", "A tool whose keys are at its JWKS URL.",
                jwks_url=(str, Field(min_length=1, max_length=2000, pattern=URL)),
                public_jwk=OMIT),
        Variant("LtiPlatformToolKeyIn", "A tool with one public key given by hand.",
                jwks_url=OMIT, public_jwk=(dict[str, Any], ...)),
        keyword="oneOf", discriminator=None)

    @model_validator(mode="after")
    def _keys(self) -> LtiPlatformToolIn:
        if bool(self.jwks_url) == bool(self.public_jwk):
            raise ValueError("give one of jwks_url or public_jwk: the tool's keys check what "
                             "it signs")
        return self


class LtiPlatformToolPatch(_Checks):
    omit_not_null = ("name", "description", "deployment_ids", "login_url", "launch_url",
                     "redirect_uris", "deep_linking_url", "jwks_url", "scopes", "send_name",
                     "send_email", "custom", "enabled")

    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=5000)
    deployment_ids: list[DeploymentId] | None = Field(None, min_length=1, max_length=100)
    login_url: Url | None = None
    launch_url: Url | None = None
    redirect_uris: list[Url] | None = Field(None, min_length=1, max_length=20)
    deep_linking_url: str | None = Field(None, max_length=2000, pattern=r"^$|" + URL)
    jwks_url: str | None = Field(None, max_length=2000, pattern=r"^$|" + URL)
    public_jwk: dict[str, Any] | None = None
    scopes: list[Scope] | None = Field(None, max_length=10)
    send_name: bool | None = None
    send_email: bool | None = None
    custom: Custom | None = Field(None, max_length=50)
    enabled: bool | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any, info: Any) -> Any:
        # public_jwk may be cleared (null) when jwks_url takes over; the others only left out.
        if value is None and info.field_name != "public_jwk":
            raise ValueError("may be left out, not null")
        return value


class LtiPlatformToolOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_TOOL_OUT]})

    id: int
    name: str
    description: str
    client_id: str = Field(description="Made by learnplat: enter it in the tool.")
    deployment_ids: list[str]
    login_url: str
    launch_url: str
    redirect_uris: list[str]
    deep_linking_url: str
    jwks_url: str
    public_jwk: dict[str, Any] | None
    scopes: list[str]
    send_name: bool
    send_email: bool
    custom: dict[str, str]
    enabled: bool
    created_by: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    platform: LtiPlatformUrls = Field(description="What to enter in the tool.")


class LtiPlatformToolPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"items": [_TOOL_OUT], "next_cursor": None}]})

    items: list[LtiPlatformToolOut]
    next_cursor: str | None = None


class LtiPlatformModuleIn(Schema):
    """Which tool an lti module launches."""

    model_config = ConfigDict(json_schema_extra={"examples": [_MODULE]})

    tool_id: int = Field(ge=1, le=2**63 - 1)
    target_link_uri: str = Field("", max_length=2000, pattern=r"^$|" + URL,
                                 description="Empty: the tool's launch_url.")
    custom: Custom = Field(default_factory=dict, max_length=50)
    max_score: float | None = Field(None, gt=0, le=1_000_000,
                                    description="The line item's scoreMaximum (AGS).")


class LtiPlatformModuleOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"course_id": 42, "module_id": 9, "tool_name": _TOOL["name"], **_MODULE}]})

    course_id: int
    module_id: int
    tool_id: int
    tool_name: str
    target_link_uri: str
    custom: dict[str, str] | None = Field(
        description="The module's custom parameters; null for learners (they may hold "
                    "values meant for the tool only).")
    max_score: float | None


class LtiPlatformLaunchIn(Schema):
    """A launch of an lti module, or (course_id + deep_linking) an instructor's Deep
    Linking request to a tool."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"module_id": 9}, {"course_id": 42, "tool_id": 5, "deep_linking": True}]})

    module_id: int | None = Field(None, ge=1, le=2**63 - 1)
    course_id: int | None = Field(None, ge=1, le=2**63 - 1)
    tool_id: int | None = Field(None, ge=1, le=2**63 - 1,
                                description="The tool to pick content from (Deep Linking); "
                                            "may be left out when the school has one enabled "
                                            "tool.")
    deep_linking: bool = False

    documented_as = Variants(
        Variant("LtiPlatformModuleLaunchIn", "Launch an lti module (a learner, its owner, an "
                                             "admin).",
                module_id=(int, Field(ge=1, le=2**63 - 1)), course_id=OMIT, tool_id=OMIT,
                deep_linking=(Literal[False], False)),
        Variant("LtiPlatformDeepLinkingLaunchIn", "An instructor picks content in a tool for "
                                                  "the course (Deep Linking).",
                module_id=OMIT, course_id=(int, Field(ge=1, le=2**63 - 1)),
                deep_linking=(Literal[True], ...)),
        keyword="oneOf", discriminator=None)

    @model_validator(mode="after")
    def _shape(self) -> LtiPlatformLaunchIn:
        if self.deep_linking:
            if not self.course_id or self.module_id is not None:
                raise ValueError("a Deep Linking request names course_id (and tool_id when "
                                 "the school has several tools), not module_id")
        elif not self.module_id or self.course_id is not None or self.tool_id is not None:
            raise ValueError("give module_id alone (or course_id, tool_id and "
                             "deep_linking: true)")
        return self


class LtiPlatformLaunchOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"launch_url": f"{_TOOL['login_url']}?{_LOGIN_QUERY}",
         "expires_at": "2026-09-14T09:35:00Z"}]})

    launch_url: str = Field(description="Open it in the browser (an iframe or a window): the "
                                        "tool's OIDC login initiation, valid 5 minutes, once.")
    expires_at: dt.datetime


class LtiPlatformAuthIn(Schema):
    """The OIDC authentication request a tool sends the browser with (query or form)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    scope: str = Field("", max_length=2000)
    response_type: str = Field("", max_length=100)
    response_mode: str = Field("", max_length=100)
    prompt: str = Field("", max_length=100)
    client_id: str = Field("", max_length=200)
    redirect_uri: str = Field("", max_length=2000)
    login_hint: str = Field("", max_length=200)
    lti_message_hint: str = Field("", max_length=200)
    nonce: str = Field("", max_length=255)
    state: str = Field("", max_length=2000)


class LtiPlatformDeepLinkIn(Schema):
    """The tool's Deep Linking response, posted by the browser."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    JWT: str = Field("", max_length=100_000)
