"""Progress: module completion, course percent with exactly-once milestones, video playback.
Imports nothing from Falcon; resources, event handlers and tasks call it.

Every write to one student's progress in one course first locks that enrollment's
CourseProgress row (``_lock``), then touches ModuleProgress rows: concurrent requests for one
enrollment are serialised (PostgreSQL: SELECT ... FOR UPDATE; SQLite: the write lock taken at
BEGIN), the course percent is computed from committed rows, and each milestone flag is set by a
conditional UPDATE (``WHERE milestone_x_at IS NULL``), so its event is recorded exactly once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from typing import TYPE_CHECKING, Any, cast

import peewee
import redis
from learnplat_courses.api import COURSES, LEARNER_GENERATION
from learnplat_enrollment.api import ENROLLMENT
from peewee import EXCLUDED, fn

from learnplat.plugin import (
    UTC,
    Conflict,
    NotFound,
    PageQuery,
    Principal,
    Sibling,
    ValidationFailed,
    api_timestamp,
    bump_generation,
    db,
    merge_extras,
    paginate,
    tenant_context,
    utcnow,
)

from . import events as ev
from .api import LockReason, ProgressSummary
from .heartbeats import HeartbeatStore
from .models import CourseProgress, HandledEvent, ModuleProgress, VideoMilestone
from .playback import Playback, advance
from .schemas import (
    HeartbeatOut,
    Milestones,
    ModuleState,
    ProgressOut,
    StudentProgressOut,
    StudentProgressPage,
    StudentStatus,
)
from .settings import ProgressSettings

if TYPE_CHECKING:
    from learnplat.plugin import Runtime

log = logging.getLogger(__name__)
# What a Redis that stopped answering raises (redis.connect_timeout / socket_timeout bound it).
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)

SORTS = {
    "percent": (CourseProgress.percent, False),
    "-percent": (CourseProgress.percent, True),
    "last_activity": (CourseProgress.last_activity_at, False),
    "-last_activity": (CourseProgress.last_activity_at, True),
}


def _counted(modules: list[Any]) -> list[int]:
    """Modules the course percent counts: the required ones (all, when none is required)."""
    required = [m.id for m in modules if m.required]
    return required or [m.id for m in modules]


def _greatest(column: Any, new: Any) -> Any:
    old = fn.COALESCE(column, new)
    return fn.GREATEST(old, new) if db.is_postgres() else fn.MAX(old, new)


def _epoch(value: dt.datetime | None) -> float:
    return value.timestamp() if value else 0.0


def playback_of(mp: ModuleProgress | None) -> Playback:
    if mp is None:
        return Playback()
    return Playback(mp.last_position, mp.furthest_position, mp.watched_seconds,
                    mp.duration_seconds, _epoch(mp.last_heartbeat_at))


def student_progress_out(cp: CourseProgress) -> StudentProgressOut:
    """One student's line of GET /progress/{course_id}/students."""
    return StudentProgressOut(
        user_id=cp.user_id, status=cast(StudentStatus, cp.status),  # a CharField of these
        percent=cp.percent,
        completed=cp.completed_at is not None, completed_modules=cp.completed_count,
        required_modules=cp.required_count, completed_at=cp.completed_at,
        last_activity_at=cp.last_activity_at,
        milestones=Milestones(fifty=cp.milestone_50_at, hundred=cp.milestone_100_at))


# The course page and the progress document ask for it on every view (learnplat.db.Prepared:
# SQL generated once).
_SUMMARY = db.Prepared(lambda course_id, user_id: CourseProgress.select().where(
    (CourseProgress.course_id == course_id) & (CourseProgress.user_id == user_id)).limit(1))
# The progress document and marking a module (GET and POST /progress/{id}) run these on every
# request too.
_MODULE_ROWS = db.Prepared(lambda course_id, user_id: ModuleProgress.select().where(
    (ModuleProgress.course_id == course_id) & (ModuleProgress.user_id == user_id)))
_MODULE_ROW = db.Prepared(lambda course_id, user_id, module_id: ModuleProgress.select().where(
    (ModuleProgress.course_id == course_id) & (ModuleProgress.user_id == user_id)
    & (ModuleProgress.module_id == module_id)).limit(1))
_COMPLETED = db.Prepared(lambda course_id, user_id: ModuleProgress.select(
    ModuleProgress.module_id).where(
    (ModuleProgress.course_id == course_id) & (ModuleProgress.user_id == user_id)
    & ModuleProgress.completed_at.is_null(False)))


def _locked_row(course_id: Any, user_id: Any) -> Any:
    query = CourseProgress.select().where(
        (CourseProgress.course_id == course_id) & (CourseProgress.user_id == user_id))
    return query.for_update() if db.is_postgres() else query  # (SQLite locks the database)


_LOCKED = db.Prepared(_locked_row)
# The progress document's own keys: what progress_extras answers may not replace.
_DOCUMENT_FIELDS = frozenset(ProgressOut.model_fields)


class ProgressService:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self._store: HeartbeatStore | None = None

    @property
    def settings(self) -> ProgressSettings:
        return self.runtime.settings_of(ProgressSettings)

    courses = Sibling(COURSES)
    enrollment = Sibling(ENROLLMENT)

    @property
    def store(self) -> HeartbeatStore | None:
        """The Redis write-behind store, or None when no Redis is configured."""
        if self._store is None and self.runtime.redis is not None:
            self._store = HeartbeatStore(self.runtime.redis, lambda: self.settings,
                                         self.runtime.settings.redis.prefix)
        return self._store

    # -- for other plugins ---------------------------------------------------------------------

    def summary(self, course_id: int, user_id: Any) -> ProgressSummary | None:
        """The stored progress of one enrollment (None when the student has none yet)."""
        cp = _SUMMARY.first(course_id, user_id)
        if cp is None:
            return None
        return ProgressSummary(course_id=cp.course_id, user_id=cp.user_id, percent=cp.percent,
                               completed=cp.completed_at is not None,
                               completed_modules=cp.completed_count,
                               required_modules=cp.required_count,
                               completed_at=cp.completed_at,
                               last_activity_at=cp.last_activity_at)

    def summaries(self, course_ids: list[int], user_id: Any) -> dict[int, dict[str, Any]]:
        """{course_id: {"percent", "completed"}} for one student, in one query."""
        if not course_ids:
            return {}
        rows = CourseProgress.select(CourseProgress.course_id, CourseProgress.percent,
                                     CourseProgress.completed_at).where(
            CourseProgress.course_id.in_(list(course_ids)) & (CourseProgress.user_id == user_id))
        return {r.course_id: {"percent": r.percent, "completed": r.completed_at is not None}
                for r in rows}

    def course_stats(self, course_id: int) -> dict[str, Any]:
        """Aggregates over the course's active learners: completion rate, average progress and
        completions per module (drop-off). Two aggregate queries, whatever the size."""
        cp = CourseProgress
        active = (cp.course_id == course_id) & (cp.status == "active")
        learners, average, completed = cp.select(
            fn.COUNT(cp.id), fn.AVG(cp.percent),
            fn.SUM(peewee.Case(None, [(cp.completed_at.is_null(False), 1)], 0)),
        ).where(active).tuples().get()
        mp = ModuleProgress
        per_module = dict(
            mp.select(mp.module_id, fn.COUNT(mp.id))
            .join(cp, on=((cp.tenant == mp.tenant) & (cp.course_id == mp.course_id)
                          & (cp.user_id == mp.user_id)))
            .where((mp.course_id == course_id) & mp.completed_at.is_null(False)
                   & (cp.status == "active"))
            .group_by(mp.module_id).tuples())
        learners = learners or 0
        modules, previous = [], learners
        for m in self.courses.list_modules(course_id):
            done = per_module.get(m.id, 0)
            modules.append({"module_id": m.id, "title": m.title, "position": m.position,
                            "required": m.required, "completed": done,
                            "completion_rate": round(done / learners, 4) if learners else 0.0,
                            # learners who completed the module before but not this one
                            "learners": max(previous - done, 0)})
            previous = done
        return {"learners": learners, "completed_learners": int(completed or 0),
                "completion_rate": round((completed or 0) / learners, 4) if learners else 0.0,
                "average_progress": round(float(average or 0.0), 1),
                "modules": modules}

    # -- reading -------------------------------------------------------------------------------

    def document(self, principal: Principal, course_id: int,
                 modules: list[Any] | None = None) -> ProgressOut:
        """GET /progress/{course_id}: the caller's progress, current to the last heartbeat.
        `modules`: the course's modules, from a caller of this request that already checked
        the enrollment and read them (`mark`), so neither is done twice."""
        if modules is None:
            self.enrollment.require_active(course_id, principal)
            modules = self.courses.list_modules(course_id)
        user_id = principal.user_id
        rows = {mp.module_id: mp for mp in _MODULE_ROWS.all(course_id, user_id)}
        cp = _SUMMARY.first(course_id, user_id)
        pending: dict[int, Playback] = {}
        if self.store is not None:
            try:
                pending = self.store.peek(principal.tenant_id, course_id, user_id,
                                          [m.id for m in modules if m.kind == "video"])
            except REDIS_DOWN:  # Redis unreachable: the database's (last flushed) playback
                log.warning("progress: Redis unreachable; playback shown as last flushed")
        completed_ids = {mid for mid, r in rows.items() if r.completed_at is not None}
        now = utcnow()
        out_modules = []
        for m in modules:
            row = rows.get(m.id)
            video = m.kind == "video"
            play = playback_of(row).merged(pending.get(m.id)) if video else None
            reason = self._lock_reason(m, completed_ids, modules, now)
            out_modules.append(ModuleState(
                module_id=m.id, title=m.title, position=m.position, kind=m.kind,
                required=m.required,
                completed=m.id in completed_ids,
                completed_at=row.completed_at if row else None,
                completed_source=row.completed_source if row else None,
                locked=reason is not None, locked_reason=reason,
                video_percent=play.percent if play else None,
                position_seconds=play.last_position if play else None,
                furthest_position=play.furthest if play else None,
                watched_seconds=play.watched if play else None,
                duration_seconds=play.duration if play else None,
            ))
        counted = _counted(modules)
        done = len(completed_ids.intersection(counted))
        last_seen = max([_epoch(cp.last_activity_at) if cp else 0.0]
                        + [p.seen for p in pending.values()])
        # Keys other plugins add (progress_extras); they never replace the document's own.
        extras = merge_extras(
            self.runtime.hook.progress_extras(runtime=self.runtime, course_id=course_id,
                                              user_id=user_id), protected=_DOCUMENT_FIELDS)
        return ProgressOut(
            course_id=course_id,
            percent=round(100.0 * done / len(counted), 1) if counted else 0.0,
            completed=bool(counted) and done == len(counted),
            completed_modules=done, required_modules=len(counted),
            completed_at=cp.completed_at if cp else None,
            last_activity_at=dt.datetime.fromtimestamp(last_seen, UTC) if last_seen else None,
            milestones=Milestones(fifty=cp.milestone_50_at if cp else None,
                                  hundred=cp.milestone_100_at if cp else None),
            modules=out_modules,
            **extras,
        )

    def students(self, principal: Principal, course_id: int, page: PageQuery, sort: str,
                 status: str) -> StudentProgressPage:
        """GET /progress/{course_id}/students: the owner instructor's or an admin's view."""
        course = self.courses.visible_course(course_id, principal)
        principal.require("progress.view_course", owner_id=course.owner_id)
        query = CourseProgress.select().where(CourseProgress.course_id == course_id)
        if status != "all":
            query = query.where(CourseProgress.status == status)
        field, desc = SORTS[sort]
        return StudentProgressPage(**paginate(query, [(field, desc), (CourseProgress.id, desc)],
                                              page, student_progress_out))

    # -- completing ----------------------------------------------------------------------------

    def mark(self, principal: Principal, course_id: int, module_id: int,
             completed: bool) -> ProgressOut:
        """Mark a module complete (409 when it is locked) or not complete."""
        self.enrollment.require_active(course_id, principal)
        modules = self.courses.list_modules(course_id)
        module = self._module(modules, module_id)
        with db.transaction():
            cp = self._lock(course_id, principal.user_id)
            if completed:
                done = self._completed_ids(course_id, principal.user_id)
                if module.id not in done:
                    self._check_unlocked(module, done, modules)
            self._set_completed(cp, modules, module_id, completed, "manual", utcnow())
        return self.document(principal, course_id, modules)

    def complete_from_event(self, event_id: int, course_id: int, module_id: int,
                            user_id: int, source: str, handler: str) -> bool:
        """A module passed elsewhere (the quizzes plugin): complete it once per event id.
        Locks are not checked: the pass already happened."""
        with db.transaction():
            seen = HandledEvent.get_or_none((HandledEvent.event_id == event_id)
                                            & (HandledEvent.handler == handler))
            if seen is not None:
                return False
            HandledEvent.create(event_id=event_id, handler=handler)
            modules = self.courses.list_modules(course_id)
            if not any(m.id == module_id for m in modules):
                return False  # the module is gone: nothing to complete
            cp = self._lock(course_id, user_id)
            self._set_completed(cp, modules, module_id, True, source, utcnow())
            return True

    def set_enrollment_status(self, course_id: int, user_id: int, status: str,
                              tenant_id: int) -> None:
        """Mirror the enrollment's status (instructor lists and analytics count active ones)."""
        with db.transaction():
            cp = self._lock(course_id, user_id)
            if cp.status != status:
                CourseProgress.update(status=status, updated_at=utcnow()).where(
                    CourseProgress.id == cp.id).execute()
        if self.store is not None:
            self.store.forget_access(tenant_id, course_id, user_id)

    # -- heartbeats ----------------------------------------------------------------------------

    def heartbeat(self, principal: Principal, course_id: int, module_id: int,
                  position: float, duration: float) -> HeartbeatOut:
        """Record video playback. Redis: write-behind (the flush task persists it); without
        Redis: straight to the database. Crossing the watch threshold completes the module in
        the database at once in both cases."""
        s = self.settings
        if duration > s.max_video_seconds:
            raise ValidationFailed.field("duration_seconds",
                                         f"at most {s.max_video_seconds:g} seconds", "too_long")
        if position > duration * 1.1 + 5:
            # A little past the end is a player rounding; far past it is a broken client.
            raise ValidationFailed.field("position_seconds", "beyond the video's duration",
                                         "beyond_duration")
        tenant_id, user_id = principal.tenant_id, principal.user_id
        store = self.store
        modules: list[Any] | None = None

        def check_access() -> None:
            nonlocal modules
            self.enrollment.require_active(course_id, principal)
            modules = self.courses.list_modules(course_id)
            module = self._module(modules, module_id)
            if module.kind != "video":
                raise Conflict("only video modules take playback heartbeats",
                               code="not_a_video", kind=module.kind)
            done = self._completed_ids(course_id, user_id)
            if module.id not in done:
                self._check_unlocked(module, done, modules)

        now = utcnow()
        # Milliseconds: exact through Redis/Lua number formatting (14 significant digits).
        ts = round(now.timestamp(), 3)
        if store is None:
            check_access()
        else:
            # One Redis round trip when the access was checked recently (the usual case): the
            # record script itself refuses (None) when the access cache has no entry.
            def load() -> Any:
                return self._stored_playback(course_id, user_id, module_id)

            try:
                recorded = store.record(tenant_id, course_id, user_id, module_id, position,
                                        duration, ts, load=load, check_access=True)
                if recorded is None:
                    check_access()
                    store.remember_access(tenant_id, course_id, user_id, module_id)
                    recorded = store.record(tenant_id, course_id, user_id, module_id, position,
                                            duration, ts, load=load)
            except REDIS_DOWN:
                # Redis unreachable: write through to the database, as without Redis, rather
                # than refuse the heartbeat (docs/progress.md, "When Redis is unreachable").
                log.warning("progress: Redis unreachable; heartbeat written to the database")
                store = None
                if modules is None:
                    check_access()
        if store is not None:
            assert recorded is not None
            state, crossed = recorded
            if crossed:
                with contextlib.suppress(*REDIS_DOWN):  # a counter only
                    store.count("write_through")
                with db.transaction():
                    cp = self._lock(course_id, user_id)
                    self._set_completed(cp, modules or self.courses.list_modules(course_id),
                                        module_id, True, "video", now, playback=state)
                # Only once the completion is committed may later heartbeats skip it.
                db.on_commit(lambda: store.mark_done(tenant_id, course_id, user_id, module_id))
        else:
            with db.transaction():
                cp = self._lock(course_id, user_id)
                mp = self._module_row(course_id, user_id, module_id)
                before = playback_of(mp)
                was_done = (mp is not None and mp.completed_at is not None) or before.reached(
                    s.video_complete_ratio)
                state = advance(before, position, duration, ts, s)
                crossed = not was_done and state.reached(s.video_complete_ratio)
                if crossed:
                    self._set_completed(cp, modules or self.courses.list_modules(course_id),
                                        module_id, True, "video", now, playback=state)
                else:
                    mp = self._write_playback(mp, course_id, user_id, module_id, state, now)
                    self._record_video_marks(course_id, user_id, module_id, before,
                                             playback_of(mp), now)
                    CourseProgress.update(last_activity_at=now).where(
                        CourseProgress.id == cp.id).execute()
        return HeartbeatOut(course_id=course_id, module_id=module_id,
                            position_seconds=state.last_position,
                            furthest_position=state.furthest, watched_seconds=state.watched,
                            # (a heartbeat's state always has the duration it was sent)
                            duration_seconds=duration if state.duration is None
                            else state.duration,
                            video_percent=state.percent,
                            completed_now=crossed)

    def flush_heartbeats(self) -> dict[str, int]:
        """Persist the heartbeats Redis holds (the periodic task). No-op without Redis."""
        if self.store is None:
            return {"rows": 0, "statements": 0, "transactions": 0, "failed": 0}
        return self.store.flush(self.persist_playback)

    def persist_playback(self, tenant_id: int, rows: list[tuple[int, int, int, Playback]]
                         ) -> int:
        """Upsert playback states of one tenant in one transaction; returns the number of
        write statements (two: course activity, then module rows, in that lock order; then
        one per video mark crossed, and its event: see `_flushed_marks`)."""
        tenant = self.runtime.tenants.get_by_id(tenant_id)
        if tenant is None or not rows:
            return 0
        rows = sorted(rows, key=lambda r: (r[0], r[1], r[2]))
        activity: dict[tuple[int, int], float] = {}
        for course_id, user_id, _m, state in rows:
            activity[(course_id, user_id)] = max(activity.get((course_id, user_id), 0.0),
                                                 state.seen)
        now = utcnow()
        cp, mp = CourseProgress, ModuleProgress
        with tenant_context(tenant), db.transaction():
            cp.insert_many([
                {"course_id": c, "user_id": u, "created_at": now, "updated_at": now,
                 "last_activity_at": dt.datetime.fromtimestamp(seen, UTC)}
                for (c, u), seen in sorted(activity.items())
            ]).on_conflict(
                conflict_target=[cp.tenant, cp.course_id, cp.user_id],
                update={cp.last_activity_at: _greatest(cp.last_activity_at,
                                                       EXCLUDED.last_activity_at)},
            ).execute()
            # Read under the enrollment rows' locks the upsert above holds (as _lock's are):
            # what is stored before this flush, to know which marks the flush crosses.
            stored = self._stored_shares(rows)
            mp.insert_many([
                {"course_id": c, "user_id": u, "module_id": m, "last_position": s.last_position,
                 "furthest_position": s.furthest, "watched_seconds": s.watched,
                 "duration_seconds": s.duration, "updated_at": now,
                 "last_heartbeat_at": dt.datetime.fromtimestamp(s.seen, UTC) if s.seen else None}
                for c, u, m, s in rows
            ]).on_conflict(
                conflict_target=[mp.tenant, mp.course_id, mp.user_id, mp.module_id],
                update={
                    mp.last_position: EXCLUDED.last_position,
                    mp.furthest_position: _greatest(mp.furthest_position,
                                                    EXCLUDED.furthest_position),
                    mp.watched_seconds: _greatest(mp.watched_seconds, EXCLUDED.watched_seconds),
                    mp.duration_seconds: EXCLUDED.duration_seconds,
                    mp.last_heartbeat_at: _greatest(mp.last_heartbeat_at,
                                                    EXCLUDED.last_heartbeat_at),
                    mp.updated_at: EXCLUDED.updated_at,
                },
            ).execute()
            marks = self._flushed_marks(rows, stored, now)
            for user_id in {u for _c, u in activity}:  # their summaries' last_activity_at
                bump_generation(self.runtime, LEARNER_GENERATION, user_id=user_id,
                                tenant_id=tenant_id)
        return 2 + 2 * marks

    @staticmethod
    def _stored_shares(rows: list[tuple[int, int, int, Playback]]
                       ) -> dict[tuple[int, int], Playback]:
        """{(user, module): stored playback} of the rows whose flushed state reaches a video
        mark (the others cannot cross one): one query, none when no row reaches 25 %."""
        first = ev.VIDEO_MILESTONES[0]
        wanted = {(c, u, m) for c, u, m, s in rows if s.marks((first,))}
        if not wanted:
            return {}
        mp = ModuleProgress
        # A superset of the rows (each IN list alone), narrowed below; the course ids let it
        # use the (tenant, course_id, user_id, module_id) index.
        query = mp.select(mp.course_id, mp.user_id, mp.module_id, mp.watched_seconds,
                          mp.duration_seconds).where(
            mp.course_id.in_(sorted({c for c, _u, _m in wanted}))
            & mp.user_id.in_(sorted({u for _c, u, _m in wanted}))
            & mp.module_id.in_(sorted({m for _c, _u, m in wanted})))
        return {(u, m): Playback(watched=w or 0.0, duration=d)
                for c, u, m, w, d in query.tuples() if (c, u, m) in wanted}

    def _flushed_marks(self, rows: list[tuple[int, int, int, Playback]],
                       stored: dict[tuple[int, int], Playback], now: dt.datetime) -> int:
        """Record the video marks the flush's upsert crossed: the row now holds the greater
        of the stored and flushed watched seconds, with the flushed duration (as upserted)."""
        inserted = 0
        for course_id, user_id, module_id, state in rows:
            if not state.marks(ev.VIDEO_MILESTONES[:1]):
                continue  # below the first mark: the greater of it and the stored crosses none
            before = stored.get((user_id, module_id), Playback())
            after = Playback(watched=max(before.watched, state.watched),
                             duration=state.duration)
            inserted += self._record_video_marks(course_id, user_id, module_id, before, after,
                                                 now)
        return inserted

    # -- internals -----------------------------------------------------------------------------

    @staticmethod
    def _module(modules: list[Any], module_id: int) -> Any:
        for m in modules:
            if m.id == module_id:
                return m
        raise NotFound("no such module in this course")

    def lock_reason(self, course_id: int, module_id: int, user_id: int) -> LockReason | None:
        """The module's lock for this learner (ProgressAPI.lock_reason)."""
        modules = self.courses.list_modules(course_id)
        module = next((m for m in modules if m.id == module_id), None)
        if module is None:
            return None
        done = self._completed_ids(course_id, user_id)
        if module.id in done:
            return None
        return self._lock_reason(module, done, modules, utcnow())

    def _completed_ids(self, course_id: int, user_id: Any) -> set[int]:
        return {r.module_id for r in _COMPLETED.all(course_id, user_id)}

    @staticmethod
    def _lock_reason(module: Any, completed: set[int], modules: list[Any],
                     now: dt.datetime) -> LockReason | None:
        if module.release_at is not None and module.release_at > now:
            return "not_released"
        prereq = module.prerequisite_id
        if prereq and prereq not in completed and any(m.id == prereq for m in modules):
            return "prerequisite"
        return None

    def _check_unlocked(self, module: Any, completed: set[int], modules: list[Any]) -> None:
        reason = self._lock_reason(module, completed, modules, utcnow())
        if reason == "not_released":
            raise Conflict("this module is not released yet", code="module_locked",
                           reason=reason, release_at=api_timestamp(module.release_at))
        if reason == "prerequisite":
            raise Conflict("complete the prerequisite module first", code="module_locked",
                           reason=reason, prerequisite_id=module.prerequisite_id)

    def _lock(self, course_id: int, user_id: Any) -> CourseProgress:
        """The enrollment's CourseProgress row, created if needed and locked until commit.
        Every write to a learner's progress row locks it here first, so this is also where
        their course page (course_detail_extras: the summary) learns of the change."""
        bump_generation(self.runtime, LEARNER_GENERATION, user_id=user_id)
        row = _LOCKED.first(course_id, user_id)  # the usual case: it exists
        if row is not None:
            return row
        now = utcnow()
        CourseProgress.insert(course_id=course_id, user_id=user_id, created_at=now,
                              updated_at=now, last_activity_at=now).on_conflict_ignore().execute()
        row = _LOCKED.first(course_id, user_id)
        if row is None:
            raise CourseProgress.DoesNotExist(f"no progress row for {course_id}/{user_id}")
        return row

    @staticmethod
    def _module_row(course_id: int, user_id: Any, module_id: int) -> ModuleProgress | None:
        return _MODULE_ROW.first(course_id, user_id, module_id)

    def _stored_playback(self, course_id: int, user_id: Any,
                         module_id: int) -> tuple[Playback, bool]:
        mp = self._module_row(course_id, user_id, module_id)
        state = playback_of(mp)
        done = (mp is not None and mp.completed_at is not None) or state.reached(
            self.settings.video_complete_ratio)
        return state, done

    @staticmethod
    def _write_playback(mp: ModuleProgress | None, course_id: int, user_id: Any,
                        module_id: int, state: Playback, now: dt.datetime) -> ModuleProgress:
        if mp is None:
            mp = ModuleProgress(course_id=course_id, user_id=user_id, module_id=module_id)
        mp.last_position = state.last_position
        mp.furthest_position = max(mp.furthest_position or 0.0, state.furthest)
        mp.watched_seconds = max(mp.watched_seconds or 0.0, state.watched)
        mp.duration_seconds = state.duration
        mp.last_heartbeat_at = dt.datetime.fromtimestamp(state.seen, UTC) if state.seen else None
        mp.updated_at = now
        mp.save()
        return mp

    def _set_completed(self, cp: CourseProgress, modules: list[Any], module_id: int,
                       completed: bool, source: str, now: dt.datetime,
                       playback: Playback | None = None) -> None:
        """Change one module's completion (caller holds the enrollment lock) and recompute."""
        mp = self._module_row(cp.course_id, cp.user_id, module_id)
        if playback is not None:
            before = playback_of(mp)
            mp = self._write_playback(mp, cp.course_id, cp.user_id, module_id, playback, now)
            # The marks this write crosses: on the Redis path, those the flush has not
            # written yet (the stored row is what the flush compares with too).
            self._record_video_marks(cp.course_id, cp.user_id, module_id, before,
                                     playback_of(mp), now)
        changed = False
        if completed and (mp is None or mp.completed_at is None):
            if mp is None:
                mp = ModuleProgress(course_id=cp.course_id, user_id=cp.user_id,
                                    module_id=module_id)
            mp.completed_at, mp.completed_source, changed = now, source, True
        elif not completed and mp is not None and mp.completed_at is not None:
            mp.completed_at, mp.completed_source, changed = None, None, True
        if changed:
            assert mp is not None  # set by whichever branch changed it
            mp.updated_at = now
            mp.save()
            event = ev.ModuleCompleted if completed else ev.ModuleReset
            self.runtime.events.record(event(course_id=cp.course_id, module_id=module_id,
                                             user_id=cp.user_id, source=source))
        self._recompute(cp, modules, now)

    def _record_video_marks(self, course_id: int, user_id: Any, module_id: int,
                            before: Playback, after: Playback, now: dt.datetime) -> int:
        """Record progress.video_progressed.v1 for each mark (25, 50, 75, 100 % watched) that
        the stored playback crosses from `before` to `after`, in the caller's transaction.
        Once per learner, module and mark whatever races: the event is recorded only by the
        writer whose insert made the mark's row (a concurrent flush or request inserting it
        too waits on the unique index, then inserts nothing). Returns the rows inserted."""
        reached = before.marks(ev.VIDEO_MILESTONES)
        inserted = 0
        for mark in after.marks(ev.VIDEO_MILESTONES):
            if mark in reached:
                continue
            if not VideoMilestone.insert(
                    course_id=course_id, module_id=module_id, user_id=user_id, milestone=mark,
                    percent=after.percent, reached_at=now,
            ).on_conflict_ignore().as_rowcount().execute():
                continue  # recorded before (a repeat, or a concurrent writer got there first)
            inserted += 1
            self.runtime.events.record(ev.VideoProgressed(
                course_id=course_id, module_id=module_id, user_id=user_id, milestone=mark,
                percent=after.percent, duration_seconds=after.duration))
        return inserted

    def _recompute(self, cp: CourseProgress, modules: list[Any], now: dt.datetime) -> None:
        counted = _counted(modules)
        done = ModuleProgress.select().where(
            (ModuleProgress.course_id == cp.course_id) & (ModuleProgress.user_id == cp.user_id)
            & ModuleProgress.module_id.in_(counted)
            & ModuleProgress.completed_at.is_null(False)).count() if counted else 0
        total = len(counted)
        percent = round(100.0 * done / total, 1) if total else 0.0
        complete = total > 0 and done == total
        CourseProgress.update(
            percent=percent, completed_count=done, required_count=total,
            completed_at=(cp.completed_at or now) if complete else None,
            last_activity_at=now, updated_at=now,
        ).where(CourseProgress.id == cp.id).execute()
        payload: dict[str, Any] = {"course_id": cp.course_id, "user_id": cp.user_id,
                                   "percent": percent}
        # Conditional updates: only the transaction that flips a flag records the event, and a
        # flag once set stays set (un-completing and re-completing fires nothing again).
        if total and done * 2 >= total and CourseProgress.update(milestone_50_at=now).where(
                (CourseProgress.id == cp.id) & CourseProgress.milestone_50_at.is_null()
        ).execute():
            self.runtime.events.record(ev.Milestone(**payload, milestone=50))
        if complete and CourseProgress.update(milestone_100_at=now).where(
                (CourseProgress.id == cp.id) & CourseProgress.milestone_100_at.is_null()
        ).execute():
            self.runtime.events.record(ev.CourseCompleted(**payload, completed_at=now))
