"""The [notifications] settings section (LEARNPLAT_NOTIFICATIONS_<KEY> in the environment).

Every email key can be overridden per tenant in the tenant's settings, under
``notifications``: ``{"smtp": {"host": ..., "port": ..., "username": ..., "password": ...,
"from": ..., "starttls": ..., "ssl": ...}, "emails_per_minute": 60, "templates": {...},
"default_channels": {"kind": "email"}}`` (docs/notifications.md).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Channel = Literal["in_app", "email", "digest", "off"]


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
