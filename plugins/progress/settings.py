"""The [progress] settings section (LEARNPLAT_PROGRESS_<KEY> in the environment)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ProgressSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    video_complete_ratio: float = Field(
        0.9, gt=0, le=1,
        description="A video module completes once this share of it is watched.")
    heartbeat_flush_seconds: int = Field(
        60, description="How often Redis-held heartbeats are written to the database. Whole "
                        "minutes (60, 120, ...): Huey's finest periodic schedule is a minute.")
    max_playback_rate: float = Field(
        2.0, ge=1, le=16, description="Fastest playback speed credited as watching.")
    max_heartbeat_gap_seconds: float = Field(
        30, gt=0, le=3600,
        description="At most this much wall-clock time between two heartbeats is credited.")
    max_video_seconds: float = Field(
        86_400, gt=0, description="Longer durations or positions are rejected (422).")
    access_cache_seconds: int = Field(
        60, ge=0, description="With Redis: how long a passed access check (enrolled, module "
                              "unlocked, is a video) is reused by later heartbeats.")
    state_ttl_seconds: int = Field(
        7 * 86_400, gt=60, description="With Redis: idle playback state expires after this.")

    @field_validator("heartbeat_flush_seconds")
    @classmethod
    def _whole_minutes(cls, value: int) -> int:
        if value < 60 or value % 60:
            raise ValueError("must be a whole number of minutes (60, 120, ...)")
        return value
