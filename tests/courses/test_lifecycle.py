"""The course lifecycle: draft -> pending_review -> published | rejected; archived."""

from __future__ import annotations


def test_create_submit_approve_and_visibility(lp_client, lp_users):
    teacher = lp_users.make("instructor")
    admin = lp_users.make("admin")
    student = lp_users.make("student")
    t = lp_client.as_(teacher.token)
    r = t.post("/courses", json={"title": "Algebra", "description": "Linear equations",
                                 "tags": ["Math"]})
    assert r.status_code == 201, r.text
    course = r.json
    assert course["status"] == "draft" and course["tags"] == ["math"]
    cid = course["id"]
    assert t.post(f"/courses/{cid}/modules", json={"title": "Intro"}).status_code == 201
    s = lp_client.as_(student.token)
    assert s.get(f"/courses/{cid}").status_code == 404
    assert s.get("/courses").json["items"] == []
    a = lp_client.as_(admin.token)
    r = a.post(f"/courses/{cid}/approve")
    assert r.status_code == 409 and r.json["current_status"] == "draft"
    assert t.post(f"/courses/{cid}/submit").json["status"] == "pending_review"
    assert a.post(f"/courses/{cid}/approve").json["status"] == "published"
    r = s.get(f"/courses/{cid}")
    assert r.status_code == 200
    assert [m["title"] for m in r.json["modules"]] == ["Intro"]
    assert [c["id"] for c in s.get("/courses?q=linear").json["items"]] == [cid]


def test_other_tenant_sees_nothing(lp_client, lp_users, lp_other_tenant):
    teacher = lp_users.make("instructor")
    cid = lp_client.as_(teacher.token).post("/courses", json={"title": "Mine"}).json["id"]
    outsider = lp_users.make("admin", tenant=lp_other_tenant)
    other = lp_client.as_(outsider.token, tenant=lp_other_tenant)
    assert other.get(f"/courses/{cid}").status_code == 404
    assert other.get("/courses").json["items"] == []
