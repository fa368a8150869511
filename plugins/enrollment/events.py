"""Events the enrollment plugin records and the action it asks vetoes about (versioned names;
never renamed). Both events leave learnplat (webhooks, xAPI) with every field: ids, the source
and who acted."""

from __future__ import annotations

from typing import ClassVar

from learnplat.plugin import Action, Event


class EnrollmentEvent(Event):
    enrollment_id: int
    course_id: int
    user_id: int
    actor_id: int | None = None  # who acted: the learner, staff (bulk), None for the system


class EnrollmentCreated(EnrollmentEvent):
    """A learner was enrolled in a course (or re-enrolled after dropping: `reactivated`)."""
    name: ClassVar[str] = "enrollment.created.v1"
    reactivated: bool = False
    source: str = "self"  # self | bulk | lti (an LTI launch: EnrollmentAPI.enroll_from)


class EnrollmentDropped(EnrollmentEvent):
    """A learner dropped a course."""
    name: ClassVar[str] = "enrollment.dropped.v1"


EVENTS: list[type[Event]] = [EnrollmentCreated, EnrollmentDropped]

ENROLL = Action("enrollment.create", "A learner is about to be enrolled in a course",
                ("course_id", "user_id", "source"))
ACTIONS = [ENROLL]
