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
    assert course["rating"] == {"count": 0, "average": None}
    cid = course["id"]
    assert t.post(f"/courses/{cid}/modules", json={"title": "Intro"}).status_code == 201
    s = lp_client.as_(student.token)
    assert s.get(f"/courses/{cid}").status_code == 404
    assert s.get("/courses").json["items"] == []
    a = lp_client.as_(admin.token)
    r = a.post(f"/courses/{cid}/approve")
    assert r.status_code == 409 and r.json["current_status"] == "draft"
    assert r.headers["content-type"] == "application/problem+json"
    assert t.post(f"/courses/{cid}/submit").json["status"] == "pending_review"
    assert a.post(f"/courses/{cid}/approve").json["status"] == "published"
    r = s.get(f"/courses/{cid}")
    assert r.status_code == 200
    assert [m["title"] for m in r.json["modules"]] == ["Intro"]
    assert [c["id"] for c in s.get("/courses?q=linear").json["items"]] == [cid]


def test_reject_fix_resubmit_and_history(world, event_recorder, lp_runtime):
    cid = world.course("Draft one")["id"]
    t, a = world.t, world.a
    assert t.post(f"/courses/{cid}/submit").status_code == 200
    r = a.post(f"/courses/{cid}/reject", json={"reason": "  "})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "reason"
    r = a.post(f"/courses/{cid}/reject", json={"reason": "Needs a syllabus"})
    assert r.json["status"] == "rejected" and r.json["rejection_reason"] == "Needs a syllabus"
    assert t.put(f"/courses/{cid}", json={"description": "Now with syllabus"}).status_code == 200
    assert t.post(f"/courses/{cid}/submit").json["status"] == "pending_review"
    assert t.post(f"/courses/{cid}/withdraw").json["status"] == "draft"
    assert t.post(f"/courses/{cid}/submit").status_code == 200
    r = a.post(f"/courses/{cid}/approve")
    assert r.json["status"] == "published" and r.json["rejection_reason"] == ""
    # Submitting a published course is a conflict naming the current status.
    r = t.post(f"/courses/{cid}/submit")
    assert r.status_code == 409 and r.json["current_status"] == "published"
    # Students cannot approve, instructors cannot approve their own course.
    assert world.s.post(f"/courses/{cid}/approve").status_code == 403
    assert t.post(f"/courses/{cid}/approve").status_code == 403

    hist = t.get(f"/courses/{cid}/history").json["items"]
    assert [(h["action"], h["from_status"], h["to_status"]) for h in hist] == [
        ("submit", "draft", "pending_review"), ("reject", "pending_review", "rejected"),
        ("submit", "rejected", "pending_review"), ("withdraw", "pending_review", "draft"),
        ("submit", "draft", "pending_review"), ("approve", "pending_review", "published")]
    assert hist[1]["reason"] == "Needs a syllabus" and hist[1]["actor_id"] == world.admin.id
    assert hist[0]["actor_id"] == world.teacher.id and hist[0]["created_at"].endswith("Z")
    page = a.get(f"/courses/{cid}/history?limit=4").json
    assert len(page["items"]) == 4 and page["next_cursor"]
    rest = a.get(f"/courses/{cid}/history?limit=4&cursor={page['next_cursor']}").json
    assert [h["id"] for h in page["items"] + rest["items"]] == [h["id"] for h in hist]
    # History is for the owner and admins only.
    assert world.s.get(f"/courses/{cid}/history").status_code == 403
    assert world.as_new("instructor").get(f"/courses/{cid}/history").status_code == 404

    lp_runtime.events.dispatch_pending()
    names = event_recorder.names()
    for name in ("course.created.v1", "course.submitted.v1", "course.rejected.v1",
                 "course.updated.v1", "course.withdrawn.v1", "course.published.v1"):
        assert name in names
    rejected = next(e for e in event_recorder.events if e.name == "course.rejected.v1")
    assert rejected.payload["reason"] == "Needs a syllabus"
    assert rejected.payload["actor_id"] == world.admin.id
    assert rejected.payload["from_status"] == "pending_review"


def test_edit_published_course_stays_published(world):
    cid = world.course("Live", publish=True, modules=1)["id"]
    r = world.t.put(f"/courses/{cid}", json={"title": "Live, revised", "tags": ["a", "B"]})
    assert r.status_code == 200 and r.json["status"] == "published"
    assert r.json["tags"] == ["a", "b"]
    r = world.a.put(f"/courses/{cid}", json={"level": "advanced"})
    assert r.json["level"] == "advanced" and r.json["title"] == "Live, revised"
    # Only the owner or an admin edits: another instructor does not even see the draft-ness.
    other = world.as_new("instructor")
    assert other.put(f"/courses/{cid}", json={"title": "Mine now"}).status_code == 404
    assert world.s.put(f"/courses/{cid}", json={"title": "x"}).status_code == 403


def test_invalid_fields_are_422_per_field(world):
    r = world.t.post("/courses", json={"title": "", "level": "expert", "language": "english!",
                                       "tags": ["ok", "a,b"], "extra": 1})
    assert r.status_code == 422
    fields = {e["field"] for e in r.json["errors"]}
    assert {"title", "level", "language", "extra"} <= fields
    assert any(f.startswith("tags") for f in fields)
    cid = world.course()["id"]
    r = world.t.put(f"/courses/{cid}", json={"title": None})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "title"
    assert world.t.post("/courses", body="{", headers={"Content-Type": "application/json"}
                        ).status_code == 400
    assert world.t.post("/courses", body="x", headers={"Content-Type": "text/plain"}
                        ).status_code == 415
    assert world.s.post("/courses", json={"title": "Student course"}).status_code == 403
    assert lp_no_token(world).post("/courses", json={"title": "x"}).status_code == 401


def lp_no_token(world):
    return world.client.as_(None)


def test_archive_and_restore(world):
    cid = world.course("Archivable", publish=True)["id"]
    t, a = world.t, world.a
    assert t.post(f"/courses/{cid}/archive").json["status"] == "archived"
    assert world.s.get(f"/courses/{cid}").status_code == 404
    r = t.post(f"/courses/{cid}/archive")
    assert r.status_code == 409 and r.json["current_status"] == "archived"
    # The owner may undo their own archiving; it was published, so it is published again.
    assert t.post(f"/courses/{cid}/restore").json["status"] == "published"
    # An admin's deactivation is undone only by an admin.
    assert a.post(f"/courses/{cid}/archive").json["status"] == "archived"
    r = t.post(f"/courses/{cid}/restore")
    assert r.status_code == 409 and r.json["code"] == "archived_by_admin"
    assert a.post(f"/courses/{cid}/restore").json["status"] == "published"
    r = a.post(f"/courses/{cid}/restore")
    assert r.status_code == 409 and r.json["current_status"] == "published"
    # A draft that is archived comes back as a draft, never published without review.
    draft = world.course("Never reviewed")["id"]
    assert t.post(f"/courses/{draft}/archive").status_code == 200
    assert a.post(f"/courses/{draft}/restore").json["status"] == "draft"


def test_delete_draft_really_deletes(world, lp_runtime, event_recorder):
    cid = world.course("Gone", modules=2, tags=["x"])["id"]
    r = world.t.delete(f"/courses/{cid}")
    assert r.status_code == 204
    assert world.t.get(f"/courses/{cid}").status_code == 404
    assert world.a.get(f"/courses/{cid}").status_code == 404
    assert world.t.delete(f"/courses/{cid}").status_code == 404
    lp_runtime.events.dispatch_pending()
    assert "course.deleted.v1" in event_recorder.names()


def test_delete_with_enrollments_archives_and_learners_keep_access(world):
    cid = world.course("Popular", publish=True, modules=2)["id"]
    world.enroll(world.s, cid)
    r = world.t.delete(f"/courses/{cid}")
    assert r.status_code == 200 and r.json["status"] == "archived"
    # The enrolled student still opens it (and its modules); others do not see it.
    r = world.s.get(f"/courses/{cid}")
    assert r.status_code == 200 and r.json["status"] == "archived"
    assert len(r.json["modules"]) == 2
    assert world.as_new("student").get(f"/courses/{cid}").status_code == 404
    assert cid not in [c["id"] for c in world.s.get("/courses").json["items"]]
    hist = world.a.get(f"/courses/{cid}/history").json["items"]
    assert hist[-1]["action"] == "delete" and hist[-1]["to_status"] == "archived"
    # Deleting again is idempotent: still archived.
    assert world.a.delete(f"/courses/{cid}").json["status"] == "archived"


def test_other_tenant_sees_nothing(lp_client, lp_users, lp_other_tenant):
    teacher = lp_users.make("instructor")
    cid = lp_client.as_(teacher.token).post("/courses", json={"title": "Mine"}).json["id"]
    outsider = lp_users.make("admin", tenant=lp_other_tenant)
    other = lp_client.as_(outsider.token, tenant=lp_other_tenant)
    assert other.get(f"/courses/{cid}").status_code == 404
    assert other.get("/courses").json["items"] == []
    for action in ("submit", "approve", "archive", "restore", "withdraw"):
        assert other.post(f"/courses/{cid}/{action}").status_code in (403, 404)
    assert other.post(f"/courses/{cid}/reject", json={"reason": "x"}).status_code == 404
    assert other.put(f"/courses/{cid}", json={"title": "x"}).status_code == 404
    assert other.delete(f"/courses/{cid}").status_code == 404
    assert other.get(f"/courses/{cid}/history").status_code == 404
    # A token of this tenant used against the other tenant is refused outright.
    assert lp_client.as_(teacher.token, tenant=lp_other_tenant).get("/courses").status_code \
        == 401
