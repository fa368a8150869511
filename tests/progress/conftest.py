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
def live_server(lp_runtime, lp_database, tmp_path_factory):
    """A real gunicorn (2 workers x 4 threads) serving the test database; yields its URL."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    import requests

    root = Path(__file__).resolve().parents[2]
    tmp = tmp_path_factory.mktemp("gunicorn")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = lp_runtime.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNPLAT_")}
    env.update({
        "LEARNPLAT_DATABASE_URL": lp_database.url,
        "LEARNPLAT_REDIS_URL": lp_database.redis_url,
        "LEARNPLAT_APP_SECRET_KEY": settings.app.secret_key,
        "LEARNPLAT_APP_VAR_DIR": str(settings.var_path),
        "LEARNPLAT_STORAGE_URL": settings.storage.url,
        "LEARNPLAT_QUEUE_IMMEDIATE": "true",
        "LEARNPLAT_QUEUE_EMBEDDED_WORKER": "false",
        "LEARNPLAT_QUEUE_SQLITE_PATH": str(tmp / "huey.db"),
        "LEARNPLAT_TENANCY_CACHE_SECONDS": "0",
    })
    log = (tmp / "gunicorn.log").open("wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "--no-control-socket", "-w", "2",
         "-k", "gthread", "--threads", "4", "-b", f"127.0.0.1:{port}",
         "learnplat.http.app:get_app()"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"gunicorn exited: {(tmp / 'gunicorn.log').read_text()[-2000:]}")
            try:
                if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail("gunicorn did not answer /healthz within 30 s")
            time.sleep(0.1)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        log.close()
