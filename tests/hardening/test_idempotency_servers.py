"""Idempotency-Key across two API servers (two gunicorn masters on one database and one
key-value store: Redis, or the embedded file store on SQLite), with the faults it is for:

- a worker SIGKILLed after its transaction committed and before a byte of the answer left
  (tests/hardening/idemfaults.py): the client sees the connection drop, retries with the
  same key on the other server and gets the first answer replayed; the database holds one
  course. The same fault without a key makes two: what the header is for;
- a plain retry on the other server replays (an enrollment's 201, not the 200 a second
  enrollment answers), and is charged to the caller's rate-limit budget like any request;
- a retry while the first request still runs on the other server: 409 ``idempotency_key_in_use``
  on PostgreSQL; on SQLite the database's single writer makes it wait for the first one's
  commit instead, and it gets the first answer replayed. Either way one course.

Both backends: every process of an installation shares the database and the key-value store
(Redis, or on SQLite the embedded store's file), which is all this needs."""

from __future__ import annotations

import os
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from learnplat import db, idempotency
from learnplat.tenancy import tenant_context
from learnplat.testing import (
    ServerDidNotStart,
    ServerURL,
    backend,
    make_tenant,
    start_server,
    stop_server,
)

if TYPE_CHECKING:
    from learnplat.testing import TestDatabase

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("idempotency_servers")]

HERE = Path(__file__).resolve().parent


@contextmanager
def fault_server(runtime: Any, database: TestDatabase, tmp: Path, name: str
                 ) -> Iterator[ServerURL]:
    """gunicorn (1 gthread worker, 4 threads) serving idemfaults:application on the test
    database and the runtime's key-value store, on a socket the test binds (as
    learnplat.testing.serve_with_gunicorn does)."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    settings = runtime.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNPLAT_")}
    env.update({
        "PYTHONPATH": os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "LEARNPLAT_HOME": str(settings.home),
        "LEARNPLAT_DATABASE_URL": database.url,
        "LEARNPLAT_REDIS_URL": database.redis_url,
        "LEARNPLAT_REDIS_PREFIX": settings.redis.prefix,
        "LEARNPLAT_APP_SECRET_KEY": settings.app.secret_key,
        "LEARNPLAT_APP_VAR_DIR": str(settings.var_path),  # the embedded store: one file
        "LEARNPLAT_STORAGE_URL": settings.storage.url,
        "LEARNPLAT_QUEUE_IMMEDIATE": "true",
        "LEARNPLAT_QUEUE_EMBEDDED_WORKER": "false",
        "LEARNPLAT_QUEUE_SQLITE_PATH": str(tmp / "huey.db"),
        "LEARNPLAT_TENANCY_CACHE_SECONDS": "0",
        # Limits on: a replay is a request and is charged. The user's budget refills 1 unit
        # per 100 s, so what a request took is still missing when the next one is counted.
        "LEARNPLAT_LIMITS_ENABLED": "true",
        "LEARNPLAT_LIMITS_USER_RATE": "0.01",
        "LEARNPLAT_LIMITS_USER_BURST": "10000",
        **{f"LEARNPLAT_LIMITS_{kind}_{what}": "100000" for kind in
           ("TENANT", "ANONYMOUS") for what in ("RATE", "BURST")},
    })
    base = ServerURL(f"http://127.0.0.1:{port}")
    fd = listener.detach()
    try:
        proc = start_server(
            [str(Path(sys.executable).parent / "gunicorn"), "--no-control-socket", "-w", "1",
             "-k", "gthread", "--threads", "4", "-b", f"fd://{fd}", "idemfaults:application"],
            base, env, settings.home, tmp / f"{name}.log", pass_fds=(fd,), timeout=60)
    except ServerDidNotStart as exc:
        pytest.fail(str(exc))
    base.pid = proc.pid
    try:
        yield base
    finally:
        stop_server(proc, grace=0)


@pytest.fixture(scope="module")
def servers(lp_runtime, lp_database, tmp_path_factory) -> Iterator[tuple[str, str]]:
    tmp = tmp_path_factory.mktemp("idemservers")
    with ExitStack() as stack:
        a = stack.enter_context(fault_server(lp_runtime, lp_database, tmp, "a"))
        b = stack.enter_context(fault_server(lp_runtime, lp_database, tmp, "b"))
        yield a, b


@pytest.fixture
def school(lp_runtime):
    return make_tenant(lp_runtime)


@pytest.fixture
def users(lp_runtime, school):
    from learnplat_identity.testing import UserFactory

    return UserFactory(lp_runtime, school)


def call(base: str, school: Any, token: str, method: str, path: str, key: str | None = None,
         **kw: Any) -> requests.Response:
    headers = {"X-Tenant": school.slug, "Authorization": f"Bearer {token}",
               **kw.pop("headers", {})}
    if key is not None:
        headers["Idempotency-Key"] = key
    return requests.request(method, f"{base}{path}", headers=headers, timeout=30, **kw)


def courses_titled(school: Any, title: str) -> list[int]:
    from learnplat_courses.models import Course

    with db.connection(), tenant_context(school), db.transaction(write=False):
        return [c.id for c in Course.select().where(Course.title == title)]


def test_a_worker_killed_after_the_commit_the_retry_elsewhere_replays(servers, school, users):
    a, b = servers
    teacher = users.make("instructor")
    k, title = str(uuid.uuid4()), f"Killed mid-answer {uuid.uuid4().hex[:6]}"
    with pytest.raises(requests.ConnectionError):
        call(a, school, teacher.token, "POST", "/courses", k, json={"title": title},
             headers={"X-Test-Die": "after-answer"})
    # The write was committed before the worker died: the course exists, once.
    made = courses_titled(school, title)
    assert len(made) == 1
    r = call(b, school, teacher.token, "POST", "/courses", k, json={"title": title})
    assert r.status_code == 201, r.text
    assert r.headers["Idempotent-Replayed"] == "true"
    assert r.json()["id"] == made[0] and r.json()["title"] == title
    assert r.headers["Content-Type"].startswith("application/json")
    assert courses_titled(school, title) == made  # still ONE row
    # Server A is back (gunicorn started a new worker) and replays it too.
    deadline = time.monotonic() + 30
    while True:
        try:
            again = call(a, school, teacher.token, "POST", "/courses", k, json={"title": title})
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline, "server A did not replace its worker"
            time.sleep(0.2)
    assert again.status_code == 201 and again.content == r.content


def test_without_a_key_the_same_fault_makes_two(servers, school, users):
    """What a client without the header gets: its retry of a lost answer writes again."""
    a, b = servers
    teacher = users.make("instructor")
    title = f"No key {uuid.uuid4().hex[:6]}"
    with pytest.raises(requests.ConnectionError):
        call(a, school, teacher.token, "POST", "/courses", json={"title": title},
             headers={"X-Test-Die": "after-answer"})
    r = call(b, school, teacher.token, "POST", "/courses", json={"title": title})
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers
    assert len(courses_titled(school, title)) == 2


def published_course(base: str, school: Any, teacher: Any, admin: Any) -> int:
    r = call(base, school, teacher.token, "POST", "/courses", json={"title": "Retries 101"})
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert call(base, school, teacher.token, "POST", f"/courses/{cid}/modules",
                json={"title": "M1"}).status_code == 201
    assert call(base, school, teacher.token, "POST", f"/courses/{cid}/submit").status_code == 200
    assert call(base, school, admin.token, "POST", f"/courses/{cid}/approve").status_code == 200
    return cid


def remaining(r: requests.Response) -> int:
    """Units left in the caller's budget, from the RateLimit header."""
    found = re.search(r'"user";r=(\d+)', r.headers.get("RateLimit", ""))
    assert found, r.headers.get("RateLimit")
    return int(found.group(1))


def test_a_plain_retry_on_the_other_server_replays_and_is_charged(servers, school, users,
                                                                  lp_runtime):
    from learnplat_enrollment.models import Enrollment

    a, b = servers
    cid = published_course(a, school, users.make("instructor"), users.make("admin"))
    student = users.make("student")
    k = str(uuid.uuid4())
    first = call(a, school, student.token, "POST", f"/courses/{cid}/enroll", k)
    assert first.status_code == 201, first.text
    retry = call(b, school, student.token, "POST", f"/courses/{cid}/enroll", k)
    # The first answer (201), not the 200 of enrolling again.
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.content == first.content
    assert remaining(retry) < remaining(first)  # a replay is a request: charged
    assert call(b, school, student.token, "POST", f"/courses/{cid}/enroll"
                ).status_code == 200  # without the key: enrolling again, as ever
    # Another body under the key, on either server: 422.
    other = call(a, school, student.token, "POST", f"/courses/{cid + 1000}/enroll", k)
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    with db.connection(), tenant_context(school), db.transaction(write=False):
        assert Enrollment.select().where(Enrollment.course_id == cid,
                                         Enrollment.user_id == student.id).count() == 1


def test_a_retry_while_the_first_still_runs_on_the_other_server(servers, school, users,
                                                                 lp_runtime):
    a, b = servers
    teacher = users.make("instructor")
    k, title = str(uuid.uuid4()), f"Slow {uuid.uuid4().hex[:6]}"
    answers: dict[str, requests.Response] = {}

    def first() -> None:
        answers["a"] = call(a, school, teacher.token, "POST", "/courses", k,
                            json={"title": title}, headers={"X-Test-Hold": "3"})

    runner = threading.Thread(target=first)
    runner.start()
    lease = idempotency.lease_key(school.id, idempotency.key_hash(f"user:{teacher.id}", k))
    deadline = time.monotonic() + 20
    while lp_runtime.kv.get(lease) is None:  # A holds the key now, inside its transaction
        assert time.monotonic() < deadline and runner.is_alive(), "A never took the lease"
        time.sleep(0.02)
    second = call(b, school, teacher.token, "POST", "/courses", k, json={"title": title})
    runner.join(30)
    assert answers["a"].status_code == 201, answers["a"].text
    if backend() == "postgres":
        assert second.status_code == 409, second.text
        assert second.json()["code"] == "idempotency_key_in_use"
        assert second.headers["Retry-After"] == "1"
        second = call(b, school, teacher.token, "POST", "/courses", k, json={"title": title})
    # SQLite: one writer at a time, so B waited for A's commit and found its answer.
    assert second.status_code == 201 and second.headers["Idempotent-Replayed"] == "true"
    assert second.content == answers["a"].content
    assert courses_titled(school, title) == [answers["a"].json()["id"]]
    assert lp_runtime.kv.get(lease) is None  # given back once A's transaction ended
