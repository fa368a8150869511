"""Concurrent requests against a real gunicorn (2 workers x 4 threads) on the test database:
a learner's repeated POSTs racing each other (and then the completion event) never make a
second certificate."""

from __future__ import annotations

import threading

import pytest
import requests


@pytest.mark.e2e
def test_concurrent_posts_make_one_certificate(school, lp_runtime, lp_live_server,
                                               monkeypatch):
    from learnplat_certificates.models import Certificate

    from learnplat.models import OutboxEvent

    # The completion events stay in the outbox: only the racing POSTs can create the rows.
    monkeypatch.setattr(lp_runtime.events, "notify", lambda: None)
    learners = [school.learner(f"Learner {i}") for i in range(3)]
    for student in learners:
        school.complete(student)
    results: dict[int, list[tuple[int, str]]] = {s.id: [] for s in learners}
    errors: list[str] = []

    def post(student, barrier):
        try:
            barrier.wait()
            r = requests.post(f"{lp_live_server}/courses/{school.course_id}/certificate",
                              headers={"X-Tenant": school.tenant.slug,
                                       "Authorization": f"Bearer {student.token}"},
                              timeout=60)
            results[student.id].append((r.status_code, r.json().get("id", r.text)))
        except Exception as exc:  # reported below, not lost in the thread
            errors.append(repr(exc))

    for student in learners:
        barrier = threading.Barrier(8, timeout=30)
        threads = [threading.Thread(target=post, args=(student, barrier)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors
    for student in learners:
        got = results[student.id]
        assert {status for status, _ in got} <= {200, 202}, got
        assert len({cid for _, cid in got}) == 1, got
    # The completion events arrive afterwards: still one certificate each, one issued event.
    lp_runtime.events.dispatch_pending()
    with school.in_tenant():
        for student in learners:
            rows = list(Certificate.select().where(Certificate.user_id == student.id))
            assert len(rows) == 1 and rows[0].status == "issued" and rows[0].revision == 1
        issued = [e.payload["user_id"] for e in OutboxEvent.select().where(
            (OutboxEvent.tenant_id == school.tenant.id)
            & (OutboxEvent.name == "certificate.issued.v1"))]
    assert sorted(issued) == sorted(s.id for s in learners)
