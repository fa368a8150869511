"""What the enrollment plugin offers other plugins through runtime.service("enrollment")."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class EnrollmentInfo:
    id: int
    course_id: int
    user_id: int
    status: str  # active | dropped
    created_at: dt.datetime
