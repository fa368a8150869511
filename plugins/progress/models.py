"""Progress tables: one row per enrollment (course percent, milestones), one per module a
student has touched (completion, video playback) and one per video mark a student reached."""

from __future__ import annotations

import peewee

from learnplat.plugin import TenantModel, UTCDateTimeField, utcnow


class CourseProgress(TenantModel):
    """A student's progress in one course. Every write to a student's progress in a course locks
    this row first, so concurrent requests for one enrollment are serialised and each milestone
    flag flips (and its event is recorded) exactly once."""

    course_id = peewee.IntegerField()
    user_id = peewee.IntegerField(index=True)
    status = peewee.CharField(max_length=10, default="active")  # mirrors the enrollment
    percent = peewee.FloatField(default=0.0)
    completed_count = peewee.IntegerField(default=0)
    required_count = peewee.IntegerField(default=0)
    completed_at = UTCDateTimeField(null=True)  # when it last reached 100% (None below 100%)
    # Milestone flags: set once, never cleared (un-completing does not re-arm them).
    milestone_50_at = UTCDateTimeField(null=True)
    milestone_100_at = UTCDateTimeField(null=True)
    last_activity_at = UTCDateTimeField(default=utcnow)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "progress_course"
        indexes = (
            (("tenant", "course_id", "user_id"), True),
            # GET /progress/{id}/students sorted by percent or last activity, keyset-paged.
            (("tenant", "course_id", "status", "percent", "id"), False),
            (("tenant", "course_id", "status", "last_activity_at", "id"), False),
        )


class ModuleProgress(TenantModel):
    """A student's state in one module: completion and (for videos) playback."""

    course_id = peewee.IntegerField()
    module_id = peewee.IntegerField()
    user_id = peewee.IntegerField()
    completed_at = UTCDateTimeField(null=True)
    # manual | video | quiz | assignment
    completed_source = peewee.CharField(max_length=10, null=True)
    last_position = peewee.FloatField(default=0.0)
    furthest_position = peewee.FloatField(default=0.0)
    watched_seconds = peewee.FloatField(default=0.0)
    duration_seconds = peewee.FloatField(null=True)
    last_heartbeat_at = UTCDateTimeField(null=True)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "progress_module"
        indexes = (
            (("tenant", "course_id", "user_id", "module_id"), True),
            # Analytics: completions per module of a course (drop-off).
            (("tenant", "course_id", "module_id"), False),
        )


class HandledEvent(TenantModel):
    """Events the progress plugin has already acted on (idempotency on event id)."""

    event_id = peewee.BigIntegerField()
    handler = peewee.CharField(max_length=60)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "progress_handled_event"
        indexes = ((("tenant", "event_id", "handler"), True),)


class VideoMilestone(TenantModel):
    """A mark (25, 50, 75, 100 % of a video watched) a learner reached in a module. The unique
    (tenant, user, module, milestone) index makes its event (progress.video_progressed.v1)
    exactly-once: the writer inserts the row with ON CONFLICT DO NOTHING and records the event
    only when its insert made the row, whichever request or flush got there first."""

    course_id = peewee.IntegerField()
    module_id = peewee.IntegerField()
    user_id = peewee.IntegerField()
    milestone = peewee.SmallIntegerField()
    percent = peewee.FloatField()  # of the video watched when it was reached
    reached_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "progress_video_milestone"
        indexes = ((("tenant", "user_id", "module_id", "milestone"), True),)


MODELS = (CourseProgress, ModuleProgress, HandledEvent, VideoMilestone)
