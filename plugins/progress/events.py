"""Events the progress plugin records (versioned names; never renamed).

It also consumes "quiz.passed.v1" {course_id, module_id, user_id} and "assignment.graded.v1"
{course_id, module_id, student_id} (each completes the module; by name, since the quizzes and
media plugins are optional), "lti.score_received.v1" (completes the lti module when the tool
says activity_progress Completed or grading_progress FullyGraded; source "lti") and the
enrollment plugin's EnrollmentCreated / EnrollmentDropped (mirrors the enrollment's status).

Every event here leaves learnplat (webhooks, xAPI) with every field: ids, sources, percents
and times, what a school's learning record store wants.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from learnplat.plugin import Event

QUIZ_PASSED = "quiz.passed.v1"
# By name too: the media plugin, which grades assignments, is optional.
ASSIGNMENT_GRADED = "assignment.graded.v1"
# By name: the lti plugin is optional. An LTI tool's score (AGS) completes its lti module
# when activity_progress is Completed or grading_progress FullyGraded.
LTI_SCORE_RECEIVED = "lti.score_received.v1"
LTI_DONE = {"activity_progress": "Completed", "grading_progress": "FullyGraded"}


class ModuleCompleted(Event):
    """A learner completed a module (by hand, by watching its video, or by passing its quiz)."""
    name: ClassVar[str] = "progress.module_completed.v1"
    course_id: int
    module_id: int
    user_id: int
    source: str  # manual | video | quiz | assignment | lti


class ModuleReset(Event):
    """A module a learner had completed is no longer complete."""
    name: ClassVar[str] = "progress.module_reset.v1"
    course_id: int
    module_id: int
    user_id: int
    source: str


class Milestone(Event):
    """A learner reached a milestone of a course (50 %), once per enrollment."""
    name: ClassVar[str] = "progress.milestone.v1"
    course_id: int
    user_id: int
    percent: float
    milestone: int


class VideoProgressed(Event):
    """A learner watched 25, 50, 75 or 100 % of a module's video, once per module and mark."""
    name: ClassVar[str] = "progress.video_progressed.v1"
    course_id: int
    module_id: int
    user_id: int
    milestone: int  # 25 | 50 | 75 | 100: the mark crossed
    percent: float  # of the video watched when it was recorded (at least the milestone)
    duration_seconds: float | None = None  # of the video, as the player reported it


class CourseCompleted(Event):
    """A learner completed every required module of a course, once per enrollment."""
    name: ClassVar[str] = "course.completed.v1"
    course_id: int
    user_id: int
    percent: float
    completed_at: dt.datetime


#: The marks of VideoProgressed: percent of a video watched.
VIDEO_MILESTONES = (25, 50, 75, 100)

EVENTS: list[type[Event]] = [ModuleCompleted, ModuleReset, Milestone, VideoProgressed,
                             CourseCompleted]
