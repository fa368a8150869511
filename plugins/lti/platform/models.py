"""Tables of learnplat as platform: which tool an ``lti`` module launches, the launches in
flight (login_hint, single use, so a launch begun on one server process completes on
another) and the nonces of Deep Linking responses already accepted."""

from __future__ import annotations

import peewee

from learnplat.plugin import JSONField, TenantModel, UTCDateTimeField, utcnow


class LtiPlatformModuleLink(TenantModel):
    """An ``lti`` module of a course and the tool it launches."""

    course_id = peewee.IntegerField()
    module_id = peewee.IntegerField()
    tool_id = peewee.IntegerField(index=True)
    target_link_uri = peewee.CharField(max_length=2000, default="")  # "": the tool's launch_url
    custom = JSONField(default=dict)  # the module's custom parameters (over the tool's)
    max_score = peewee.FloatField(null=True)  # the line item's scoreMaximum (AGS), if any
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "lti_module_link"
        indexes = ((("tenant", "module_id"), True), (("tenant", "course_id"), False))


class LtiPlatformLaunch(TenantModel):
    """A launch a signed-in user asked for: ``launch_id`` is the login_hint and
    ``message_hint`` the lti_message_hint sent to the tool; consumed once by the
    authorization endpoint (``used_at``) within LAUNCH_SECONDS. A Deep Linking request keeps
    ``dl_data`` (the signed value the tool echoes) until the tool's response (``returned_at``)."""

    launch_id = peewee.CharField(max_length=64, unique=True)
    message_hint = peewee.CharField(max_length=64)
    user_id = peewee.IntegerField()
    tool_id = peewee.IntegerField(index=True)
    course_id = peewee.IntegerField()
    module_id = peewee.IntegerField(null=True)  # None: a Deep Linking request
    deep_linking = peewee.BooleanField(default=False)
    target_link_uri = peewee.CharField(max_length=2000)
    dl_data = peewee.TextField(default="")
    created_at = UTCDateTimeField(default=utcnow)
    expires_at = UTCDateTimeField()
    used_at = UTCDateTimeField(null=True)
    returned_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "lti_launch"
        indexes = ((("tenant", "expires_at"), False),)


class LtiPlatformNonce(TenantModel):
    """A nonce of a tool's message (Deep Linking response) already accepted: a replay
    is refused. Kept a day (the messages live minutes)."""

    tool_id = peewee.IntegerField()
    nonce = peewee.CharField(max_length=255)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "lti_platform_nonce"
        indexes = ((("tool_id", "nonce"), True),)


MODELS = (LtiPlatformModuleLink, LtiPlatformLaunch, LtiPlatformNonce)
