"""Fixtures for progress tests: a published course (made through the courses API) with modules
of chosen kinds, and enrolled students."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pytest

from learnplat import db
from learnplat.tenancy import tenant_context


@dataclass
class Course:
    id: int
    module_ids: list[int]
    instructor: Any
    admin: Any
    client: Any
    users: Any
    students: list[Any] = field(default_factory=list)

    def enroll(self) -> Any:
        """A new student enrolled in the course, with a client acting as them."""
        student = self.users.make("student")
        c = self.client.as_(student.token)
        assert c.post(f"/courses/{self.id}/enroll").status_code == 201
        student.client = c
        self.students.append(student)
        return student


def make_course(client: Any, users: Any, modules: list[dict[str, Any]]) -> Course:
    teacher = users.make("instructor")
    admin = users.make("admin")
    t = client.as_(teacher.token)
    cid = t.post("/courses", json={"title": "Progress course"}).json["id"]
    mids: list[int] = []
    for i, spec in enumerate(modules):
        spec = dict(spec)
        spec.setdefault("title", f"M{i}")
        if isinstance(spec.get("prerequisite_id"), str):  # "#0": the id of module 0
            spec["prerequisite_id"] = mids[int(spec["prerequisite_id"][1:])]
        if isinstance(spec.get("release_at"), dt.datetime):
            spec["release_at"] = spec["release_at"].isoformat()
        r = t.post(f"/courses/{cid}/modules", json=spec)
        assert r.status_code == 201, r.text
        mids.append(r.json["id"])
    assert t.post(f"/courses/{cid}/submit").status_code == 200
    assert client.as_(admin.token).post(f"/courses/{cid}/approve").status_code == 200
    return Course(cid, mids, teacher, admin, client, users)


@pytest.fixture
def course_factory(lp_client, lp_users):
    return lambda modules: make_course(lp_client, lp_users, modules)


@pytest.fixture
def svc(lp_runtime):
    return lp_runtime.service("progress")


@pytest.fixture
def in_tenant_ctx(lp_runtime, lp_tenant):
    """Run service calls as the test tenant: `with in_tenant_ctx(): ...`."""
    from contextlib import contextmanager

    @contextmanager
    def ctx():
        with db.connection(), tenant_context(lp_tenant), db.transaction():
            yield

    return ctx


class Clock:
    """A fake clock for the progress service (heartbeat credit depends on wall-clock time)."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    import learnplat_progress.services as services

    c = Clock()
    monkeypatch.setattr(services, "utcnow", c)
    return c


@pytest.fixture
def no_redis(monkeypatch, svc):
    """Force the database path for heartbeats even when the test runtime has Redis."""
    from learnplat_progress.services import ProgressService

    monkeypatch.setattr(ProgressService, "store", property(lambda self: None))


@pytest.fixture
def redis_store(svc):
    if svc.store is None:
        pytest.skip("needs Redis (LEARNPLAT_TEST_BACKEND=postgres with LEARNPLAT_TEST_REDIS_URL)")
    return svc.store


@pytest.fixture
def live_server(lp_live_server):
    """A real gunicorn (2 workers x 4 threads) serving the test database; yields its URL."""
    return lp_live_server
