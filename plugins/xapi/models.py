"""The xAPI plugin's one table: a school's learning record store. The statements themselves
are the delivery engine's messages (sink "xapi", destination ref "lrs"): their payload is the
statement, their key its id."""

from __future__ import annotations

import peewee

from learnplat.plugin import TenantModel, UTCDateTimeField, utcnow


class LrsConfig(TenantModel):
    """At most one per school. `secret` is encrypted under app.secret_key (SecretBox; scanned
    and re-encrypted through register_encrypted_at_rest) and never shown again."""

    endpoint = peewee.CharField(max_length=2000)  # the LRS's xAPI base URL, checked
    key = peewee.CharField(max_length=300)  # Basic authentication: user / key
    secret = peewee.TextField()  # encrypted
    actor_mode = peewee.CharField(max_length=20, default="account")  # account | mbox_sha1sum
    home_page = peewee.CharField(max_length=2000)  # account.homePage and the IRIs' base
    language = peewee.CharField(max_length=35, default="en-US")
    enabled = peewee.BooleanField(default=True)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "xapi_lrs"
        indexes = ((("tenant",), True),)


MODELS = (LrsConfig,)
