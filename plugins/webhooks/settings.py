"""A school's ``[settings.webhooks]`` (tenants/<slug>.toml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_MAX_ENDPOINTS = 20


class WebhooksTenantSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    max_endpoints: int | None = Field(
        None, ge=1, le=1000,
        description=f"How many webhook endpoints the school may have (default "
                    f"{DEFAULT_MAX_ENDPOINTS}); creating one more is a 409 "
                    "`too_many_endpoints`.")
