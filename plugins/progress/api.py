"""What the progress plugin offers other plugins through ``runtime.service("progress")``:
plain data, never model objects."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressSummary:
    course_id: int
    user_id: int
    percent: float  # 0..100
    completed: bool
    completed_modules: int
    required_modules: int
    completed_at: dt.datetime | None
    last_activity_at: dt.datetime | None

    def as_dict(self) -> dict[str, object]:
        return {"percent": self.percent, "completed": self.completed,
                "completed_modules": self.completed_modules,
                "required_modules": self.required_modules,
                "completed_at": self.completed_at, "last_activity_at": self.last_activity_at}
