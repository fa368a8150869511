"""Courses tables: courses, tags, modules, status transitions, ratings and feedback threads."""

from __future__ import annotations

import peewee

from learnplat.plugin import TenantModel, UTCDateTimeField, utcnow

STATUSES = ("draft", "pending_review", "published", "rejected", "archived")
LEVELS = ("beginner", "intermediate", "advanced")
MODULE_KINDS = ("video", "text", "quiz", "assignment", "lti", "other")


class Course(TenantModel):
    owner_id = peewee.IntegerField(index=True)
    title = peewee.CharField(max_length=200)
    description = peewee.TextField(default="")
    language = peewee.CharField(max_length=16, default="en", index=True)
    level = peewee.CharField(max_length=20, default="beginner", index=True)
    status = peewee.CharField(max_length=20, default="draft", index=True)
    rejection_reason = peewee.TextField(default="")
    image_key = peewee.CharField(max_length=300, default="")
    image_content_type = peewee.CharField(max_length=60, default="")
    thumbnail_key = peewee.CharField(max_length=300, default="")
    # Kept by the rating service in the rating's transaction, so lists show averages for free.
    rating_count = peewee.IntegerField(default=0)
    rating_sum = peewee.IntegerField(default=0)
    published_at = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "courses_course"
        indexes = ((("tenant", "status", "id"), False),)


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
    """One status change: who, when, why. Never updated, deleted only with its course."""

    course = peewee.ForeignKeyField(Course, on_delete="CASCADE", lazy_load=False)
    action = peewee.CharField(max_length=20, default="")
    from_status = peewee.CharField(max_length=20)
    to_status = peewee.CharField(max_length=20)
    actor_id = peewee.IntegerField(null=True)
    reason = peewee.TextField(default="")
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "courses_transition"


class Rating(TenantModel):
    course = peewee.ForeignKeyField(Course, on_delete="CASCADE", lazy_load=False)
    user_id = peewee.IntegerField(index=True)
    stars = peewee.SmallIntegerField()
    comment = peewee.TextField(default="")
    reply = peewee.TextField(default="")
    reply_by = peewee.IntegerField(null=True)
    replied_at = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "courses_rating"
        # One rating per student and course: the database settles concurrent first ratings.
        indexes = ((("course", "user_id"), True),)


class FeedbackThread(TenantModel):
    """A student's question or feedback to a course's instructor, with its replies."""

    course = peewee.ForeignKeyField(Course, on_delete="CASCADE", lazy_load=False)
    student_id = peewee.IntegerField()
    subject = peewee.CharField(max_length=200)
    message_count = peewee.IntegerField(default=0)
    created_at = UTCDateTimeField(default=utcnow)
    last_message_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "courses_feedback_thread"
        indexes = ((("course", "student_id"), False),)


class FeedbackMessage(TenantModel):
    thread = peewee.ForeignKeyField(FeedbackThread, on_delete="CASCADE", lazy_load=False)
    author_id = peewee.IntegerField()
    body = peewee.TextField()
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "courses_feedback_message"


MODELS = (Course, CourseTag, Module, CourseTransition, Rating, FeedbackThread, FeedbackMessage)
