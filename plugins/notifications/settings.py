"""The [notifications] settings section (LEARNPLAT_NOTIFICATIONS_<KEY> in the environment).

Every email key can be overridden per tenant in the tenant's settings, under
``notifications``: ``{"smtp": {"host": ..., "port": ..., "username": ..., "password": ...,
"from": ..., "starttls": ..., "ssl": ...}, "emails_per_minute": 60, "templates": {...},
"default_channels": {"kind": "email"}}`` (docs/notifications.md).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .templates import KINDS

Channel = Literal["in_app", "email", "digest", "off"]
# A notification kind (course_approved, announcement, ...): a key of a school's templates and
# default_channels; a misspelt one would silently never apply.
Kind = Literal[KINDS]  # type: ignore[valid-type]  # computed kinds: pydantic checks, mypy cannot


class NotificationsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    smtp_host: str = Field("", description="SMTP server; empty = no email (in-app only) "
                                           "unless the tenant configures its own.")
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_from: str = Field("learnplat@localhost", description="From address of every email.")
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_timeout: float = Field(10, gt=0)
    emails_per_minute: int = Field(
        60, ge=1, description="Per tenant: at most this many emails leave per minute; the "
                              "rest wait in the outbox (a broadcast cannot flood the server).")
    recovery_seconds: float = Field(
        120, gt=0, description="An email a sender took and neither sent nor failed within "
                               "this long, or a sender or broadcast fan-out that made no "
                               "progress for this long while work waits, is taken to have "
                               "died with its worker and is resumed by the recovery sweep "
                               "(every minute and at each worker start). Keep it above "
                               "smtp_timeout and above 61 s (the rate limit's wait).")
    default_channel: Channel = Field(
        "in_app", description="Channel of a kind the user has no preference for.")
    digest_hour: int = Field(7, ge=0, le=23, description="UTC hour the daily digests go out.")
    poll_seconds: float = Field(
        0.5, gt=0, le=10, description="Without Redis: how often each web process looks for "
                                      "new notifications of its connected WebSocket users.")
    socket_queue: int = Field(
        100, ge=1, description="Messages a WebSocket may have waiting; past this, a client "
                               "whose oldest waits over socket_max_lag_seconds (or that has ten "
                               "times this many plus 1000 waiting) is disconnected (1013).")
    socket_max_lag_seconds: float = Field(
        5, ge=0, description="How long a slow WebSocket client may lag before it is dropped.")
    revalidate_seconds: float = Field(
        60, gt=0, description="How often an open WebSocket's token is checked again (a "
                              "logged-out or deactivated user is disconnected).")


class SmtpTenantSettings(BaseModel):
    """Tenant setting ``notifications.smtp``: the school's own mail server, key by key over
    the [notifications] smtp_* settings."""

    model_config = ConfigDict(extra="forbid", strict=True)

    host: str | None = Field(None, min_length=1, description="SMTP server host name.")
    port: int | None = Field(None, ge=1, le=65535, description="SMTP server port.")
    username: str | None = Field(None, description="Login name; empty: no login.")
    password: str | None = Field(None, description="Login password.")
    sender: str | None = Field(None, alias="from", min_length=3,
                               description="From address of the school's emails.")
    starttls: bool | None = Field(None, description="Upgrade the connection with STARTTLS.")
    ssl: bool | None = Field(None, description="Connect with TLS from the start (SMTPS).")


class TemplateTenantSettings(BaseModel):
    """Tenant setting ``notifications.templates.<kind>``: the school's wording of a kind of
    notification ($name placeholders are filled from the event)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    title: str | None = Field(None, max_length=200, description="Title (and email subject).")
    body: str | None = Field(None, max_length=5000, description="Body text.")


class NotificationsTenantSettings(BaseModel):
    """A school's ``[settings.notifications]`` (tenants/<slug>.toml): its own mail server,
    email rate, wording and default channels, over the [notifications] section's."""

    model_config = ConfigDict(extra="forbid", strict=True)

    smtp: SmtpTenantSettings | None = Field(
        None, description="The school's own SMTP server (host, port, username, password, "
                          "from, starttls, ssl).")
    emails_per_minute: int | None = Field(
        None, ge=1, description="At most this many of the school's emails leave per minute.")
    templates: dict[Kind, TemplateTenantSettings] | None = Field(
        None, description="Per notification kind: {title, body} replacing the default "
                          "wording.")
    default_channel: Channel | None = Field(
        None, description="Channel of a kind a user has no preference for: in_app, email, "
                          "digest or off.")
    default_channels: dict[Kind, Channel] | None = Field(
        None, description="Per notification kind: its default channel (over "
                          "default_channel).")
    digest_hour: int | None = Field(
        None, ge=0, le=23, description="UTC hour the school's daily digests go out.")
