"""Email: per-kind preferences (in-app, email, digest, off), mail through the tenant's SMTP
server (a real one on loopback), the per-tenant rate limit and daily digests."""

from __future__ import annotations

import datetime as dt

import pytest
from notifyhelpers import kinds


@pytest.fixture
def mail(smtp_server, configure):
    port, inbox = smtp_server

    def setup(**extra):
        configure({"notifications": {"smtp": {"host": "127.0.0.1", "port": port,
                                              "from": "school@example.org"}, **extra}})
        return inbox

    return setup


def test_preferences_per_kind(person, lp_client):
    student = person("student")
    c = student.client
    prefs = c.get("/notifications/preferences").json["channels"]
    assert prefs["announcement"] == "in_app" and prefs["course_completed"] == "in_app"
    r = c.put("/notifications/preferences", json={"channels": {"announcement": "email",
                                                               "milestone": "off"}})
    assert r.status_code == 200, r.text
    assert r.json["channels"]["announcement"] == "email"
    assert r.json["channels"]["milestone"] == "off"
    assert c.put("/notifications/preferences", json={"channels": {"milestone": "digest"}}
                 ).json["channels"]["milestone"] == "digest"
    assert c.get("/notifications/preferences").json["channels"]["announcement"] == "email"
    for bad in ({"channels": {"nope": "email"}}, {"channels": {"milestone": "sms"}},
                {"channels": {}}, {}):
        assert c.put("/notifications/preferences", json=bad).status_code == 422, bad
    # Someone else's preferences are their own.
    assert person("student").client.get("/notifications/preferences").json["channels"][
        "announcement"] == "in_app"
    assert lp_client.get("/notifications/preferences").status_code == 401


def test_immediate_email_reaches_the_smtp_server(mail, person, admin):
    inbox = mail()
    student, quiet, muted = person("student"), person("student"), person("student")
    student.client.put("/notifications/preferences",
                       json={"channels": {"announcement": "email"}})
    muted.client.put("/notifications/preferences", json={"channels": {"announcement": "off"}})
    for who in (student, quiet):
        r = admin.client.post("/notifications", json={"title": "Fire drill",
                                                      "body": "At noon.", "user_id": who.id})
        assert r.status_code == 201
    assert len(inbox.messages) == 1
    msg = inbox.messages[0]
    assert msg["Subject"] == "Fire drill" and msg["From"] == "school@example.org"
    assert msg.rcpt == [student.email]
    assert "At noon." in msg.get_payload()
    assert kinds(quiet.client) == ["announcement"]  # in-app only
    # "off": nothing at all, not even in the centre.
    r = admin.client.post("/notifications", json={"title": "x", "body": "y",
                                                  "user_id": muted.id})
    assert r.status_code == 202 and r.json["recipients"] == 0
    assert kinds(muted.client) == []


def test_rate_limit_holds_a_broadcast_back(mail, person, admin, in_tenant_ctx, lp_runtime):
    from learnplat_notifications.mail import Mailer
    from learnplat_notifications.models import Email

    inbox = mail(emails_per_minute=3, default_channels={"announcement": "email"})
    students = [person("student") for _ in range(5)]
    r = admin.client.post("/notifications", json={"title": "Snow day", "body": "Stay home",
                                                  "role": "student"})
    assert r.status_code == 202
    assert len(inbox.messages) == 3  # the rest waits for the next minute
    with in_tenant_ctx():
        assert Email.select().where(Email.status == "pending").count() == 2
        assert Mailer(lp_runtime).send_pending() == {"sent": 0, "left": 2}
        # A minute later the window has room again.
        earlier = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=61)
        Email.update(sent_at=earlier).where(Email.status == "sent").execute()
        assert Mailer(lp_runtime).send_pending() == {"sent": 2, "left": 0}
    assert sorted(m.rcpt[0] for m in inbox.messages) == sorted(s.email for s in students)


def test_daily_digest_batches_a_users_notifications(mail, person, admin, in_tenant_ctx,
                                                    lp_runtime, lp_tenant, monkeypatch):
    from learnplat_notifications import tasks
    from learnplat_notifications.models import Email

    inbox = mail(digest_hour=6)
    student, other = person("student"), person("student")
    for who in (student, other):
        who.client.put("/notifications/preferences",
                       json={"channels": {"announcement": "digest"}})
    for i in range(3):
        admin.client.post("/notifications", json={"title": f"News {i}", "body": f"b{i}",
                                                  "user_id": student.id})
    admin.client.post("/notifications", json={"title": "Other", "body": "o",
                                              "user_id": other.id})
    assert inbox.messages == []  # nothing until the digest hour
    assert len(kinds(student.client)) == 3  # in the centre at once
    # The hourly scheduler queues the digest of the tenants whose hour it is.
    monkeypatch.setattr(tasks, "utcnow",
                        lambda: dt.datetime(2026, 1, 1, 5, tzinfo=dt.UTC))
    assert lp_runtime.queue.wrappers[tasks.SCHEDULE_DIGESTS_TASK].call_local() == 0
    assert inbox.messages == []
    monkeypatch.setattr(tasks, "utcnow",
                        lambda: dt.datetime(2026, 1, 1, 6, tzinfo=dt.UTC))
    lp_runtime.queue.wrappers[tasks.SCHEDULE_DIGESTS_TASK].call_local()
    assert len(inbox.messages) == 2
    mine = next(m for m in inbox.messages if m.rcpt == [student.email])
    assert mine["Subject"].endswith("3 new notifications")
    text = mine.get_payload()
    assert text.index("News 0") < text.index("News 1") < text.index("News 2")
    with in_tenant_ctx():
        assert Email.select().where(Email.status == "pending").count() == 0
    lp_runtime.queue.wrappers[tasks.SCHEDULE_DIGESTS_TASK].call_local()
    assert len(inbox.messages) == 2  # sent once


def test_without_a_mail_server_emails_are_skipped(person, admin, in_tenant_ctx):
    from learnplat_notifications.models import Email

    student = person("student")
    student.client.put("/notifications/preferences",
                       json={"channels": {"announcement": "email"}})
    admin.client.post("/notifications", json={"title": "t", "body": "b",
                                              "user_id": student.id})
    assert kinds(student.client) == ["announcement"]
    with in_tenant_ctx():
        assert [e.status for e in Email.select()] == ["skipped"]
