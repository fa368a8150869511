"""The quizzes plugin's contract: ``runtime.service(QUIZZES)`` is a ``QuizzesAPI``; plain frozen
data (``Record``), never database model objects. Events: ``learnplat_quizzes.events``."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from learnplat.plugin import Record, ServiceKey


class QuizInfo(Record):
    id: int
    course_id: int
    module_id: int
    title: str
    pass_mark: float
    max_attempts: int | None
    question_count: int


class QuizScore(Record):
    """A student's counted score in one quiz (None until an attempt is graded and the
    results policy lets the student see it)."""

    quiz_id: int
    module_id: int
    title: str
    attempts: int
    percent: float | None
    passed: bool | None
    passed_at: dt.datetime | None


class QuizzesAPI(Protocol):
    def quiz_of_module(self, course_id: int, module_id: int) -> QuizInfo | None:
        """The quiz of a module, None when the module has none."""

    def scores(self, course_id: int, user_id: int) -> list[QuizScore]:
        """A student's standing in every quiz of a course they have attempted, by module."""

    def average_score(self, course_id: int) -> float | None:
        """Mean counted score (0..100) over every graded student and quiz of a course."""


QUIZZES: ServiceKey[QuizzesAPI] = ServiceKey("quizzes", QuizzesAPI)
