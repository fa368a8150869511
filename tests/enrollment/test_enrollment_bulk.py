"""Bulk enrollment: POST /courses/{id}/enrollments/bulk and
`learnplat enrollments import --tenant SLUG --course ID FILE.csv`, with per-row reports."""

from __future__ import annotations

import json

from enrollhelpers import in_tenant, make_users, publish_course
from learnplat_enrollment.models import Enrollment

from learnplat.models import OutboxEvent


def _outcomes(body: dict) -> list[tuple[str, str]]:
    return [(r["ref"], r["outcome"]) for r in body["rows"]]


def test_bulk_by_email_and_id_reports_every_row(lp_client, lp_users, lp_tenant, published,
                                                lp_runtime, event_recorder):
    new, existing, dropped, by_id = make_users(lp_users.runtime, lp_tenant, 4)
    teacher, = make_users(lp_users.runtime, lp_tenant, 1, "instructor")
    gone, = make_users(lp_users.runtime, lp_tenant, 1)
    with in_tenant(lp_tenant):
        lp_runtime.service("identity").deactivate(gone.id)
    enroll = f"/courses/{published.id}/enroll"
    lp_client.as_(existing.token).post(enroll)
    dropped_id = lp_client.as_(dropped.token).post(enroll).json["id"]
    lp_client.as_(dropped.token).delete(enroll)
    body = {"emails": [new.email.upper(), existing.email, dropped.email, "nobody@example.org",
                       teacher.email, gone.email, new.email, "not-an-email"],
            "user_ids": [by_id.id, 999999999]}
    r = lp_client.as_(published.instructor.token).post(
        f"/courses/{published.id}/enrollments/bulk", json=body)
    assert r.status_code == 200, r.text
    out = r.json
    assert _outcomes(out) == [
        ("emails[0]", "created"), ("emails[1]", "existing"), ("emails[2]", "reactivated"),
        ("emails[3]", "rejected"), ("emails[4]", "rejected"), ("emails[5]", "rejected"),
        ("emails[6]", "rejected"), ("emails[7]", "rejected"), ("user_ids[0]", "created"),
        ("user_ids[1]", "rejected")]
    assert (out["created"], out["existing"], out["reactivated"], out["rejected"]) == (2, 1, 1, 6)
    rows = out["rows"]
    assert rows[0]["email"] == new.email and rows[0]["user_id"] == new.id
    assert rows[2]["enrollment_id"] == dropped_id
    reasons = [rows[i]["reason"] for i in (3, 4, 5, 6, 7, 9)]
    assert "no account" in reasons[0] and "only students" in reasons[1]
    assert "deactivated" in reasons[2] and "emails[0]" in reasons[3]
    assert "no account" in reasons[4] and "no user" in reasons[5]
    assert all(rows[i]["reason"] is None for i in (0, 1, 2, 8))
    assert out["dry_run"] is False
    with in_tenant(lp_tenant):
        got = {e.user_id: e for e in Enrollment.select().where(
            Enrollment.course_id == published.id)}
        assert set(got) == {new.id, existing.id, dropped.id, by_id.id}
        assert {e.status for e in got.values()} == {"active"}
        assert got[new.id].source == "bulk" and got[new.id].enrolled_by == \
            published.instructor.id
        assert rows[0]["enrollment_id"] == got[new.id].id
    # The students see their enrollments; an event per created or reactivated row.
    assert lp_client.as_(new.token).get("/courses/enrollments").json["items"][0][
        "course_id"] == published.id
    lp_runtime.events.dispatch_pending()
    created = [e.payload for e in event_recorder.events
               if e.tenant_id == lp_tenant.id and e.name == "enrollment.created.v1"
               and e.payload["source"] == "bulk"]
    assert sorted((p["user_id"], p["reactivated"]) for p in created) == sorted(
        [(new.id, False), (by_id.id, False), (dropped.id, True)])
    assert {p["actor_id"] for p in created} == {published.instructor.id}
    # Doing it again changes nothing.
    again = lp_client.as_(published.admin.token).post(
        f"/courses/{published.id}/enrollments/bulk",
        json={"emails": [new.email, dropped.email], "user_ids": [by_id.id]}).json
    assert (again["existing"], again["created"], again["reactivated"]) == (3, 0, 0)


def test_bulk_respects_the_cap_in_input_order_and_ignores_the_window(lp_client, lp_users,
                                                                     lp_tenant):
    course = publish_course(lp_client, lp_users)
    owner = lp_client.as_(course.instructor.token)
    owner.put(f"/courses/{course.id}/enrollment-rules",
              json={"cap": 3, "closes_at": "2000-01-01T00:00:00Z"})
    learners = make_users(lp_users.runtime, lp_tenant, 5)
    out = owner.post(f"/courses/{course.id}/enrollments/bulk",
                     json={"emails": [s.email for s in learners]}).json
    assert [r["outcome"] for r in out["rows"]] == ["created"] * 3 + ["rejected"] * 2
    assert "full" in out["rows"][3]["reason"]
    with in_tenant(lp_tenant):
        assert lp_users.runtime.service("enrollment").active_count(course.id) == 3


def test_bulk_dry_run_writes_nothing(lp_client, lp_users, lp_tenant, published):
    learners = make_users(lp_users.runtime, lp_tenant, 2)
    out = lp_client.as_(published.admin.token).post(
        f"/courses/{published.id}/enrollments/bulk",
        json={"user_ids": [s.id for s in learners], "dry_run": True}).json
    assert out["dry_run"] is True and out["created"] == 2
    with in_tenant(lp_tenant):
        assert Enrollment.select().count() == 0
        assert OutboxEvent.select().where(OutboxEvent.tenant_id == lp_tenant.id).where(
            OutboxEvent.name.startswith("enrollment.")).count() == 0


def test_bulk_refusals(lp_client, lp_users, lp_tenant, lp_other_tenant, published):
    url = f"/courses/{published.id}/enrollments/bulk"
    student, = make_users(lp_users.runtime, lp_tenant, 1)
    other_teacher, = make_users(lp_users.runtime, lp_tenant, 1, "instructor")
    body = {"emails": [student.email]}
    assert lp_client.as_(student.token).post(url, json=body).status_code == 403
    assert lp_client.as_(other_teacher.token).post(url, json=body).status_code == 403
    assert lp_client.post(url, json=body).status_code == 401
    owner = lp_client.as_(published.instructor.token)
    draft = owner.post("/courses", json={"title": "Draft"}).json["id"]
    r = owner.post(f"/courses/{draft}/enrollments/bulk", json=body)
    assert r.status_code == 409 and r.json["code"] == "course_not_published"
    assert lp_client.as_(other_teacher.token).post(
        f"/courses/{draft}/enrollments/bulk", json=body).status_code == 404
    for bad, field in (({}, None), ({"emails": []}, None), ({"emails": "a@b.c"}, "emails"),
                       ({"user_ids": [0]}, "user_ids.0"),
                       ({"user_ids": [2**31]}, "user_ids.0"), ({"user_ids": ["x"]}, "user_ids.0"),
                       ({"emails": ["a@example.org"] * 1001}, "emails"),
                       ({"emails": [""]}, "emails.0"), ({"names": ["x"]}, "names")):
        r = owner.post(url, json=bad)
        assert r.status_code == 422, (bad, r.text)
        if field:
            assert field in [e["field"] for e in r.json["errors"]], r.json
    assert owner.post(url, body="[]", headers={"Content-Type": "application/json"}
                      ).status_code == 422
    assert owner.post(url, body="x", headers={"Content-Type": "text/plain"}).status_code == 415
    # Another school's admin: the course does not exist there; its users are not found here.
    stranger, = make_users(lp_users.runtime, lp_other_tenant, 1, "admin")
    learner_there, = make_users(lp_users.runtime, lp_other_tenant, 1)
    assert lp_client.as_(stranger.token, tenant=lp_other_tenant).post(
        url, json=body).status_code == 404
    out = owner.post(url, json={"emails": [learner_there.email],
                                "user_ids": [learner_there.id]}).json
    assert [r["outcome"] for r in out["rows"]] == ["rejected", "rejected"]
    with in_tenant(lp_tenant):
        assert Enrollment.select().count() == 0


# -- the CLI ---------------------------------------------------------------------------------------


def test_cli_import_reports_each_line(lp_client, lp_users, lp_tenant, published, enroll_cli,
                                      tmp_path):
    a, b, c = make_users(lp_users.runtime, lp_tenant, 3)
    lp_client.as_(b.token).post(f"/courses/{published.id}/enroll")
    csv_file = tmp_path / "roster.csv"
    csv_file.write_text(f"name,email\nAnn,{a.email}\nBob,{b.email}\n\nNo one,ghost@example.org\n"
                        f"Bad,not an email\nAnn again,{a.email.upper()}\nCy,{c.email}\n")
    dry = enroll_cli("enrollments", "import", "--tenant", lp_tenant.slug, "--course",
                     str(published.id), str(csv_file), "--dry-run")
    assert dry.exit_code == 1
    assert "dry run" in dry.stdout
    with in_tenant(lp_tenant):
        assert Enrollment.select().count() == 1
    res = enroll_cli("enrollments", "import", "--tenant", lp_tenant.slug, "--course",
                     str(published.id), str(csv_file))
    assert res.exit_code == 1, res.stdout + res.stderr  # some lines were rejected
    lines = res.stdout.strip().splitlines()
    assert lines[0] == f"{csv_file}:2: {a.email}: created (enrollment " \
        f"{lines[0].rsplit(' ', 1)[1]}"
    assert lines[1].startswith(f"{csv_file}:3: {b.email}: existing")
    assert lines[2] == f"{csv_file}:5: ghost@example.org: rejected: no account with this email"
    assert lines[3].startswith(f"{csv_file}:6: not an email: rejected: not an email address")
    assert lines[4].startswith(f"{csv_file}:7: {a.email}: rejected: the same learner as 2")
    assert lines[5].startswith(f"{csv_file}:8: {c.email}: created")
    assert lines[6] == "2 created, 0 reactivated, 1 existing, 3 rejected"
    with in_tenant(lp_tenant):
        assert {e.user_id for e in Enrollment.select()} == {a.id, b.id, c.id}
    # All valid now: exit 0, and --json gives the report.
    clean = tmp_path / "clean.csv"
    clean.write_text(f"{a.email}\n{c.email}\n")
    ok = enroll_cli("enrollments", "import", "--tenant", lp_tenant.slug, "--course",
                    str(published.id), str(clean), "--json")
    assert ok.exit_code == 0, ok.stdout + ok.stderr
    report = json.loads(ok.stdout)
    assert report["existing"] == 2 and [r["ref"] for r in report["rows"]] == ["1", "2"]
    listed = enroll_cli("enrollments", "list", "--tenant", lp_tenant.slug, "--course",
                        str(published.id), "--json")
    assert listed.exit_code == 0
    assert {e["user"]["email"] for e in json.loads(listed.stdout)} == {a.email, b.email,
                                                                       c.email}


def test_cli_errors_are_one_line(lp_tenant, published, enroll_cli, tmp_path, lp_other_tenant):
    csv_file = tmp_path / "r.csv"
    csv_file.write_text("someone@example.org\n")
    base = ("enrollments", "import", "--tenant")
    for args, fragment in (
            ((*base, "no-such-school", "--course", str(published.id), str(csv_file)),
             "no-such-school"),
            ((*base, lp_other_tenant.slug, "--course", str(published.id), str(csv_file)),
             "no course"),
            ((*base, lp_tenant.slug, "--course", str(published.id), str(tmp_path / "x.csv")),
             "x.csv")):
        res = enroll_cli(*args)
        assert res.exit_code != 0
        err = res.stderr.strip()
        assert len(err.splitlines()) == 1 and fragment in err, err
    empty = tmp_path / "empty.csv"
    empty.write_text("email\n\n")
    res = enroll_cli(*base, lp_tenant.slug, "--course", str(published.id), str(empty))
    assert res.exit_code == 1 and "no rows" in res.stderr
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00bad")
    res = enroll_cli(*base, lp_tenant.slug, "--course", str(published.id), str(binary))
    assert res.exit_code == 1 and "UTF-8" in res.stderr
    assert enroll_cli("enrollments", "import", "--help").exit_code == 0
