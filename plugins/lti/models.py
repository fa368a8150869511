"""The tables both roles share: the school's LTI keys, tool registrations (learnplat as
platform), platform registrations and the accounts and grade targets they bring (learnplat as
tool). Each part of the plugin keeps its other tables in its own ``models.py``
(platform/, advantage/, tool/, passback/)."""

from __future__ import annotations

import peewee

from learnplat.plugin import JSONField, TenantModel, UTCDateTimeField, utcnow


class LtiKey(TenantModel):
    """The school's RSA keys (RsaKeyRing; private halves encrypted under app.secret_key):
    they sign the platform's id_tokens and the tool's client assertions and Deep Linking
    responses, and are published at ``/lti/schools/{school}/jwks``."""

    kid = peewee.CharField(max_length=80, unique=True)
    private_key = peewee.TextField()
    public_jwk = JSONField()
    created_at = UTCDateTimeField(default=utcnow)
    retired_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "lti_key"


class ToolRegistration(TenantModel):
    """An external tool the school's courses may launch (learnplat as platform)."""

    name = peewee.CharField(max_length=200)
    description = peewee.TextField(default="")
    # Made by learnplat when the tool is registered; the tool's own id of this platform.
    client_id = peewee.CharField(max_length=200)
    deployment_ids = JSONField(default=list)  # at least one; the first is used for launches
    login_url = peewee.CharField(max_length=2000)  # the tool's OIDC login initiation URL
    launch_url = peewee.CharField(max_length=2000)  # target_link_uri by default
    redirect_uris = JSONField(default=list)  # where the id_token may be posted
    deep_linking_url = peewee.CharField(max_length=2000, default="")  # "" : launch_url
    jwks_url = peewee.CharField(max_length=2000, default="")  # the tool's keys, or:
    public_jwk = JSONField(null=True)  # one key given by hand
    # LTI Advantage scopes the tool may ask for (AGS line items/scores/results, NRPS).
    scopes = JSONField(default=list)
    send_name = peewee.BooleanField(default=True)  # privacy: name/given/family claims
    send_email = peewee.BooleanField(default=True)  # privacy: email claim
    custom = JSONField(default=dict)  # custom parameters for every launch (substituted)
    enabled = peewee.BooleanField(default=True)
    created_by = peewee.IntegerField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "lti_tool"
        indexes = ((("tenant", "client_id"), True),)


class PlatformRegistration(TenantModel):
    """An LMS (Canvas, Moodle, ...) that launches the school's courses (learnplat as tool)."""

    name = peewee.CharField(max_length=200)
    issuer = peewee.CharField(max_length=2000)
    client_id = peewee.CharField(max_length=200)  # given to learnplat by the platform
    deployment_ids = JSONField(default=list)
    auth_login_url = peewee.CharField(max_length=2000)  # the platform's OIDC auth endpoint
    token_url = peewee.CharField(max_length=2000)  # its OAuth 2 token endpoint (AGS)
    jwks_url = peewee.CharField(max_length=2000)
    # Where a launched learner lands in the school's front end (a one-time ``code`` is
    # added, exchanged at POST /auth/oauth/exchange); "" : the school's oauth.redirect_url.
    landing_url = peewee.CharField(max_length=2000, default="")
    enabled = peewee.BooleanField(default=True)
    created_by = peewee.IntegerField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "lti_platform"
        indexes = ((("tenant", "issuer", "client_id"), True),)


class PlatformAccount(TenantModel):
    """A learnplat user linked to a platform's user: (platform, sub), never by e-mail."""

    platform = peewee.ForeignKeyField(PlatformRegistration, on_delete="CASCADE",
                                      lazy_load=False)
    sub = peewee.CharField(max_length=255)
    user_id = peewee.IntegerField(index=True)
    created_at = UTCDateTimeField(default=utcnow)
    last_launch_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "lti_platform_account"
        indexes = ((("platform", "sub"), True),)


class GradeTarget(TenantModel):
    """Where a learner's grade for a learnplat course (or module) goes back to: the AGS
    endpoint claim of their last launch from a platform's resource link."""

    platform = peewee.ForeignKeyField(PlatformRegistration, on_delete="CASCADE",
                                      lazy_load=False)
    user_id = peewee.IntegerField()
    sub = peewee.CharField(max_length=255)
    course_id = peewee.IntegerField()
    module_id = peewee.IntegerField(null=True)  # None: the whole course
    resource_link_id = peewee.CharField(max_length=255)
    deployment_id = peewee.CharField(max_length=255)
    lineitem_url = peewee.CharField(max_length=2000, default="")
    lineitems_url = peewee.CharField(max_length=2000, default="")
    scopes = JSONField(default=list)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "lti_grade_target"
        indexes = ((("platform", "resource_link_id", "user_id"), True),
                   (("course_id", "user_id"), False))


MODELS = (LtiKey, ToolRegistration, PlatformRegistration, PlatformAccount, GradeTarget)
