"""Request and response schemas of the courses routes (validation and OpenAPI in one place)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import JsonDict

from learnplat.plugin import PageQuery, Schema

from .api import CourseInfo, Kind, ModuleInfo, Status

if TYPE_CHECKING:
    from .models import Course, CourseTransition, FeedbackMessage, FeedbackThread, Module, Rating

Level = Literal["beginner", "intermediate", "advanced"]
LANGUAGE = r"^[a-zA-Z]{2,3}(-[A-Za-z0-9]{2,8})*$"
_EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)


# The examples of the OpenAPI document (docs/plugins.md, "Examples"): course 42, "Introduction to
# Statistics", taught by Grace Okafor (user 1002), approved by an admin (1000), with four
# modules (6-9); Ada Lovelace (1001) is one of its students, halfway through.
_DESCRIPTION = ("Describe data, reason about chance and read a distribution, then put it "
                "together in a project on a real data set.")
_COURSE: dict[str, Any] = {
    "id": 42, "owner_id": 1002, "title": "Introduction to Statistics", "status": "published",
    "description": _DESCRIPTION, "language": "en", "level": "beginner",
    "tags": ["statistics", "data analysis"], "rejection_reason": "",
    "image_url": "/courses/42/image?v=5d1c9e7a0b3f",
    "thumbnail_url": "/courses/42/thumbnail?v=5d1c9e7a0b3f",
    "rating": {"average": 4.58, "count": 38}, "published_at": "2026-08-25T10:00:00Z",
    "created_at": "2026-08-18T13:20:00Z", "updated_at": "2026-08-25T10:00:00Z"}
_MODULES: list[dict[str, Any]] = [
    {"id": 6, "course_id": 42, "title": "Welcome and course overview", "position": 1,
     "kind": "text", "required": True, "prerequisite_id": None, "release_at": None,
     "estimated_minutes": 5, "released": True,
     "description": "How the course works, and what you will be able to do at the end."},
    {"id": 7, "course_id": 42, "title": "What is a distribution?", "position": 2,
     "kind": "video", "required": True, "prerequisite_id": None, "release_at": None,
     "estimated_minutes": 12, "released": True,
     "description": "Histograms, shape and spread, with a worked example."},
    {"id": 8, "course_id": 42, "title": "Check your understanding", "position": 3,
     "kind": "quiz", "required": True, "prerequisite_id": 7, "release_at": None,
     "estimated_minutes": 15, "released": True,
     "description": "Eight questions on distributions; pass with 70%."},
    {"id": 9, "course_id": 42, "title": "Project: describe a data set", "position": 4,
     "kind": "assignment", "required": True, "prerequisite_id": 8,
     "release_at": "2026-09-07T08:00:00Z", "estimated_minutes": 90, "released": True,
     "description": "Summarise a public data set of your choice in a two-page report."},
]
_THREAD: dict[str, Any] = {
    "id": 31, "course_id": 42, "student_id": 1001, "subject": "Why 5-wide histogram bins?",
    "message_count": 2, "created_at": "2026-09-03T19:10:00Z",
    "last_message_at": "2026-09-04T08:05:00Z"}
_QUESTION = ("In the video the bins are 5 wide, not 10. Would the distribution look "
             "different with 10?")
_ANSWER = ("Good question! Wider bins smooth the shape and can hide a second peak: try both "
           "in the notebook and compare.")
_MESSAGES: list[dict[str, Any]] = [
    {"id": 203, "thread_id": 31, "author_id": 1001, "body": _QUESTION,
     "created_at": "2026-09-03T19:10:00Z"},
    {"id": 204, "thread_id": 31, "author_id": 1002, "body": _ANSWER,
     "created_at": "2026-09-04T08:05:00Z"}]
_RATING: dict[str, Any] = {
    "id": 77, "course_id": 42, "user_id": 1001, "stars": 5,
    "comment": "Clear explanations, and the project made it click.",
    "reply": {"body": "Thank you, Ada! The project is my favourite part too.",
              "author_id": 1002, "created_at": "2026-09-06T09:12:00Z"},
    "created_at": "2026-09-05T20:03:00Z", "updated_at": "2026-09-05T20:03:00Z"}


def _extra(*examples: Any) -> JsonDict:
    """A json_schema_extra with the document's examples of the model."""
    return {"examples": list(examples)}


def _examples(*examples: Any) -> ConfigDict:
    """A model_config with the document's examples of the model."""
    return ConfigDict(json_schema_extra=_extra(*examples))


# What _check_tags accepts (after the stripping every request string gets).
_TAG_SCHEMA: JsonDict = {"type": "string", "minLength": 1, "maxLength": 40, "not": {"pattern": ","}}


def _check_tags(tags: list[str] | None) -> list[str] | None:
    if tags is None:
        return None
    for tag in tags:
        if not tag or len(tag) > 40 or "," in tag:
            raise ValueError("each tag is 1 to 40 characters, without commas")
    return tags


class CourseIn(Schema):
    model_config = _examples({"title": "Introduction to Statistics", "description": _DESCRIPTION,
                              "language": "en", "level": "beginner",
                              "tags": ["statistics", "data analysis"]})

    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=20_000)
    language: str = Field("en", min_length=2, max_length=16, pattern=LANGUAGE)
    level: Level = "beginner"
    tags: list[str] = Field(default_factory=list, max_length=20,
                            json_schema_extra={"items": _TAG_SCHEMA})

    @field_validator("tags")
    @classmethod
    def check_tags(cls, v: list[str] | None) -> list[str] | None:
        return _check_tags(v)


class CoursePatch(Schema):
    """Fields to change; absent fields stay as they are."""

    model_config = _examples({"description": _DESCRIPTION,
                              "tags": ["statistics", "data analysis", "probability"]})
    omit_not_null = ("title", "description", "language", "level")

    title: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=20_000)
    language: str | None = Field(None, min_length=2, max_length=16, pattern=LANGUAGE)
    level: Level | None = None
    tags: list[str] | None = Field(None, max_length=20,
                                   json_schema_extra={"items": _TAG_SCHEMA})

    @field_validator("tags")
    @classmethod
    def check_tags(cls, v: list[str] | None) -> list[str] | None:
        return _check_tags(v)

    @field_validator("title", "description", "language", "level")
    @classmethod
    def _not_null(cls, v: Any) -> Any:
        if v is None:
            raise ValueError("may be omitted but not null")
        return v


class RejectIn(Schema):
    model_config = _examples({"reason": "Please describe how the final project is graded."})

    reason: str = Field(min_length=1, max_length=2000)


def _release_at(v: dt.datetime | None) -> dt.datetime | None:
    if v is None:
        return None
    if v.tzinfo is None:  # a naive time is read as UTC
        v = v.replace(tzinfo=dt.UTC)
    v = v.astimezone(dt.UTC)
    if not _EARLIEST <= v < _LATEST:
        raise ValueError("release_at must be between 2000 and 2200")
    return v


class ModuleIn(Schema):
    model_config = _examples({"title": "What is a distribution?",
                              "description": "Histograms, shape and spread, with a worked "
                                             "example.",
                              "kind": "video", "estimated_minutes": 12, "required": True})

    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=20_000)
    position: int | None = Field(None, ge=1, le=10_000,
                                 description="1-based; omitted: after the last module.")
    kind: Kind = "text"
    estimated_minutes: int = Field(0, ge=0, le=100_000)
    required: bool = True
    prerequisite_id: int | None = Field(None, ge=1, le=2**31 - 1,
                                        description="A module of the same course.")
    release_at: dt.datetime | None = Field(None, description="Drip release time (UTC).")

    @field_validator("release_at")
    @classmethod
    def check_release_at(cls, v: dt.datetime | None) -> dt.datetime | None:
        return _release_at(v)


class ModulePatch(Schema):
    """Fields to change; absent fields stay; prerequisite_id and release_at accept null."""

    model_config = _examples({"estimated_minutes": 90, "prerequisite_id": 8,
                              "release_at": "2026-09-07T08:00:00Z"})

    omit_not_null = ("title", "description", "position", "kind", "estimated_minutes",
                     "required")

    title: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=20_000)
    position: int | None = Field(None, ge=1, le=10_000)
    kind: Kind | None = None
    estimated_minutes: int | None = Field(None, ge=0, le=100_000)
    required: bool | None = None
    prerequisite_id: int | None = Field(None, ge=1, le=2**31 - 1)
    release_at: dt.datetime | None = None

    @field_validator("release_at")
    @classmethod
    def check_release_at(cls, v: dt.datetime | None) -> dt.datetime | None:
        return _release_at(v)

    @field_validator("title", "description", "position", "kind", "estimated_minutes",
                     "required")
    @classmethod
    def _not_null(cls, v: Any) -> Any:
        if v is None:
            raise ValueError("may be omitted but not null")
        return v


class ModuleOrderIn(Schema):
    model_config = _examples({"module_ids": [6, 7, 8, 9]})

    module_ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] = Field(
        max_length=10_000, json_schema_extra={"uniqueItems": True},
                                  description="Every module id of the course, in the new order.")


class ModuleOut(ModuleInfo):
    model_config = _examples(_MODULES[1])

    description: str
    released: bool = True  # whether drip release had made it available when answered

    @classmethod
    def of(cls, m: Module, now: dt.datetime | None = None) -> ModuleOut:
        now = now or dt.datetime.now(dt.UTC)
        return cls(id=m.id, course_id=m.course_id, title=m.title, description=m.description,
                   position=m.position, kind=cast(Kind, m.kind),  # a CharField of these
                   estimated_minutes=m.estimated_minutes, required=m.required,
                   prerequisite_id=m.prerequisite_id, release_at=m.release_at,
                   released=m.release_at is None or m.release_at <= now)


class ModuleList(BaseModel):
    model_config = _examples({"items": _MODULES})

    items: list[ModuleOut]


class RatingSummary(BaseModel):
    average: float | None
    count: int


def _image_url(course_id: int, key: str, which: str) -> str | None:
    # The key's random part versions the URL, so caches never serve a replaced image.
    return f"/courses/{course_id}/{which}?v={key.rsplit('-', 1)[-1].split('.')[0]}" if key \
        else None


class CourseOut(CourseInfo):
    # A course as the API shows it: its CourseInfo (id, owner_id, title, status) and more. (A
    # comment, not a docstring: a docstring would be the schema's OpenAPI description.)
    model_config = _examples(_COURSE)

    description: str
    language: str
    level: Level
    tags: list[str]
    rejection_reason: str = ""
    image_url: str | None = None
    thumbnail_url: str | None = None
    rating: RatingSummary
    published_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, c: Course, tags: list[str], **more: Any) -> Self:
        """The course `c` with its `tags`; `more`: the fields a subclass adds (modules)."""
        count = c.rating_count or 0
        return cls(
            # status and level: CharFields that hold only these values
            id=c.id, owner_id=c.owner_id, title=c.title, status=cast(Status, c.status),
            description=c.description, language=c.language, level=cast(Level, c.level),
            tags=tags,
            rejection_reason=c.rejection_reason,
            image_url=_image_url(c.id, c.image_key, "image"),
            thumbnail_url=_image_url(c.id, c.thumbnail_key, "thumbnail"),
            rating=RatingSummary(count=count,
                                 average=round(c.rating_sum / count, 2) if count else None),
            published_at=c.published_at, created_at=c.created_at, updated_at=c.updated_at,
            **more)


class CourseDetail(CourseOut):
    modules: list[ModuleOut] = []
    # Plugins add keys (course_detail_extras): here progress and enrollment, as a student sees
    # the page.
    model_config = ConfigDict(extra="allow", json_schema_extra=_extra({
        **_COURSE, "modules": _MODULES,
        "progress": {"percent": 50.0, "completed": False, "completed_modules": 2,
                     "required_modules": 4, "completed_at": None,
                     "last_activity_at": "2026-09-03T18:45:00Z"},
        "enrollment": {"status": "active", "enrollment_id": 501, "open": True,
                       "seats_left": None, "opens_at": None, "closes_at": None}}))


class CoursePage(BaseModel):
    items: list[CourseOut]
    next_cursor: str | None


class CourseQuery(PageQuery):
    q: str | None = Field(None, max_length=200, description="Search title and description.")
    tag: str | None = Field(None, max_length=40)
    level: Level | None = None
    language: str | None = Field(None, max_length=16)
    instructor: int | None = Field(None, ge=1, le=2**31 - 1, description="Owner user id.")
    status: Status | None = None


class TransitionOut(BaseModel):
    model_config = _examples({
        "id": 311, "course_id": 42, "action": "approve", "from_status": "pending_review",
        "to_status": "published", "actor_id": 1000, "reason": "",
        "created_at": "2026-08-25T10:00:00Z"})

    id: int
    course_id: int
    action: str
    from_status: Status
    to_status: Status
    actor_id: int | None
    reason: str
    created_at: dt.datetime

    @classmethod
    def of(cls, t: CourseTransition) -> TransitionOut:
        return cls(id=t.id, course_id=t.course_id, action=t.action,
                   from_status=cast(Status, t.from_status), to_status=cast(Status, t.to_status),
                   actor_id=t.actor_id, reason=t.reason, created_at=t.created_at)


class TransitionPage(BaseModel):
    model_config = _examples({"items": [
        {"id": 310, "course_id": 42, "action": "submit", "from_status": "draft",
         "to_status": "pending_review", "actor_id": 1002, "reason": "",
         "created_at": "2026-08-24T16:45:00Z"},
        {"id": 311, "course_id": 42, "action": "approve", "from_status": "pending_review",
         "to_status": "published", "actor_id": 1000, "reason": "",
         "created_at": "2026-08-25T10:00:00Z"}], "next_cursor": None})

    items: list[TransitionOut]
    next_cursor: str | None


class RatingIn(Schema):
    model_config = _examples({"stars": 5,
                              "comment": "Clear explanations, and the project made it click."})

    stars: int = Field(ge=1, le=5)
    comment: str = Field("", max_length=5000)


class ReplyIn(Schema):
    model_config = _examples({"body": "Thank you, Ada! The project is my favourite part too."})

    body: str = Field(max_length=5000, description="An empty body removes the reply.")


class RatingReply(BaseModel):
    body: str
    author_id: int | None
    created_at: dt.datetime | None


class RatingOut(BaseModel):
    model_config = _examples(_RATING)

    id: int
    course_id: int
    user_id: int
    stars: int
    comment: str
    reply: RatingReply | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, r: Rating) -> RatingOut:
        return cls(id=r.id, course_id=r.course_id, user_id=r.user_id, stars=r.stars,
                   comment=r.comment,
                   reply=RatingReply(body=r.reply, author_id=r.reply_by,
                                     created_at=r.replied_at) if r.reply else None,
                   created_at=r.created_at, updated_at=r.updated_at)


class RatingPage(BaseModel):
    items: list[RatingOut]
    next_cursor: str | None


class ThreadIn(Schema):
    model_config = _examples({"subject": "Why 5-wide histogram bins?", "body": _QUESTION})

    subject: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=10_000)


class MessageIn(Schema):
    model_config = _examples({"body": _ANSWER})

    body: str = Field(min_length=1, max_length=10_000)


class MessageOut(BaseModel):
    model_config = _examples(_MESSAGES[1])

    id: int
    thread_id: int
    author_id: int
    body: str
    created_at: dt.datetime

    @classmethod
    def of(cls, m: FeedbackMessage) -> MessageOut:
        return cls(id=m.id, thread_id=m.thread_id, author_id=m.author_id, body=m.body,
                   created_at=m.created_at)


class ThreadOut(BaseModel):
    model_config = _examples(_THREAD)

    id: int
    course_id: int
    student_id: int
    subject: str
    message_count: int
    created_at: dt.datetime
    last_message_at: dt.datetime

    @classmethod
    def of(cls, t: FeedbackThread, **more: Any) -> Self:
        """The thread `t`; `more`: the fields a subclass adds (ThreadDetail's messages)."""
        return cls(id=t.id, course_id=t.course_id, student_id=t.student_id, subject=t.subject,
                   message_count=t.message_count, created_at=t.created_at,
                   last_message_at=t.last_message_at, **more)


class ThreadDetail(ThreadOut):
    model_config = _examples({**_THREAD, "messages": _MESSAGES})

    messages: list[MessageOut]


class ThreadPage(BaseModel):
    items: list[ThreadOut]
    next_cursor: str | None


def _drop_off(module: dict[str, Any], completed: int, stopped: int) -> dict[str, Any]:
    return {"module_id": module["id"], "title": module["title"],
            "position": module["position"], "required": module["required"],
            "completed": completed, "completion_rate": round(completed / 60, 2),
            "learners": stopped}


# Course 42 with 60 active learners (4 dropped): 15 have finished, the others stopped at
# one module or another (`learners`: how many are at that module now).
_DROP_OFF = [_drop_off(m, done, stopped) for m, done, stopped in zip(
    _MODULES, (58, 49, 31, 15), (2, 9, 18, 16), strict=True)]
_ANALYTICS: dict[str, Any] = {
    "course_id": 42, "status": "published",
    "enrollments": {"total": 64, "active": 60, "dropped": 4, "over_time": [
        {"date": "2026-09-01", "count": 41, "dropped": 0},
        {"date": "2026-09-02", "count": 23, "dropped": 4}]},
    "completion_rate": 0.25, "average_progress": 58.3, "average_quiz_score": 81.5,
    "ratings": {"count": 38, "average": 4.58,
                "distribution": {"1": 0, "2": 1, "3": 2, "4": 9, "5": 26}},
    "drop_off": _DROP_OFF,
    "modules": [{"module_id": m["id"], "title": m["title"], "position": m["position"]}
                for m in _MODULES],
    "feedback": {"threads": 5, "messages": 12},
    "progress": {"learners": 60, "completed_learners": 15, "completion_rate": 0.25,
                 "average_progress": 58.3, "modules": _DROP_OFF}}


class EnrollmentsSection(BaseModel):
    model_config = ConfigDict(extra="allow")
    total: int = 0
    active: int = 0
    over_time: list[dict[str, Any]] = []


class RatingsSection(BaseModel):
    count: int
    average: float | None
    distribution: dict[str, int]


class AnalyticsOut(BaseModel):
    """Sections owned by other plugins come through the course_analytics hook; with no plugin
    answering they are null, 0 or empty."""

    # Plugins add sections (course_analytics): here the progress plugin's.
    model_config = ConfigDict(extra="allow", json_schema_extra=_extra(_ANALYTICS))
    course_id: int
    status: Status
    enrollments: EnrollmentsSection
    completion_rate: float | None = Field(None, description="0..1 of enrolled students.")
    average_progress: float | None = Field(None, description="Percent, 0..100.")
    average_quiz_score: float | None = Field(None, description="Percent, 0..100.")
    ratings: RatingsSection
    drop_off: list[dict[str, Any]] = Field(
        default_factory=list, description="Per module: how many learners stopped there.")
    modules: list[dict[str, Any]]
    feedback: dict[str, int]
