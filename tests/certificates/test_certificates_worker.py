"""End to end with a real `learnplat worker` (the Huey consumer in its own process): the
completion is only recorded by the request; the worker delivers the event and issues the
certificate, exactly once even when the completion is recorded twice and two consumer threads
race for it."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from urllib.parse import urlparse

import pytest
from certhelpers import pdf_text, qr_codes

from learnplat import db
from learnplat.tenancy import tenant_context
from learnplat.testing import test_settings as make_settings


@pytest.mark.e2e
def test_real_worker_issues_once(school, lp_runtime, lp_database, tmp_path):
    from learnplat_certificates.models import Certificate
    from learnplat_progress.events import CourseCompleted

    from learnplat.http.app import create_app
    from learnplat.models import OutboxEvent
    from learnplat.runtime import create_runtime
    from learnplat.testing import Client, use_runtime

    queue_path = tmp_path / "huey.db"
    storage_url = lp_runtime.settings.storage.url
    settings = make_settings(tmp_path, lp_database.url, "",
                             queue={"immediate": False, "sqlite_path": str(queue_path)},
                             storage={"url": storage_url})
    runtime = create_runtime(settings)
    student = school.learner("Ζωή Καραγιάννη")
    with use_runtime(runtime):
        app = create_app(runtime)
        client = Client(app, school.tenant, student.token)
        for mid in school.module_ids:
            r = client.post(f"/progress/{school.course_id}", json={"module_id": mid,
                                                                  "completed": True})
            assert r.status_code == 200, r.text
        # The publisher's event recorded a second time (an at-least-once redelivery in
        # another outbox row): two deliveries, two issuing tasks, one certificate.
        with db.connection(), tenant_context(school.tenant), db.transaction():
            runtime.events.record(CourseCompleted(
                course_id=school.course_id, user_id=student.id, percent=100,
                completed_at=dt.datetime.now(dt.UTC)))
        url = f"/courses/{school.course_id}/certificate"
        assert client.get(url).status_code == 404  # nothing ran in this process
        assert runtime.queue.huey.pending_count() >= 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNPLAT_")}
        env.update({
            "LEARNPLAT_DATABASE_URL": lp_database.url,
            "LEARNPLAT_REDIS_URL": "",
            "LEARNPLAT_QUEUE_SQLITE_PATH": str(queue_path),
            "LEARNPLAT_QUEUE_IMMEDIATE": "false",
            "LEARNPLAT_STORAGE_URL": storage_url,
            "LEARNPLAT_APP_VAR_DIR": str(tmp_path / "var"),
            "LEARNPLAT_APP_SECRET_KEY": settings.app.secret_key,
        })
        cli = os.path.join(os.path.dirname(sys.executable), "learnplat")
        proc = subprocess.Popen([cli, "worker", "--workers", "2"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        doc = None
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                r = client.get(url)
                if r.status_code == 200 and r.json["status"] == "issued":
                    doc = r.json
                    break
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
                time.sleep(0.2)
            assert doc is not None, "the worker did not issue the certificate within 60 s"
            # Let the second delivery and its task finish too.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with db.connection():
                    pending = OutboxEvent.select().where(
                        (OutboxEvent.tenant_id == school.tenant.id)
                        & (OutboxEvent.name == "course.completed.v1")
                        & (OutboxEvent.status == "pending")).count()
                if not pending and runtime.queue.huey.pending_count() == 0:
                    break
                time.sleep(0.2)
            time.sleep(1)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        with db.connection(), tenant_context(school.tenant), db.transaction(write=False):
            rows = list(Certificate.select().where(Certificate.user_id == student.id))
            issued = OutboxEvent.select().where(
                (OutboxEvent.tenant_id == school.tenant.id)
                & (OutboxEvent.name == "certificate.issued.v1")).count()
            done = OutboxEvent.select().where((OutboxEvent.tenant_id == school.tenant.id)
                                              & (OutboxEvent.name == "course.completed.v1")
                                              & (OutboxEvent.status == "done")).count()
        assert done == 2
        assert len(rows) == 1 and rows[0].revision == 1 and issued == 1
        parsed = urlparse(doc["pdf_url"])
        pdf = Client(app).get(parsed.path, query_string=parsed.query)
        assert pdf.status_code == 200
        assert "Ζωή Καραγιάννη" in pdf_text(pdf.content)
        assert qr_codes(pdf.content) == [doc["verify_url"]]
