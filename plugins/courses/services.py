"""Course lifecycle, catalogue and modules. Imports nothing from Falcon.

Visibility in one place (`_visible`): students see published courses, instructors also their
own, admins everything. Ownership in one place: ``principal.require(perm, owner_id=...)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import peewee

from learnplat import db
from learnplat.auth import Principal
from learnplat.errors import Conflict, NotFound, ValidationFailed
from learnplat.models import utcnow

from .api import CourseInfo, ModuleInfo
from .models import Course, CourseTag, CourseTransition, Module

if TYPE_CHECKING:
    from learnplat.runtime import Runtime

# status -> {action: new status}
TRANSITIONS: dict[str, dict[str, str]] = {
    "draft": {"submit": "pending_review", "archive": "archived"},
    "rejected": {"submit": "pending_review", "archive": "archived"},
    "pending_review": {"approve": "published", "reject": "rejected"},
    "published": {"archive": "archived"},
    "archived": {"restore": "published"},
}
TRANSITION_PERMISSION = {"submit": "course.submit", "approve": "course.review",
                         "reject": "course.review", "archive": "course.archive",
                         "restore": "course.review"}
EVENT_FOR = {"pending_review": "course.submitted.v1", "published": "course.published.v1",
             "rejected": "course.rejected.v1", "archived": "course.archived.v1"}


def course_info(c: Course) -> CourseInfo:
    return CourseInfo(id=c.id, owner_id=c.owner_id, title=c.title, status=c.status)


def module_info(m: Module) -> ModuleInfo:
    return ModuleInfo(id=m.id, course_id=m.course_id, title=m.title, position=m.position,
                      kind=m.kind, required=m.required, prerequisite_id=m.prerequisite_id,
                      release_at=m.release_at)


class CoursesService:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    # -- for other plugins ---------------------------------------------------------------------

    def get_course(self, course_id: int) -> CourseInfo | None:
        c = Course.get_or_none(Course.id == course_id)
        return course_info(c) if c else None

    def get_courses(self, course_ids: list[int]) -> dict[int, CourseInfo]:
        """Courses by id in one query (unknown ids are left out), for lists that show many
        courses (a learner's enrollments). No visibility check. Since 0.1."""
        ids = list(dict.fromkeys(course_ids))
        found: dict[int, CourseInfo] = {}
        for start in range(0, len(ids), 500):
            for c in Course.select().where(Course.id.in_(ids[start:start + 500])):
                found[c.id] = course_info(c)
        return found

    def list_modules(self, course_id: int) -> list[ModuleInfo]:
        q = Module.select().where(Module.course == course_id).order_by(Module.position, Module.id)
        return [module_info(m) for m in q]

    def get_module(self, course_id: int, module_id: int) -> ModuleInfo:
        m = Module.get_or_none((Module.id == module_id) & (Module.course == course_id))
        if m is None:
            raise NotFound("no such module in this course")
        return module_info(m)

    def visible_course(self, course_id: int, principal: Principal | None) -> CourseInfo:
        """The course if `principal` may see it, else NotFound (the contract's 404 rule)."""
        return course_info(self._visible(course_id, principal))

    # -- visibility --------------------------------------------------------------------------

    def enrollment_status(self, course_id: int, user_id: Any) -> str | None:
        return self.runtime.hook.course_enrollment_status(
            runtime=self.runtime, course_id=course_id, user_id=user_id)

    def _visible(self, course_id: int, principal: Principal | None) -> Course:
        course = Course.get_or_none(Course.id == course_id)
        if course is None:
            raise NotFound("no such course")
        if course.status == "published":
            return course
        if principal is not None:
            if principal.can("course.update", owner_id=course.owner_id):
                return course
            # An enrolled learner keeps access to an archived course (and their progress).
            if course.status == "archived" and self.enrollment_status(
                    course.id, principal.user_id) is not None:
                return course
        raise NotFound("no such course")

    def catalogue(self, principal: Principal | None) -> peewee.ModelSelect:
        """Courses the caller may list: published, plus own (instructors), all (admins)."""
        query = Course.select()
        if principal is not None and principal.grants.get("course.update") == "any":
            return query
        visible = Course.status == "published"
        if principal is not None and principal.grants.get("course.update") == "own":
            visible |= Course.owner_id == principal.user_id
        return query.where(visible)

    def search(self, query: peewee.ModelSelect, text: str) -> peewee.ModelSelect:
        text = text.strip()
        if not text:
            return query
        if db.is_postgres():
            vector = peewee.fn.to_tsvector(
                "simple", Course.title.concat(" ").concat(Course.description))
            return query.where(
                peewee.Expression(vector, "@@", peewee.fn.plainto_tsquery("simple", text)))
        like = f"%{text}%"
        return query.where(Course.title ** like | Course.description ** like)

    # -- changes -----------------------------------------------------------------------------

    def create(self, principal: Principal, data: dict[str, Any]) -> Course:
        tags = data.pop("tags", [])
        with db.transaction():
            self.runtime.before("course.create", self._tenant(), principal, **data)
            course = Course.create(owner_id=principal.user_id, **data)
            self._set_tags(course, tags)
            self._event("course.created.v1", course, principal)
        return course

    def update(self, principal: Principal, course_id: int, data: dict[str, Any]) -> Course:
        with db.transaction():
            course = self._visible(course_id, principal)
            principal.require("course.update", owner_id=course.owner_id)
            tags = data.pop("tags", None)
            for key, value in data.items():
                setattr(course, key, value)
            course.updated_at = utcnow()
            course.save()
            if tags is not None:
                self._set_tags(course, tags)
            self._event("course.updated.v1", course, principal)
        return course

    def delete(self, principal: Principal, course_id: int) -> str:
        """Delete a course; one with learners is archived instead. Returns what happened."""
        with db.transaction():
            course = self._visible(course_id, principal)
            principal.require("course.delete", owner_id=course.owner_id)
            has_learners = any(self.runtime.hook.course_has_learners(
                runtime=self.runtime, course_id=course.id))
            if has_learners:
                if course.status != "archived":
                    self._transition(course, "archived", principal, "deleted with learners")
                return "archived"
            self._event("course.deleted.v1", course, principal)
            Module.update(prerequisite=None).where(Module.course == course.id).execute()
            Module.delete().where(Module.course == course.id).execute()
            CourseTag.delete().where(CourseTag.course == course.id).execute()
            CourseTransition.delete().where(CourseTransition.course == course.id).execute()
            course.delete_instance()
            return "deleted"

    def act(self, principal: Principal, course_id: int, action: str, reason: str = "") -> Course:
        with db.transaction():
            course = self._visible(course_id, principal)
            principal.require(TRANSITION_PERMISSION[action], owner_id=course.owner_id)
            target = TRANSITIONS.get(course.status, {}).get(action)
            if target is None:
                raise Conflict(f"cannot {action} a course that is {course.status}",
                               code="invalid_transition", current_status=course.status)
            if action == "reject" and not reason.strip():
                raise ValidationFailed.field("reason", "a reason is required", "missing")
            self._transition(course, target, principal, reason)
        return course

    def _transition(self, course: Course, target: str, principal: Principal | None,
                    reason: str) -> None:
        self.runtime.before(f"course.{target}", self._tenant(), principal, course_id=course.id)
        CourseTransition.create(course=course.id, from_status=course.status, to_status=target,
                                actor_id=principal.user_id if principal else None,
                                reason=reason)
        course.status = target
        course.rejection_reason = reason if target == "rejected" else ""
        if target == "published" and course.published_at is None:
            course.published_at = utcnow()
        course.updated_at = utcnow()
        course.save()
        self._event(EVENT_FOR.get(target, f"course.{target}.v1"), course, principal,
                    reason=reason)

    # -- modules -----------------------------------------------------------------------------

    def add_module(self, principal: Principal, course_id: int, data: dict[str, Any]) -> Module:
        with db.transaction():
            course = self._visible(course_id, principal)
            principal.require("course.update", owner_id=course.owner_id)
            prereq = data.get("prerequisite_id")
            if prereq is not None and not Module.select().where(
                    (Module.id == prereq) & (Module.course == course.id)).exists():
                raise ValidationFailed.field("prerequisite_id", "no such module in this course")
            if data.get("position") is None:
                last = (Module.select(peewee.fn.MAX(Module.position))
                        .where(Module.course == course.id).scalar())
                data["position"] = (last or 0) + 1
            data["prerequisite"] = data.pop("prerequisite_id", None)
            module = Module.create(course=course.id, **data)
            self._event("course.module_added.v1", course, principal, module_id=module.id,
                        module_title=module.title)
        return module

    def delete_module(self, principal: Principal, course_id: int, module_id: int) -> None:
        with db.transaction():
            course = self._visible(course_id, principal)
            principal.require("course.update", owner_id=course.owner_id)
            module = Module.get_or_none((Module.id == module_id) & (Module.course == course.id))
            if module is None:
                raise NotFound("no such module in this course")
            Module.update(prerequisite=None).where(Module.prerequisite == module.id).execute()
            module.delete_instance()
            self._event("course.module_removed.v1", course, principal, module_id=module_id)

    # -- helpers -----------------------------------------------------------------------------

    def tags_of(self, course_ids: list[int]) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {cid: [] for cid in course_ids}
        if course_ids:
            for row in CourseTag.select().where(CourseTag.course.in_(course_ids)).order_by(
                    CourseTag.tag):
                out[row.course_id].append(row.tag)
        return out

    def _set_tags(self, course: Course, tags: list[str]) -> None:
        wanted = sorted({t.strip().lower() for t in tags if t.strip()})
        CourseTag.delete().where(CourseTag.course == course.id).execute()
        if wanted:
            CourseTag.insert_many([{"course": course.id, "tag": t} for t in wanted]).execute()

    def _tenant(self) -> Any:
        from learnplat.tenancy import current_tenant

        return current_tenant()

    def _event(self, name: str, course: Course, principal: Principal | None, **extra: Any
               ) -> None:
        self.runtime.events.record(name, {
            "course_id": course.id, "owner_id": course.owner_id, "status": course.status,
            "title": course.title, "actor_id": principal.user_id if principal else None,
            **extra,
        })
