"""Request and response schemas of the enrollment routes."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel


class EnrollmentOut(BaseModel):
    id: int
    course_id: int
    user_id: int
    status: Literal["active", "dropped"]
    source: str
    created_at: dt.datetime
    updated_at: dt.datetime
    dropped_at: dt.datetime | None
