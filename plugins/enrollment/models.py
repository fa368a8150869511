"""Enrollment tables: who is enrolled in which course, and each course's enrollment rules."""

from __future__ import annotations

import peewee

from learnplat.models import TenantModel, UTCDateTimeField, utcnow


class Enrollment(TenantModel):
    course_id = peewee.IntegerField()
    user_id = peewee.IntegerField(index=True)
    status = peewee.CharField(max_length=10, default="active")  # active | dropped
    source = peewee.CharField(max_length=10, default="self")  # self | bulk
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)
    dropped_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "enrollment_enrollment"
        # One enrollment per (tenant, course, user): the database, not the code, decides races.
        indexes = ((("tenant", "course_id", "user_id"), True),
                   (("tenant", "course_id", "status"), False))


class EnrollmentRules(TenantModel):
    """Optional cap and window of a course (no row: unlimited, always open)."""

    course_id = peewee.IntegerField()
    cap = peewee.IntegerField(null=True)
    opens_at = UTCDateTimeField(null=True)
    closes_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "enrollment_rules"
        indexes = ((("tenant", "course_id"), True),)


MODELS = (Enrollment, EnrollmentRules)
