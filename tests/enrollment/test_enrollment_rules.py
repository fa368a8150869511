"""GET/PUT /courses/{id}/enrollment-rules: cap and window, who may set them, 409s they cause."""

from __future__ import annotations

import datetime as dt

from enrollhelpers import in_tenant, make_users, publish_course
from learnplat_enrollment.models import Enrollment, EnrollmentRules


def _iso(delta: dt.timedelta) -> str:
    return (dt.datetime.now(dt.UTC) + delta).isoformat()


def test_rules_default_to_none_and_owner_and_admin_set_them(lp_client, lp_users, published):
    student, = make_users(lp_users.runtime, lp_client.tenant, 1)
    url = f"/courses/{published.id}/enrollment-rules"
    got = lp_client.as_(student.token).get(url)
    assert got.status_code == 200, got.text
    assert got.json == {"course_id": published.id, "cap": None, "opens_at": None,
                        "closes_at": None, "active_count": 0, "seats_left": None, "open": True}
    owner = lp_client.as_(published.instructor.token)
    put = owner.put(url, json={"cap": 3, "closes_at": "2099-01-01T00:00:00Z"})
    assert put.status_code == 200, put.text
    assert put.json["cap"] == 3 and put.json["seats_left"] == 3
    assert put.json["closes_at"] == "2099-01-01T00:00:00Z" and put.json["open"] is True
    # PUT replaces the whole rule set: fields left out are removed.
    admin = lp_client.as_(published.admin.token)
    assert admin.put(url, json={"cap": 10}).json["closes_at"] is None
    assert owner.get(url).json["cap"] == 10
    assert owner.put(url, json={}).json["cap"] is None
    # A naive time is read as UTC.
    assert owner.put(url, json={"opens_at": "2030-05-01T08:00:00"}).json["opens_at"] \
        == "2030-05-01T08:00:00Z"


def test_who_may_not_set_rules(lp_client, lp_users, published, lp_other_tenant, lp_tenant):
    url = f"/courses/{published.id}/enrollment-rules"
    student, = make_users(lp_users.runtime, lp_tenant, 1)
    other_teacher, = make_users(lp_users.runtime, lp_tenant, 1, "instructor")
    assert lp_client.as_(student.token).put(url, json={"cap": 1}).status_code == 403
    # Another instructor sees the published course but does not own it.
    assert lp_client.as_(other_teacher.token).put(url, json={"cap": 1}).status_code == 403
    # Their draft is invisible to other instructors: 404.
    draft = lp_client.as_(published.instructor.token).post(
        "/courses", json={"title": "Draft"}).json["id"]
    assert lp_client.as_(other_teacher.token).get(
        f"/courses/{draft}/enrollment-rules").status_code == 404
    assert lp_client.as_(other_teacher.token).put(
        f"/courses/{draft}/enrollment-rules", json={"cap": 1}).status_code == 404
    # Another school: nothing to see.
    stranger, = make_users(lp_users.runtime, lp_other_tenant, 1, "admin")
    other = lp_client.as_(stranger.token, tenant=lp_other_tenant)
    assert other.get(url).status_code == 404
    assert other.put(url, json={"cap": 1}).status_code == 404
    assert lp_client.get(url).status_code == 401
    with in_tenant(lp_tenant):
        assert EnrollmentRules.select().count() == 0


def test_invalid_rules_are_422_naming_the_field(lp_client, published, lp_tenant):
    owner = lp_client.as_(published.instructor.token)
    url = f"/courses/{published.id}/enrollment-rules"
    for body, field in (({"cap": 0}, "cap"), ({"cap": "many"}, "cap"), ({"cap": -3}, "cap"),
                        ({"opens_at": "tomorrow"}, "opens_at"), ({"seats": 3}, "seats")):
        r = owner.put(url, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert [e["field"] for e in r.json["errors"]] == [field], r.json
    r = owner.put(url, json={"opens_at": "2030-01-02T00:00:00Z",
                             "closes_at": "2030-01-01T00:00:00Z"})
    assert r.status_code == 422
    assert owner.put(url, body="{", headers={"Content-Type": "application/json"}
                     ).status_code == 400
    with in_tenant(lp_tenant):
        assert EnrollmentRules.select().count() == 0


def test_full_and_closed_courses_answer_409(lp_client, lp_users, lp_tenant):
    course = publish_course(lp_client, lp_users)
    owner = lp_client.as_(course.instructor.token)
    rules = f"/courses/{course.id}/enrollment-rules"
    enroll = f"/courses/{course.id}/enroll"
    a, b, c = (lp_client.as_(s.token) for s in make_users(lp_users.runtime, lp_tenant, 3))
    owner.put(rules, json={"cap": 1})
    assert a.post(enroll).status_code == 201
    assert a.post(enroll).status_code == 200  # already in: not refused by the full cap
    full = b.post(enroll)
    assert full.status_code == 409 and full.json["code"] == "course_full"
    assert full.headers["content-type"].startswith("application/problem+json")
    # Lowering the cap below the active count removes nobody.
    owner.put(rules, json={"cap": 1})
    assert owner.get(rules).json["seats_left"] == 0
    owner.put(rules, json={"opens_at": _iso(dt.timedelta(days=1))})
    early = b.post(enroll)
    assert early.status_code == 409 and early.json["code"] == "enrollment_not_open"
    assert owner.get(rules).json["open"] is False
    owner.put(rules, json={"closes_at": _iso(dt.timedelta(seconds=-1))})
    late = c.post(enroll)
    assert late.status_code == 409 and late.json["code"] == "enrollment_closed"
    # A learner who dropped cannot come back through a closed window either...
    assert a.delete(enroll).status_code == 200
    assert a.post(enroll).status_code == 409
    # ... until it opens again.
    owner.put(rules, json={"closes_at": _iso(dt.timedelta(days=3))})
    assert a.post(enroll).status_code == 200
    assert b.post(enroll).status_code == 201
    with in_tenant(lp_tenant):
        assert Enrollment.select().where(Enrollment.course_id == course.id).count() == 2


def test_course_detail_counts_seats_only_when_there_is_a_cap(lp_client, lp_users, lp_tenant,
                                                              published, lp_queries):
    """GET /courses/{id} says how many seats are left; without a cap there is nothing to
    count, and the COUNT of active enrollments (its cost grows with the learners) is skipped."""
    learners = make_users(lp_users.runtime, lp_tenant, 3)
    for s in learners:
        assert lp_client.as_(s.token).post(f"/courses/{published.id}/enroll").status_code == 201
    student = lp_client.as_(learners[0].token)
    url = f"/courses/{published.id}"

    def seat_counts() -> tuple[dict, int]:
        student.get(url)
        with lp_queries() as q:
            r = student.get(url)
        assert r.status_code == 200, r.text
        return r.json["enrollment"], sum(
            1 for sql in q.queries if "COUNT" in sql.upper() and "enrollment_enrollment" in sql)

    enrollment, counts = seat_counts()
    assert enrollment["seats_left"] is None and enrollment["status"] == "active"
    assert counts == 0
    owner = lp_client.as_(published.instructor.token)
    assert owner.put(f"{url}/enrollment-rules", json={"cap": 5}).status_code == 200
    enrollment, counts = seat_counts()
    assert enrollment["seats_left"] == 2 and counts == 1
    # The rules themselves still answer the active count, cap or not.
    assert owner.put(f"{url}/enrollment-rules", json={}).status_code == 200
    assert owner.get(f"{url}/enrollment-rules").json["active_count"] == 3
