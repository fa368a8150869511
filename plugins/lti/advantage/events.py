"""Events of the LTI Advantage services."""

from __future__ import annotations

from typing import ClassVar

from learnplat.plugin import Event


class LtiScoreReceived(Event):
    """A tool posted a learner's score for a line item (AGS). The progress plugin completes
    the lti module when activity_progress is Completed or grading_progress FullyGraded."""

    name: ClassVar[str] = "lti.score_received.v1"
    course_id: int
    module_id: int | None  # None: a line item of no module (the tool made it)
    user_id: int
    lineitem_id: int
    score_given: float | None
    score_maximum: float | None
    activity_progress: str  # Initialized | Started | InProgress | Submitted | Completed
    grading_progress: str  # FullyGraded | Pending | PendingManual | Failed | NotReady


EVENTS = [LtiScoreReceived]
