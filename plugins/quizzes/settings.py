"""The [quizzes] settings section (LEARNPLAT_QUIZZES_<KEY> in the environment)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class QuizzesSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    grace_seconds: int = Field(
        30, ge=0, le=3600,
        description="A submission this long past an attempt's time limit is still on time "
                    "(network latency, a slow client); later ones are late: graded with the "
                    "answers saved before the limit plus grace, and flagged.")
    max_questions: int = Field(200, ge=1, le=1000, description="Questions per quiz.")
