"""The notes plugin, tested with learnplat's shipped fixtures (installed with learnplat)."""

import datetime as dt

from learnplat_courses.events import CoursePublished
from learnplat_notes.plugin import Note

from learnplat.plugin import api_timestamp, db, tenant_context


def test_write_and_list_notes(lp_client, lp_users, lp_tenant, lp_other_tenant):
    teacher = lp_client.as_(lp_users.make("instructor").token)
    first = teacher.post("/notes", json={"title": "Bring calculators"})
    assert first.status_code == 201
    teacher.post("/notes", json={"title": "Quiz on Friday"})
    page = teacher.get("/notes?limit=1").json
    assert [n["title"] for n in page["items"]] == ["Quiz on Friday"]
    rest = teacher.get(f"/notes?limit=1&cursor={page['next_cursor']}").json
    assert rest["items"] == [first.json] and rest["next_cursor"] is None
    # A datetime in an answer is UTC with "Z"; api_timestamp writes the same into a string.
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        created_at = Note.get_by_id(first.json["id"]).created_at
    assert first.json["created_at"] == api_timestamp(created_at) and created_at.tzinfo
    assert first.json["created_at"].endswith("Z")
    # Bad input is a 422 naming the field; students may read but not write.
    bad = teacher.post("/notes", json={"title": "", "colour": "red"})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json["errors"]} == {"title", "colour"}
    student = lp_client.as_(lp_users.make("student").token)
    assert student.post("/notes", json={"title": "x"}).status_code == 403
    assert len(student.get("/notes").json["items"]) == 2
    assert lp_client.as_(None).get("/notes").status_code == 401
    # Another school sees none of them.
    outsider = lp_users.make("admin", tenant=lp_other_tenant).token
    assert lp_client.as_(outsider, lp_other_tenant).get("/notes").json["items"] == []


def test_a_published_course_adds_a_note(lp_runtime, lp_tenant):
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        lp_runtime.events.record(CoursePublished(
            course_id=1, owner_id=2, status="published", title="Algebra", action="approve",
            from_status="pending_review"))
    lp_runtime.events.dispatch_pending()
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        assert [n.title for n in Note.select()] == ["New course: Algebra"]


def test_the_nightly_purge_runs_in_every_school(lp_runtime, lp_tenant, lp_other_tenant):
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    for school in (lp_tenant, lp_other_tenant):
        with db.connection(), tenant_context(school), db.transaction():
            Note.create(title="old", created_at=old)
            Note.create(title="new")
    lp_runtime.registry.tasks["notes.purge"].fn(lp_runtime)
    for school in (lp_tenant, lp_other_tenant):
        with db.connection(), tenant_context(school), db.transaction():
            assert [n.title for n in Note.select()] == ["new"]


def test_the_count_command(lp_cli, lp_client, lp_users, lp_tenant):
    teacher = lp_client.as_(lp_users.make("instructor").token)
    teacher.post("/notes", json={"title": "one"})
    result = lp_cli("notes-count", "--tenant", lp_tenant.slug)
    assert result.exit_code == 0 and result.stdout.strip() == "1"
    assert lp_cli("notes-count", "--tenant", "no-such-school").exit_code == 1
