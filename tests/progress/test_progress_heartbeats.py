"""Video playback heartbeats: the accounting rules, the database path (no Redis) and the Redis
write-behind path with its flush task."""

from __future__ import annotations

import pytest
from learnplat_progress.playback import Playback, advance
from learnplat_progress.settings import ProgressSettings

from learnplat import db
from learnplat.tenancy import tenant_context

S = ProgressSettings()


def test_playback_rules():
    st = advance(Playback(), 0, 100, 1000.0, S)
    assert (st.furthest, st.watched, st.seen) == (0, 0, 1000.0)
    st = advance(st, 5, 100, 1005.0, S)
    assert st.watched == 5
    st = advance(st, 60, 100, 1010.0, S)  # a seek ahead: only 5 s x 2 (max rate) credited
    assert st.furthest == 60 and st.watched == 15
    st = advance(st, 10, 100, 1015.0, S)  # backwards: furthest kept, nothing credited
    assert st.furthest == 60 and st.watched == 15 and st.last_position == 10
    st = advance(st, 15, 100, 5000.0, S)  # after a long pause: forward 5 s, credited 5 s
    assert st.watched == 20
    st = advance(st, 104, 100, 5005.0, S)  # past the end: clamped to the duration
    assert st.furthest == 100 and st.last_position == 100 and st.watched <= 100
    assert not Playback(0, 95, 80, 100, 1).reached(0.9)
    assert Playback(0, 95, 90, 100, 1).reached(0.9)
    assert Playback(0, 95, 90, 100, 1).percent == 90.0


@pytest.fixture(params=["database", "redis"])
def path(request, svc):
    if request.param == "database":
        request.getfixturevalue("no_redis")
    else:
        request.getfixturevalue("redis_store")
    return request.param


def _hb(student, course, position, duration=100.0, module=0):
    return student.client.post(f"/progress/{course.id}", json={
        "module_id": course.module_ids[module], "position_seconds": position,
        "duration_seconds": duration})


def _row(svc, tenant, course, student, module=0):
    from learnplat_progress.models import ModuleProgress

    with db.connection(), tenant_context(tenant), db.transaction():
        return ModuleProgress.get_or_none(
            (ModuleProgress.course_id == course.id) & (ModuleProgress.user_id == student.id)
            & (ModuleProgress.module_id == course.module_ids[module]))


def test_watching_completes_the_module(path, course_factory, clock, svc, lp_tenant,
                                       event_recorder, lp_runtime):
    course = course_factory([{"kind": "video"}, {}])
    s = course.enroll()
    r = _hb(s, course, 0)
    assert r.status_code == 200, r.text
    assert r.json["completed_now"] is False
    for pos in range(5, 90, 5):
        clock.tick(5)
        r = _hb(s, course, pos)
        assert r.status_code == 200 and r.json["completed_now"] is False, r.text
    assert r.json["watched_seconds"] == 85 and r.json["video_percent"] == 85
    doc = s.client.get(f"/progress/{course.id}").json
    m = doc["modules"][0]
    assert (m["completed"], m["watched_seconds"], m["furthest_position"]) == (False, 85, 85)
    clock.tick(5)
    r = _hb(s, course, 90)
    assert r.json["completed_now"] is True
    # Completion is written through at once (even on the write-behind path).
    row = _row(svc, lp_tenant, course, s)
    assert row.completed_at is not None and row.completed_source == "video"
    assert row.watched_seconds == 90
    doc = s.client.get(f"/progress/{course.id}").json
    assert doc["percent"] == 50 and doc["modules"][0]["completed"]
    clock.tick(5)
    assert _hb(s, course, 95).json["completed_now"] is False
    # Un-completed by hand, it is not completed again by the next heartbeats.
    s.client.post(f"/progress/{course.id}", json={"module_id": course.module_ids[0],
                                                  "completed": False})
    clock.tick(5)
    assert _hb(s, course, 100).json["completed_now"] is False
    assert s.client.get(f"/progress/{course.id}").json["modules"][0]["completed"] is False
    lp_runtime.events.dispatch_pending()
    completed = [e for e in event_recorder.events if e.tenant_id == lp_tenant.id
                 and e.name == "progress.module_completed.v1"]
    assert [e.payload["source"] for e in completed] == ["video"]


def test_seeking_ahead_does_not_complete(path, course_factory, clock):
    course = course_factory([{"kind": "video"}])
    s = course.enroll()
    _hb(s, course, 0)
    clock.tick(5)
    r = _hb(s, course, 99)
    assert r.json["furthest_position"] == 99 and r.json["watched_seconds"] == 10
    assert r.json["completed_now"] is False
    clock.tick(5)
    r = _hb(s, course, 20)  # back again
    assert r.json["furthest_position"] == 99 and r.json["position_seconds"] == 20


def test_heartbeat_rules_http(path, course_factory, clock, lp_client, lp_users, lp_other_tenant):
    later = "2199-01-01T00:00:00Z"
    course = course_factory([{"kind": "video"}, {"kind": "video", "prerequisite_id": "#0"},
                             {"kind": "video", "release_at": later}, {"kind": "text"}])
    s = course.enroll()
    assert _hb(s, course, 1, module=1).json["code"] == "module_locked"
    assert _hb(s, course, 1, module=2).status_code == 409
    assert _hb(s, course, 1, module=3).json["code"] == "not_a_video"
    assert _hb(s, course, 103).status_code == 200  # a little past the end: clamped
    assert _hb(s, course, 103).json["position_seconds"] == 100
    assert _hb(s, course, 500).status_code == 422
    outsider = lp_client.as_(lp_users.make("student").token)
    assert outsider.post(f"/progress/{course.id}", json={
        "module_id": course.module_ids[0], "position_seconds": 1,
        "duration_seconds": 10}).status_code == 403
    stranger = lp_users.make("student", tenant=lp_other_tenant)
    other = lp_client.as_(stranger.token, tenant=lp_other_tenant)
    assert other.post(f"/progress/{course.id}", json={
        "module_id": course.module_ids[0], "position_seconds": 1,
        "duration_seconds": 10}).status_code == 404
    # Dropping the enrollment stops heartbeats at once (the access cache is forgotten).
    assert s.client.delete(f"/courses/{course.id}/enroll").status_code == 200
    assert _hb(s, course, 5).status_code == 403


def test_write_behind_flush(redis_store, course_factory, clock, svc, lp_tenant):
    from learnplat_progress.heartbeats import member

    course = course_factory([{"kind": "video"}, {"kind": "video"}])
    s = course.enroll()
    before = redis_store.stats()
    for pos in range(0, 50, 5):
        _hb(s, course, pos)
        _hb(s, course, pos / 2, module=1)
        clock.tick(5)
    # The database has seen none of the 20 heartbeats yet; GET is current anyway.
    assert _row(svc, lp_tenant, course, s) is None
    doc = s.client.get(f"/progress/{course.id}").json
    assert doc["modules"][0]["watched_seconds"] == 45
    assert doc["modules"][1]["furthest_position"] == 22.5
    totals = svc.flush_heartbeats()
    assert totals["rows"] >= 2 and totals["failed"] == 0
    row = _row(svc, lp_tenant, course, s)
    assert (row.furthest_position, row.watched_seconds, row.duration_seconds) == (45, 45, 100)
    assert row.last_heartbeat_at is not None and row.completed_at is None
    after = redis_store.stats()
    assert after["heartbeats"] - before.get("heartbeats", 0) == 20
    assert after["flush_rows"] - before.get("flush_rows", 0) >= 2
    # Heartbeats after the flush, then Redis loses its state (a restart): what was flushed
    # stays, the next heartbeat resumes from the database, nothing completed is lost.
    clock.tick(5)
    _hb(s, course, 50)
    for i in (0, 1):
        redis_store.redis.delete(redis_store.state_key(member(lp_tenant.id, course.id, s.id,
                                                  course.module_ids[i])))
    doc = s.client.get(f"/progress/{course.id}").json
    assert doc["modules"][0]["furthest_position"] == 45
    clock.tick(5)
    r = _hb(s, course, 55)
    assert r.json["furthest_position"] == 55 and r.json["watched_seconds"] == 55
    svc.flush_heartbeats()
    assert _row(svc, lp_tenant, course, s).furthest_position == 55


def test_flush_failure_keeps_keys_dirty(redis_store, course_factory, clock, svc, monkeypatch):
    course = course_factory([{"kind": "video"}])
    s = course.enroll()
    _hb(s, course, 3)

    def boom(tenant_id, rows):
        raise RuntimeError("database down")

    monkeypatch.setattr(svc, "persist_playback", boom)
    totals = svc.flush_heartbeats()
    assert totals["failed"] >= 1
    assert redis_store.redis.scard(redis_store.dirty) >= 1
    monkeypatch.undo()
    assert svc.flush_heartbeats()["failed"] == 0


def test_flush_task_is_registered(lp_runtime):
    from learnplat_progress.tasks import FLUSH_TASK

    spec = lp_runtime.registry.tasks[FLUSH_TASK]
    assert spec.tenant_scoped is False and spec.periodic is not None
    with db.connection():
        lp_runtime.queue.wrappers[FLUSH_TASK]()  # runs (immediate mode); no-op without Redis


def test_settings_validation(tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        ProgressSettings(heartbeat_flush_seconds=90)
    with pytest.raises(ValidationError):
        ProgressSettings(video_complete_ratio=1.5)
    assert ProgressSettings(heartbeat_flush_seconds=120).heartbeat_flush_seconds == 120


def test_flush_gate_spaces_longer_intervals(redis_store):
    from learnplat_progress.heartbeats import HeartbeatStore

    store = HeartbeatStore(redis_store.redis,
                           lambda: ProgressSettings(heartbeat_flush_seconds=120),
                           redis_store.prefix.rsplit(":", 1)[0])
    FLUSH_GATE = store.flush_gate
    redis_store.redis.delete(FLUSH_GATE)
    try:
        assert store.due() is True
        assert store.due() is False  # the next minute's run is skipped
    finally:
        redis_store.redis.delete(FLUSH_GATE)
    assert redis_store.due() is True  # 60 s: every run flushes


def test_simultaneous_crossing_heartbeats_complete_once(path, course_factory, clock,
                                                        lp_runtime, lp_tenant, event_recorder):
    import threading

    course = course_factory([{"kind": "video"}])
    s = course.enroll()
    for pos in range(0, 90, 5):
        _hb(s, course, pos)
        clock.tick(5)
    barrier = threading.Barrier(4, timeout=30)
    answers: list[object] = []

    def beat():
        barrier.wait()
        answers.append(_hb(s, course, 90))

    threads = [threading.Thread(target=beat) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(getattr(a, "status_code", None) == 200 for a in answers), answers
    lp_runtime.events.dispatch_pending()
    names = [e.name for e in event_recorder.events if e.tenant_id == lp_tenant.id
             and e.payload.get("user_id") == s.id]
    assert names.count("progress.module_completed.v1") == 1
    assert names.count("course.completed.v1") == 1
    assert s.client.get(f"/progress/{course.id}").json["completed"] is True
