"""Course lifecycle, catalogue and modules. Imports nothing from Falcon.

Visibility in one place (`_visible`): students see published courses, instructors also their
own, admins everything. Ownership in one place: ``principal.require(perm, owner_id=...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import peewee

from learnplat.plugin import (
    Conflict,
    NotFound,
    Principal,
    TenantInfo,
    ValidationFailed,
    bump_generation,
    current_tenant,
    db,
    utcnow,
)

from . import events as ev
from .api import CATALOGUE_GENERATION, MODULE_KINDS, CourseInfo, Kind, ModuleInfo, Status
from .models import Course, CourseTag, CourseTransition, Module

if TYPE_CHECKING:
    from learnplat.plugin import Runtime

# status -> {action: new status}. "restore" goes back to published only when the course was
# published before it was archived (see _restore_target); otherwise to draft, through review.
TRANSITIONS: dict[str, dict[str, str]] = {
    "draft": {"submit": "pending_review", "archive": "archived"},
    "rejected": {"submit": "pending_review", "archive": "archived"},
    "pending_review": {"approve": "published", "reject": "rejected", "withdraw": "draft",
                       "archive": "archived"},
    "published": {"archive": "archived"},
    "archived": {"restore": "published"},
}
ACTIONS = ("submit", "withdraw", "approve", "reject", "archive", "restore")
TRANSITION_PERMISSION = {"submit": "course.submit", "withdraw": "course.submit",
                         "approve": "course.review", "reject": "course.review",
                         "archive": "course.archive", "restore": "course.restore"}

MAX_ID = 2**31 - 1

# An If-Match check (learnplat.plugin.conditional.precondition) that a change runs once it
# holds the course's row lock: 412 when the caller's copy is stale, before anything is written.
Precondition = Callable[[], None] | None

# The tenant setting (tenants/<slug>.toml, [settings.courses] catalogue = "private") that
# closes a school's catalogue to visitors without a token.
CATALOGUE_SETTING = "courses.catalogue"


def catalogue_is_public(tenant: TenantInfo) -> bool:
    """Whether visitors without a token may browse the school's published courses: yes unless
    its setting says otherwise. Any value but "public" (a typo too) keeps it private: a
    mistake shows as a closed shop window, never as an open one the school did not want."""
    return tenant.setting(CATALOGUE_SETTING, "public") == "public"


def valid_id(value: Any) -> bool:
    """Whether `value` can be a row id (ids from URLs may be any integer: 404, not overflow)."""
    return isinstance(value, int) and 0 < value <= MAX_ID


def course_info(c: Course) -> CourseInfo:
    # status: a CharField that holds only these values (the Record validates it too)
    return CourseInfo(id=c.id, owner_id=c.owner_id, title=c.title,
                      status=cast(Status, c.status))


def module_info(m: Module) -> ModuleInfo:
    return ModuleInfo(id=m.id, course_id=m.course_id, title=m.title, position=m.position,
                      kind=cast(Kind, m.kind),  # a CharField of MODULE_KINDS
                      required=m.required, prerequisite_id=m.prerequisite_id,
                      release_at=m.release_at, estimated_minutes=m.estimated_minutes)


def search_matches(text: str) -> Any:
    """Ids of courses whose title or description match `text` (PostgreSQL full-text search on
    the GIN-indexed courses_search table of migration 0001; callers scope by tenant)."""
    return peewee.SQL(
        "(SELECT course_id FROM courses_search "
        "WHERE document @@ plainto_tsquery('simple'::regconfig, %s))", [text])



class CoursesService:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    # -- for other plugins (stable) ----------------------------------------------------------

    def get_course(self, course_id: int) -> CourseInfo | None:
        if not valid_id(course_id):
            return None
        c = Course.get_or_none(Course.id == course_id)
        return course_info(c) if c else None

    def published_courses(self, after_id: int = 0, limit: int = 100) -> list[CourseInfo]:
        """CoursesAPI.published_courses."""
        query = (Course.select().where((Course.status == "published") & (Course.id > after_id))
                 .order_by(Course.id).limit(max(0, min(limit, 1000))))
        return [course_info(c) for c in query]

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
        return [module_info(m) for m in self._modules(course_id)]

    def get_module(self, course_id: int, module_id: int) -> ModuleInfo:
        if not (valid_id(course_id) and valid_id(module_id)):
            raise NotFound("no such module in this course")
        m = Module.get_or_none((Module.id == module_id) & (Module.course == course_id))
        if m is None:
            raise NotFound("no such module in this course")
        return module_info(m)

    def visible_course(self, course_id: int, principal: Principal | None) -> CourseInfo:
        """The course if `principal` may see it, else NotFound (the contract's 404 rule)."""
        return course_info(self._visible(course_id, principal))

    def owned_course(self, course_id: int, principal: Principal,
                     permission: str = "course.update") -> CourseInfo:
        return course_info(self.owned(course_id, principal, permission))

    def set_module_kind(self, course_id: int, module_id: int, kind: str,
                        estimated_minutes: int | None = None) -> ModuleInfo:
        if kind not in MODULE_KINDS:
            raise ValueError(f"unknown module kind {kind!r}")
        course = Course.get_or_none(Course.id == course_id) if valid_id(course_id) else None
        if course is None:
            raise NotFound("no such course")
        module = Module.get_or_none((Module.id == module_id) & (Module.course == course.id)
                                    ) if valid_id(module_id) else None
        if module is None:
            raise NotFound("no such module in this course")
        fields = ["kind"]
        module.kind = kind
        if estimated_minutes is not None:
            module.estimated_minutes = estimated_minutes
            fields.append("estimated_minutes")
        module.updated_at = utcnow()
        module.save()
        self._event(ev.ModuleUpdated, course, None, fields=fields,
                    **self._module_payload(module))
        return module_info(module)

    def add_module_for(self, course_id: int, title: str, kind: str, description: str = "",
                       required: bool = True, estimated_minutes: int = 0) -> ModuleInfo:
        """CoursesAPI.add_module: the caller checked owned_course (and holds its lock)."""
        if kind not in MODULE_KINDS:
            raise ValueError(f"unknown module kind {kind!r}")
        course = Course.get_or_none(Course.id == course_id) if valid_id(course_id) else None
        if course is None:
            raise NotFound("no such course")
        count = Module.select().where(Module.course == course.id).count()
        module = Module.create(course=course.id, position=count + 1, title=title[:200],
                               kind=kind, description=description, required=required,
                               estimated_minutes=estimated_minutes)
        self._touch(course)
        self._event(ev.ModuleAdded, course, None, **self._module_payload(module))
        return module_info(module)

    # -- visibility --------------------------------------------------------------------------

    def enrollment_status(self, course_id: int, user_id: Any) -> str | None:
        return self.runtime.hook.course_enrollment_status(
            runtime=self.runtime, course_id=course_id, user_id=user_id)

    def _visible(self, course_id: int, principal: Principal | None, lock: bool = False
                 ) -> Course:
        if not valid_id(course_id):
            raise NotFound("no such course")
        query = Course.select().where(Course.id == course_id)
        if lock and db.is_postgres():
            # Serialises changes to one course (module positions, status, rating totals).
            query = query.for_update()
        course = query.first()
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

    def owned(self, course_id: int, principal: Principal, permission: str = "course.update",
              lock: bool = True) -> Course:
        """The course, when `principal` may `permission` it (owner or admin); else 404/403."""
        course = self._visible(course_id, principal, lock=lock)
        principal.require(permission, owner_id=course.owner_id)
        return course

    def catalogue(self, principal: Principal | None) -> peewee.ModelSelect[Course]:
        """Courses the caller may list: published, plus own (instructors), all (admins)."""
        query = Course.select()
        if principal is not None and principal.grants.get("course.update") == "any":
            return query
        visible = Course.status == "published"
        if principal is not None and principal.grants.get("course.update") == "own":
            visible |= Course.owner_id == principal.user_id
        return query.where(visible)

    def search(self, query: peewee.ModelSelect[Course], text: str
               ) -> peewee.ModelSelect[Course]:
        """Title and description search: PostgreSQL full-text (GIN-indexed), else substring."""
        text = text.strip()
        if not text:
            return query
        if db.is_postgres():
            return query.where(Course.id.in_(search_matches(text)))
        # instr() rather than LIKE: no wildcard characters to escape in the user's text.
        needle = text.lower()
        return query.where((peewee.fn.instr(peewee.fn.lower(Course.title), needle) > 0)
                           | (peewee.fn.instr(peewee.fn.lower(Course.description), needle) > 0))

    def filtered(self, principal: Principal | None, q: str | None = None,
                 tag: str | None = None, level: str | None = None,
                 language: str | None = None, instructor: int | None = None,
                 status: str | None = None) -> peewee.ModelSelect[Course]:
        query = self.catalogue(principal)
        if q:
            query = self.search(query, q)
        if tag:
            query = query.where(Course.id.in_(
                CourseTag.select(CourseTag.course).where(CourseTag.tag == tag.strip().lower())))
        if level:
            query = query.where(Course.level == level)
        if language:
            query = query.where(Course.language == language)
        if instructor:
            query = query.where(Course.owner_id == instructor)
        if status:
            query = query.where(Course.status == status)
        return query

    # -- changes -----------------------------------------------------------------------------

    def create(self, principal: Principal, data: dict[str, Any]) -> Course:
        tags = data.pop("tags", [])
        with db.transaction():
            self.runtime.before(ev.CREATE, current_tenant(), principal, **data)
            course = Course.create(owner_id=principal.user_id, **data)
            self._set_tags(course, tags)
            self._event(ev.CourseCreated, course, principal)
        return course

    def update(self, principal: Principal, course_id: int, data: dict[str, Any],
               precondition: Precondition = None) -> Course:
        """Edit fields; a published course stays published. `precondition` (an If-Match
        check) runs once the course row is locked, before anything is written."""
        with db.transaction():
            course = self.owned(course_id, principal)
            if precondition is not None:
                precondition()
            self.runtime.before(ev.UPDATE, current_tenant(), principal,
                                course_id=course.id, changes=sorted(data))
            tags = data.pop("tags", None)
            for key, value in data.items():
                setattr(course, key, value)
            course.updated_at = utcnow()
            course.save()
            if tags is not None:
                self._set_tags(course, tags)
            self._event(ev.CourseUpdated, course, principal,
                        fields=sorted([*data, *(["tags"] if tags is not None else [])]))
        return course

    def delete(self, principal: Principal, course_id: int, precondition: Precondition = None
               ) -> tuple[str, Course]:
        """Delete a course; one with learners is archived instead. Returns what happened."""
        with db.transaction():
            course = self.owned(course_id, principal, "course.delete")
            if precondition is not None:
                precondition()
            has_learners = any(self.runtime.hook.course_has_learners(
                runtime=self.runtime, course_id=course.id))
            if has_learners:
                if course.status != "archived":
                    self._transition(course, "delete", "archived", principal,
                                     "deleted while learners were enrolled")
                return "archived", course
            self.runtime.before(ev.DELETE, current_tenant(), principal,
                                course_id=course.id)
            self._event(ev.CourseDeleted, course, principal)
            keys = [k for k in (course.image_key, course.thumbnail_key) if k]
            # Children first: SQLite without FK enforcement on old files, and the module
            # self-reference, must not leave orphans.
            from .models import FeedbackMessage, FeedbackThread, Rating

            threads = FeedbackThread.select(FeedbackThread.id).where(
                FeedbackThread.course == course.id)
            FeedbackMessage.delete().where(FeedbackMessage.thread.in_(threads)).execute()
            FeedbackThread.delete().where(FeedbackThread.course == course.id).execute()
            Rating.delete().where(Rating.course == course.id).execute()
            Module.update(prerequisite=None).where(Module.course == course.id).execute()
            Module.delete().where(Module.course == course.id).execute()
            CourseTag.delete().where(CourseTag.course == course.id).execute()
            CourseTransition.delete().where(CourseTransition.course == course.id).execute()
            course.delete_instance()
            if keys:
                storage = self.runtime.storage
                tenant = current_tenant()

                def remove() -> None:
                    from learnplat.plugin import tenant_context

                    with tenant_context(tenant):
                        for key in keys:
                            storage.delete(key)

                db.on_commit(remove)
            return "deleted", course

    def act(self, principal: Principal, course_id: int, action: str, reason: str = "") -> Course:
        """Apply a lifecycle action; 409 (with current_status) when the status forbids it."""
        with db.transaction():
            course = self._visible(course_id, principal, lock=True)
            principal.require(TRANSITION_PERMISSION[action], owner_id=course.owner_id)
            target = TRANSITIONS.get(course.status, {}).get(action)
            if target is None:
                raise Conflict(f"cannot {action} a course that is {course.status}",
                               code="invalid_transition", current_status=course.status,
                               allowed_actions=sorted(TRANSITIONS.get(course.status, {})))
            if action == "reject" and not reason.strip():
                raise ValidationFailed.field("reason", "a reason is required", "missing")
            if action == "restore":
                target = self._restore_target(course, principal)
            self._transition(course, action, target, principal, reason)
        return course

    def _restore_target(self, course: Course, principal: Principal) -> str:
        archived = (CourseTransition.select()
                    .where((CourseTransition.course == course.id)
                           & (CourseTransition.to_status == "archived"))
                    .order_by(CourseTransition.id.desc()).first())
        if principal.grants.get("course.restore") != "any" and (
                archived is not None and archived.actor_id != principal.user_id):
            # An owner may undo their own archiving, not an admin's deactivation.
            raise Conflict("an admin archived this course; ask an admin to restore it",
                           code="archived_by_admin", current_status=course.status)
        was = archived.from_status if archived is not None else "draft"
        return "published" if was == "published" else "draft"

    def _transition(self, course: Course, action: str, target: str,
                    principal: Principal | None, reason: str) -> None:
        self.runtime.before(ev.TRANSITIONS.get(action, ev.DELETE), current_tenant(), principal,
                            course_id=course.id, from_status=course.status, to_status=target)
        previous = course.status
        CourseTransition.create(course=course.id, action=action, from_status=previous,
                                to_status=target,
                                actor_id=principal.user_id if principal else None,
                                reason=reason)
        course.status = target
        course.rejection_reason = reason if target == "rejected" else ""
        if target == "published" and course.published_at is None:
            course.published_at = utcnow()
        course.updated_at = utcnow()
        course.save()
        event = ev.TRANSITION_EVENTS.get(action, ev.CourseArchived)
        self._event(event, course, principal, action=action, from_status=previous,
                    reason=reason)

    def history(self) -> peewee.ModelSelect[CourseTransition]:
        return CourseTransition.select()

    # -- modules -----------------------------------------------------------------------------

    def _modules(self, course_id: int) -> list[Module]:
        return list(Module.select().where(Module.course == course_id)
                    .order_by(Module.position, Module.id))

    @staticmethod
    def _check_prerequisite(modules: list[Module], prereq_id: int | None,
                            module_id: int | None) -> None:
        if prereq_id is None:
            return
        by_id = {m.id: m for m in modules}
        if prereq_id not in by_id:
            raise ValidationFailed.field("prerequisite_id", "no such module in this course",
                                         "not_found")
        if prereq_id == module_id:
            raise ValidationFailed.field("prerequisite_id", "a module cannot require itself",
                                         "cycle")
        seen: set[int] = set()
        node: int | None = prereq_id
        while node is not None and node not in seen:
            if node == module_id:
                raise ValidationFailed.field(
                    "prerequisite_id", "this prerequisite would make a cycle", "cycle")
            seen.add(node)
            node = by_id[node].prerequisite_id if node in by_id else None

    def add_module(self, course_id: int, title: str, kind: str, description: str = "",
                   required: bool = True, estimated_minutes: int = 0) -> ModuleInfo:
        """CoursesAPI.add_module, for other plugins (they checked owned_course)."""
        return self.add_module_for(course_id, title, kind, description, required,
                                   estimated_minutes)

    def create_module(self, principal: Principal, course_id: int, data: dict[str, Any]
                      ) -> Module:
        """POST /courses/{id}/modules: the owner (or an admin) adds a module."""
        with db.transaction():
            course = self.owned(course_id, principal)
            modules = self._modules(course.id)
            prereq = data.pop("prerequisite_id", None)
            self._check_prerequisite(modules, prereq, None)
            position = data.pop("position", None)
            count = len(modules)
            pos = count + 1 if position is None else min(max(position, 1), count + 1)
            if pos <= count:
                Module.update(position=Module.position + 1).where(
                    (Module.course == course.id) & (Module.position >= pos)).execute()
            module = Module.create(course=course.id, position=pos, prerequisite=prereq, **data)
            self._touch(course)
            self._event(ev.ModuleAdded, course, principal,
                        **self._module_payload(module))
        return module

    def update_module(self, principal: Principal, course_id: int, module_id: int,
                      data: dict[str, Any], precondition: Precondition = None) -> Module:
        with db.transaction():
            course = self.owned(course_id, principal)  # locks the course: modules too
            if precondition is not None:
                precondition()
            modules = self._modules(course.id)
            module = next((m for m in modules if m.id == module_id), None)
            if module is None:
                raise NotFound("no such module in this course")
            if "prerequisite_id" in data:
                prereq = data.pop("prerequisite_id")
                self._check_prerequisite(modules, prereq, module.id)
                module.prerequisite = prereq
            position = data.pop("position", None)
            if position is not None:
                self._move(course.id, module, min(max(position, 1), len(modules)))
            for key, value in data.items():
                setattr(module, key, value)
            module.updated_at = utcnow()
            module.save()
            self._touch(course)
            self._event(ev.ModuleUpdated, course, principal,
                        fields=sorted([*data, *(["position"] if position is not None else [])]),
                        **self._module_payload(module))
        return module

    def _move(self, course_id: int, module: Module, new: int) -> None:
        old = module.position
        if new < old:
            Module.update(position=Module.position + 1).where(
                (Module.course == course_id) & (Module.position >= new)
                & (Module.position < old)).execute()
        elif new > old:
            Module.update(position=Module.position - 1).where(
                (Module.course == course_id) & (Module.position > old)
                & (Module.position <= new)).execute()
        module.position = new

    def reorder_modules(self, principal: Principal, course_id: int, module_ids: list[int]
                        ) -> list[Module]:
        """Set the order of all modules at once: `module_ids` must list each exactly once."""
        with db.transaction():
            course = self.owned(course_id, principal)
            current = {m.id for m in self._modules(course.id)}
            if len(module_ids) != len(set(module_ids)) or set(module_ids) != current:
                raise ValidationFailed.field(
                    "module_ids", "list every module of the course exactly once", "mismatch")
            if module_ids:
                Module.update(
                    position=peewee.Case(Module.id, [(mid, i + 1)
                                                     for i, mid in enumerate(module_ids)]),
                    updated_at=utcnow(),
                ).where(Module.course == course.id).execute()
            self._touch(course)
            self._event(ev.ModulesReordered, course, principal,
                        module_ids=list(module_ids))
            return self._modules(course.id)

    def delete_module(self, principal: Principal, course_id: int, module_id: int,
                      precondition: Precondition = None) -> None:
        with db.transaction():
            course = self.owned(course_id, principal)
            if precondition is not None:
                precondition()
            module = Module.get_or_none((Module.id == module_id) & (Module.course == course.id)
                                        ) if valid_id(module_id) else None
            if module is None:
                raise NotFound("no such module in this course")
            self.runtime.before(ev.MODULE_DELETE, current_tenant(), principal,
                                course_id=course.id, module_id=module.id)
            payload = self._module_payload(module)
            Module.update(prerequisite=None).where(Module.prerequisite == module.id).execute()
            module.delete_instance()
            Module.update(position=Module.position - 1).where(
                (Module.course == course.id) & (Module.position > module.position)).execute()
            self._touch(course)
            self._event(ev.ModuleRemoved, course, principal, **payload)

    @staticmethod
    def _module_payload(m: Module) -> dict[str, Any]:
        return {"module_id": m.id, "module_title": m.title, "position": m.position,
                "kind": m.kind, "release_at": m.release_at}

    # -- helpers -----------------------------------------------------------------------------

    def tags_of(self, course_ids: list[int]) -> dict[int, list[str]]:
        """Tags of many courses in one query."""
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

    @staticmethod
    def _touch(course: Course) -> None:
        course.updated_at = utcnow()
        Course.update(updated_at=course.updated_at).where(Course.id == course.id).execute()

    def _event(self, event: type[ev.CourseEvent], course: Course, principal: Principal | None,
               **extra: Any) -> None:
        # Every change to a course, its modules, image or ratings passes here: cached
        # catalogue pages of the tenant stop being served once it commits.
        bump_generation(self.runtime, CATALOGUE_GENERATION)
        self.runtime.events.record(event(
            course_id=course.id, owner_id=course.owner_id, status=course.status,
            title=course.title, actor_id=principal.user_id if principal else None, **extra))
