"""Courses tables: courses, their tags, modules and the record of every status transition."""

from __future__ import annotations

import peewee

from learnplat.models import TenantModel, UTCDateTimeField, utcnow

STATUSES = ("draft", "pending_review", "published", "rejected", "archived")
LEVELS = ("beginner", "intermediate", "advanced")
MODULE_KINDS = ("video", "text", "quiz", "assignment", "other")


class Course(TenantModel):
    owner_id = peewee.IntegerField(index=True)
    title = peewee.CharField(max_length=200)
    description = peewee.TextField(default="")
    language = peewee.CharField(max_length=16, default="en", index=True)
    level = peewee.CharField(max_length=20, default="beginner", index=True)
    status = peewee.CharField(max_length=20, default="draft", index=True)
    rejection_reason = peewee.TextField(default="")
    image_key = peewee.CharField(max_length=300, default="")
    thumbnail_key = peewee.CharField(max_length=300, default="")
    published_at = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "courses_course"


class CourseTag(TenantModel):
    course = peewee.ForeignKeyField(Course, on_delete="CASCADE", lazy_load=False,
                                    backref="tag_rows")
    tag = peewee.CharField(max_length=40, index=True)

    class Meta:
        table_name = "courses_tag"
        indexes = ((("course", "tag"), True),)


class Module(TenantModel):
    course = peewee.ForeignKeyField(Course, on_delete="CASCADE", lazy_load=False,
                                    backref="modules")
    title = peewee.CharField(max_length=200)
    description = peewee.TextField(default="")
    position = peewee.IntegerField(default=0)
    kind = peewee.CharField(max_length=20, default="text")
    estimated_minutes = peewee.IntegerField(default=0)
    required = peewee.BooleanField(default=True)
    prerequisite = peewee.ForeignKeyField("self", null=True, on_delete="SET NULL",
                                          lazy_load=False)
    release_at = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "courses_module"
        indexes = ((("course", "position"), False),)


class CourseTransition(TenantModel):
    course = peewee.ForeignKeyField(Course, on_delete="CASCADE", lazy_load=False)
    from_status = peewee.CharField(max_length=20)
    to_status = peewee.CharField(max_length=20)
    actor_id = peewee.IntegerField(null=True)
    reason = peewee.TextField(default="")
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "courses_transition"


MODELS = (Course, CourseTag, Module, CourseTransition)
