"""Events the media plugin records (versioned names; never renamed).

They leave learnplat (webhooks, xAPI) with every field: media, submission and assignment ids,
sizes, content types and checksums are what the API shows too. The object's storage key is
deliberately in no event (the API serves the bytes by id)."""

from __future__ import annotations

from typing import ClassVar

from learnplat.plugin import Event


class MediaEvent(Event):
    media_id: int
    course_id: int
    module_id: int
    kind: str
    content_type: str
    size: int
    sha256: str
    actor_id: int | None = None


class VideoUploaded(MediaEvent):
    """A module's video was uploaded (or replaced: `replaced_id`); the module is a video."""
    name: ClassVar[str] = "media.video_uploaded.v1"
    duration_seconds: int | None = None
    replaced_id: int | None = None


class AttachmentAdded(MediaEvent):
    """A file was attached to a module."""
    name: ClassVar[str] = "media.attachment_added.v1"
    filename: str = ""


class MediaRemoved(MediaEvent):
    """A stored object was removed (by its uploader, or with its module or course)."""
    name: ClassVar[str] = "media.removed.v1"


class AssignmentEvent(Event):
    assignment_id: int
    submission_id: int
    course_id: int
    module_id: int
    student_id: int


class AssignmentSubmitted(AssignmentEvent):
    """A student handed in (or re-submitted: attempt > 1) an assignment."""
    name: ClassVar[str] = "assignment.submitted.v1"
    attempt: int
    media_id: int


class AssignmentGraded(AssignmentEvent):
    """An instructor graded a submission (points out of max_points, with feedback)."""
    name: ClassVar[str] = "assignment.graded.v1"
    points: int
    max_points: int
    grader_id: int


EVENTS: list[type[Event]] = [VideoUploaded, AttachmentAdded, MediaRemoved, AssignmentSubmitted,
                             AssignmentGraded]
