"""Events the quizzes plugin records (versioned names; never renamed).

It consumes the courses plugin's ModuleRemoved and CourseDeleted (a removed module's quiz and
its attempts go with it).

All three leave learnplat (webhooks, xAPI) with every field: quiz and attempt ids (the API's),
scores and flags."""

from __future__ import annotations

from typing import ClassVar

from learnplat.plugin import Event


class QuizPassed(Event):
    """A student passed a module's quiz for the first time; progress completes the module."""
    name: ClassVar[str] = "quiz.passed.v1"
    course_id: int
    module_id: int
    user_id: int
    quiz_id: int = 0
    attempt_id: int = 0
    percent: float = 0.0


class QuizGraded(Event):
    """An attempt was graded: at submission, after an instructor's review, or regraded."""
    name: ClassVar[str] = "quiz.graded.v1"
    course_id: int
    module_id: int
    quiz_id: int
    attempt_id: int
    user_id: int
    percent: float
    passed: bool
    late: bool = False
    reviewed: bool = False  # an instructor graded (part of) it
    regraded: bool = False  # it had been graded before


class QuizSubmitted(Event):
    """A student submitted an attempt; `needs_review` when it waits for an instructor."""
    name: ClassVar[str] = "quiz.submitted.v1"
    course_id: int
    module_id: int
    quiz_id: int
    attempt_id: int
    user_id: int
    late: bool = False
    needs_review: bool = False


EVENTS: list[type[Event]] = [QuizPassed, QuizGraded, QuizSubmitted]
