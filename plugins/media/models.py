"""The media plugin's table: one row per stored object (a module's video, an attached file),
with what we know of it. The bytes live in the core's storage under the row's `key`."""

from __future__ import annotations

import peewee

from learnplat.plugin import TenantModel, UTCDateTimeField, utcnow

KINDS = ("video", "attachment", "submission", "avatar")


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
    # Whose profile photo this is (kind "avatar"; course_id and module_id are 0 then).
    user_id = peewee.IntegerField(null=True)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "media_object"
        indexes = (
            (("tenant", "course_id", "module_id", "kind"), False),
            (("tenant", "key"), True),
        )


class Assignment(TenantModel):
    """A module's assignment: what to hand in, by when, out of how many points."""

    course_id = peewee.IntegerField()
    module_id = peewee.IntegerField()
    instructions = peewee.TextField(default="")
    due_at = UTCDateTimeField(null=True)
    max_points = peewee.IntegerField(default=100)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "media_assignment"
        indexes = ((("tenant", "course_id", "module_id"), True),)


class Submission(TenantModel):
    """A student's (latest) hand-in for an assignment; its file is a "submission" media
    object. Resubmitting replaces the file and counts an attempt."""

    assignment = peewee.ForeignKeyField(Assignment, on_delete="CASCADE", lazy_load=False)
    course_id = peewee.IntegerField()
    module_id = peewee.IntegerField()
    student_id = peewee.IntegerField()
    media_id = peewee.IntegerField()
    attempt = peewee.IntegerField(default=1)
    status = peewee.CharField(max_length=20, default="submitted")  # submitted | graded
    points = peewee.IntegerField(null=True)
    feedback = peewee.TextField(default="")
    grader_id = peewee.IntegerField(null=True)
    submitted_at = UTCDateTimeField(default=utcnow)
    graded_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "media_submission"
        indexes = ((("tenant", "assignment", "student_id"), True),)


MODELS = [MediaObject, Assignment, Submission]
