"""The progress plugin's contract: ``runtime.service(PROGRESS)`` is a ``ProgressAPI``; plain
data, never model objects. Events: ``learnplat_progress.events``."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, Protocol

from learnplat.plugin import Field, Record, ServiceKey

LockReason = Literal["not_released", "prerequisite"]
"""Why a learner cannot work on a module now (ProgressAPI.lock_reason; a module's
``locked_reason`` in GET /progress/{course_id})."""


class CourseFigures(Record):
    """How far a learner is in a course, as every progress answer shows it."""

    percent: float = Field(ge=0, le=100)
    completed: bool
    completed_modules: int
    required_modules: int
    completed_at: dt.datetime | None


class ProgressSummary(CourseFigures):
    course_id: int
    user_id: int
    last_activity_at: dt.datetime | None

    def as_dict(self) -> dict[str, object]:
        """The ``progress`` key of the course page (course_detail_extras): the figures
        without the ids."""
        return {"percent": self.percent, "completed": self.completed,
                "completed_modules": self.completed_modules,
                "required_modules": self.required_modules,
                "completed_at": self.completed_at, "last_activity_at": self.last_activity_at}


class ProgressAPI(Protocol):
    def summary(self, course_id: int, user_id: int) -> ProgressSummary | None:
        """The stored progress of one enrollment; None when the learner has none yet."""

    def summaries(self, course_ids: list[int], user_id: int) -> dict[int, dict[str, Any]]:
        """{course_id: {"percent", "completed"}} for one learner, in one query."""

    def lock_reason(self, course_id: int, module_id: int, user_id: int) -> LockReason | None:
        """Why a learner cannot work on a module now: "not_released" (its release_at is in the
        future) or "prerequisite" (its prerequisite is not complete); None when it is open,
        already complete, or not a module of the course. Used by the quizzes plugin."""


PROGRESS: ServiceKey[ProgressAPI] = ServiceKey("progress", ProgressAPI)
