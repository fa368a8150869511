"""Video playback accounting, one heartbeat at a time (the same rules run in Python for the
database path and in a Redis Lua script for the write-behind path; see heartbeats.py).

* ``furthest`` only grows: seeking back never loses what was reached.
* ``watched`` grows only by forward progress between two heartbeats, and by no more than the
  wall-clock time between them (at most ``max_heartbeat_gap_seconds``) times
  ``max_playback_rate``: seeking ahead is not watching.
* Both are clamped to the duration; a module completes once both reach
  ``video_complete_ratio`` of it (the "crossing" happens once per student and module).
* ``watched`` reaching 25, 50, 75 and 100 % of the duration are the video's marks
  (progress.video_progressed.v1, once each per student and module).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .settings import ProgressSettings

_EPS = 1e-6


@dataclass
class Playback:
    last_position: float = 0.0
    furthest: float = 0.0
    watched: float = 0.0
    duration: float | None = None
    seen: float = 0.0  # epoch seconds of the last heartbeat; 0 = none yet

    @property
    def percent(self) -> float:
        if not self.duration:
            return 0.0
        return round(min(100.0, 100.0 * self.watched / self.duration), 1)

    def reached(self, ratio: float) -> bool:
        if not self.duration:
            return False
        need = ratio * self.duration - _EPS
        return self.furthest >= need and self.watched >= need

    def marks(self, marks: Iterable[int]) -> list[int]:
        """Which of `marks` (percent of the video) its watched seconds have reached."""
        if not self.duration:
            return []
        return [m for m in marks if self.watched >= m / 100 * self.duration - _EPS]

    def merged(self, other: Playback | None) -> Playback:
        """The later of two views of one state (database row vs. not-yet-flushed Redis)."""
        if other is None:
            return self
        newer = other if other.seen >= self.seen else self
        return Playback(newer.last_position, max(self.furthest, other.furthest),
                        max(self.watched, other.watched), newer.duration or self.duration,
                        max(self.seen, other.seen))


def advance(state: Playback, position: float, duration: float, now: float,
            settings: ProgressSettings) -> Playback:
    """The state after a heartbeat at `position` of a `duration`-second video."""
    position = min(position, duration)
    watched = state.watched
    if state.seen > 0:
        elapsed = min(max(now - state.seen, 0.0), settings.max_heartbeat_gap_seconds)
        delta = position - state.last_position
        if delta > 0:
            watched += min(delta, elapsed * settings.max_playback_rate)
    return Playback(
        last_position=position,
        furthest=min(max(state.furthest, position), duration),
        watched=min(watched, duration),
        duration=duration,
        seen=now,
    )
