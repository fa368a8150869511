from __future__ import annotations


def test_enroll_201_then_200_same(lp_client, lp_users, published):
    s = lp_client.as_(lp_users.make("student").token)
    first = s.post(f"/courses/{published.id}/enroll")
    assert first.status_code == 201, first.text
    again = s.post(f"/courses/{published.id}/enroll")
    assert again.status_code == 200
    assert again.json["id"] == first.json["id"]


def test_enroll_rules(lp_client, lp_users, published, lp_other_tenant):
    teacher = lp_client.as_(published.instructor.token)
    assert teacher.post(f"/courses/{published.id}/enroll").status_code == 403
    draft = teacher.post("/courses", json={"title": "Draft"}).json["id"]
    s = lp_client.as_(lp_users.make("student").token)
    assert s.post(f"/courses/{draft}/enroll").status_code == 404
    stranger = lp_users.make("student", tenant=lp_other_tenant)
    other = lp_client.as_(stranger.token, tenant=lp_other_tenant)
    assert other.post(f"/courses/{published.id}/enroll").status_code == 404
