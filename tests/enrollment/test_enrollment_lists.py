"""GET /courses/enrollments (the caller's, with the enrollment_summaries hook) and
GET /courses/{id}/students (owner instructor, admin): paging, filters, query counts, tenants."""

from __future__ import annotations

from typing import Any

import pytest
from enrollhelpers import make_users, publish_course

from learnplat import hookimpl


class _Summaries:
    """Stands in for the progress plugin: one answer per page, recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[int], Any]] = []

    @hookimpl
    def enrollment_summaries(self, runtime, course_ids, user_id):
        self.calls.append((list(course_ids), user_id))
        return {cid: {"test_half": True} for cid in course_ids if cid % 2 == 0}


class _MoreSummaries:
    @hookimpl
    def enrollment_summaries(self, runtime, course_ids, user_id):
        return {cid: {"test_all": None} for cid in course_ids}


@pytest.fixture
def summaries(lp_runtime):
    plugins = [_Summaries(), _MoreSummaries()]
    for i, p in enumerate(plugins):
        lp_runtime.pm.register(p, name=f"test-summaries-{i}")
    yield plugins[0]
    for p in plugins:
        lp_runtime.pm.unregister(p)


def _courses(lp_client, lp_users, n: int) -> list[Any]:
    return [publish_course(lp_client, lp_users, modules=0, title=f"C{i}") for i in range(n)]


def _walk(client, url: str, limit: int) -> list[list[dict[str, Any]]]:
    pages, cursor = [], None
    while True:
        r = client.get(url, params={"limit": limit, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        pages.append(r.json["items"])
        if not (cursor := r.json["next_cursor"]):
            return pages


def test_my_enrollments_newest_first_with_course_and_progress(lp_client, lp_users, summaries,
                                                              lp_tenant, lp_runtime):
    courses = _courses(lp_client, lp_users, 5)
    student, = make_users(lp_users.runtime, lp_tenant, 1)
    s = lp_client.as_(student.token)
    ids = [s.post(f"/courses/{c.id}/enroll").json["id"] for c in courses]
    s.delete(f"/courses/{courses[1].id}/enroll")
    pages = _walk(s, "/courses/enrollments", 2)
    assert [len(p) for p in pages] == [2, 2, 1]
    items = [i for p in pages for i in p]
    assert [i["id"] for i in items] == ids[::-1]
    by_course = {i["course_id"]: i for i in items}
    for c in courses:
        item = by_course[c.id]
        assert item["course"]["id"] == c.id and item["course"]["status"] == "published"
        assert item["user_id"] == student.id
        progress = item["progress"]
        # Every implementation's answer, merged per course.
        assert progress["test_all"] is None
        assert progress.get("test_half") is (True if c.id % 2 == 0 else None)
        if lp_runtime.has_service("progress"):  # the real progress plugin answers too
            assert 0 <= progress["percent"] <= 100 and progress["completed"] is False
    assert by_course[courses[1].id]["status"] == "dropped"
    # One hook call per page, with that page's courses.
    assert [len(ids) for ids, _ in summaries.calls] == [2, 2, 1]
    assert {u for _, u in summaries.calls} == {student.id}
    active = s.get("/courses/enrollments", params={"status": "active"}).json["items"]
    assert len(active) == 4 and {i["status"] for i in active} == {"active"}
    dropped = s.get("/courses/enrollments", params={"status": "dropped"}).json["items"]
    assert [i["course_id"] for i in dropped] == [courses[1].id]


@pytest.fixture
def no_summaries(lp_runtime):
    """Take the progress plugin's hooks out for one test (put back after)."""
    plugin = lp_runtime.pm.get_plugin("progress")
    if plugin is not None:
        lp_runtime.pm.unregister(plugin)
    yield
    if plugin is not None:
        lp_runtime.pm.register(plugin, name="progress")


def test_my_enrollments_without_summaries_and_empty(lp_client, lp_users, lp_tenant,
                                                    no_summaries):
    course, = _courses(lp_client, lp_users, 1)
    student, other = make_users(lp_users.runtime, lp_tenant, 2)
    lp_client.as_(student.token).post(f"/courses/{course.id}/enroll")
    item, = lp_client.as_(student.token).get("/courses/enrollments").json["items"]
    assert item["progress"] is None and item["course"]["title"] == "C0"
    # Another student, an instructor and an admin have none.
    assert lp_client.as_(other.token).get("/courses/enrollments").json == {
        "items": [], "next_cursor": None}
    assert lp_client.as_(course.instructor.token).get(
        "/courses/enrollments").json["items"] == []


def test_my_enrollments_costs_a_constant_number_of_queries(lp_client, lp_users, summaries,
                                                           lp_tenant, lp_queries):
    courses = _courses(lp_client, lp_users, 12)
    few, many = make_users(lp_users.runtime, lp_tenant, 2)
    for c in courses[:2]:
        lp_client.as_(few.token).post(f"/courses/{c.id}/enroll")
    for c in courses:
        lp_client.as_(many.token).post(f"/courses/{c.id}/enroll")
    counts = []
    for who in (few, many):
        client = lp_client.as_(who.token)
        with lp_queries() as counter:
            r = client.get("/courses/enrollments", params={"limit": 100})
        assert r.status_code == 200
        counts.append(counter.count)
    assert len(r.json["items"]) == 12
    assert counts[0] == counts[1], counts


def test_bad_list_queries_are_422(lp_client, lp_users, lp_tenant, published):
    student, = make_users(lp_users.runtime, lp_tenant, 1)
    s = lp_client.as_(student.token)
    for params, field in (({"limit": 0}, "limit"), ({"limit": 101}, "limit"),
                          ({"status": "gone"}, "status"), ({"cursor": "nonsense"}, "cursor")):
        r = s.get("/courses/enrollments", params=params)
        assert r.status_code == 422, (params, r.text)
        assert [e["field"] for e in r.json["errors"]] == [field]
        r = lp_client.as_(published.instructor.token).get(
            f"/courses/{published.id}/students", params=params)
        assert r.status_code == 422, (params, r.text)
    assert lp_client.get("/courses/enrollments").status_code == 401


def test_students_list_for_owner_and_admin(lp_client, lp_users, lp_tenant, lp_queries):
    course = publish_course(lp_client, lp_users)
    learners = make_users(lp_users.runtime, lp_tenant, 5)
    for s in learners:
        assert lp_client.as_(s.token).post(f"/courses/{course.id}/enroll").status_code == 201
    lp_client.as_(learners[0].token).delete(f"/courses/{course.id}/enroll")
    url = f"/courses/{course.id}/students"
    for staff in (course.instructor, course.admin):
        pages = _walk(lp_client.as_(staff.token), url, 2)
        items = [i for p in pages for i in p]
        assert [i["user"]["email"] for i in items] == [s.email for s in learners[::-1]]
        assert all(i["user"]["id"] == i["user_id"] and i["user"]["name"] for i in items)
    owner = lp_client.as_(course.instructor.token)
    active = owner.get(url, params={"status": "active"}).json["items"]
    assert {i["user_id"] for i in active} == {s.id for s in learners[1:]}
    dropped = owner.get(url, params={"status": "dropped"}).json["items"]
    assert [i["user_id"] for i in dropped] == [learners[0].id]
    # Users come in one batch, not one query per learner.
    with lp_queries() as one:
        owner.get(url, params={"limit": 1})
    with lp_queries() as five:
        owner.get(url, params={"limit": 5})
    assert one.count == five.count


def test_students_list_is_for_the_owner_and_admins_of_this_school(
        lp_client, lp_users, lp_tenant, lp_other_tenant, published):
    url = f"/courses/{published.id}/students"
    student, = make_users(lp_users.runtime, lp_tenant, 1)
    lp_client.as_(student.token).post(f"/courses/{published.id}/enroll")
    other_teacher, = make_users(lp_users.runtime, lp_tenant, 1, "instructor")
    assert lp_client.as_(student.token).get(url).status_code == 403
    assert lp_client.as_(other_teacher.token).get(url).status_code == 403
    assert lp_client.as_(published.admin.token).get("/courses/999999999/students"
                                                    ).status_code == 404
    for role in ("admin", "instructor", "student"):
        stranger, = make_users(lp_users.runtime, lp_other_tenant, 1, role)
        other = lp_client.as_(stranger.token, tenant=lp_other_tenant)
        r = other.get(url)
        assert r.status_code in (403, 404), (role, r.status_code)
        assert r.status_code == (403 if role == "student" else 404)
        assert other.get("/courses/enrollments").json["items"] == []
    assert lp_client.get(url).status_code == 401


def test_course_detail_shows_the_callers_enrollment(lp_client, lp_users, lp_tenant, published):
    student, = make_users(lp_users.runtime, lp_tenant, 1)
    s = lp_client.as_(student.token)
    before = s.get(f"/courses/{published.id}").json["enrollment"]
    assert before == {"status": None, "enrollment_id": None, "open": True, "seats_left": None,
                      "opens_at": None, "closes_at": None}
    eid = s.post(f"/courses/{published.id}/enroll").json["id"]
    lp_client.as_(published.instructor.token).put(
        f"/courses/{published.id}/enrollment-rules", json={"cap": 4})
    after = s.get(f"/courses/{published.id}").json["enrollment"]
    assert after["status"] == "active" and after["enrollment_id"] == eid
    assert after["seats_left"] == 3
