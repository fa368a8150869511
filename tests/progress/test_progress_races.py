"""Milestones under concurrent requests against a real gunicorn (several processes): every
module of a course completed at the same moment still yields exactly one 50% milestone and one
course.completed.v1 per enrollment."""

from __future__ import annotations

import threading
from collections import Counter

import requests
from learnplat_progress.models import CourseProgress

from learnplat import db
from learnplat.models import OutboxEvent
from learnplat.tenancy import tenant_context


def test_completing_every_module_at_once_against_gunicorn(live_server, course_factory,
                                                          lp_tenant):
    course = course_factory([{}, {}, {}, {}])
    students = [course.enroll() for _ in range(4)]
    results: list[object] = []

    def post(student, module_id, barrier):
        try:
            barrier.wait()
            results.append(requests.post(
                f"{live_server}/progress/{course.id}", timeout=60,
                json={"module_id": module_id, "completed": True},
                headers={"Authorization": f"Bearer {student.token}",
                         "X-Tenant": lp_tenant.slug}))
        except Exception as exc:  # reported by the assertion below
            results.append(exc)

    barrier = threading.Barrier(len(students) * 4, timeout=30)
    threads = [threading.Thread(target=post, args=(s, m, barrier))
               for s in students for m in course.module_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(r, requests.Response) and r.status_code == 200 for r in results), [
        getattr(r, "text", r) for r in results]
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        events = Counter(
            (e.name, e.payload["user_id"]) for e in OutboxEvent.select().where(
                (OutboxEvent.tenant_id == lp_tenant.id)
                & OutboxEvent.name.in_(["progress.milestone.v1", "course.completed.v1"])))
        rows = list(CourseProgress.select().where(CourseProgress.course_id == course.id))
    for s in students:
        assert events[("progress.milestone.v1", s.id)] == 1, events
        assert events[("course.completed.v1", s.id)] == 1, events
    assert sorted(r.percent for r in rows) == [100.0] * len(students)
