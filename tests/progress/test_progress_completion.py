"""Marking modules complete: percent, locks, visibility, validation, milestones."""

from __future__ import annotations

import datetime as dt
import threading
from typing import ClassVar

import pytest

from learnplat import db
from learnplat.plugin import Event
from learnplat.tenancy import tenant_context


def _mark(student, course, i, completed=True):
    return student.client.post(f"/progress/{course.id}",
                               json={"module_id": course.module_ids[i], "completed": completed})


def test_percent_counts_required_modules_and_uncomplete(course_factory):
    course = course_factory([{}, {}, {"required": False}])
    s = course.enroll()
    r = s.client.get(f"/progress/{course.id}")
    assert r.status_code == 200, r.text
    assert r.json["percent"] == 0 and r.json["completed"] is False
    assert [m["completed"] for m in r.json["modules"]] == [False, False, False]

    r = _mark(s, course, 2)  # optional: does not count
    assert r.status_code == 200, r.text
    assert r.json["percent"] == 0
    r = _mark(s, course, 0)
    assert r.json["percent"] == 50 and r.json["required_modules"] == 2
    first = r.json["modules"][0]
    assert first["completed"] and first["completed_at"] and first["completed_source"] == "manual"
    assert _mark(s, course, 0).json["modules"][0]["completed_at"] == first["completed_at"]
    r = _mark(s, course, 1)
    assert r.json["percent"] == 100 and r.json["completed"] is True
    r = _mark(s, course, 1, completed=False)
    assert r.json["percent"] == 50 and r.json["completed"] is False
    assert s.client.get(f"/progress/{course.id}").json["percent"] == 50


def test_locked_modules_409(course_factory):
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    course = course_factory([{}, {"prerequisite_id": "#0"}, {"release_at": later}])
    s = course.enroll()
    mods = s.client.get(f"/progress/{course.id}").json["modules"]
    assert [m["locked_reason"] for m in mods] == [None, "prerequisite", "not_released"]
    r = _mark(s, course, 1)
    assert r.status_code == 409 and r.json["code"] == "module_locked"
    assert r.headers["content-type"].startswith("application/problem+json")
    assert _mark(s, course, 2).status_code == 409
    assert _mark(s, course, 0).status_code == 200
    assert _mark(s, course, 1).status_code == 200
    # Nothing half-written by the refused requests.
    assert s.client.get(f"/progress/{course.id}").json["completed_modules"] == 2


def test_visibility_and_bad_input(course_factory, lp_client, lp_users, lp_other_tenant):
    course = course_factory([{}, {"kind": "video"}])
    s = course.enroll()
    outsider = lp_client.as_(lp_users.make("student").token)
    assert outsider.get(f"/progress/{course.id}").status_code == 403
    assert outsider.post(f"/progress/{course.id}",
                         json={"module_id": course.module_ids[0], "completed": True}
                         ).status_code == 403
    assert s.client.get("/progress/999999").status_code == 404
    teacher = lp_client.as_(course.instructor.token)
    assert teacher.get(f"/progress/{course.id}").status_code == 403  # not a learner role
    draft = teacher.post("/courses", json={"title": "Draft"}).json["id"]
    assert s.client.get(f"/progress/{draft}").status_code == 404
    # Another tenant's student sees nothing, not even that the course exists.
    stranger = lp_users.make("student", tenant=lp_other_tenant)
    other = lp_client.as_(stranger.token, tenant=lp_other_tenant)
    assert other.get(f"/progress/{course.id}").status_code == 404
    assert other.post(f"/progress/{course.id}",
                      json={"module_id": course.module_ids[0], "completed": True}
                      ).status_code == 404
    # Unknown module, invalid bodies.
    assert s.client.post(f"/progress/{course.id}",
                         json={"module_id": 987654, "completed": True}).status_code == 404
    vid = course.module_ids[1]
    for body in ({"module_id": vid}, {"module_id": vid, "completed": True, "position_seconds": 1},
                 {"module_id": vid, "position_seconds": 3},
                 {"module_id": vid, "position_seconds": -1, "duration_seconds": 10},
                 {"module_id": vid, "position_seconds": 1, "duration_seconds": 0},
                 {"module_id": vid, "position_seconds": 1e12, "duration_seconds": 10},
                 {"module_id": vid, "position_seconds": 50, "duration_seconds": 10},
                 {"module_id": vid, "position_seconds": 1, "duration_seconds": 10 ** 6},
                 {"module_id": "x", "completed": True}, {"module_id": 0, "completed": True},
                 {"module_id": vid, "completed": "yes please"}):
        r = s.client.post(f"/progress/{course.id}", json=body)
        assert r.status_code == 422, (body, r.status_code, r.text)
        assert r.json["errors"], r.json
    assert s.client.post(f"/progress/{course.id}", body="{nope",
                         headers={"Content-Type": "application/json"}).status_code == 400
    # A heartbeat for a text module is a conflict with what the module is.
    r = s.client.post(f"/progress/{course.id}", json={
        "module_id": course.module_ids[0], "position_seconds": 1, "duration_seconds": 10})
    assert r.status_code == 409 and r.json["code"] == "not_a_video"


def _milestones(recorder, tenant, user_id):
    return [(e.name, e.payload.get("milestone")) for e in recorder.events
            if e.tenant_id == tenant.id and e.payload.get("user_id") == user_id
            and e.name in ("progress.milestone.v1", "course.completed.v1")]


def test_milestones_exactly_once_even_after_uncomplete(course_factory, event_recorder,
                                                       lp_runtime, lp_tenant):
    course = course_factory([{}, {}, {}, {}])
    s = course.enroll()
    _mark(s, course, 0)
    assert _milestones(event_recorder, lp_tenant, s.id) == []
    _mark(s, course, 1)
    lp_runtime.events.dispatch_pending()
    assert _milestones(event_recorder, lp_tenant, s.id) == [("progress.milestone.v1", 50)]
    _mark(s, course, 2)
    _mark(s, course, 3)
    lp_runtime.events.dispatch_pending()
    _mark(s, course, 3, completed=False)
    _mark(s, course, 0, completed=False)
    _mark(s, course, 0)
    _mark(s, course, 3)
    lp_runtime.events.dispatch_pending()
    assert _milestones(event_recorder, lp_tenant, s.id) == [
        ("progress.milestone.v1", 50), ("course.completed.v1", None)]
    done = [e for e in event_recorder.events if e.name == "course.completed.v1"
            and e.tenant_id == lp_tenant.id]
    assert done[0].payload["course_id"] == course.id and done[0].payload["percent"] == 100


def test_concurrent_last_two_modules_fire_each_milestone_once(course_factory, event_recorder,
                                                              lp_runtime, lp_tenant):
    """Two requests complete the last two modules at the same moment, several times over:
    each enrollment gets one 50% milestone and one course.completed.v1, never zero or two."""
    course = course_factory([{}, {}])
    students = [course.enroll() for _ in range(6)]
    errors: list[str] = []

    def complete(student, i, barrier):
        barrier.wait()
        r = _mark(student, course, i)
        if r.status_code != 200:
            errors.append(r.text)

    for student in students:
        barrier = threading.Barrier(2, timeout=30)
        threads = [threading.Thread(target=complete, args=(student, i, barrier))
                   for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
    lp_runtime.events.dispatch_pending()
    for student in students:
        assert sorted(_milestones(event_recorder, lp_tenant, student.id)) == [
            ("course.completed.v1", None), ("progress.milestone.v1", 50)], student.id
        assert student.client.get(f"/progress/{course.id}").json["percent"] == 100


def test_concurrent_transactions_in_service(course_factory, svc, lp_runtime, lp_tenant):
    """The same race below HTTP: threads each with its own connection and transaction."""
    from learnplat_progress.models import CourseProgress

    from learnplat.models import OutboxEvent

    course = course_factory([{}, {}, {}])
    student = course.enroll()
    barrier = threading.Barrier(3, timeout=30)
    errors: list[BaseException] = []

    def complete(module_id):
        try:
            barrier.wait()  # outside the transaction: SQLite takes its write lock at BEGIN
            with db.connection(), tenant_context(lp_tenant), db.transaction():
                svc.complete_from_event(-module_id, course.id, module_id, student.id, "quiz",
                                        "test")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=complete, args=(m,)) for m in course.module_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        cp = CourseProgress.get((CourseProgress.course_id == course.id)
                                & (CourseProgress.user_id == student.id))
        assert cp.percent == 100 and cp.milestone_50_at and cp.milestone_100_at
        names = [e.name for e in OutboxEvent.select().where(
            (OutboxEvent.tenant_id == lp_tenant.id)
            & OutboxEvent.name.in_(["progress.milestone.v1", "course.completed.v1"]))
            if e.payload["user_id"] == student.id]
    assert sorted(names) == ["course.completed.v1", "progress.milestone.v1"]


class QuizPassed(Event):
    """Stands in for the quizzes plugin's declaration of the event progress consumes."""
    name: ClassVar[str] = "quiz.passed.v1"
    course_id: int
    module_id: int
    user_id: int


@pytest.fixture
def quiz_passed_declared(lp_runtime):
    registry = lp_runtime.registry
    if QuizPassed.name in registry.events:  # the real quizzes plugin is loaded
        yield registry.events[QuizPassed.name].type
        return
    registry.add_event(QuizPassed, "test-quizzes")
    yield QuizPassed
    registry.remove_event(QuizPassed.name)


def test_quiz_passed_event_completes_once(course_factory, lp_runtime, lp_tenant, svc,
                                          quiz_passed_declared):
    from learnplat_progress.plugin import ProgressPlugin

    from learnplat.events import EventMessage

    course = course_factory([{"kind": "quiz"}, {}])
    s = course.enroll()
    mid = course.module_ids[0]
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        lp_runtime.events.record(quiz_passed_declared(course_id=course.id, module_id=mid,
                                                      user_id=s.id))
    lp_runtime.events.dispatch_pending()
    doc = s.client.get(f"/progress/{course.id}").json
    assert doc["modules"][0]["completed"] and doc["modules"][0]["completed_source"] == "quiz"
    assert doc["percent"] == 50
    # The student un-completes; a redelivery of the same event must not complete it again.
    _mark(s, course, 0, completed=False)
    events = [e for e in _all_events(lp_tenant) if e.name == "quiz.passed.v1"]
    message = EventMessage(events[0].id, "quiz.passed.v1", lp_tenant.id, events[0].payload,
                           events[0].created_at, 2)
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        lp_runtime.plugin(ProgressPlugin).on_quiz_passed(lp_runtime, message)
    assert s.client.get(f"/progress/{course.id}").json["modules"][0]["completed"] is False


def _all_events(tenant):
    from learnplat.models import OutboxEvent

    with db.connection(), tenant_context(tenant), db.transaction():
        return list(OutboxEvent.select().where(OutboxEvent.tenant_id == tenant.id))


def test_marking_a_module_runs_constant_statements_and_answers_the_document(course_factory):
    """POST /progress/{id} checks the enrollment and reads the modules once (not again for the
    document it answers), and its statements do not grow with what is already completed."""
    from learnplat.testing import count_queries

    course = course_factory([{} for _ in range(10)])
    s = course.enroll()
    first = _mark(s, course, 0)  # creates the progress row
    assert first.status_code == 200, first.text
    counts = []
    for i in (1, 2, 3):  # below the 50 % milestone, whose events add their handlers' work
        with count_queries() as q:
            r = _mark(s, course, i)
        assert r.status_code == 200, r.text
        counts.append(q.count)
    assert len(set(counts)) == 1, counts  # 1 completed module or 3: the same statements
    # (on PostgreSQL the first statement carries "BEGIN; SELECT set_config(...); " in front)
    statements = [sql.rsplit("; ", 1)[-1] for sql in q.all]
    reads = [sql.split(" FROM ", 1)[1].split()[0].strip('"') for sql in statements
             if sql.startswith("SELECT") and " FROM " in sql]
    # the course, the caller's enrollment and the modules: read once, for the check and the
    # document alike (twice each before)
    for table in ("courses_course", "enrollment_enrollment", "courses_module"):
        assert reads.count(table) == 1, (table, q.all)
    # the answer is the document GET answers
    assert r.json == s.client.get(f"/progress/{course.id}").json
    assert r.json["completed_modules"] == 4
