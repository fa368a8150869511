"""The media plugin's table: one row per stored object (a module's video, an attached file),
with what we know of it. The bytes live in the core's storage under the row's `key`."""

from __future__ import annotations

import peewee

from learnplat.plugin import TenantModel, UTCDateTimeField, utcnow

KINDS = ("video", "attachment")


class MediaObject(TenantModel):
    kind = peewee.CharField(max_length=20)
    course_id = peewee.IntegerField()
    module_id = peewee.IntegerField()
    # The key under the tenant's storage prefix: built from ids and a random token, never from
    # the client's file name (kept apart in `filename`, as metadata).
    key = peewee.CharField(max_length=300)
    filename = peewee.CharField(max_length=255, default="")
    content_type = peewee.CharField(max_length=120)
    size = peewee.BigIntegerField()
    sha256 = peewee.CharField(max_length=64)
    duration_seconds = peewee.IntegerField(null=True)
    uploader_id = peewee.IntegerField()
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "media_object"
        indexes = (
            (("tenant", "course_id", "module_id", "kind"), False),
            (("tenant", "key"), True),
        )


MODELS = [MediaObject]
