"""The shapes of the plugin's own routes (the school's LTI keys and addresses). Each part
keeps its request and answer models in its own ``schemas.py``; names are prefixed (``Lti``,
``LtiTool``...) because a generated client has one namespace for every plugin's schemas."""

from __future__ import annotations

from pydantic import BaseModel, Field

# The document's examples: the school "oak", whose API is at https://learn.example.org; its
# LTI URLs are under https://learn.example.org/lti/schools/oak (issuer, JWKS, tool URLs).
SCHOOL_URL = "https://learn.example.org/lti/schools/oak"
_KEY_N = (  # the modulus of a real 2048-bit RSA key (base64url, no padding)
    "u6jzgenDhkMndgAIDYG5YeJAy-PcyouSNC01mhokNVTk4dZ0XCyBhhzX40M6_jscx3ARylv4kV76oeCr"
    "dTAF4iNIW8wY7hsSD0cybbfATIwh07avxJEq_zpx5rfWXLIVJ11vH9HDkN4hneJ4QXYaBJB_AZkbKF6d"
    "s5jTJL6NVsiLApVt85s_wJkqqWk24bYxjbLFFI7Xcc-Brxa8nlcAD7Vdon2oOY12RPQzTkrFYPCEc1CB"
    "q5YjaHbKl8b9Pe3Z31uRIyoCGyp2J0_JJovyRmdZk_eeTLb_vgDQDHkRrAdS5vZyh5IbAIyFNzNCmuBO"
    "dvVd_TfcLmfyroVeR3FKcw")
# Whole examples of the two address sets, for the models that nest them.
EXAMPLE_PLATFORM_URLS: dict[str, str] = {
    "issuer": SCHOOL_URL, "jwks_url": f"{SCHOOL_URL}/jwks",
    "authorization_url": f"{SCHOOL_URL}/platform/auth",
    "token_url": f"{SCHOOL_URL}/platform/token",
    "deep_link_return_url": f"{SCHOOL_URL}/platform/deep-links"}
EXAMPLE_TOOL_URLS: dict[str, str] = {
    "login_url": f"{SCHOOL_URL}/tool/login", "launch_url": f"{SCHOOL_URL}/tool/launch",
    "deep_linking_url": f"{SCHOOL_URL}/tool/deep-link", "jwks_url": f"{SCHOOL_URL}/jwks"}


class LtiJwk(BaseModel):
    """One public RSA key of the school's (RFC 7517)."""

    kty: str = Field(examples=["RSA"])
    kid: str = Field(examples=["oak-lti-ea424eda863a"])
    alg: str = Field(examples=["RS256"])
    use: str = Field(examples=["sig"])
    n: str = Field(examples=[_KEY_N])
    e: str = Field(examples=["AQAB"])


class LtiJwks(BaseModel):
    """The school's LTI keys: they sign its id_tokens (as platform), its client assertions
    and Deep Linking responses (as tool)."""

    keys: list[LtiJwk]


class LtiPlatformUrls(BaseModel):
    """What a tool's administrator enters for this school (learnplat as platform)."""

    issuer: str = Field(examples=[SCHOOL_URL],
                        description="The platform's issuer (iss of every id_token).")
    jwks_url: str = Field(examples=[f"{SCHOOL_URL}/jwks"],
                          description="The platform's public keys (JWKS).")
    authorization_url: str = Field(
        examples=[f"{SCHOOL_URL}/platform/auth"],
        description="The OIDC authorization endpoint (the tool's login redirects here).")
    token_url: str = Field(
        examples=[f"{SCHOOL_URL}/platform/token"],
        description="The OAuth 2 token endpoint for LTI Advantage services (client "
                    "credentials with a signed JWT assertion).")
    deep_link_return_url: str = Field(
        examples=[f"{SCHOOL_URL}/platform/deep-links"],
        description="Where the tool posts an instructor's Deep Linking choices.")


class LtiToolUrls(BaseModel):
    """What a platform's (Canvas, Moodle...) administrator enters to register this school as
    a tool (learnplat as tool)."""

    login_url: str = Field(examples=[f"{SCHOOL_URL}/tool/login"],
                           description="OIDC login initiation URL.")
    launch_url: str = Field(examples=[f"{SCHOOL_URL}/tool/launch"],
                            description="Redirect (launch) URL and target link URI.")
    deep_linking_url: str = Field(examples=[f"{SCHOOL_URL}/tool/deep-link"],
                                  description="Deep Linking request URL.")
    jwks_url: str = Field(examples=[f"{SCHOOL_URL}/jwks"],
                          description="The tool's public keys (JWKS).")


class LtiConfigOut(BaseModel):
    """The school's LTI addresses in both roles."""

    platform: LtiPlatformUrls
    tool: LtiToolUrls
