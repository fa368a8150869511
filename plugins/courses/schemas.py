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
    module_ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] = Field(
        max_length=10_000, json_schema_extra={"uniqueItems": True},
                                  description="Every module id of the course, in the new order.")


class ModuleOut(ModuleInfo):
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
    model_config = ConfigDict(extra="allow")  # plugins add keys (progress...)


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
    items: list[TransitionOut]
    next_cursor: str | None


class RatingIn(Schema):
    stars: int = Field(ge=1, le=5)
    comment: str = Field("", max_length=5000)


class ReplyIn(Schema):
    body: str = Field(max_length=5000, description="An empty body removes the reply.")


class RatingReply(BaseModel):
    body: str
    author_id: int | None
    created_at: dt.datetime | None


class RatingOut(BaseModel):
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
    subject: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=10_000)


class MessageIn(Schema):
    body: str = Field(min_length=1, max_length=10_000)


class MessageOut(BaseModel):
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
    messages: list[MessageOut]


class ThreadPage(BaseModel):
    items: list[ThreadOut]
    next_cursor: str | None


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

    model_config = ConfigDict(extra="allow")
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
