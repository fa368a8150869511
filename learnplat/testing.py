"""pytest fixtures for learnplat and its plugins (installed as a pytest11 plugin).

A plugin's tests start with a migrated database on the chosen backend, a runtime with every
installed plugin, a fresh tenant per test and an HTTP client in one line:

    def test_something(lp_client):
        assert lp_client.get("/healthz").status_code == 200

LEARNPLAT_TEST_BACKEND=postgres (with LEARNPLAT_TEST_DATABASE_URL and LEARNPLAT_TEST_REDIS_URL)
runs the same tests on PostgreSQL, as a role that row-level security applies to, and Redis.
"""

from __future__ import annotations

import itertools
import os
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import falcon.testing
import pytest
from pydantic import ConfigDict

from . import db
from .contracts import Event
from .runtime import Runtime, create_runtime
from .settings import Settings, load_settings
from .tenancy import TenantInfo, tenant_context

APP_ROLE = "learnplat_test_app"  # NOSUPERUSER NOBYPASSRLS: RLS applies to it
_counter = itertools.count()


def backend() -> str:
    return os.environ.get("LEARNPLAT_TEST_BACKEND", "sqlite")


def worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker[2:]) if worker.startswith("gw") else 0


@dataclass
class TestDatabase:
    """A database made for this test process and dropped after it."""

    url: str
    admin_url: str | None = None
    name: str | None = None
    redis_url: str = ""
    extra: list[str] = field(default_factory=list)

    def drop(self) -> None:
        if self.admin_url and self.name:
            _admin_sql(self.admin_url, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def _admin_sql(admin_url: str, *statements: str) -> None:
    import psycopg2

    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)
    finally:
        conn.close()


def make_postgres_database(admin_url: str, label: str = "") -> TestDatabase:
    """Create a fresh database owned by a non-superuser role, so RLS is really enforced."""
    import psycopg2

    name = f"lp_test_{label}{worker_index()}_{uuid.uuid4().hex[:8]}"
    try:
        _admin_sql(admin_url, f"CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS")
    except psycopg2.errors.DuplicateObject:
        pass
    _admin_sql(admin_url, f'CREATE DATABASE "{name}" OWNER {APP_ROLE}')
    parsed = urlparse(admin_url)
    netloc = f"{APP_ROLE}@{parsed.hostname}:{parsed.port or 5432}"
    url = urlunparse(parsed._replace(netloc=netloc, path=f"/{name}"))
    admin_db_url = urlunparse(parsed._replace(path=f"/{name}"))
    return TestDatabase(url=url, admin_url=admin_url, name=name, extra=[admin_db_url])


def test_redis_url() -> str:
    raw = os.environ.get("LEARNPLAT_TEST_REDIS_URL", "")
    if not raw:
        return ""
    parsed = urlparse(raw)
    base = int((parsed.path or "/0").strip("/") or 0)
    return urlunparse(parsed._replace(path=f"/{(base + worker_index()) % 16}"))


_session_prefix = f"lptest-{uuid.uuid4().hex[:12]}"


def _redis_prefix() -> str:
    return _session_prefix


def test_settings(tmp: Path, database_url: str, redis_url: str = "", **overrides: Any
                  ) -> Settings:
    sections: dict[str, Any] = {
        "app": {"var_dir": str(tmp / "var"), "secret_key": "test-secret-key-not-for-production"},
        "database": {"url": database_url},
        # A key prefix of this test process: no flushing, and runs sharing a Redis db
        # (parallel CI jobs, several developers) never see each other's keys.
        "redis": {"url": redis_url, "prefix": _redis_prefix()},
        "queue": {"immediate": True, "sqlite_path": str(tmp / "var" / "huey.db")},
        "events": {"inline_dispatch": False, "backoff_seconds": 0},
        "storage": {"url": f"file://{tmp / 'storage'}"},
        "tenancy": {"cache_seconds": 0},
        # API rate limits off: a test sends many requests from one address in an instant.
        # Tests of the limits turn them on: test_settings(..., limits={"enabled": True}).
        "limits": {"enabled": False},
        # Every answer of every test request is checked against its declared Out model
        # (learnplat.http.endpoint.check_response): the OpenAPI document stays true.
        "server": {"check_responses": True},
        # Tests deliver webhooks and xAPI statements to receivers they start on loopback,
        # over plain HTTP: allowed here only (production refuses both by default).
        "outbound": {"allowed_networks": ["127.0.0.0/8"], "require_https": False},
    }
    for section, values in overrides.items():
        sections.setdefault(section, {}).update(values)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LEARNPLAT_")}
    # Home is the test's own directory: a plugin's tests never read or write the developer's
    # per-user home, whichever directory pytest runs from.
    return load_settings(overrides=sections, environ=environ, home=tmp)


@pytest.fixture(scope="session")
def lp_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestDatabase]:
    """The test process's database: SQLite in a temp dir, or a fresh PostgreSQL database."""
    if backend() == "postgres":
        admin = os.environ.get("LEARNPLAT_TEST_DATABASE_URL")
        if not admin:
            pytest.exit("LEARNPLAT_TEST_BACKEND=postgres needs LEARNPLAT_TEST_DATABASE_URL", 2)
        tdb = make_postgres_database(admin)
        tdb.redis_url = test_redis_url()
        yield tdb
        tdb.drop()
    else:
        path = tmp_path_factory.mktemp("db") / "learnplat.db"
        yield TestDatabase(url=f"sqlite:///{path}")


@pytest.fixture(scope="session")
def lp_runtime(lp_database: TestDatabase, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Runtime]:
    """A runtime with every installed plugin, tasks in immediate mode, migrated once."""
    from .migrate import migrate

    tmp = tmp_path_factory.mktemp("runtime")
    settings = test_settings(tmp, lp_database.url, lp_database.redis_url)
    runtime = create_runtime(settings)
    migrate(runtime)
    yield runtime
    db.database.obj.close_all() if hasattr(db.database.obj, "close_all") else None
    forget_redis_keys(runtime.settings.redis.url, runtime.settings.redis.prefix)


def forget_redis_keys(url: str, prefix: str) -> None:
    """Delete a test run's keys (queue and key-value store) from a shared Redis db."""
    if not url:
        return
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="session")
def lp_app(lp_runtime: Runtime) -> Any:
    from .http.app import create_app

    return create_app(lp_runtime)


def make_tenant(runtime: Runtime, slug: str | None = None, **fields: Any) -> TenantInfo:
    from .tenants import TenantSpec

    slug = slug or f"school-{worker_index()}-{next(_counter)}-{uuid.uuid4().hex[:6]}"
    with db.connection():
        return runtime.tenants.create(TenantSpec(slug=slug, name=fields.pop("name", slug),
                                                 **fields))


@pytest.fixture
def lp_tenant(lp_runtime: Runtime) -> TenantInfo:
    """A fresh tenant for this test: tests never share data, so none needs cleaning up."""
    return make_tenant(lp_runtime)


@pytest.fixture
def lp_other_tenant(lp_runtime: Runtime) -> TenantInfo:
    """A second tenant, for the "another school sees nothing" checks."""
    return make_tenant(lp_runtime)


class ServedApp:
    """A WSGI app called as a server's worker thread calls it: every request on one thread of
    its own (kept from request to request, as gunicorn's threads are), the answer's body read
    there too (a streamed file is read after the middleware has ended the unit of work), and
    the thread checked afterwards: a request that leaves a transaction, a deferred BEGIN or a
    connection behind fails the test that sent it, so that every in-process request of the
    suite is also a check that one request cannot change what the next one on the thread
    gets (learnplat issue 24)."""

    def __init__(self, app: Any):
        from concurrent.futures import ThreadPoolExecutor

        self.app = app
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="lp-served")

    def __getattr__(self, name: str) -> Any:  # falcon's TestClient looks at the app
        return getattr(self.app, name)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        return self._thread.submit(self._serve, environ, start_response).result()

    def _serve(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        result = self.app(environ, start_response)
        try:
            body = list(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        left = db.leftovers()
        if left:
            db.reset_thread()
            if not db.database.is_closed():
                db.database.close()
            raise AssertionError(
                f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')} left the "
                f"server thread holding {', '.join(left)}")
        return body


_served: dict[int, ServedApp] = {}


def served(app: Any) -> ServedApp:
    """The app as a server thread serves it (see ServedApp); one per app."""
    if isinstance(app, ServedApp):
        return app
    wrapped = _served.get(id(app))
    if wrapped is None or wrapped.app is not app:
        wrapped = _served[id(app)] = ServedApp(app)
    return wrapped


class Client:
    """falcon's test client bound to a tenant (X-Tenant) and optionally a bearer token. The
    requests run on a thread of their own, as in a server (see ServedApp)."""

    def __init__(self, app: Any, tenant: TenantInfo | None = None, token: str | None = None):
        self._client = falcon.testing.TestClient(served(app))
        self.app = app
        self.tenant = tenant
        self.token = token

    def as_(self, token: str | None = None, tenant: TenantInfo | None = None) -> Client:
        return Client(self.app, tenant or self.tenant, token)

    def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                **kwargs: Any) -> falcon.testing.Result:
        hdrs = {}
        if self.tenant is not None:
            hdrs["X-Tenant"] = self.tenant.slug
        if self.token:
            hdrs["Authorization"] = f"Bearer {self.token}"
        hdrs.update(headers or {})
        return self._client.simulate_request(method, path, headers=hdrs, **kwargs)

    def get(self, path: str, **kw: Any) -> falcon.testing.Result:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> falcon.testing.Result:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> falcon.testing.Result:
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> falcon.testing.Result:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> falcon.testing.Result:
        return self.request("DELETE", path, **kw)


@pytest.fixture
def lp_client(lp_app: Any, lp_tenant: TenantInfo) -> Client:
    return Client(lp_app, lp_tenant)


@pytest.fixture
def lp_tenant_cache(lp_runtime: Runtime) -> Iterator[None]:
    """The tenant cache on, as in production (the suite's runtime turns it off so that a
    change made behind the service's back is seen at once). A cached school is what leaves a
    request's unit of work without a connection until its first statement: the state that
    routes opening their own connection must be tested in."""
    tenants = lp_runtime.tenants
    before = tenants.cache_seconds
    tenants.cache_seconds = 60
    tenants.invalidate()
    try:
        yield
    finally:
        tenants.cache_seconds = before
        tenants.invalidate()


@pytest.fixture
def in_tenant(lp_runtime: Runtime, lp_tenant: TenantInfo) -> Iterator[TenantInfo]:
    """Run the test body inside the tenant, a connection and a transaction."""
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        yield lp_tenant


class EventRecorder:
    """Collects events delivered to the recorder handler (register with `recorder_plugin`)."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def names(self) -> list[str]:
        return [e.name for e in self.events]


@pytest.fixture
def event_recorder(lp_runtime: Runtime) -> Iterator[EventRecorder]:
    """Every event delivered while the test runs (dispatch with runtime.events.dispatch_pending
    or by a worker); delivery is real: from the outbox, after commit."""
    from .registry import EventHandler

    recorder = EventRecorder()
    handler = EventHandler("*", f"recorder{id(recorder)}", lambda rt, e: recorder.events.append(e),
                           plugin="tests")
    lp_runtime.registry.handlers.append(handler)
    yield recorder
    lp_runtime.registry.handlers.remove(handler)


@contextmanager
def use_runtime(runtime: Runtime) -> Iterator[Runtime]:
    """Point learnplat.db.database at `runtime`'s database for the block, then back.

    A process has one database proxy; tests that build a second runtime (another database, a
    runtime with only some plugins) enter it with this so the session's runtime keeps working.
    """
    previous = db.database.obj
    db.database.initialize(runtime.database)
    try:
        yield runtime
    finally:
        if previous is not None:
            db.database.initialize(previous)


def declare_event(runtime: Runtime, name: str, plugin: str = "tests") -> type[Event]:
    """The declared type of event `name`; when no loaded plugin declares it (its publisher is
    an optional plugin absent from the test), a stand-in that takes any fields, so a test can
    record the event and drive its handlers: ``record(declare_event(rt, "quiz.passed.v1")(
    course_id=1, module_id=2, user_id=3))``."""
    decl = runtime.registry.events.get(name)
    if decl is not None:
        return decl.type
    stand_in = type("StandIn_" + name.replace(".", "_"), (Event,), {
        "__doc__": f"Stand-in for {name} (declared by a test).", "name": name,
        "model_config": ConfigDict(frozen=True, extra="allow")})
    runtime.registry.add_event(stand_in, plugin)
    return stand_in


# Transaction control, and the tenant setting of row-level security: the core may fold these
# into fewer round trips (or none), so the query counter leaves them out and counts only the
# statements the application asked for.
_TRANSACTION_CONTROL = re.compile(
    r"\s*(BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE"
    r"|SELECT\s+set_config\s*\()", re.IGNORECASE)


# On PostgreSQL the core sends a deferred BEGIN and the tenant's set_config in front of the
# transaction's first statement (learnplat.db.DeferredBegin): that statement still counts.
_FOLDED_PREFIX = re.compile(r"\s*BEGIN[^;]*;\s*(SELECT\s+set_config\([^)]*\)\s*;\s*)?",
                            re.IGNORECASE)


def is_transaction_control(sql: str) -> bool:
    """Whether `sql` is transaction control that `count_queries` leaves out (BEGIN, COMMIT,
    ROLLBACK [TO SAVEPOINT], SAVEPOINT, RELEASE, `SELECT set_config(...)` for the tenant)."""
    folded = _FOLDED_PREFIX.match(sql)
    if folded is not None and folded.end() < len(sql.rstrip()):
        sql = sql[folded.end():]
    return _TRANSACTION_CONTROL.match(sql) is not None


class QueryCount:
    """The SQL statements the process's database ran inside a `count_queries()` block,
    transaction control left out: `.count` (also `len()`), `.queries` (the SQL text, in
    order), `.all` (every statement, transaction control included)."""

    def __init__(self) -> None:
        self.all: list[str] = []
        self.queries: list[str] = []

    @property
    def count(self) -> int:
        return len(self.queries)

    def __len__(self) -> int:
        return len(self.queries)

    def __repr__(self) -> str:
        return f"<QueryCount {self.count}: {self.queries!r}>"

    def _record(self, event: Any) -> None:
        sql = str(event.sql)
        self.all.append(sql)
        if not is_transaction_control(sql):
            self.queries.append(sql)


@contextmanager
def count_queries() -> Iterator[QueryCount]:
    """Count the SQL statements the process's database runs inside the block (every thread,
    every connection of the pool), leaving out transaction control::

        with count_queries() as q:
            lp_client.get("/courses?limit=20")
        assert q.count <= 3, q.queries

    It listens to peewee's query hooks, so it sees every statement that goes through the
    database's ``execute_sql`` (every query of a model or of raw SQL)."""
    database = db.database.obj
    if database is None:
        raise RuntimeError("count_queries() needs the process's database (use lp_runtime)")
    counter = QueryCount()
    database.query_hooks.append(counter._record)
    try:
        yield counter
    finally:
        database.query_hooks.remove(counter._record)


@pytest.fixture
def lp_queries() -> Any:
    """`learnplat.testing.count_queries`, as a fixture: ``with lp_queries() as q: ...``."""
    return count_queries


@contextmanager
def moto_s3_server() -> Iterator[str]:
    """An S3-compatible server (moto's standalone server) on 127.0.0.1 for the block; yields
    its ``host:port``. It accepts any credentials and checks no signatures: tests that care
    verify presigned URLs themselves."""
    with moto_s3_process() as (address, _proc):
        yield address


@contextmanager
def moto_s3_process() -> Iterator[tuple[str, Any]]:
    """As moto_s3_server, but yields ``(host:port, its subprocess.Popen)``, for a test that
    kills the store mid-way."""
    import subprocess
    import sys
    import time

    import requests

    port = free_port()
    # The environment's own moto (not whichever `moto_server` PATH finds first).
    moto = str(Path(sys.executable).parent / "moto_server")
    proc = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60  # moto imports a lot; slow on a loaded machine
        while True:
            assert proc.poll() is None, "moto_server exited"
            try:
                requests.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, "moto_server did not start"
                time.sleep(0.2)
        yield f"127.0.0.1:{port}", proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=10)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fresh_home_env(tmp: Path) -> dict[str, str]:
    """The environment of a learnplat process run from a fresh home (`tmp/home`, made here)
    with nothing configured, as an operator's first try: no LEARNPLAT_ or PYTHON variables of
    the test process carried over."""
    home = tmp / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LEARNPLAT_", "PYTHON"))}
    env.update(HOME=str(tmp), LEARNPLAT_HOME=str(home))
    return env


class ServerDidNotStart(RuntimeError):
    """A server process exited, or did not answer 200, before it was serving."""


def wait_for_server(base: str, proc: Any = None, output: Callable[[], str] = lambda: "",
                    path: str = "/healthz", timeout: float = 60.0) -> None:
    """Poll ``base + path`` until it answers 200. ServerDidNotStart when `proc` (a Popen, or
    None) exits first, with the end of `output()` (its log or its pipe, read once it has
    exited), or after `timeout` seconds. Outside pytest (the benchmarks) as inside."""
    import time

    import requests

    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise ServerDidNotStart(f"the server exited ({proc.returncode}): "
                                    f"{output()[-3000:]}")
        try:
            if requests.get(f"{base}{path}", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            # Not output(): a pipe of a process still running would block the read.
            raise ServerDidNotStart(f"{base}{path} did not answer 200 within {timeout:.0f} s")
        time.sleep(0.1)


def wait_until_serving(base: str, proc: Any, output: Callable[[], str] = lambda: "",
                       path: str = "/healthz", timeout: float = 60.0) -> None:
    """As wait_for_server, but the test fails (pytest.fail) instead of raising."""
    try:
        wait_for_server(base, proc, output, path, timeout)
    except ServerDidNotStart as exc:
        pytest.fail(str(exc))


class ServerURL(str):
    """The base URL of a test server; `.pid` is its gunicorn master's process id."""

    pid: int


def start_server(argv: list[str], base: str, env: dict[str, str], cwd: Path | str,
                 log: Path | None = None, pass_fds: tuple[int, ...] = (),
                 path: str = "/healthz", timeout: float = 60.0) -> Any:
    """Start a server process (`argv`) in its own session, its output appended to `log`
    (discarded without one), `pass_fds` handed to it (and closed here: a listening socket
    bound by the caller, so no other process can take its port); return its Popen once
    ``base + path`` answers 200. ServerDidNotStart (the server stopped) if it exits first or
    does not answer in time. Stop it with stop_server. `learnplat serve`, bare gunicorn and
    the benchmark's baseline app are all started this way."""
    import subprocess

    out: Any = log.open("ab") if log is not None else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, pass_fds=pass_fds)
    finally:
        if log is not None:
            out.close()  # the child holds its own copy
        for fd in pass_fds:  # handed over: the child holds its own copies
            os.close(fd)
    try:
        wait_for_server(base, proc, (lambda: log.read_text(errors="replace")) if log else
                        (lambda: ""), path, timeout)
    except BaseException:
        stop_server(proc, grace=0)
        raise
    return proc


def stop_server(proc: Any, grace: float = 20.0) -> None:
    """Stop a process started in its own session (start_server): SIGTERM to its group and
    up to `grace` seconds to finish, then SIGKILL (at once with `grace` 0, for a throwaway
    server with nothing in flight: a graceful stop costs gunicorn seconds)."""
    import signal
    import subprocess

    if proc is None or proc.poll() is not None:
        return
    try:
        if grace > 0:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                pass
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(10)


def learnplat_serve_argv(bind: str, workers: int = 2, *args: str) -> list[str]:
    """`learnplat serve --no-migrate` of this environment, as a deployment starts it
    (gunicorn with the home's config/gunicorn.conf.py, the embedded queue worker unless the
    settings turn it off)."""
    import sys

    return [str(Path(sys.executable).parent / "learnplat"), "serve", "--no-migrate",
            "--bind", bind, "--workers", str(workers), *args]


@contextmanager
def serve_with_gunicorn(runtime: Runtime, database: TestDatabase, tmp: Path, workers: int = 2,
                        threads: int = 4, env: dict[str, str] | None = None,
                        args: tuple[str, ...] = (), worker_class: str = "asgi"
                        ) -> Iterator[str]:
    """A real gunicorn serving the test database as `learnplat serve` does (the asgi worker
    with the ASGI entry: REST and WebSockets; or `worker_class="gthread"`, the WSGI app);
    yields its base URL.

    Tasks run inline in the server (queue.immediate); the caller's tenants and users are
    visible to it because it shares the test database. `env` adds settings
    (``{"LEARNPLAT_SERVER_TRUSTED_PROXIES": "127.0.0.1"}``), `args` gunicorn options.
    """
    import socket
    import sys

    # The test binds the socket and hands it to gunicorn (fd://): a port picked free and then
    # bound by gunicorn could be taken meanwhile by another test run's server, whose answers
    # (from another database) would then reach this test.
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    settings = runtime.settings
    extra = env or {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNPLAT_")}
    env.update({
        "LEARNPLAT_DATABASE_URL": database.url,
        "LEARNPLAT_REDIS_URL": database.redis_url,
        "LEARNPLAT_REDIS_PREFIX": settings.redis.prefix,
        "LEARNPLAT_APP_SECRET_KEY": settings.app.secret_key,
        "LEARNPLAT_APP_VAR_DIR": str(settings.var_path),
        "LEARNPLAT_STORAGE_URL": settings.storage.url,
        "LEARNPLAT_QUEUE_IMMEDIATE": "true",
        "LEARNPLAT_QUEUE_EMBEDDED_WORKER": "false",
        "LEARNPLAT_QUEUE_SQLITE_PATH": str(tmp / "huey.db"),
        "LEARNPLAT_TENANCY_CACHE_SECONDS": "0",
        "LEARNPLAT_LIMITS_ENABLED": "false",  # as in test_settings; env may turn them on
        "LEARNPLAT_SERVER_THREADS": str(threads),
        **extra,
    })
    if worker_class == "asgi":
        kind = ["-k", "asgi", "learnplat.http.asgi:get_asgi_app()"]
    else:
        kind = ["-k", "gthread", "--threads", str(threads), "learnplat.http.app:get_app()"]
    base = ServerURL(f"http://127.0.0.1:{port}")
    fd = listener.detach()  # start_server closes it once gunicorn holds its own copy
    try:
        proc = start_server(
            [str(Path(sys.executable).parent / "gunicorn"), "--no-control-socket",
             "-w", str(workers), "-b", f"fd://{fd}", *args, *kind],
            base, env, settings.home, tmp / "gunicorn.log", pass_fds=(fd,), timeout=30)
    except ServerDidNotStart as exc:
        pytest.fail(str(exc))
    base.pid = proc.pid
    try:
        yield base
    finally:
        # A throwaway server with nothing in flight: kill the group at once.
        stop_server(proc, grace=0)


@pytest.fixture
def lp_live_server(lp_runtime: Runtime, lp_database: TestDatabase,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """gunicorn (2 workers x 4 threads, as `learnplat serve` runs it) serving the test
    database; yields its base URL."""
    with serve_with_gunicorn(lp_runtime, lp_database, tmp_path_factory.mktemp("gunicorn")) as url:
        yield url


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


class CliInvoker:
    """Runs `learnplat ...` in-process against a runtime (same database, key-value store and
    plugins), with every loaded plugin's commands: ``lp_cli("users", "list", "--tenant", s)``."""

    def __init__(self, runtime: Runtime):
        from .cli import core_commands  # noqa: F401  (registers the core commands on `cli`)
        from .cli.main import LearnplatGroup, cli

        # A copy of the command group, so plugin commands never leak into the global one.
        self.group = LearnplatGroup(name="learnplat", commands=dict(cli.commands),
                                    callback=cli.callback, params=list(cli.params))
        runtime.pm.hook.register_commands(cli=self.group)
        self.runtime = runtime

    def __call__(self, *args: str) -> CliResult:
        from click.testing import CliRunner

        from .cli.main import AppContext

        ctx = AppContext()
        ctx._runtime = self.runtime
        result = CliRunner().invoke(self.group, list(args), obj=ctx, catch_exceptions=False)
        return CliResult(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def lp_cli(lp_runtime: Runtime) -> CliInvoker:
    """The learnplat command line, in-process, against the test runtime."""
    return CliInvoker(lp_runtime)
