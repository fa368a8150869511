"""Helpers of the service fault tests (tests/hardening/test_faults_*.py): a private PostgreSQL
cluster and a private Redis that a test may stop and start (never the machine's shared ones), a
learnplat stack (migrated database, tenant, users, a published course, gunicorn, a worker)
served from them, and a threaded load generator that records every answer.

Only on the PostgreSQL + Redis backend: these tests start real services and take seconds.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import requests

from learnplat import db
from learnplat.testing import (
    TestDatabase,
    backend,
    free_port,
    make_postgres_database,
    make_tenant,
    serve_with_gunicorn,
    test_settings,
)

needs_services = pytest.mark.skipif(
    backend() != "postgres", reason="fault tests start real PostgreSQL and Redis servers")

PG_BIN = next((d for d in ("/usr/lib/postgresql/15/bin", "/usr/local/bin", "/usr/bin")
               if Path(d, "pg_ctl").exists() and Path(d, "initdb").exists()), "")
needs_pg_binaries = pytest.mark.skipif(not PG_BIN, reason="initdb and pg_ctl not installed")
needs_redis_server = pytest.mark.skipif(shutil.which("redis-server") is None,
                                        reason="redis-server not installed")


def _as_postgres() -> list[str]:
    """Run a PostgreSQL binary as the postgres user when we are root (initdb refuses root)."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free port, owned by this test process."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="lp-faults-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8")
        self.start()

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*_as_postgres(), str(Path(PG_BIN, tool)), *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)

    def start(self) -> None:
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c max_connections=100")
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.dir / "log"),
                  "-w", "-t", "30", "start")

    def stop(self, mode: str = "immediate") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    """A redis-server without persistence on a fixed free port: stop() and start() again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_timeout=1).ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        """Kill it (SIGKILL: a crash, nothing saved)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def freeze(self, frozen: bool = True) -> None:
        """SIGSTOP (a hung server: connections stay open, nothing answers) or SIGCONT."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP if frozen else signal.SIGCONT)

    def close(self) -> None:
        if self.proc is not None:
            self.freeze(False)
        self.stop()


# -- the learnplat stack ---------------------------------------------------------------------


PASSWORD = "correct horse battery staple"


@dataclass
class User:
    id: int
    token: str
    refresh_token: str = ""
    email: str = ""


@dataclass
class Stack:
    """What a fault test drives: a tenant of a fresh database, its users and a published
    course with a video module, and the settings gunicorn and the worker run with."""

    tdb: TestDatabase
    runtime: Any
    tmp: Path
    tenant: Any
    admin: User
    instructor: User
    students: list[User]
    course_id: int = 0
    video_module_id: int = 0
    env: dict[str, str] = field(default_factory=dict)

    def headers(self, user: User) -> dict[str, str]:
        return {"X-Tenant": self.tenant.slug, "Authorization": f"Bearer {user.token}"}

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the database as its superuser (no RLS), outside the app."""
        admin = self.tdb.extra[0]
        conn = psycopg2.connect(admin, connect_timeout=5)
        try:
            with conn.cursor() as cur:
                cur.execute(query, params)
                return cur.fetchall()
        finally:
            conn.close()


def build_stack(tmp: Path, pg_admin_url: str, redis_url: str, students: int) -> Stack:
    """Migrate a fresh database on the private cluster, make a tenant, users and a course.

    The runtime built here points the process's database proxy at the private cluster for
    the setup only: the previous target comes back, so the session's lp_runtime is unaffected.
    """
    from learnplat.migrate import migrate
    from learnplat.runtime import create_runtime
    from learnplat.tenancy import tenant_context

    tdb = make_postgres_database(pg_admin_url, label="faults")
    tdb.redis_url = redis_url
    settings = test_settings(tmp, tdb.url, redis_url)
    previous = db.database.obj
    try:
        runtime = create_runtime(settings)
        migrate(runtime)
        tenant = make_tenant(runtime)
        svc = runtime.service("identity")

        def make(role: str, password: str | None = None) -> User:
            email = f"{role}-{uuid.uuid4().hex[:8]}@example.org"
            user = svc.create_user(email, password, email.split("@")[0], role=role)
            pair = svc.issue_pair(user)
            return User(user.id, pair["access_token"], pair["refresh_token"], email)

        with db.connection(), tenant_context(tenant), db.transaction():
            admin, instructor = make("admin", PASSWORD), make("instructor")
            learners = [make("student") for _ in range(students)]
        stack = Stack(tdb, runtime, tmp, tenant, admin, instructor, learners)
    finally:
        if previous is not None:
            db.database.initialize(previous)
    return stack


def publish_course(base: str, stack: Stack) -> None:
    """A published course (one video module, one text module) made through the API."""
    teacher, admin = stack.headers(stack.instructor), stack.headers(stack.admin)
    r = requests.post(f"{base}/courses", json={"title": "Fault course"}, headers=teacher,
                      timeout=10)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    r = requests.post(f"{base}/courses/{cid}/modules", json={"title": "V", "kind": "video"},
                      headers=teacher, timeout=10)
    assert r.status_code == 201, r.text
    stack.video_module_id = r.json()["id"]
    r = requests.post(f"{base}/courses/{cid}/modules", json={"title": "T"}, headers=teacher,
                      timeout=10)
    assert r.status_code == 201, r.text
    assert requests.post(f"{base}/courses/{cid}/submit", headers=teacher,
                         timeout=10).status_code == 200
    assert requests.post(f"{base}/courses/{cid}/approve", headers=admin,
                         timeout=10).status_code == 200
    stack.course_id = cid


@contextlib.contextmanager
def serve(stack: Stack, env: dict[str, str] | None = None, workers: int = 2
          ) -> Iterator[str]:
    with serve_with_gunicorn(stack.runtime, stack.tdb, stack.tmp, workers=workers, threads=4,
                             env={**stack.env, **(env or {})}) as base:
        yield base


def worker_pids(master: int) -> set[int]:
    """gunicorn's worker processes (the master's children)."""
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}


@contextlib.contextmanager
def queue_worker(stack: Stack, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """A real `learnplat worker` (Huey consumer) for the stack's database and Redis."""
    settings = stack.runtime.settings
    full = {k: v for k, v in os.environ.items() if not k.startswith("LEARNPLAT_")}
    full.update({
        "LEARNPLAT_DATABASE_URL": stack.tdb.url,
        "LEARNPLAT_REDIS_URL": stack.tdb.redis_url,
        "LEARNPLAT_REDIS_PREFIX": settings.redis.prefix,
        "LEARNPLAT_APP_SECRET_KEY": settings.app.secret_key,
        "LEARNPLAT_APP_VAR_DIR": str(settings.var_path),
        "LEARNPLAT_STORAGE_URL": settings.storage.url,
        "LEARNPLAT_QUEUE_IMMEDIATE": "false",
        "LEARNPLAT_EVENTS_BACKOFF_SECONDS": "0.5",
        **env,
    })
    log = (stack.tmp / "worker.log").open("ab")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "learnplat"), "worker",
                             "--workers", "2"], cwd=settings.home, env=full, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        log.close()


def wait_for(check: Callable[[], bool], timeout: float, step: float = 0.2) -> float:
    """Poll `check` until true; the seconds it took. AssertionError after `timeout`."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, f"not true within {timeout} s"
        time.sleep(step)
    return time.monotonic() - start


# -- load ------------------------------------------------------------------------------------


@dataclass
class Answer:
    op: str
    started: float  # time.monotonic()
    seconds: float
    status: int  # 0: no answer (connection error or client timeout)
    content_type: str = ""
    retry_after: str | None = None
    body: Any = None
    key: Any = None  # what the request was about (a title, a student id)
    error: str = ""
    ratelimit: str | None = None  # the RateLimit header (absent: limits not enforced)


class Load:
    """Threads that send requests in a loop until stopped; every answer is kept.

    `ops` are callables (session, index) -> (op name, method, path, json, headers, key),
    each thread cycling through them; index is a global sequence number.
    """

    def __init__(self, base: str, ops: list[Callable[[int], tuple[str, str, str, Any,
                                                                   dict[str, str], Any]]],
                 threads: int = 4, timeout: float = 15.0, pause: float = 0.01):
        self.base = base
        self.ops = ops
        self.timeout = timeout
        self.pause = pause
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._seq = iter(range(10**9))
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(threads)]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 5)

    def _next(self) -> int:
        with self._lock:
            return next(self._seq)

    def _run(self, thread: int) -> None:
        session = requests.Session()
        n = thread
        while not self._stop.is_set():
            op = self.ops[n % len(self.ops)]
            n += 1
            name, method, path, body, headers, key = op(self._next())
            t0 = time.monotonic()
            try:
                r = session.request(method, self.base + path, json=body, headers=headers,
                                    timeout=self.timeout)
                try:
                    payload = r.json()
                except ValueError:
                    payload = r.text[:200]
                answer = Answer(name, t0, time.monotonic() - t0, r.status_code,
                                r.headers.get("Content-Type", ""),
                                r.headers.get("Retry-After"), payload, key,
                                ratelimit=r.headers.get("RateLimit"))
            except requests.RequestException as exc:
                answer = Answer(name, t0, time.monotonic() - t0, 0, key=key, error=repr(exc))
                session = requests.Session()
            with self._lock:
                self.answers.append(answer)
            time.sleep(self.pause)

    def between(self, start: float, end: float) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.started + a.seconds >= start
                    and a.started <= end]


def unclean(answers: list[Answer]) -> list[Answer]:
    """Answers that are neither a success nor a clean 503 (problem+json with Retry-After)."""
    out = []
    for a in answers:
        if 200 <= a.status < 300:
            continue
        if (a.status == 503 and a.content_type.startswith("application/problem+json")
                and a.retry_after):
            continue
        out.append(a)
    return out


def recovered_at(answers: list[Answer], after: float) -> float | None:
    """When the first success began after `after`, from which every later-starting answer
    succeeded; None when failures go on to the end."""
    ordered = sorted((a for a in answers if a.started >= after), key=lambda a: a.started)
    last_fail = max((i for i, a in enumerate(ordered) if not 200 <= a.status < 300),
                    default=-1)
    if last_fail + 1 >= len(ordered):
        return None
    return ordered[last_fail + 1].started


def summary(answers: list[Answer]) -> dict[str, Any]:
    by_status: dict[int, int] = {}
    for a in answers:
        by_status[a.status] = by_status.get(a.status, 0) + 1
    return {"sent": len(answers), "failed": sum(1 for a in answers if not 200 <= a.status < 300),
            "by_status": dict(sorted(by_status.items())),
            "max_latency_s": round(max((a.seconds for a in answers), default=0.0), 3)}
