"""Enrollment: exactly one enrollment per learner and course, also under concurrent requests.

How races are decided (docs/enrollment.md has the long version):

* The unique index (tenant, course_id, user_id) makes a second row impossible. The insert runs
  in a savepoint, so the request that loses a race catches the IntegrityError, rolls back only
  the savepoint and answers with the winner's row (PostgreSQL's unique check waits for the
  winner to commit, and READ COMMITTED lets the next statement see it).
* A course with rules (cap or window) serialises its enrollments on its rules row
  (SELECT ... FOR UPDATE on PostgreSQL); the active count read under that lock is exact, so
  N racing learners for K seats give exactly K enrollments. SQLite serialises every write
  transaction anyway (BEGIN IMMEDIATE).
* Status changes (drop, reactivation) are conditional UPDATEs (``WHERE status = 'active'``),
  so two concurrent drops record one event, not two.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import peewee
from learnplat_courses.api import CATALOGUE_GENERATION, COURSES, LEARNER_GENERATION
from learnplat_identity.api import IDENTITY
from peewee import SQL, fn

from learnplat.plugin import (
    Conflict,
    NotFound,
    PageQuery,
    PermissionDenied,
    Principal,
    Sibling,
    Vetoed,
    api_timestamp,
    bump_generation,
    current_tenant,
    db,
    merge_extras,
    paginate,
    utcnow,
    valid_until,
)

from . import events as ev
from .api import EnrollmentInfo, EnrollmentStatus
from .models import Enrollment, EnrollmentRules
from .schemas import (
    CourseBrief,
    EnrolledStudentPage,
    MyEnrollmentOut,
    MyEnrollmentPage,
    Outcome,
    RulesOut,
    StudentOut,
    UserBrief,
)

if TYPE_CHECKING:
    from learnplat_courses.api import CourseInfo

    from learnplat.plugin import Runtime

_CHUNK = 500  # ids per IN (...) list: far below SQLite's bound-variable limit


def info(e: Enrollment) -> EnrollmentInfo:
    return EnrollmentInfo(id=e.id, course_id=e.course_id, user_id=e.user_id,
                          status=cast(EnrollmentStatus, e.status), created_at=e.created_at)


def _chunks(items: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]


@dataclass
class BulkEntry:
    """One learner of a bulk enrollment, named by email or user id. `ref` says where it came
    from ("emails[2]", a CSV line number); `error` is a problem found while reading it."""

    ref: str
    email: str | None = None
    user_id: int | None = None
    error: str | None = None


@dataclass
class BulkRow:
    ref: str
    email: str | None
    user_id: int | None
    outcome: Outcome = "rejected"
    reason: str | None = None
    enrollment_id: int | None = None


@dataclass
class BulkReport:
    rows: list[BulkRow]
    dry_run: bool = False

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.rows if r.outcome == outcome)


# Asked on every course page view (learnplat.db.Prepared: SQL generated once).
_FIND = db.Prepared(lambda course_id, user_id: Enrollment.select().where(
    (Enrollment.course_id == course_id) & (Enrollment.user_id == user_id)).limit(1))
_RULES = db.Prepared(lambda course_id: EnrollmentRules.select().where(
    EnrollmentRules.course_id == course_id).limit(1))


class EnrollmentService:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    courses = Sibling(COURSES)
    identity = Sibling(IDENTITY)

    # -- for other plugins (stable) --------------------------------------------------------

    def get(self, course_id: int, user_id: Any) -> EnrollmentInfo | None:
        """The enrollment of a user in a course, whatever its status; None if never enrolled."""
        e = self._find(course_id, user_id)
        return info(e) if e else None

    def require_active(self, course_id: int, principal: Principal) -> EnrollmentInfo:
        """The caller's active enrollment; 404 for a course they cannot see, 403 when they
        see it but are not enrolled."""
        self.courses.visible_course(course_id, principal)
        found = self.get(course_id, principal.user_id)
        if found is None or found.status != "active":
            raise PermissionDenied("you are not enrolled in this course", code="not_enrolled")
        return found

    def active_user_ids(self, course_id: int, after_id: int = 0, limit: int = 1000
                        ) -> list[int]:
        return [e.user_id for e in Enrollment.select(Enrollment.user_id).where(
            (Enrollment.course_id == course_id) & (Enrollment.status == "active")
            & (Enrollment.user_id > after_id)).order_by(Enrollment.user_id).limit(limit)]

    def active_count(self, course_id: int) -> int:
        return (Enrollment.select(SQL("1"))
                .where((Enrollment.course_id == course_id) & (Enrollment.status == "active"))
                .count())

    def enroll_from(self, course_id: int, user_id: int, source: str) -> EnrollmentInfo:
        """EnrollmentAPI.enroll_from: no rules, window, cap or veto (the other system
        decided); the same race handling as enroll_outcome."""
        if self.courses.get_course(course_id) is None:
            raise NotFound("no such course")
        with db.transaction():
            found = self._find(course_id, user_id, lock=True)
            if found is not None:
                if found.status == "active":
                    return info(found)
                return info(self._reactivate(found, None, source=source)[0])
            try:
                with db.database.atomic():  # savepoint: a lost race must not abort the request
                    enrollment = Enrollment.create(course_id=course_id, user_id=user_id,
                                                   source=source)
            except peewee.IntegrityError:
                winner = self._find(course_id, user_id)
                assert winner is not None  # the (course, user) row this insert collided with
                return info(winner)
            self._created_event(enrollment, None, reactivated=False, source=source)
            return info(enrollment)

    # -- enrolling one learner -------------------------------------------------------------

    def enroll(self, principal: Principal, course_id: int) -> tuple[Enrollment, bool]:
        """(enrollment, created): the caller enrolls themself. Enrolling again returns the
        same enrollment; a dropped one is reactivated (created is False for both)."""
        enrollment, outcome = self.enroll_outcome(principal, course_id)
        return enrollment, outcome == "created"

    def enroll_outcome(self, principal: Principal, course_id: int) -> tuple[Enrollment, str]:
        """(enrollment, "created" | "existing" | "reactivated")."""
        user_id = principal.user_id
        course = self.courses.visible_course(course_id, principal)
        if course.status != "published":
            raise NotFound("no such course")
        with db.transaction():
            found = self._find(course_id, user_id)
            if found is not None and found.status == "active":
                return found, "existing"  # the hot path: no lock, one indexed read
            rules = self._lock_rules(course_id)
            if rules is not None or found is not None:
                # Re-read under the lock: a racing request may have enrolled meanwhile.
                found = self._find(course_id, user_id, lock=True)
                if found is not None and found.status == "active":
                    return found, "existing"
            self.runtime.before(ev.ENROLL, current_tenant(), principal,
                                course_id=course_id, user_id=user_id, source="self")
            self._check_window(rules)
            self._check_cap(rules, course_id, wanted=1)
            if found is not None:
                return self._reactivate(found, principal)
            try:
                with db.database.atomic():  # savepoint: a lost race must not abort the request
                    enrollment = Enrollment.create(course_id=course_id, user_id=user_id,
                                                   source="self")
            except peewee.IntegrityError:
                # Another request enrolled the same learner first: answer with that one.
                winner = self._find(course_id, user_id)
                assert winner is not None  # the (course, user) row this insert collided with
                return winner, "existing"
            self._created_event(enrollment, principal, reactivated=False)
            return enrollment, "created"

    def _reactivate(self, e: Enrollment, principal: Principal | None, source: str = "self"
                    ) -> tuple[Enrollment, str]:
        now = utcnow()
        changed = (Enrollment.update(status="active", dropped_at=None, updated_at=now)
                   .where((Enrollment.id == e.id) & (Enrollment.status == "dropped"))
                   .execute())
        fresh = Enrollment.get_by_id(e.id)
        if not changed:
            return fresh, "existing"
        self._created_event(fresh, principal, reactivated=True, source=source)
        return fresh, "reactivated"

    def drop(self, principal: Principal, course_id: int) -> Enrollment:
        """Unenroll the caller: the enrollment stays, as "dropped" (its progress too).
        Dropping a dropped enrollment changes nothing."""
        self.courses.visible_course(course_id, principal)
        with db.transaction():
            e = self._find(course_id, principal.user_id)
            if e is None:
                raise NotFound("you are not enrolled in this course", code="not_enrolled")
            if e.status == "active":
                now = utcnow()
                changed = (Enrollment.update(status="dropped", dropped_at=now, updated_at=now)
                           .where((Enrollment.id == e.id) & (Enrollment.status == "active"))
                           .execute())
                e = Enrollment.get_by_id(e.id)
                if changed:
                    self._event(ev.EnrollmentDropped, e.id, e.course_id, e.user_id, principal)
            return e

    # -- rules -----------------------------------------------------------------------------

    def _find(self, course_id: int, user_id: Any, lock: bool = False) -> Enrollment | None:
        if not lock:
            return _FIND.first(course_id, user_id)
        query = Enrollment.select().where((Enrollment.course_id == course_id)
                                          & (Enrollment.user_id == user_id))
        if lock and db.is_postgres():
            query = query.for_update()
        return query.first()

    def _lock_rules(self, course_id: int) -> EnrollmentRules | None:
        """The course's rules row, locked until commit on PostgreSQL: it serialises the
        enrollments of a course that has rules, so the cap check below is exact."""
        query = EnrollmentRules.select().where(EnrollmentRules.course_id == course_id)
        if db.is_postgres():
            query = query.for_update()
        return query.first()

    def _check_window(self, rules: EnrollmentRules | None) -> None:
        if rules is None:
            return
        now = utcnow()
        if rules.opens_at and now < rules.opens_at:
            opens = api_timestamp(rules.opens_at)  # "Z", as the rules' own answer
            raise Conflict(f"enrollment opens at {opens}", code="enrollment_not_open",
                           opens_at=opens)
        if rules.closes_at and now >= rules.closes_at:
            closes = api_timestamp(rules.closes_at)
            raise Conflict(f"enrollment closed at {closes}", code="enrollment_closed",
                           closes_at=closes)

    def _check_cap(self, rules: EnrollmentRules | None, course_id: int, wanted: int) -> None:
        if rules is None or rules.cap is None:
            return
        if self.active_count(course_id) + wanted > rules.cap:
            raise Conflict("the course is full", code="course_full", cap=rules.cap)

    def rules_dict(self, course_id: int, count: bool = True) -> dict[str, Any]:
        """The course's rules as the API answers them. `count=False` (the course detail)
        counts the active enrollments only when a cap needs them for `seats_left`: a COUNT
        whose cost grows with the course's learners, for a figure nobody asked for; then
        `active_count` is None. Tells a cached answer (learnplat.answers.valid_until) when
        `open` changes, and that `seats_left` changes with every other learner's enrollment."""
        rules = _RULES.first(course_id)
        cap = rules.cap if rules else None
        active = self.active_count(course_id) if count or cap is not None else None
        now = utcnow()
        opens_at = rules.opens_at if rules else None
        closes_at = rules.closes_at if rules else None
        if cap is not None:
            valid_until(0)
        for moment in (opens_at, closes_at):
            if moment is not None and now < moment:
                valid_until(moment.timestamp())
        return {
            "course_id": course_id, "cap": cap, "opens_at": opens_at, "closes_at": closes_at,
            "active_count": active,
            "seats_left": None if cap is None or active is None else max(0, cap - active),
            "open": not ((opens_at and now < opens_at) or (closes_at and now >= closes_at)),
        }

    def get_rules(self, principal: Principal, course_id: int) -> RulesOut:
        self.courses.visible_course(course_id, principal)
        return RulesOut(**self.rules_dict(course_id))

    def set_rules(self, principal: Principal, course_id: int, cap: int | None,
                  opens_at: dt.datetime | None, closes_at: dt.datetime | None
                  ) -> RulesOut:
        """Replace the course's rules (all None: no rules). A cap below the current active
        count removes nobody; it only refuses new enrollments until there is room."""
        course = self.courses.visible_course(course_id, principal)
        principal.require("enrollment.manage", owner_id=course.owner_id, hide=False)
        values = {"cap": cap, "opens_at": opens_at, "closes_at": closes_at,
                  "updated_at": utcnow(), "updated_by": principal.user_id}
        with db.transaction():
            existing = self._lock_rules(course_id)
            if existing is None:
                try:
                    with db.database.atomic():
                        EnrollmentRules.create(course_id=course_id, **values)
                except peewee.IntegrityError:  # a concurrent PUT created it: update instead
                    existing = self._lock_rules(course_id)
            if existing is not None:
                (EnrollmentRules.update(**values)
                 .where(EnrollmentRules.id == existing.id).execute())
            # Every caller's course page shows the rules (course_detail_extras).
            bump_generation(self.runtime, CATALOGUE_GENERATION)
            return RulesOut(**self.rules_dict(course_id))

    # -- lists -----------------------------------------------------------------------------

    def my_enrollments(self, principal: Principal, page: PageQuery,
                       status: str | None = None) -> MyEnrollmentPage:
        """The caller's enrollments, newest first, each with its course and the progress
        summary other plugins add (enrollment_summaries): three queries per page plus the
        hook implementations' own (constant) ones."""
        query = Enrollment.select().where(Enrollment.user_id == principal.user_id)
        if status:
            query = query.where(Enrollment.status == status)
        out = paginate(query, [Enrollment.id.desc()], page)
        rows: list[Enrollment] = out["items"]
        course_ids = [e.course_id for e in rows]
        courses = self.courses.get_courses(course_ids) if rows else {}
        summaries = self.summaries(course_ids, principal.user_id) if rows else {}
        items = []
        for e in rows:
            c = courses.get(e.course_id)
            course = CourseBrief(id=c.id, title=c.title, status=c.status) if c else None
            items.append(MyEnrollmentOut.of(e, course=course,
                                            progress=summaries.get(e.course_id)))
        return MyEnrollmentPage(items=items, next_cursor=out["next_cursor"])

    def summaries(self, course_ids: list[int], user_id: Any) -> dict[int, dict[str, Any]]:
        """Merge every enrollment_summaries answer per course (one hook call per page)."""
        merged: dict[int, dict[str, Any]] = {}
        for answer in self.runtime.hook.enrollment_summaries(
                runtime=self.runtime, course_ids=list(course_ids), user_id=user_id):
            for course_id, summary in (answer or {}).items():
                merge_extras([summary], merged.setdefault(int(course_id), {}))
        return merged

    def students(self, principal: Principal, course_id: int, page: PageQuery,
                 status: str | None = None) -> EnrolledStudentPage:
        """A course's learners for its owner or an admin, newest first, with email and name
        (two queries per page: the enrollments, then their users in one batch)."""
        course = self.courses.visible_course(course_id, principal)
        principal.require("enrollment.manage", owner_id=course.owner_id, hide=False)
        return self.roster(course_id, page, status)

    def roster(self, course_id: int, page: PageQuery, status: str | None = None
               ) -> EnrolledStudentPage:
        """students() without the permission check (operators at the CLI)."""
        query = Enrollment.select().where(Enrollment.course_id == course_id)
        if status:
            query = query.where(Enrollment.status == status)
        out = paginate(query, [Enrollment.id.desc()], page)
        rows: list[Enrollment] = out["items"]
        users = self.identity.users([e.user_id for e in rows]) if rows else {}
        items = []
        for e in rows:
            u = users.get(e.user_id)
            user = UserBrief(id=u.id, email=u.email, name=u.name) if u else None
            items.append(StudentOut.of(e, user=user))
        return EnrolledStudentPage(items=items, next_cursor=out["next_cursor"])

    # -- bulk ------------------------------------------------------------------------------

    def bulk_enroll(self, principal: Principal | None, course_id: int,
                    entries: list[BulkEntry], dry_run: bool = False) -> BulkReport:
        """Enroll many learners at once: valid rows are applied, invalid ones reported.

        `principal` is the admin or owner instructor (None: an operator at the CLI). Each row
        ends "created", "existing" (already active), "reactivated" (was dropped) or
        "rejected" with a reason: unknown account, not a student, deactivated, a repeat of
        an earlier row, refused by a plugin, or no seat left under the cap (rows are seated in
        input order). The enrollment window does not apply: staff enroll on purpose.
        All writes happen in one transaction; `dry_run` reports without writing.
        """
        course: CourseInfo | None
        if principal is not None:
            course = self.courses.visible_course(course_id, principal)
            principal.require("enrollment.manage", owner_id=course.owner_id, hide=False)
        else:
            course = self.courses.get_course(course_id)
            if course is None:
                raise NotFound(f"no course with id {course_id}")
        if course.status != "published":
            raise Conflict(f"only a published course takes enrollments (this one is "
                           f"{course.status})", code="course_not_published")
        report = BulkReport(self._resolve_learners(entries), dry_run=dry_run)
        accepted = [r for r in report.rows if r.reason is None]
        with db.transaction():
            rules = self._lock_rules(course_id)
            existing = self._find_many(course_id, [r.user_id for r in accepted])
            pending: list[BulkRow] = []
            for row in accepted:
                e = existing.get(row.user_id)
                if e is not None and e.status == "active":
                    row.outcome, row.enrollment_id = "existing", e.id
                    continue
                try:
                    self.runtime.before(ev.ENROLL, current_tenant(), principal,
                                        course_id=course_id, user_id=row.user_id,
                                        source="bulk")
                except Vetoed as exc:
                    row.reason = exc.detail
                    continue
                pending.append(row)
            if rules is not None and rules.cap is not None:
                room = max(0, rules.cap - self.active_count(course_id))
                for row in pending[room:]:
                    row.reason = f"the course is full (cap {rules.cap})"
                pending = pending[:room]
            reactivate = [r for r in pending if r.user_id in existing]
            create = [r for r in pending if r.user_id not in existing]
            for row in reactivate:
                row.outcome, row.enrollment_id = "reactivated", existing[row.user_id].id
            for row in create:
                row.outcome = "created"
            if not dry_run:
                self._bulk_write(course_id, principal, reactivate, create)
        return report

    def _resolve_learners(self, entries: list[BulkEntry]) -> list[BulkRow]:
        """Look every learner up (two queries in all) and reject the ones that cannot enroll."""
        by_email = self.identity.users_by_email(
            [e.email for e in entries if e.email and not e.error])
        by_id = self.identity.users([e.user_id for e in entries
                                     if e.user_id is not None and not e.error])
        seen: dict[Any, str] = {}
        rows: list[BulkRow] = []
        for entry in entries:
            row = BulkRow(entry.ref, entry.email, entry.user_id)
            rows.append(row)
            if entry.error:
                row.reason = entry.error
                continue
            if entry.email:
                user = by_email.get(entry.email.strip().lower())
            else:
                user = by_id.get(entry.user_id) if entry.user_id is not None else None
            if user is None:
                row.reason = ("no account with this email" if entry.email
                              else "no user with this id")
                continue
            row.user_id, row.email = user.id, user.email
            if user.role != "student":
                row.reason = f"only students enroll (this account's role is {user.role})"
            elif not user.active:
                row.reason = "the account is deactivated"
            elif user.id in seen:
                row.reason = f"the same learner as {seen[user.id]}"
            else:
                seen[user.id] = entry.ref
        return rows

    def _find_many(self, course_id: int, user_ids: list[Any], lock: bool = True
                   ) -> dict[Any, Enrollment]:
        found: dict[Any, Enrollment] = {}
        for chunk in _chunks(list(dict.fromkeys(user_ids))):
            query = Enrollment.select().where((Enrollment.course_id == course_id)
                                              & Enrollment.user_id.in_(chunk))
            if lock and db.is_postgres():
                # In id order, so two bulk enrollments of overlapping learners lock alike.
                query = query.order_by(Enrollment.id).for_update()
            for e in query:
                found[e.user_id] = e
        return found

    def _bulk_write(self, course_id: int, principal: Principal | None,
                    reactivate: list[BulkRow], create: list[BulkRow]) -> None:
        now = utcnow()
        actor = principal.user_id if principal else None
        for chunk in _chunks([r.enrollment_id for r in reactivate]):
            (Enrollment.update(status="active", dropped_at=None, updated_at=now)
             .where(Enrollment.id.in_(chunk) & (Enrollment.status == "dropped")).execute())
        inserted: set[Any] | None = set() if db.database.obj.returning_clause else None
        # Inserted in user id order: overlapping concurrent inserts wait on each other in one
        # order instead of deadlocking.
        for chunk in _chunks(sorted(create, key=lambda r: r.user_id)):
            query = Enrollment.insert_many(
                [{"course_id": course_id, "user_id": r.user_id, "source": "bulk",
                  "enrolled_by": actor, "created_at": now, "updated_at": now} for r in chunk]
            ).on_conflict_ignore()
            if inserted is not None:
                # Rows a concurrent self-enrollment inserted first are not returned.
                inserted.update(u for (u,) in query.returning(Enrollment.user_id).tuples()
                                .execute())
            else:
                query.execute()  # SQLite: this transaction holds the write lock, none raced
        # Only to learn the ids: locking here (after the inserts) could deadlock with another
        # bulk enrollment that locked some of these rows first.
        rows = self._find_many(course_id, [r.user_id for r in create], lock=False)
        for row in create:
            e = rows[row.user_id]
            row.enrollment_id = e.id
            if inserted is not None and row.user_id not in inserted:
                row.outcome = "existing"
                continue
            self._created_event(e, principal, reactivated=False, source="bulk")
        for row in reactivate:
            self._event(ev.EnrollmentCreated, row.enrollment_id, course_id, row.user_id, principal,
                        reactivated=True, source="bulk")

    # -- events ----------------------------------------------------------------------------

    def _created_event(self, e: Enrollment, principal: Principal | None, reactivated: bool,
                       source: str = "self") -> None:
        self._event(ev.EnrollmentCreated, e.id, e.course_id, e.user_id, principal,
                    reactivated=reactivated, source=source)

    def _event(self, event: type[ev.EnrollmentEvent], enrollment_id: Any, course_id: int,
               user_id: Any, principal: Principal | None, **extra: Any) -> None:
        # Every change to an enrollment passes here: the learner's course page shows it.
        bump_generation(self.runtime, LEARNER_GENERATION, user_id=user_id)
        self.runtime.events.record(event(
            enrollment_id=enrollment_id, course_id=course_id, user_id=user_id,
            actor_id=principal.user_id if principal else None, **extra))

    # -- analytics -------------------------------------------------------------------------

    def analytics(self, course_id: int) -> dict[str, Any]:
        """The ``enrollments`` section of GET /courses/{id}/analytics: totals by status and,
        per UTC day, new enrollments (``count``) and enrollments dropped that day that are
        still dropped (``dropped``). Three aggregate queries over the
        (tenant, course_id, status, created_at) index; nothing is loaded row by row."""
        totals = dict(Enrollment.select(Enrollment.status, fn.COUNT(SQL("*")))
                      .where(Enrollment.course_id == course_id)
                      .group_by(Enrollment.status).tuples())
        days: dict[str, dict[str, int]] = {}
        for column, key in ((Enrollment.created_at, "count"),
                            (Enrollment.dropped_at, "dropped")):
            day = fn.DATE(column).coerce(False)
            query = (Enrollment.select(day, fn.COUNT(SQL("*")))
                     .where(Enrollment.course_id == course_id))
            if key == "dropped":
                query = query.where(Enrollment.status == "dropped")
            for value, count in query.group_by(day).tuples():
                slot = days.setdefault(str(value)[:10], {"count": 0, "dropped": 0})
                slot[key] = count
        active, dropped = totals.get("active", 0), totals.get("dropped", 0)
        return {"enrollments": {
            "total": active + dropped, "active": active, "dropped": dropped,
            "over_time": [{"date": d, **days[d]} for d in sorted(days)],
        }}
