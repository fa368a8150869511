"""Enrollment tables: who is enrolled in which course, and each course's enrollment rules."""

from __future__ import annotations

import peewee

from learnplat.plugin import TenantModel, UTCDateTimeField, utcnow

STATUSES = ("active", "dropped")
SOURCES = ("self", "bulk", "lti")


class Enrollment(TenantModel):
    course_id = peewee.IntegerField()
    user_id = peewee.IntegerField()
    status = peewee.CharField(max_length=10, default="active")  # active | dropped
    source = peewee.CharField(max_length=10, default="self")  # self | bulk | lti
    enrolled_by = peewee.IntegerField(null=True)  # the staff member of a bulk enrollment
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)
    dropped_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "enrollment_enrollment"
        indexes = (
            # One enrollment per (tenant, course, user): the database, not the code, decides
            # races between concurrent requests.
            (("tenant", "course_id", "user_id"), True),
            # Active counts (the cap) and status totals read this index only; its created_at
            # serves the per-day analytics.
            (("tenant", "course_id", "status", "created_at"), False),
            # A course's students page by id.
            (("tenant", "course_id", "id"), False),
            # A learner's enrollments page by id.
            (("tenant", "user_id", "id"), False),
        )


class EnrollmentRules(TenantModel):
    """Optional cap and window of a course (no row: unlimited, always open)."""

    course_id = peewee.IntegerField()
    cap = peewee.IntegerField(null=True)
    opens_at = UTCDateTimeField(null=True)
    closes_at = UTCDateTimeField(null=True)
    updated_at = UTCDateTimeField(default=utcnow)
    updated_by = peewee.IntegerField(null=True)

    class Meta:
        table_name = "enrollment_rules"
        indexes = ((("tenant", "course_id"), True),)


MODELS = (Enrollment, EnrollmentRules)
