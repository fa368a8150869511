"""The courses plugin's contract with other plugins: ``runtime.service(COURSES)`` is a
``CoursesAPI``; what crosses the boundary is plain frozen data (a Record), never a database
row. Every call acts in the current tenant and transaction. Events:
``learnplat_courses.events``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Literal, Protocol, TypeVar, get_args

from learnplat.plugin import Principal, Record, ServiceKey

Status = Literal["draft", "pending_review", "published", "rejected", "archived"]
# "lti": an external tool launched with LTI 1.3 (the lti plugin takes such a module over).
Kind = Literal["video", "text", "quiz", "assignment", "lti", "other"]
MODULE_KINDS: tuple[Kind, ...] = get_args(Kind)

# Generations (learnplat.answers) of what GET /courses and GET /courses/{id} show.
# CATALOGUE_GENERATION: the tenant's courses, their modules, tags, images and ratings; the
# courses plugin bumps it on every change to them. A plugin whose extras change for every
# caller of a course at once (the enrollment plugin's rules) bumps it too.
CATALOGUE_GENERATION = "courses.catalogue"
# LEARNER_GENERATION, per user: what the course_detail_extras of one caller show (their
# enrollment, progress, certificate). A plugin bumps it for the user in every transaction that
# changes its extras for them: bump_generation(runtime, LEARNER_GENERATION, user_id=...).
LEARNER_GENERATION = "courses.learner"

_Hook = TypeVar("_Hook", bound=Callable[..., object])


def cacheable_detail_extras(hook: _Hook) -> _Hook:
    """Mark a course_detail_extras implementation whose answer for a caller changes only when
    CATALOGUE_GENERATION or the caller's LEARNER_GENERATION is bumped, or at a time it
    declares while it runs (``valid_until``). When every implementation is so marked, the
    course page is kept per caller and served without a query until then; one unmarked
    implementation (an older plugin) makes every page computed afresh. Since 0.2."""
    hook.learnplat_cacheable = True  # type: ignore[attr-defined]  # a mark on the function: Callable declares no attributes
    return hook


class CourseInfo(Record):
    id: int
    owner_id: int
    title: str
    status: Status


class ModuleInfo(Record):
    id: int
    course_id: int
    title: str
    position: int
    kind: Kind
    required: bool
    prerequisite_id: int | None
    release_at: dt.datetime | None
    estimated_minutes: int

    def is_released(self, now: dt.datetime | None = None) -> bool:
        """Whether drip release has made the module available (always, with no release_at)."""
        return self.release_at is None or self.release_at <= (now or dt.datetime.now(dt.UTC))


class CoursesAPI(Protocol):
    def get_course(self, course_id: int) -> CourseInfo | None:
        """A course by id whatever its status (no visibility check); None if unknown."""

    def get_courses(self, course_ids: list[int]) -> dict[int, CourseInfo]:
        """Courses by id in one query; unknown ids are left out. No visibility check."""

    def visible_course(self, course_id: int, principal: Principal | None) -> CourseInfo:
        """The course if `principal` may see it (None: an anonymous visitor), else NotFound."""

    def owned_course(self, course_id: int, principal: Principal,
                     permission: str = "course.update") -> CourseInfo:
        """The course when `principal` holds `permission` on it (its owner instructor, or an
        admin); NotFound when they cannot see it, PermissionDenied when they see but may not
        act. Takes the course's row lock on PostgreSQL (call it inside a transaction)."""

    def list_modules(self, course_id: int) -> list[ModuleInfo]:
        """A course's modules in order."""

    def get_module(self, course_id: int, module_id: int) -> ModuleInfo:
        """A module of the course, else NotFound."""

    def set_module_kind(self, course_id: int, module_id: int, kind: str,
                        estimated_minutes: int | None = None) -> ModuleInfo:
        """Make a module a `kind` module (a quiz or video plugin takes it over), optionally
        with its length; records course.module_updated.v1. No permission check: the caller
        has checked ``owned_course`` in the same transaction."""

    def add_module(self, course_id: int, title: str, kind: str, description: str = "",
                   required: bool = True, estimated_minutes: int = 0) -> ModuleInfo:
        """A new module at the end of the course (LTI Deep Linking places tools this way);
        records course.module_added.v1. No permission check: the caller has checked
        ``owned_course`` in the same transaction. Since 0.3."""

    def published_courses(self, after_id: int = 0, limit: int = 100) -> list[CourseInfo]:
        """The school's published courses with ids above `after_id`, ascending, at most
        `limit` (an LTI content picker; a page through the whole catalogue). Since 0.3."""


COURSES: ServiceKey[CoursesAPI] = ServiceKey("courses", CoursesAPI)
