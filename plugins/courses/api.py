"""What the courses plugin offers other plugins: plain data types and its service methods.

Other plugins use ``runtime.service("courses")`` (a CoursesService) and these types; they never
import the courses models. All calls act in the current tenant.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class CourseInfo:
    id: int
    owner_id: int
    title: str
    status: str  # draft | pending_review | published | rejected | archived


@dataclass(frozen=True)
class ModuleInfo:
    id: int
    course_id: int
    title: str
    position: int
    kind: str  # video | text | quiz | assignment | other
    required: bool
    prerequisite_id: int | None
    release_at: dt.datetime | None
    estimated_minutes: int = 0

    def released(self, now: dt.datetime | None = None) -> bool:
        """Whether drip release has made the module available (always, with no release_at)."""
        return self.release_at is None or self.release_at <= (now or dt.datetime.now(dt.UTC))
