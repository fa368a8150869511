"""Events the notifications plugin records (versioned names; never renamed), and the events it
handles from plugins that may not be installed: by name (`optional=True`, so that
notifications runs without them), each with the model of the fields it reads of the payload
(`EventHandler(..., payload=...)`; the publisher's events module may not be importable):
``event.data`` is one, parsed from the stored payload.

BroadcastSent leaves learnplat (webhooks, xAPI) with every field: ids, the audience and counts.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel

from learnplat.plugin import Event

QUIZ_GRADED = "quiz.graded.v1"
ASSIGNMENT_GRADED = "assignment.graded.v1"
CERTIFICATE_ISSUED = "certificate.issued.v1"


# What notifications reads of each (its own models, not copies of the publishers' Events): the
# course, the learner as `user_id` (plugin.Learner) and, of a grading, its score.


class QuizGradedPayload(BaseModel):
    """quiz.graded.v1 (quizzes plugin): notified only after an instructor's review or a
    regrade."""

    course_id: int
    user_id: int
    percent: float  # $score: "85%"
    reviewed: bool | None = None  # None: recorded before reviews existed (always notified)
    regraded: bool = False


class AssignmentGradedPayload(BaseModel):
    """assignment.graded.v1 (media plugin), which names the learner `student_id`."""

    course_id: int
    student_id: int
    points: int  # $score: "8/10"
    max_points: int

    @property
    def user_id(self) -> int:
        """The learner."""
        return self.student_id


class CertificateIssuedPayload(BaseModel):
    """certificate.issued.v1 (certificates plugin)."""

    course_id: int
    user_id: int


class BroadcastSent(Event):
    """An admin's notification reached its whole audience (fan-out finished)."""
    name: ClassVar[str] = "notifications.broadcast_sent.v1"
    broadcast_id: int
    audience: str
    target: str
    recipients: int
    actor_id: int


EVENTS: list[type[Event]] = [BroadcastSent]
