"""The identity plugin's part of a school's settings: ``[settings.oauth]`` in
tenants/<slug>.toml (single sign-on, read by oauth.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AnyUrl, BaseModel, ConfigDict, Field, StringConstraints

from .oauth import PROVIDER_NAME, ProviderConfig

# The name of a provider in /auth/oauth/<name>/...: what oauth.py accepts (others: 404).
ProviderName = Annotated[str, StringConstraints(pattern=PROVIDER_NAME.pattern)]


class OAuthTenantSettings(BaseModel):
    """A school's ``[settings.oauth]``: its sign-in providers and where a browser lands."""

    model_config = ConfigDict(extra="forbid")

    providers: dict[ProviderName, ProviderConfig] | None = Field(
        None, description="Per provider name (lower case, digits, -): {backend = oidc, google "
                          "or github, key, secret, issuer (an https URL, oidc only), scope "
                          "(a list)}.")
    redirect_url: AnyUrl | None = Field(
        None, description="Where a finished sign-in sends the browser, with a one-time "
                          "?code= to exchange for tokens (a web or app URL). None: the "
                          "callback answers the tokens itself.")
