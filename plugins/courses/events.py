"""Events the courses plugin records and the vetoable actions it asks about (versioned names;
never renamed). Every course event carries the course's id, owner, status and title after the
change, and the acting user (None for the system).

They leave learnplat (webhooks, xAPI) with every field, except course.thumbnail_ready.v1
(plumbing, not published) and the image's storage key (`internal_fields`): ids, titles,
statuses and times mean the same outside as in the API."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from learnplat.plugin import Action, Event


class CourseEvent(Event):
    course_id: int
    owner_id: int
    status: str
    title: str
    actor_id: int | None = None


class CourseCreated(CourseEvent):
    """An instructor created a course (a draft)."""
    name: ClassVar[str] = "course.created.v1"


class CourseUpdated(CourseEvent):
    """A course's details changed; `fields` names them."""
    name: ClassVar[str] = "course.updated.v1"
    fields: list[str] = []


class CourseDeleted(CourseEvent):
    """A course with no learners was deleted for good."""
    name: ClassVar[str] = "course.deleted.v1"


class CourseTransition(CourseEvent):
    action: str
    from_status: str
    reason: str = ""


class CourseSubmitted(CourseTransition):
    """The owner submitted a course for review."""
    name: ClassVar[str] = "course.submitted.v1"


class CourseWithdrawn(CourseTransition):
    """The owner withdrew a course from review (back to draft)."""
    name: ClassVar[str] = "course.withdrawn.v1"


class CoursePublished(CourseTransition):
    """An admin approved a course: it is in the catalogue."""
    name: ClassVar[str] = "course.published.v1"


class CourseRejected(CourseTransition):
    """An admin rejected a course under review; `reason` says why."""
    name: ClassVar[str] = "course.rejected.v1"


class CourseArchived(CourseTransition):
    """A course was archived (hidden from the catalogue, kept for its learners)."""
    name: ClassVar[str] = "course.archived.v1"


class CourseRestored(CourseTransition):
    """An archived course was restored."""
    name: ClassVar[str] = "course.restored.v1"


class ModuleEvent(CourseEvent):
    module_id: int
    module_title: str
    position: int
    kind: str
    release_at: dt.datetime | None = None


class ModuleAdded(ModuleEvent):
    """A module was added to a course."""
    name: ClassVar[str] = "course.module_added.v1"


class ModuleUpdated(ModuleEvent):
    """A module changed; `fields` names what."""
    name: ClassVar[str] = "course.module_updated.v1"
    fields: list[str] = []


class ModuleRemoved(ModuleEvent):
    """A module was deleted from a course."""
    name: ClassVar[str] = "course.module_removed.v1"


class ModulesReordered(CourseEvent):
    """A course's modules were put in a new order."""
    name: ClassVar[str] = "course.modules_reordered.v1"
    module_ids: list[int]


class ImageChanged(CourseEvent):
    """A course's image was replaced or removed (image_key None)."""
    name: ClassVar[str] = "course.image_changed.v1"
    # The storage key names an object in the school's storage: it means nothing outside, and
    # the course's image_url (GET /courses/{id}) is how a school's system reads the image.
    internal_fields: ClassVar[frozenset[str]] = frozenset({"image_key"})
    image_key: str | None = None


class ThumbnailReady(Event):
    """The thumbnail of a course's image is ready."""
    name: ClassVar[str] = "course.thumbnail_ready.v1"
    # Plumbing: a background task's storage keys, nothing a school's system acts on (the
    # image change itself leaves learnplat as course.image_changed.v1).
    published: ClassVar[bool] = False
    course_id: int
    image_key: str
    thumbnail_key: str


class CourseRated(CourseEvent):
    """A learner rated a course (again: `replaced`)."""
    name: ClassVar[str] = "course.rated.v1"
    rating_id: int
    user_id: int
    stars: int
    replaced: bool = False


class RatingReplied(CourseEvent):
    """The owner or an admin replied to a rating."""
    name: ClassVar[str] = "course.rating_replied.v1"
    rating_id: int
    user_id: int


class FeedbackOpened(CourseEvent):
    """A learner opened a feedback thread (a question) on a course."""
    name: ClassVar[str] = "course.feedback_opened.v1"
    thread_id: int
    student_id: int
    subject: str = ""


class FeedbackReplied(CourseEvent):
    """Someone replied in a feedback thread."""
    name: ClassVar[str] = "course.feedback_replied.v1"
    thread_id: int
    message_id: int
    student_id: int


TRANSITION_EVENTS: dict[str, type[CourseTransition]] = {
    "submit": CourseSubmitted, "withdraw": CourseWithdrawn, "approve": CoursePublished,
    "reject": CourseRejected, "archive": CourseArchived, "restore": CourseRestored,
}

EVENTS: list[type[Event]] = [
    CourseCreated, CourseUpdated, CourseDeleted, *TRANSITION_EVENTS.values(), ModuleAdded,
    ModuleUpdated, ModuleRemoved, ModulesReordered, ImageChanged, ThumbnailReady, CourseRated,
    RatingReplied, FeedbackOpened, FeedbackReplied,
]

CREATE = Action("course.create", "An instructor creates a course",
                ("title", "description", "language", "level"))
UPDATE = Action("course.update", "A course's details change", ("course_id", "changes"))
DELETE = Action("course.delete", "A course is deleted or archived", ("course_id",))
TRANSITIONS = {
    name: Action(f"course.{name}", f"A course's status changes by {name!r}",
                 ("course_id", "from_status", "to_status"))
    for name in TRANSITION_EVENTS
}
MODULE_DELETE = Action("course.module_delete", "A module is deleted",
                       ("course_id", "module_id"))
RATE = Action("course.rate", "A learner rates a course", ("course_id", "stars"))
FEEDBACK = Action("course.feedback", "A learner opens a feedback thread", ("course_id",))

ACTIONS = [CREATE, UPDATE, DELETE, *TRANSITIONS.values(), MODULE_DELETE, RATE, FEEDBACK]
