"""Events the progress plugin records (versioned names; never renamed).

It also consumes "quiz.passed.v1" {course_id, module_id, user_id} and "assignment.graded.v1"
{course_id, module_id, student_id} (each completes the module; by name, since the quizzes and
media plugins are optional) and the enrollment plugin's EnrollmentCreated /
EnrollmentDropped (mirrors the enrollment's status).
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from learnplat.plugin import Event

QUIZ_PASSED = "quiz.passed.v1"
# By name too: the media plugin, which grades assignments, is optional.
ASSIGNMENT_GRADED = "assignment.graded.v1"


class ModuleCompleted(Event):
    """A learner completed a module (by hand, by watching its video, or by passing its quiz)."""
    name: ClassVar[str] = "progress.module_completed.v1"
    course_id: int
    module_id: int
    user_id: int
    source: str  # manual | video | quiz | assignment


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


class CourseCompleted(Event):
    """A learner completed every required module of a course, once per enrollment."""
    name: ClassVar[str] = "course.completed.v1"
    course_id: int
    user_id: int
    percent: float
    completed_at: dt.datetime


EVENTS: list[type[Event]] = [ModuleCompleted, ModuleReset, Milestone, CourseCompleted]
