"""A Huey worker killed with SIGKILL in the middle of event dispatch, certificate generation
and notification fan-out (in-app and email through a slow SMTP server on loopback): after a
new worker starts, every event is delivered to each of its handlers once, every certificate
is issued once, every user gets each notification once, in the centre and by email.

Redis hands a task to one worker and forgets it: what a killed worker held is recovered from
the database by the sweeps a worker runs when it starts (TaskSpec.at_start) and every minute
(the event outbox, certificates.requeue_pending, notifications.recover).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import time
import uuid
from collections import Counter

import pytest
from workerfaults import (
    SmtpServer,
    in_tenant,
    make_students,
    start_worker,
    stop,
    wait_for,
    worker_env,
)

from learnplat import db
from learnplat.tenancy import tenant_context
from learnplat.testing import Client, backend, make_tenant, use_runtime
from learnplat.testing import test_settings as make_settings

STUDENTS = 100
KINDS = ("course_completed", "certificate_issued", "announcement")


@pytest.mark.e2e
@pytest.mark.skipif(backend() != "postgres",
                    reason="a real worker on a shared queue: PostgreSQL and Redis only")
def test_worker_killed_mid_batch_loses_and_repeats_nothing(lp_runtime, lp_database, tmp_path):
    from learnplat_certificates.models import Certificate
    from learnplat_identity.testing import UserFactory
    from learnplat_notifications.models import Broadcast, Email, Notification
    from learnplat_progress.events import CourseCompleted

    from learnplat.http.app import create_app
    from learnplat.models import EventDelivery, OutboxEvent
    from learnplat.runtime import create_runtime

    prefix = f"{lp_runtime.settings.redis.prefix}-wk{uuid.uuid4().hex[:8]}"
    with SmtpServer(delay=0.015) as smtp:
        inbox = smtp.inbox
        tenant = make_tenant(lp_runtime, settings={"notifications": {
            "smtp": {"host": "127.0.0.1", "port": smtp.port, "from": "school@example.org"},
            "emails_per_minute": 1_000_000,
            "default_channels": {kind: "email" for kind in KINDS}}})
        users = UserFactory(lp_runtime, tenant)
        admin, teacher = users.make("admin"), users.make("instructor")
        app = create_app(lp_runtime)
        t = Client(app, tenant, teacher.token)
        course_id = t.post("/courses", json={"title": "Thermodynamics"}).json["id"]
        assert t.post(f"/courses/{course_id}/modules", json={"title": "M1"}).status_code == 201
        assert t.post(f"/courses/{course_id}/submit").status_code == 200
        assert Client(app, tenant, admin.token).post(
            f"/courses/{course_id}/approve").status_code == 200
        students = make_students(lp_runtime, tenant, STUDENTS)

        # This process queues into the worker's queue (its own Redis prefix).
        settings = make_settings(tmp_path, lp_database.url, lp_database.redis_url,
                                 redis={"prefix": prefix}, queue={"immediate": False},
                                 events={"inline_dispatch": False},
                                 storage={"url": lp_runtime.settings.storage.url})
        runtime = create_runtime(settings)
        env = worker_env(lp_runtime, lp_database, prefix,
                         certificates_pending_retry_seconds="2",
                         notifications_recovery_seconds="2")
        log_path = tmp_path / "worker.log"
        with use_runtime(runtime):
            first_event = _max_event_id()
            now = dt.datetime.now(dt.UTC)
            with db.connection(), tenant_context(tenant), db.transaction():
                for user_id in students:
                    runtime.events.record(CourseCompleted(
                        course_id=course_id, user_id=user_id, percent=100, completed_at=now))
            r = Client(create_app(runtime), tenant, admin.token).post(
                "/notifications", json={"title": "Exam moved", "body": "To Friday.",
                                        "role": "student"})
            assert r.status_code == 202, r.text
            broadcast_id = r.json["id"]

            completed = STUDENTS  # course.completed events still pending, read below
            total_mail = len(KINDS) * STUDENTS

            def state() -> dict:
                return _state(tenant, first_event, broadcast_id, inbox)

            # Three kills, each in the middle of one kind of work (and whatever else runs
            # then); the sender is caught while the SMTP server is still reading a message's
            # envelope (see SlowInbox).
            kill_points = [
                ("event dispatch", lambda s: 0.2 * completed < s["completed_pending"]
                 < 0.8 * completed),
                ("certificate generation", lambda s: 0.3 * STUDENTS
                 <= s["certificates_issued"] < 0.8 * STUDENTS),
                ("email fan-out", lambda s: inbox.in_rcpt and STUDENTS + 20
                 <= s["emails_received"] < total_mail - 20),
            ]
            kills = []
            worker = start_worker(env, log_path)
            started = time.monotonic()
            try:
                for what, point in kill_points:
                    wait_for(lambda point=point: point(state()), 60, f"a kill during {what}",
                             interval=0.01, alive=worker, log_path=log_path)
                    os.kill(worker.pid, signal.SIGKILL)
                    worker.wait(10)
                    at_kill = {**state(), "queued_tasks": runtime.queue.huey.pending_count()}
                    before = (at_kill["certificates_issued"], at_kill["emails_sent"],
                              at_kill["events_pending"])
                    worker = start_worker(env, log_path)
                    restarted = time.monotonic()
                    # Recovery: the first progress of the new worker.
                    wait_for(lambda before=before: (lambda s: (
                        s["certificates_issued"], s["emails_sent"], s["events_pending"])
                        != before)(state()), 60, f"progress after the kill during {what}",
                        interval=0.02, alive=worker, log_path=log_path)
                    kills.append({"during": what, "at_kill": at_kill, "seconds_to_progress":
                                  round(time.monotonic() - restarted, 2)})

                def finished() -> bool:
                    s = state()
                    return (s["certificates_issued"] == STUDENTS and s["events_pending"] == 0
                            and s["emails_sent"] == total_mail
                            and s["emails_received"] >= total_mail
                            and s["broadcast"] == "done")

                wait_for(finished, 90, "the end of the work", interval=0.1, alive=worker,
                         log_path=log_path)
                recovery = time.monotonic() - restarted
                elapsed = time.monotonic() - started
                time.sleep(0.5)  # anything repeated would arrive now
            finally:
                stop(worker)
            # Each kill left something in flight (else it proves nothing).
            assert 0 < kills[0]["at_kill"]["completed_pending"] < STUDENTS, kills[0]
            assert 0 < kills[1]["at_kill"]["certificates_issued"] < STUDENTS, kills[1]
            assert 0 < kills[2]["at_kill"]["emails_received"] < total_mail, kills[2]
            assert kills[2]["at_kill"]["emails_in_flight"] >= 1, kills[2]  # mid-conversation

        def facts() -> dict:
            events = list(OutboxEvent.select().where((OutboxEvent.tenant_id == tenant.id)
                                                     & (OutboxEvent.id > first_event)))
            deliveries = Counter((d.event_id, d.handler, d.status) for d in
                                 EventDelivery.select().where(
                                     EventDelivery.event.in_([e.id for e in events])))
            return {
                "events": events, "deliveries": deliveries,
                "certificates": list(Certificate.select()),
                "notes": list(Notification.select().where(Notification.user_id.in_(students))),
                "emails": list(Email.select()),
                "broadcast": Broadcast.get_by_id(broadcast_id),
            }

        with use_runtime(runtime):
            f = in_tenant(tenant, facts)
        messages = list(inbox.messages)

    # Events: all done, each delivered to each of its handlers exactly once.
    events, deliveries = f["events"], f["deliveries"]
    assert all(e.status == "done" for e in events), Counter(e.status for e in events)
    by_name = Counter(e.name for e in events)
    assert by_name["course.completed.v1"] == STUDENTS
    assert by_name["certificate.issued.v1"] == STUDENTS  # issued once each: recorded once
    assert by_name["notifications.broadcast_sent.v1"] == 1
    for e in events:
        for handler in runtime.registry.handlers_for(e.name):
            if tenant.plugin_enabled(handler.plugin):
                assert deliveries[(e.id, handler.key, "done")] == 1, (e.name, handler.key)
    # Certificates: one per student, rendered once, its PDF stored once.
    certs = f["certificates"]
    assert sorted(c.user_id for c in certs) == students
    assert {(c.status, c.revision) for c in certs} == {("issued", 1)}
    with use_runtime(runtime), db.connection(), tenant_context(tenant):
        stored = [o.key for o in runtime.storage.list("certificates/")]
    assert sorted(stored) == sorted(c.pdf_key for c in certs)
    # Notifications: each student has each kind once, in the centre and in the mailbox.
    per_user = Counter((n.user_id, n.kind) for n in f["notes"])
    assert set(per_user) == {(u, k) for u in students for k in KINDS}
    assert set(per_user.values()) == {1}
    assert f["broadcast"].status == "done" and f["broadcast"].recipients == STUDENTS
    assert Counter(e.status for e in f["emails"]) == {"sent": len(KINDS) * STUDENTS}
    ids = Counter(m["Message-ID"] for m in messages)
    assert len(messages) == len(KINDS) * STUDENTS, "lost or repeated emails"
    assert set(ids.values()) == {1}, [i for i, n in ids.items() if n > 1][:5]
    subjects = Counter((m.rcpt[0], m["Subject"]) for m in messages)
    assert set(subjects.values()) == {1}
    figures = {"students": STUDENTS, "kills": kills,
               "seconds_from_last_restart_to_done": round(recovery, 2),
               "seconds_total_with_three_kills": round(elapsed, 2),
               "duplicates": 0, "losses": 0}
    print("\nworker-kill figures:", json.dumps(figures))
    out = os.environ.get("LEARNPLAT_FAULT_FIGURES")
    if out:
        with open(out, "a") as fh:
            fh.write(json.dumps({"test": "worker_killed", **figures}) + "\n")


def _max_event_id() -> int:
    from learnplat.models import OutboxEvent

    with db.connection():
        return OutboxEvent.select(OutboxEvent.id).order_by(OutboxEvent.id.desc()).scalar() or 0


def _state(tenant, first_event: int, broadcast_id: int, inbox) -> dict:
    from learnplat_certificates.models import Certificate
    from learnplat_notifications.models import Broadcast, Email, Notification

    from learnplat.models import OutboxEvent

    def read() -> dict:
        return {
            "certificates_issued": Certificate.select().where(
                Certificate.status == "issued").count(),
            "certificates_pending": Certificate.select().where(
                Certificate.status == "pending").count(),
            "events_pending": OutboxEvent.select().where(
                (OutboxEvent.tenant_id == tenant.id) & (OutboxEvent.id > first_event)
                & (OutboxEvent.status == "pending")).count(),
            "completed_pending": OutboxEvent.select().where(
                (OutboxEvent.tenant_id == tenant.id) & (OutboxEvent.id > first_event)
                & (OutboxEvent.name == "course.completed.v1")
                & (OutboxEvent.status == "pending")).count(),
            "notifications": Notification.select().count(),
            "emails_sent": Email.select().where(Email.status == "sent").count(),
            "emails_in_flight": Email.select().where(Email.status == "sending").count(),
            "emails_pending": Email.select().where(Email.status == "pending").count(),
            "broadcast": Broadcast.get_by_id(broadcast_id).status,
        }

    state = in_tenant(tenant, read)
    state["emails_received"] = inbox.count()
    return state


# -- the recovery sweeps, one by one (in-process, both backends) --------------------------------

OLD = dt.timedelta(minutes=10)


def test_worker_start_runs_the_recovery_sweeps(lp_runtime):
    at_start = {name for name, spec in lp_runtime.registry.tasks.items() if spec.at_start}
    assert {"certificates.requeue_pending", "notifications.recover"} <= at_start
    for name in at_start:  # and every minute
        assert lp_runtime.registry.tasks[name].periodic is not None


def test_a_certificate_whose_task_died_is_issued_by_the_sweep(lp_runtime, lp_client, lp_users,
                                                              lp_tenant):
    from learnplat_certificates.models import Certificate, CertificateIndex
    from learnplat_certificates.plugin import CertificatesPlugin
    from learnplat_certificates.services import new_public_id

    from learnplat.plugin import utcnow

    teacher = lp_users.make("instructor")
    learners = make_students(lp_runtime, lp_tenant, 2)
    course_id = lp_client.as_(teacher.token).post("/courses", json={"title": "Optics"}
                                                  ).json["id"]
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        rows = []
        for age in (OLD, dt.timedelta(0)):  # a lost task's row, and one just queued
            row = Certificate.create(public_id=new_public_id(), course_id=course_id,
                                     user_id=learners[len(rows)], updated_at=utcnow() - age)
            CertificateIndex.create(public_id=row.public_id, tenant_id=lp_tenant.id)
            rows.append(row.id)
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        # the fresh one is left to its task
        assert lp_runtime.plugin(CertificatesPlugin).certificates.requeue_stale() == 1
    with db.connection(), tenant_context(lp_tenant), db.transaction(write=False):
        lost, fresh = (Certificate.get_by_id(i) for i in rows)
    assert (lost.status, lost.revision) == ("issued", 1)
    assert fresh.status == "pending"
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        # bumped: not again at once
        assert lp_runtime.plugin(CertificatesPlugin).certificates.requeue_stale() == 0


def test_a_broadcast_left_half_sent_is_resumed_once(lp_runtime, lp_users, lp_tenant,
                                                    event_recorder):
    from learnplat_notifications.models import Broadcast, Notification
    from learnplat_notifications.plugin import NotificationsPlugin

    from learnplat.plugin import utcnow

    admin = lp_users.make("admin")
    students = make_students(lp_runtime, lp_tenant, 6)
    old = utcnow() - OLD
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        bc = Broadcast.create(audience="role", target="student", title="Snow day",
                              created_by=admin.id, status="sending", created_at=old)
        # The dead worker's first page: the first three students, committed long ago.
        for user_id in students[:3]:
            Notification.create(user_id=user_id, kind="announcement", title="Snow day",
                                source=f"broadcast:{bc.id}", created_at=old)
        fresh = Broadcast.create(audience="role", target="student", title="Now",
                                 created_by=admin.id, status="sending")
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        out = lp_runtime.plugin(NotificationsPlugin).notifications.recover()
    assert out["broadcasts"] == 1  # a fan-out still young is left alone
    with db.connection(), tenant_context(lp_tenant), db.transaction(write=False):
        got = Counter(n.user_id for n in Notification.select().where(
            Notification.source == f"broadcast:{bc.id}"))
        bc, fresh = Broadcast.get_by_id(bc.id), Broadcast.get_by_id(fresh.id)
    assert got == dict.fromkeys(students, 1)
    assert (bc.status, bc.recipients) == ("done", len(students))
    assert fresh.status == "sending"
    lp_runtime.events.dispatch_pending()
    sent = [e for e in event_recorder.events if e.name == "notifications.broadcast_sent.v1"
            and e.payload["broadcast_id"] == bc.id]
    assert len(sent) == 1


def test_an_email_a_dead_sender_held_is_sent_again_once(lp_runtime, lp_tenant):
    from learnplat_identity.models import User
    from learnplat_notifications.models import Email, Notification
    from learnplat_notifications.plugin import NotificationsPlugin
    from workerfaults import SmtpServer

    from learnplat.plugin import utcnow
    from learnplat.tenants import TenantSpec

    ids_ = make_students(lp_runtime, lp_tenant, 3)
    with db.connection(), tenant_context(lp_tenant), db.transaction(write=False):
        emails = {u.id: u.email for u in User.select().where(User.id.in_(ids_))}
    students = [type("S", (), {"id": i, "email": emails[i]}) for i in ids_]
    with SmtpServer(delay=0) as smtp:
        with db.connection():
            lp_runtime.tenants.apply(TenantSpec(
                slug=lp_tenant.slug, name=lp_tenant.name,
                settings={"notifications": {"smtp": {"host": "127.0.0.1", "port": smtp.port,
                                                     "from": "school@example.org"}}}))
            tenant = lp_runtime.tenants.get_by_slug(lp_tenant.slug)
        old = utcnow() - OLD
        with db.connection(), tenant_context(tenant), db.transaction():
            ids = []
            for s, (status, sent_at) in zip(students, [("sending", old), ("pending", None),
                                                       ("sending", utcnow())], strict=True):
                note = Notification.create(user_id=s.id, kind="announcement", title="Hi",
                                           body="b", created_at=old)
                ids.append(Email.create(user_id=s.id, notification_id=note.id,
                                        mode="immediate", status=status, sent_at=sent_at,
                                        created_at=old).id)
        with db.connection(), tenant_context(tenant), db.transaction():
            out = lp_runtime.plugin(NotificationsPlugin).notifications.recover()
        assert out["emails"] == 1 and out["senders"] == 1
        with db.connection(), tenant_context(tenant), db.transaction(write=False):
            rows = {e.id: e for e in Email.select()}
        inbox = smtp.inbox.messages
    # The dead sender's email and the one waiting went out once each; the email another
    # sender is sending right now is left to it.
    assert sorted(m.rcpt[0] for m in inbox) == sorted(s.email for s in students[:2])
    assert [rows[i].status for i in ids] == ["sent", "sent", "sending"]
    assert rows[ids[0]].attempts == 2  # the dead one's try, then this one
    assert len({m["Message-ID"] for m in inbox}) == 2
    assert all(m["Message-ID"].endswith("@example.org>") for m in inbox)


def test_an_unreachable_smtp_server_costs_one_attempt_per_run(lp_runtime, lp_tenant):
    """The mail server down: the run stops at the first refused connection (no tight retry
    loop over every email), the emails stay pending for the run it queues a minute later."""
    from learnplat_notifications.mail import Mailer
    from learnplat_notifications.models import Email, Notification

    from learnplat.tenants import TenantSpec
    from learnplat.testing import free_port

    ids = make_students(lp_runtime, lp_tenant, 3)
    with db.connection():
        lp_runtime.tenants.apply(TenantSpec(
            slug=lp_tenant.slug, name=lp_tenant.name,
            settings={"notifications": {"smtp": {"host": "127.0.0.1", "port": free_port()}}}))
        tenant = lp_runtime.tenants.get_by_slug(lp_tenant.slug)
    with db.connection(), tenant_context(tenant), db.transaction():
        for user_id in ids:
            note = Notification.create(user_id=user_id, kind="announcement", title="Hi")
            Email.create(user_id=user_id, notification_id=note.id, mode="immediate")
    with db.connection(), tenant_context(tenant):
        assert Mailer(lp_runtime).send_pending() == {"sent": 0, "left": 3}
    with db.connection(), tenant_context(tenant), db.transaction(write=False):
        rows = list(Email.select().order_by(Email.id))
    assert [(r.status, r.attempts) for r in rows] == [("pending", 1), ("pending", 0),
                                                     ("pending", 0)]
    assert "refused" in rows[0].error.lower()


def test_a_regeneration_whose_worker_died_resumes_where_it_was(lp_runtime, lp_client,
                                                               lp_users, lp_tenant):
    from learnplat_certificates.models import Certificate, CertificateIndex, RegenerationJob
    from learnplat_certificates.plugin import CertificatesPlugin
    from learnplat_certificates.services import new_public_id

    from learnplat.plugin import utcnow

    teacher = lp_users.make("instructor")
    course_id = lp_client.as_(teacher.token).post("/courses", json={"title": "Acoustics"}
                                                  ).json["id"]
    learners = make_students(lp_runtime, lp_tenant, 3)
    svc = lp_runtime.plugin(CertificatesPlugin).certificates
    started = utcnow() - OLD
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        ids = []
        for user_id in learners:
            row = Certificate.create(public_id=new_public_id(), course_id=course_id,
                                     user_id=user_id)
            CertificateIndex.create(public_id=row.public_id, tenant_id=lp_tenant.id)
            assert svc.issue(row.id) == "issued"
            ids.append(row.id)
        # Issued before the job; the job re-rendered the first one, then its worker died.
        Certificate.update(updated_at=started - OLD).where(Certificate.id.in_(ids)).execute()
        Certificate.update(revision=2, updated_at=started + dt.timedelta(seconds=1)).where(
            Certificate.id == ids[0]).execute()
        job = RegenerationJob.create(course_id=course_id, total=3, status="running", done=1,
                                     created_at=started)
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        assert svc.requeue_stale() == 1
    with db.connection(), tenant_context(lp_tenant), db.transaction(write=False):
        revisions = [Certificate.get_by_id(i).revision for i in ids]
        job = RegenerationJob.get_by_id(job.id)
    assert revisions == [2, 2, 2]  # the first one was not rendered a third time
    assert (job.status, job.done, job.total) == ("done", 3, 3)
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        assert svc.requeue_stale() == 0
