"""GET /courses/{id} is kept per caller (the course, its modules and every plugin's extras):
served again without a query, and never stale. Each write that changes what a caller's page
shows is made after the page was cached; the page served next must equal one computed afresh
(the process's cache emptied) and show the change."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest

from learnplat import db
from learnplat.models import Tenant
from learnplat.testing import count_queries


class Pages:
    """Serve a page twice (the second from the cache when it may be kept), and compare what
    the cache serves after a write with a page computed afresh."""

    def __init__(self, runtime: Any, course_id: int):
        self.runtime = runtime
        self.path = f"/courses/{course_id}"

    def warm(self, client: Any) -> dict[str, Any]:
        client.get(self.path)
        r = client.get(self.path)
        assert r.status_code == 200, r.text
        return r.json

    def fresh(self, client: Any) -> dict[str, Any]:
        served = client.get(self.path)
        assert served.status_code == 200, served.text
        self.runtime.answers.clear()
        recomputed = client.get(self.path)
        assert served.json == recomputed.json, "a stale page was served"
        return served.json


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def course(world):
    t = world.t
    r = t.post("/courses", json={"title": "Cached page"})
    cid = r.json["id"]
    kinds = ["text", "quiz", "video"]
    mids = []
    for i, kind in enumerate(kinds):
        r = t.post(f"/courses/{cid}/modules", json={"title": f"M{i}", "kind": kind})
        assert r.status_code == 201, r.text
        mids.append(r.json["id"])
    quiz = t.post(f"/courses/{cid}/modules/{mids[1]}/quiz", json={
        "title": "Q", "pass_mark": 50, "questions": [
            {"type": "true_false", "prompt": "True?", "answer": True, "points": 1}]})
    assert quiz.status_code == 201, quiz.text
    assert t.post(f"/courses/{cid}/submit").status_code == 200
    assert world.a.post(f"/courses/{cid}/approve").status_code == 200
    return {"id": cid, "modules": mids, "quiz": quiz.json}


def test_a_cached_page_costs_no_query(world, course, lp_runtime):
    pages = Pages(lp_runtime, course["id"])
    world.enroll(world.s, course["id"])
    first = pages.warm(world.s)
    with count_queries() as q:
        again = world.s.get(pages.path)
    assert again.json == first
    assert first["enrollment"]["status"] == "active"
    # Only the tenant lookup is not cached in tests (tenancy.cache_seconds = 0).
    assert not [s for s in q.queries if "courses_" in s or "enrollment" in s
                or "progress" in s or "certificates" in s], q.queries


def test_every_write_that_changes_a_callers_page_is_seen(world, course, lp_runtime,
                                                         monkeypatch):
    # Events are delivered when the test says (as by a worker, later): each plugin's own
    # write must change the page, not what another plugin does on its event.
    monkeypatch.setattr(lp_runtime.events, "notify", lambda: None)
    cid, mids = course["id"], course["modules"]
    pages = Pages(lp_runtime, cid)
    s, a, t = world.s, world.a, world.t
    anonymous = world.client
    other = world.as_new("student")

    pages.warm(s)
    pages.warm(anonymous)
    world.enroll(s, cid)  # enrollment: EnrollmentService._event
    page = pages.fresh(s)
    assert page["enrollment"]["status"] == "active"
    assert "progress" not in page or page["progress"]["percent"] == 0
    lp_runtime.events.dispatch_pending()  # the progress row made for the enrollment
    pages.fresh(s)

    pages.warm(s)
    r = s.post(f"/progress/{cid}", json={"module_id": mids[0], "completed": True})
    assert r.status_code == 200, r.text  # progress: ProgressService._lock
    page = pages.fresh(s)
    assert page["progress"]["completed_modules"] == 1

    pages.warm(s)
    quiz = course["quiz"]
    r = s.post(f"/courses/{cid}/modules/{mids[1]}/quiz/{quiz['id']}/submit",
               json={"answers": {str(quiz["questions"][0]["id"]): True}})
    assert r.status_code == 200 and r.json["passed"] is True, r.text
    lp_runtime.events.dispatch_pending()  # quiz.passed.v1 -> complete_from_event
    page = pages.fresh(s)
    assert page["progress"]["completed_modules"] == 2

    pages.warm(s)
    before = page["progress"]["last_activity_at"]
    time.sleep(1.1)  # last_activity_at has whole seconds on some backends
    r = s.post(f"/progress/{cid}", json={"module_id": mids[2], "position_seconds": 5,
                                          "duration_seconds": 100})
    assert r.status_code == 200, r.text
    lp_runtime.service("progress").flush_heartbeats()  # write-behind (with Redis)
    page = pages.fresh(s)
    assert page["progress"]["last_activity_at"] != before

    pages.warm(s)
    r = s.post(f"/progress/{cid}", json={"module_id": mids[2], "completed": True})
    assert r.status_code == 200, r.text
    page = pages.fresh(s)
    assert page["progress"]["completed"] is True
    assert "certificate" not in page

    pages.warm(s)
    lp_runtime.events.dispatch_pending()  # course completed -> certificate issued (inline)
    page = pages.fresh(s)
    assert page["certificate"]["status"] == "issued"

    # The school's settings shape the certificate's URL: a settings change is seen too.
    pages.warm(s)
    with db.connection():
        Tenant.update(settings={"certificates": {"base_url": "https://certs.example"}}).where(
            Tenant.id == world.client.tenant.id).execute()
    lp_runtime.tenants.invalidate()
    assert pages.fresh(s)["certificate"]["verify_url"].startswith("https://certs.example/")

    pages.warm(s)
    r = a.post(f"/certificates/{page['certificate']['id']}/revoke", json={"reason": "test"})
    assert r.status_code == 200, r.text
    assert pages.fresh(s)["certificate"]["status"] == "revoked"

    pages.warm(s)
    assert s.delete(f"/courses/{cid}/enroll").status_code == 200
    assert pages.fresh(s)["enrollment"]["status"] == "dropped"
    lp_runtime.events.dispatch_pending()
    pages.fresh(s)

    pages.warm(s)
    r = a.post(f"/courses/{cid}/enrollments/bulk", json={"user_ids": [world.student.id]})
    assert r.status_code == 200, r.text
    assert pages.fresh(s)["enrollment"]["status"] == "active"

    # Rules change every caller's page, the visitor's included.
    pages.warm(s)
    pages.warm(anonymous)
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    r = t.put(f"/courses/{cid}/enrollment-rules", json={"opens_at": _iso(soon)})
    assert r.status_code == 200, r.text
    assert pages.fresh(s)["enrollment"]["open"] is False
    assert pages.fresh(anonymous)["enrollment"]["open"] is False

    # A capped course: every other learner's enrollment changes seats_left.
    assert t.put(f"/courses/{cid}/enrollment-rules", json={"cap": 10}).status_code == 200
    seats = pages.warm(s)["enrollment"]["seats_left"]
    world.enroll(other, cid)
    assert pages.fresh(s)["enrollment"]["seats_left"] == seats - 1

    # The course itself: a new module (the catalogue generation).
    pages.warm(s)
    assert t.put(f"/courses/{cid}/enrollment-rules", json={}).status_code == 200
    r = t.post(f"/courses/{cid}/modules", json={"title": "Bonus"})
    assert r.status_code == 201, r.text
    assert [m["title"] for m in pages.fresh(s)["modules"]][-1] == "Bonus"


def _wait_until(moment: dt.datetime) -> None:
    time.sleep(max(0.0, (moment - dt.datetime.now(dt.UTC)).total_seconds()) + 0.1)


def test_the_clock_ends_a_cached_page(world, course, lp_runtime):
    """A module released, an enrollment window opening or closing: no write bumps anything,
    the page says when it stops being true."""
    cid = course["id"]
    pages = Pages(lp_runtime, cid)
    t = world.t
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.5)
    r = t.post(f"/courses/{cid}/modules", json={"title": "Later", "release_at": _iso(soon)})
    assert r.status_code == 201, r.text
    for caller in (world.s, world.client):
        assert pages.warm(caller)["modules"][-1]["released"] is False
    _wait_until(soon)
    for caller in (world.s, world.client):
        assert pages.fresh(caller)["modules"][-1]["released"] is True

    for field, before, after in (("opens_at", False, True), ("closes_at", True, False)):
        soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.5)
        r = t.put(f"/courses/{cid}/enrollment-rules", json={field: _iso(soon)})
        assert r.status_code == 200, r.text
        for caller in (world.s, world.client):
            assert pages.warm(caller)["enrollment"]["open"] is before
        _wait_until(soon)
        for caller in (world.s, world.client):
            assert pages.fresh(caller)["enrollment"]["open"] is after


def test_callers_do_not_share_pages(world, course, lp_runtime, lp_other_tenant, lp_users):
    cid = course["id"]
    pages = Pages(lp_runtime, cid)
    world.enroll(world.s, cid)
    mine = pages.warm(world.s)
    other = world.as_new("student")
    theirs = pages.warm(other)
    assert mine["enrollment"]["status"] == "active"
    assert theirs["enrollment"]["status"] is None
    assert pages.warm(world.t)["enrollment"]["status"] is None
    # Another school's student, the same course id: not found, whatever is cached.
    stranger = lp_users.make("student", tenant=lp_other_tenant)
    r = world.client.as_(stranger.token, tenant=lp_other_tenant).get(pages.path)
    assert r.status_code == 404


def test_an_extras_hook_that_is_not_marked_turns_the_cache_off(world, course, lp_runtime):
    """A plugin written before 0.2 keeps a page computed afresh for every request."""
    from learnplat import hookimpl

    calls = []

    class Legacy:
        @hookimpl
        def course_detail_extras(self, runtime, course_id, principal):
            calls.append(course_id)
            return {"legacy": len(calls)}

    plugin = Legacy()
    lp_runtime.pm.register(plugin, name="legacy-extras")
    try:
        pages = Pages(lp_runtime, course["id"])
        pages.warm(world.s)
        assert world.s.get(pages.path).json["legacy"] == 3
    finally:
        lp_runtime.pm.unregister(plugin)


def test_servers_see_a_learners_change_made_through_another(lp_runtime, lp_database, world,
                                                            course, tmp_path):
    """Two gunicorn servers on PostgreSQL + Redis: a page cached by one server is not served
    after the learner enrolled and progressed through the other."""
    if lp_runtime.redis is None:
        pytest.skip("needs Redis (LEARNPLAT_TEST_BACKEND=postgres)")
    import requests

    from learnplat.testing import serve_with_gunicorn

    cid, mids = course["id"], course["modules"]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    hdrs = {"X-Tenant": world.client.tenant.slug,
            "Authorization": f"Bearer {world.student.token}"}
    with serve_with_gunicorn(lp_runtime, lp_database, tmp_path / "a", workers=1) as a, \
            serve_with_gunicorn(lp_runtime, lp_database, tmp_path / "b", workers=1) as b:
        def page() -> dict[str, Any]:
            r = requests.get(f"{a}/courses/{cid}", headers=hdrs, timeout=10)
            assert r.status_code == 200, r.text
            return r.json()

        for _ in range(3):
            assert page()["enrollment"]["status"] is None
        r = requests.post(f"{b}/courses/{cid}/enroll", headers=hdrs, timeout=10)
        assert r.status_code == 201, r.text
        assert page()["enrollment"]["status"] == "active"
        for _ in range(3):
            page()
        r = requests.post(f"{b}/progress/{cid}", headers=hdrs, timeout=10,
                          json={"module_id": mids[0], "completed": True})
        assert r.status_code == 200, r.text
        assert page()["progress"]["completed_modules"] == 1
