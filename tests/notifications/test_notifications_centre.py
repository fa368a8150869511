"""The notification centre over REST: listing (newest first, paged, unread filter), unread
count, read / unread / read-all, delete, admin notifications and broadcasts, and what others
(other users, other schools, non-admins, bad input) get."""

from __future__ import annotations

from notifyhelpers import kinds


def _notify(admin, user, title="Hello", body="World", **extra):
    r = admin.client.post("/notifications", json={"title": title, "body": body,
                                                  "user_id": user.id, **extra})
    assert r.status_code == 201, r.text
    return r.json


def test_centre_lists_newest_first_paged_and_filters_unread(admin, person):
    student = person("student")
    made = [_notify(admin, student, title=f"N{i}") for i in range(5)]
    assert made[0]["kind"] == "announcement" and made[0]["read"] is False
    assert made[0]["user_id"] == student.id and made[0]["body"] == "World"
    c = student.client
    r = c.get("/notifications?limit=2")
    assert r.status_code == 200, r.text
    seen, page = [], r.json
    while True:
        seen += page["items"]
        if not page["next_cursor"]:
            break
        page = c.get(f"/notifications?limit=2&cursor={page['next_cursor']}").json
    assert [n["title"] for n in seen] == ["N4", "N3", "N2", "N1", "N0"]
    assert c.get("/notifications/unread-count").json == {"unread": 5}

    # Mark one read (idempotent: the first read time stays), then unread again.
    first = c.post(f"/notifications/{made[1]['id']}/read")
    assert first.status_code == 200 and first.json["read"] is True
    again = c.post(f"/notifications/{made[1]['id']}/read").json
    assert again["read_at"] == first.json["read_at"]
    assert c.get("/notifications/unread-count").json == {"unread": 4}
    unread = [n["title"] for n in c.get("/notifications?unread=true").json["items"]]
    assert unread == ["N4", "N3", "N2", "N0"]
    assert [n["title"] for n in c.get("/notifications?unread=false").json["items"]] == ["N1"]
    assert c.delete(f"/notifications/{made[1]['id']}/read").json["read"] is False
    assert c.get("/notifications/unread-count").json == {"unread": 5}

    # Read all, then delete one.
    assert c.post("/notifications/read-all").json == {"updated": 5}
    assert c.post("/notifications/read-all").json == {"updated": 0}
    assert c.get("/notifications/unread-count").json == {"unread": 0}
    assert c.get(f"/notifications/{made[2]['id']}").json["title"] == "N2"
    assert c.delete(f"/notifications/{made[2]['id']}").status_code == 204
    assert c.get(f"/notifications/{made[2]['id']}").status_code == 404
    assert c.delete(f"/notifications/{made[2]['id']}").status_code == 404
    assert len(c.get("/notifications").json["items"]) == 4


def test_others_notifications_are_404_and_the_centre_needs_a_token(admin, person, lp_client):
    alice, bob = person("student"), person("student")
    note = _notify(admin, alice)
    for method, path in [("get", f"/notifications/{note['id']}"),
                         ("post", f"/notifications/{note['id']}/read"),
                         ("delete", f"/notifications/{note['id']}/read"),
                         ("delete", f"/notifications/{note['id']}")]:
        assert getattr(bob.client, method)(path).status_code == 404, (method, path)
    assert bob.client.get("/notifications").json["items"] == []
    assert bob.client.post("/notifications/read-all").json == {"updated": 0}
    assert alice.client.get("/notifications/unread-count").json == {"unread": 1}
    assert lp_client.get("/notifications").status_code == 401
    assert lp_client.get("/notifications/unread-count").status_code == 401


def test_another_school_sees_nothing(admin, person, lp_client, lp_other_tenant):
    student = person("student")
    note = _notify(admin, student)
    there = person("admin", tenant=lp_other_tenant)
    assert there.client.get(f"/notifications/{note['id']}").status_code == 404
    assert there.client.delete(f"/notifications/{note['id']}").status_code == 404
    assert there.client.post(f"/notifications/{note['id']}/read").status_code == 404
    assert there.client.get("/notifications").json["items"] == []
    # Their admin cannot notify our user (unknown there), nor follow our broadcasts.
    r = there.client.post("/notifications", json={"title": "x", "body": "y",
                                                  "user_id": student.id})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "user_id"
    bc = admin.client.post("/notifications", json={"title": "x", "body": "y",
                                                   "everyone": True}).json
    assert there.client.get(f"/notifications/broadcasts/{bc['id']}").status_code == 404
    # Our token is refused in the other school.
    assert lp_client.as_(student.token, tenant=lp_other_tenant).get(
        "/notifications").status_code == 401


def test_only_admins_notify_and_bad_input_is_422(admin, person, published_course):
    student, teacher = person("student"), person("instructor")
    for who in (student, teacher):
        r = who.client.post("/notifications", json={"title": "t", "body": "b",
                                                    "user_id": student.id})
        assert r.status_code == 403, r.text
        assert r.headers["Content-Type"] == "application/problem+json"
        r = who.client.post("/notifications", json={"title": "t", "body": "b",
                                                    "everyone": True})
        assert r.status_code == 403
    bad = [
        ({"title": "", "body": "b", "user_id": student.id}, "title"),
        ({"title": "   ", "body": "b", "user_id": student.id}, "title"),
        ({"title": "t" * 201, "body": "b", "user_id": student.id}, "title"),
        ({"title": "t", "body": "", "user_id": student.id}, "body"),
        ({"title": "t", "body": "b" * 5001, "user_id": student.id}, "body"),
        ({"title": "t", "body": "b"}, None),
        ({"title": "t", "body": "b", "user_id": student.id, "everyone": True}, None),
        ({"title": "t", "body": "b", "role": "janitor"}, "role"),
        ({"title": "t", "body": "b", "user_id": 99999999}, "user_id"),
        ({"title": "t", "body": "b", "course_id": 99999999}, "course_id"),
        ({"title": "t", "body": "b", "user_id": student.id, "colour": "red"}, "colour"),
    ]
    for payload, fieldname in bad:
        r = admin.client.post("/notifications", json=payload)
        assert r.status_code == 422, (payload, r.text)
        if fieldname:
            assert fieldname in {e["field"].split(".")[0] for e in r.json["errors"]}, r.json
    assert admin.client.post("/notifications", body="{", headers={
        "Content-Type": "application/json"}).status_code == 400
    # Nothing was written by any refused request.
    assert student.client.get("/notifications").json["items"] == []


def test_broadcasts_reach_their_audience_once(admin, person, published_course, lp_runtime,
                                              lp_tenant, in_tenant_ctx, svc):
    course = published_course(students=3)
    outsider = person("student")
    teacher2 = person("instructor")
    for s in course.students:  # the enrollment notifications, out of the way
        s.client.post("/notifications/read-all")

    r = admin.client.post("/notifications", json={"title": "Exam", "body": "Friday",
                                                  "course_id": course.id})
    assert r.status_code == 202, r.text
    bc = r.json
    assert bc["audience"] == "course" and bc["target"] == str(course.id)
    # The fan-out ran in a task (inline in tests): done, with its recipients.
    doc = admin.client.get(f"/notifications/broadcasts/{bc['id']}").json
    assert doc["status"] == "done" and doc["recipients"] == 3
    for s in course.students:
        items = s.client.get("/notifications?unread=true").json["items"]
        assert [(n["kind"], n["title"], n["body"]) for n in items] == [
            ("announcement", "Exam", "Friday")]
    assert outsider.client.get("/notifications").json["items"] == []

    # A retried fan-out notifies nobody twice.
    with in_tenant_ctx():
        from learnplat_notifications.models import Broadcast
        Broadcast.update(status="sending").where(Broadcast.id == bc["id"]).execute()
        assert svc.fan_out(bc["id"]) == 0
    assert len(course.students[0].client.get("/notifications?unread=true").json["items"]) == 1

    # A role, then everyone.
    r = admin.client.post("/notifications", json={"title": "Staff", "body": "meeting",
                                                  "role": "instructor"})
    assert r.status_code == 202
    assert admin.client.get(f"/notifications/broadcasts/{r.json['id']}").json[
        "recipients"] == 2  # the course's teacher and teacher2
    assert kinds(teacher2.client) == ["announcement"]
    assert kinds(outsider.client) == []
    r = admin.client.post("/notifications", json={"title": "All", "body": "hands",
                                                  "everyone": True})
    assert r.status_code == 202
    everyone = admin.client.get(f"/notifications/broadcasts/{r.json['id']}").json
    assert everyone["recipients"] == 3 + 1 + 2 + 1  # students, outsider, teachers, the admin
    assert kinds(outsider.client) == ["announcement"]
    assert admin.client.get("/notifications/broadcasts/99999999").status_code == 404
    assert course.students[0].client.get(
        f"/notifications/broadcasts/{bc['id']}").status_code == 403


def test_openapi_documents_the_routes(lp_client):
    doc = lp_client.get("/openapi.json").json
    post = doc["paths"]["/notifications"]["post"]
    assert {"201", "202", "403", "422"} <= set(post["responses"])
    assert "/notifications/{notification_id}/read" in doc["paths"]
    assert "/notifications/ws" not in doc["paths"]  # a WebSocket, documented in docs/


def test_a_broadcast_fans_out_page_by_page(admin, person, monkeypatch, event_recorder):
    from learnplat_notifications import services

    monkeypatch.setattr(services, "BATCH", 2)  # 5 students: pages of 2, 2, 1 (+ the admin)
    students = [person("student") for _ in range(5)]
    r = admin.client.post("/notifications", json={"title": "Paged", "body": "b",
                                                  "everyone": True})
    assert r.status_code == 202
    doc = admin.client.get(f"/notifications/broadcasts/{r.json['id']}").json
    assert (doc["status"], doc["recipients"]) == ("done", 6)
    for s in students:
        assert kinds(s.client) == ["announcement"]
    sent = [e for e in event_recorder.events if e.name == "notifications.broadcast_sent.v1"]
    assert [e.payload["recipients"] for e in sent] == [6]
