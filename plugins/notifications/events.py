"""Events the notifications plugin records (versioned names; never renamed), and the names of
the events it handles from plugins that may not be installed (by name, `optional=True`, so
that notifications runs without them): each payload carries at least ``course_id`` and the
learner as ``user_id`` (or ``student_id``); gradings may carry ``points``/``max_points``,
``percent`` or ``score``, and a quiz grading ``reviewed``/``regraded``."""

from __future__ import annotations

from typing import ClassVar

from learnplat.plugin import Event

QUIZ_GRADED = "quiz.graded.v1"
ASSIGNMENT_GRADED = "assignment.graded.v1"
CERTIFICATE_ISSUED = "certificate.issued.v1"


class BroadcastSent(Event):
    """An admin's notification reached its whole audience (fan-out finished)."""
    name: ClassVar[str] = "notifications.broadcast_sent.v1"
    broadcast_id: int
    audience: str
    target: str
    recipients: int
    actor_id: int


EVENTS: list[type[Event]] = [BroadcastSent]
