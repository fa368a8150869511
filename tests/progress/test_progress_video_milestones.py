"""Video marks: progress.video_progressed.v1 once per learner, module and mark (25, 50, 75,
100 % of the video watched), on the database path (recorded in the heartbeat's transaction)
and on the Redis path (recorded by the flush, or by the heartbeat that writes completion
through); repeats and races record nothing more."""

from __future__ import annotations

import threading

import pytest
from learnplat_progress.models import VideoMilestone
from learnplat_progress.playback import Playback

from learnplat import db
from learnplat.plugin import utcnow
from learnplat.tenancy import tenant_context

VIDEO = "progress.video_progressed.v1"


@pytest.fixture(params=["database", "redis"])
def path(request, svc):
    if request.param == "database":
        request.getfixturevalue("no_redis")
    else:
        request.getfixturevalue("redis_store")
    return request.param


def _hb(student, course, position, duration=100.0):
    r = student.client.post(f"/progress/{course.id}", json={
        "module_id": course.module_ids[0], "position_seconds": position,
        "duration_seconds": duration})
    assert r.status_code == 200, r.text
    return r


def _watch(student, course, clock, positions, duration=100.0):
    """Heartbeats 5 s apart (credited in full: 5 s of video in 5 s of wall clock)."""
    r = None
    for pos in positions:
        clock.tick(5)
        r = _hb(student, course, pos, duration)
    return r


def _marks(lp_runtime, event_recorder, tenant, student, svc, path):
    """The video events of `student` so far: the flush persists Redis's state first."""
    if path == "redis":
        assert svc.flush_heartbeats()["failed"] == 0
    lp_runtime.events.dispatch_pending()
    return [e.payload for e in event_recorder.events if e.name == VIDEO
            and e.tenant_id == tenant.id and e.payload["user_id"] == student.id]


def test_crossing_25_and_50_records_each_once(path, course_factory, clock, svc, lp_runtime,
                                              lp_tenant, event_recorder):
    course = course_factory([{"kind": "video"}, {}])
    s = course.enroll()
    _hb(s, course, 0)
    _watch(s, course, clock, range(5, 25, 5))  # 20 % watched: no mark yet
    assert _marks(lp_runtime, event_recorder, lp_tenant, s, svc, path) == []
    _watch(s, course, clock, [25, 30])
    [first] = _marks(lp_runtime, event_recorder, lp_tenant, s, svc, path)
    assert first == {"course_id": course.id, "module_id": course.module_ids[0],
                     "user_id": s.id, "milestone": 25,
                     # the watched share when it was recorded: the request's own, or the
                     # flush's (two heartbeats later)
                     "percent": 25.0 if path == "database" else 30.0,
                     "duration_seconds": 100.0}
    _watch(s, course, clock, range(35, 60, 5))
    marks = _marks(lp_runtime, event_recorder, lp_tenant, s, svc, path)
    assert [m["milestone"] for m in marks] == [25, 50]
    # Repeats record nothing more: the same heartbeat again (a retrying player), seeking
    # back, and a flush with nothing new.
    for pos in (55, 55, 10, 10):
        _hb(s, course, pos)
    assert _marks(lp_runtime, event_recorder, lp_tenant, s, svc, path) == marks
    assert _marks(lp_runtime, event_recorder, lp_tenant, s, svc, path) == marks
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        rows = VideoMilestone.select().where(VideoMilestone.user_id == s.id)
        assert sorted(r.milestone for r in rows) == [25, 50]
    # Another learner's marks are their own.
    other = course.enroll()
    _hb(other, course, 0)
    _watch(other, course, clock, range(5, 30, 5))
    assert [m["milestone"] for m in _marks(lp_runtime, event_recorder, lp_tenant, other, svc,
                                           path)] == [25]


def test_completion_records_the_marks_below_it_at_once_and_100_later(
        path, course_factory, clock, svc, lp_runtime, lp_tenant, event_recorder):
    course = course_factory([{"kind": "video"}])
    s = course.enroll()
    _hb(s, course, 0)
    r = _watch(s, course, clock, range(5, 95, 5))  # 90 %: the completion threshold
    assert r.json["completed_now"] is True
    # Nothing flushed yet on the Redis path: the heartbeat that wrote the completion through
    # recorded the marks it crossed, in its transaction.
    lp_runtime.events.dispatch_pending()
    names = [(e.name, e.payload.get("milestone")) for e in event_recorder.events
             if e.tenant_id == lp_tenant.id and e.payload.get("user_id") == s.id
             and e.name in (VIDEO, "progress.module_completed.v1")]
    assert names == [(VIDEO, 25), (VIDEO, 50), (VIDEO, 75),
                     ("progress.module_completed.v1", None)]
    _watch(s, course, clock, [95, 100])
    marks = _marks(lp_runtime, event_recorder, lp_tenant, s, svc, path)
    assert [(m["milestone"], m["percent"]) for m in marks][-1] == (100, 100.0)
    assert [m["milestone"] for m in marks] == [25, 50, 75, 100]
    clock.tick(5)
    _hb(s, course, 100)  # the end again
    assert _marks(lp_runtime, event_recorder, lp_tenant, s, svc, path) == marks


def test_seeking_to_the_end_is_no_mark(path, course_factory, clock, svc, lp_runtime,
                                       lp_tenant, event_recorder):
    course = course_factory([{"kind": "video"}])
    s = course.enroll()
    _hb(s, course, 0)
    clock.tick(5)
    _hb(s, course, 100)  # 10 s credited (5 s at 2x): 10 % watched
    assert _marks(lp_runtime, event_recorder, lp_tenant, s, svc, path) == []


def test_flushing_twice_or_after_the_write_through_records_once(
        redis_store, course_factory, clock, svc, lp_runtime, lp_tenant, event_recorder):
    course = course_factory([{"kind": "video"}])
    s = course.enroll()
    _hb(s, course, 0)
    _watch(s, course, clock, range(5, 95, 5))  # completion written through: 25, 50, 75
    _watch(s, course, clock, [95, 100])
    # The same Redis state persisted again (a flush whose keys went back into the dirty set)
    # and a state older than what is stored (a late flush) record nothing more.
    state = Playback(100, 100, 100, 100, 1.0)
    mid = course.module_ids[0]
    assert svc.persist_playback(lp_tenant.id, [(course.id, s.id, mid, state)]) == 4
    assert svc.persist_playback(lp_tenant.id, [(course.id, s.id, mid, state)]) == 2
    assert svc.persist_playback(lp_tenant.id, [(course.id, s.id, mid,
                                                Playback(40, 40, 40, 100, 1.0))]) == 2
    assert svc.flush_heartbeats()["failed"] == 0
    marks = _marks(lp_runtime, event_recorder, lp_tenant, s, svc, "redis")
    assert [m["milestone"] for m in marks] == [25, 50, 75, 100]


def test_concurrent_writers_record_each_mark_once(course_factory, svc, lp_runtime, lp_tenant,
                                                  event_recorder):
    """Four transactions that each believe they crossed 25 and 50 (a flush and heartbeats that
    read the stored row before any committed): the unique row decides, one event per mark."""
    course = course_factory([{"kind": "video"}])
    s = course.enroll()
    barrier = threading.Barrier(4, timeout=30)
    inserted: list[int] = []
    errors: list[BaseException] = []

    def writer():
        try:
            with db.connection(), tenant_context(lp_tenant):
                barrier.wait()
                with db.transaction():
                    inserted.append(svc._record_video_marks(
                        course.id, s.id, course.module_ids[0], Playback(),
                        Playback(watched=60.0, duration=100.0), utcnow()))
        except BaseException as exc:  # reported below, in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(inserted) == [0, 0, 0, 2]
    lp_runtime.events.dispatch_pending()
    marks = [e.payload["milestone"] for e in event_recorder.events
             if e.name == VIDEO and e.tenant_id == lp_tenant.id and e.payload["user_id"] == s.id]
    assert sorted(marks) == [25, 50]


def test_the_event_is_declared_and_leaves_learnplat(lp_runtime):
    from learnplat_progress.events import VideoProgressed

    assert lp_runtime.registry.events[VIDEO].type is VideoProgressed
    assert VideoProgressed.published
    assert VideoProgressed.public_fields() == ["course_id", "module_id", "user_id", "milestone",
                                               "percent", "duration_seconds"]
