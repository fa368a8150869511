"""Tables of the LTI Advantage services learnplat offers tools: access tokens (hashed),
client assertion ids already used (replay), line items and the scores tools post (a history:
a score is never overwritten)."""

from __future__ import annotations

import peewee

from learnplat.plugin import JSONField, TenantModel, UTCDateTimeField, utcnow


class LtiScoreToken(TenantModel):
    """An access token the token endpoint issued a tool: only its SHA-256 is kept. Bound to
    the school (TenantModel), the tool and the scopes granted, until ``expires_at``."""

    token_hash = peewee.CharField(max_length=64, unique=True)
    tool_id = peewee.IntegerField(index=True)
    scopes = JSONField(default=list)
    created_at = UTCDateTimeField(default=utcnow)
    expires_at = UTCDateTimeField()

    class Meta:
        table_name = "lti_access_token"


class LtiScoreAssertion(TenantModel):
    """A client assertion's ``jti`` already accepted: a replay is refused (on every server
    process: it is in the database) until the assertion's ``exp``."""

    tool_id = peewee.IntegerField()
    jti = peewee.CharField(max_length=255)
    expires_at = UTCDateTimeField()

    class Meta:
        table_name = "lti_assertion_jti"
        indexes = ((("tool_id", "jti"), True),)


class LtiScoreLineItem(TenantModel):
    """An AGS line item (a gradebook column) of a course; the default one of an lti module
    has ``module_id`` set and ``resource_link_id`` = str(module id)."""

    course_id = peewee.IntegerField()
    module_id = peewee.IntegerField(null=True)  # resourceLinkId when set
    tool_id = peewee.IntegerField(null=True)  # the tool that made it (None: learnplat)
    label = peewee.CharField(max_length=255)
    score_maximum = peewee.FloatField()
    resource_id = peewee.CharField(max_length=255, default="")
    tag = peewee.CharField(max_length=255, default="")
    start_at = UTCDateTimeField(null=True)
    end_at = UTCDateTimeField(null=True)
    is_default = peewee.BooleanField(default=False)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "lti_lineitem"
        indexes = ((("tenant", "course_id"), False),)


class LtiScoreEntry(TenantModel):
    """One score a tool posted for a learner (all kept; the last by ``timestamp`` is the
    learner's result)."""

    lineitem = peewee.ForeignKeyField(LtiScoreLineItem, on_delete="CASCADE", lazy_load=False)
    course_id = peewee.IntegerField()
    module_id = peewee.IntegerField(null=True)
    user_id = peewee.IntegerField()
    tool_id = peewee.IntegerField()
    score_given = peewee.FloatField(null=True)
    score_maximum = peewee.FloatField(null=True)
    activity_progress = peewee.CharField(max_length=20)
    grading_progress = peewee.CharField(max_length=20)
    comment = peewee.TextField(default="")
    timestamp = UTCDateTimeField()  # the tool's
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "lti_score"
        indexes = ((("lineitem", "user_id", "timestamp"), False),
                   (("tenant", "course_id", "module_id"), False))


MODELS = (LtiScoreToken, LtiScoreAssertion, LtiScoreLineItem, LtiScoreEntry)
