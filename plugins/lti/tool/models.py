"""Tables of learnplat as tool: the OIDC logins in flight (state and nonce, so that a launch
begun on one server process completes on another) and the Deep Linking requests an
instructor is answering in the content picker."""

from __future__ import annotations

import peewee

from learnplat.plugin import TenantModel, UTCDateTimeField, utcnow


class LtiToolLogin(TenantModel):
    """An OIDC login initiation: the `state` and `nonce` learnplat sent to the platform.
    Single use (``used_at``), valid for LOGIN_SECONDS; the launch checks both. Kept in the
    database rather than in a cookie: browsers drop the third-party cookies of a launch in an
    iframe."""

    state = peewee.CharField(max_length=64, unique=True)
    nonce = peewee.CharField(max_length=64)
    platform_id = peewee.IntegerField()
    target_link_uri = peewee.CharField(max_length=2000, default="")
    created_at = UTCDateTimeField(default=utcnow)
    expires_at = UTCDateTimeField()
    used_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "lti_tool_login"
        indexes = ((("tenant", "nonce"), False), (("tenant", "expires_at"), False))


class LtiToolDeepLink(TenantModel):
    """A Deep Linking request being answered: the picker's form names it by `ticket`
    (single use, valid for PICK_SECONDS), so the answer goes back to the platform, deployment
    and return URL that asked, with the platform's opaque `data` echoed."""

    ticket = peewee.CharField(max_length=64, unique=True)
    platform_id = peewee.IntegerField()
    deployment_id = peewee.CharField(max_length=255)
    user_id = peewee.IntegerField(null=True)  # the instructor's linked account
    return_url = peewee.CharField(max_length=2000)
    data = peewee.TextField(null=True)
    accept_multiple = peewee.BooleanField(default=False)
    created_at = UTCDateTimeField(default=utcnow)
    expires_at = UTCDateTimeField()
    used_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "lti_tool_deep_link"


MODELS = (LtiToolLogin, LtiToolDeepLink)
