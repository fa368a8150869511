"""Concurrent enrollments against a real gunicorn (3 workers x 4 threads) on the test database:
one student racing themself gets one enrollment; N students racing for K seats get exactly K."""

from __future__ import annotations

from collections import Counter

import requests
from enrollhelpers import in_tenant, make_users, publish_course, race
from learnplat_enrollment.models import Enrollment

from learnplat.models import OutboxEvent


def _post(base: str, path: str, token: str, tenant: str, **kw: object) -> requests.Response:
    return requests.post(f"{base}{path}", timeout=30, headers={
        "Authorization": f"Bearer {token}", "X-Tenant": tenant}, **kw)


def _events(tenant, course_id: int, name: str) -> int:
    rows = OutboxEvent.select().where((OutboxEvent.tenant_id == tenant.id)
                                      & (OutboxEvent.name == name))
    return sum(1 for e in rows if e.payload["course_id"] == course_id)


def test_concurrent_enrollments_against_gunicorn(live_server, lp_client, lp_users, lp_tenant):
    """One server for every scenario (it takes seconds to boot)."""
    one_student_racing_gets_one_enrollment(live_server, lp_client, lp_users, lp_tenant)
    racing_for_a_cap_seats_exactly_cap_students(live_server, lp_client, lp_users, lp_tenant)
    dropping_and_reenrolling_at_once_stays_one_row(live_server, lp_client, lp_users,
                                                   lp_tenant)
    bulk_racing_self_enrollments_stays_one_row_each(live_server, lp_client, lp_users,
                                                    lp_tenant)


def one_student_racing_gets_one_enrollment(live_server, lp_client, lp_users, lp_tenant):
    course = publish_course(lp_client, lp_users)
    student, = make_users(lp_users.runtime, lp_tenant, 1)
    path = f"/courses/{course.id}/enroll"
    results = race([lambda: _post(live_server, path, student.token, lp_tenant.slug)] * 24)
    assert all(isinstance(r, requests.Response) for r in results), results
    codes = Counter(r.status_code for r in results)
    assert codes == {201: 1, 200: 23}, [r.text for r in results if r.status_code >= 300]
    assert len({r.json()["id"] for r in results}) == 1
    with in_tenant(lp_tenant):
        assert Enrollment.select().where(Enrollment.course_id == course.id).count() == 1
        assert _events(lp_tenant, course.id, "enrollment.created.v1") == 1


def racing_for_a_cap_seats_exactly_cap_students(live_server, lp_client, lp_users, lp_tenant):
    course = publish_course(lp_client, lp_users)
    cap = 5
    rules = lp_client.as_(course.instructor.token).put(
        f"/courses/{course.id}/enrollment-rules", json={"cap": cap})
    assert rules.status_code == 200, rules.text
    students = make_users(lp_users.runtime, lp_tenant, 12)
    path = f"/courses/{course.id}/enroll"
    # Every student sends two requests at once: both cap and one-row-per-student are at stake.
    calls = [lambda s=s: _post(live_server, path, s.token, lp_tenant.slug)
             for s in students for _ in range(2)]
    results = race(calls)
    assert all(isinstance(r, requests.Response) for r in results), results
    codes = Counter(r.status_code for r in results)
    assert codes[201] == cap and codes[500] == 0, codes
    for i, s in enumerate(students):
        pair = sorted(r.status_code for r in results[2 * i:2 * i + 2])
        # Seated (one 201, the twin 200 with the same id) or turned away twice.
        assert pair in ([200, 201], [409, 409]), (s.email, pair)
        if pair == [409, 409]:
            assert results[2 * i].json()["code"] == "course_full"
        else:
            assert results[2 * i].json()["id"] == results[2 * i + 1].json()["id"]
    with in_tenant(lp_tenant):
        rows = Enrollment.select().where(Enrollment.course_id == course.id)
        assert rows.count() == cap
        assert {e.status for e in rows} == {"active"}
        assert _events(lp_tenant, course.id, "enrollment.created.v1") == cap
    # A student who drops frees a seat for the next one.
    seated = [s for i, s in enumerate(students) if results[2 * i].status_code in (200, 201)]
    waiting = [s for i, s in enumerate(students) if results[2 * i].status_code == 409]
    assert lp_client.as_(seated[0].token).delete(path).status_code == 200
    assert lp_client.as_(waiting[0].token).post(path).status_code == 201
    assert lp_client.as_(waiting[1].token).post(path).status_code == 409


def dropping_and_reenrolling_at_once_stays_one_row(live_server, lp_client, lp_users,
                                                   lp_tenant):
    course = publish_course(lp_client, lp_users)
    student, = make_users(lp_users.runtime, lp_tenant, 1)
    path = f"/courses/{course.id}/enroll"
    s = lp_client.as_(student.token)
    eid = s.post(path).json["id"]
    assert s.delete(path).status_code == 200
    results = race([lambda: _post(live_server, path, student.token, lp_tenant.slug)] * 12)
    assert Counter(r.status_code for r in results) == {200: 12}
    assert {r.json()["id"] for r in results} == {eid}
    with in_tenant(lp_tenant):
        assert Enrollment.select().where(Enrollment.course_id == course.id).count() == 1
        # One reactivation, not twelve.
        created = OutboxEvent.select().where((OutboxEvent.tenant_id == lp_tenant.id)
                                             & (OutboxEvent.name == "enrollment.created.v1"))
        assert sum(1 for e in created if e.payload.get("reactivated")) == 1


def bulk_racing_self_enrollments_stays_one_row_each(live_server, lp_client, lp_users,
                                                    lp_tenant):
    course = publish_course(lp_client, lp_users)
    students = make_users(lp_users.runtime, lp_tenant, 10)
    path = f"/courses/{course.id}/enroll"
    bulk_path = f"/courses/{course.id}/enrollments/bulk"
    body = {"user_ids": [s.id for s in students]}
    calls = [lambda s=s: _post(live_server, path, s.token, lp_tenant.slug) for s in students]
    calls += [lambda t=t: _post(live_server, bulk_path, t, lp_tenant.slug, json=body)
              for t in (course.instructor.token, course.admin.token)]
    results = race(calls)
    assert all(isinstance(r, requests.Response) for r in results), results
    selves, bulks = results[:10], results[10:]
    assert {r.status_code for r in selves} <= {200, 201}, [r.text for r in selves]
    assert [r.status_code for r in bulks] == [200, 200], [r.text for r in bulks]
    created_by_bulk = [r.json()["created"] for r in bulks]
    # Every student was created exactly once: by themself (201) or by one of the bulks.
    assert sum(r.status_code == 201 for r in selves) + sum(created_by_bulk) == 10
    for r in bulks:
        assert r.json()["rejected"] == 0
    with in_tenant(lp_tenant):
        assert Enrollment.select().where(Enrollment.course_id == course.id).count() == 10
        assert _events(lp_tenant, course.id, "enrollment.created.v1") == 10
