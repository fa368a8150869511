"""Webhook tables: a school's endpoints and their signing secrets. The deliveries themselves
(messages, attempts) are the delivery engine's (learnplat.outbound), keyed by the endpoint's
id as the destination's `ref`."""

from __future__ import annotations

import peewee

from learnplat.plugin import JSONField, TenantModel, UTCDateTimeField, utcnow


class Endpoint(TenantModel):
    """A URL of the school's that receives the events matching `event_types` (versioned names
    or patterns such as ``enrollment.*`` and ``*``). `enabled` false: nothing is queued for
    it; `disabled_reason`/`disabled_at` say who switched it off and why (an admin, a 410
    answer, days of failures)."""

    url = peewee.CharField(max_length=2000)
    description = peewee.CharField(max_length=500, default="")
    event_types = JSONField(default=list)
    enabled = peewee.BooleanField(default=True)
    disabled_reason = peewee.CharField(max_length=500, null=True)
    disabled_at = UTCDateTimeField(null=True)
    created_by = peewee.IntegerField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "webhooks_endpoint"


class EndpointSecret(TenantModel):
    """A signing secret of an endpoint (``whsec_<base64>``), encrypted under app.secret_key.
    Every secret in force signs each delivery: after a rotation the old one keeps signing
    until `expires_at`, so receivers can switch at their pace."""

    endpoint_id = peewee.IntegerField()
    secret = peewee.TextField()  # SecretBox token of the whsec_ string
    created_at = UTCDateTimeField(default=utcnow)
    expires_at = UTCDateTimeField(null=True)  # None: in force until the next rotation

    class Meta:
        table_name = "webhooks_secret"
        indexes = ((("tenant", "endpoint_id"), False),)


MODELS = (Endpoint, EndpointSecret)
