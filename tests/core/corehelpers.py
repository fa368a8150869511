"""Helpers and fixtures for the core's tests: a runtime with only the core and the `testnotes`
test plugin, on its own database: the core is tested independently of the built-in plugins.

The process has one database proxy; `core_runtime` points it at the core's database for the
duration of a test and back (learnplat.testing.use_runtime).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import testnotes

from learnplat import db
from learnplat.http.app import create_app
from learnplat.migrate import migrate
from learnplat.runtime import Runtime, create_runtime
from learnplat.tenancy import TenantInfo
from learnplat.testing import (
    Client,
    TestDatabase,
    backend,
    make_postgres_database,
    make_tenant,
    serve_with_gunicorn,
    test_redis_url,
    test_settings,
    use_runtime,
)
from learnplat.testing import free_port as free_port

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "learnplat.cli"]


def fresh_database(tmp: Path, label: str = "x") -> TestDatabase:
    """A new empty database on the chosen backend (dropped by the caller)."""
    if backend() == "postgres":
        tdb = make_postgres_database(os.environ["LEARNPLAT_TEST_DATABASE_URL"], label)
        tdb.redis_url = test_redis_url()
        return tdb
    tmp.mkdir(parents=True, exist_ok=True)
    return TestDatabase(url=f"sqlite:///{tmp / 'learnplat.db'}")


@pytest.fixture
def fresh_db(tmp_path: Path) -> Iterator[TestDatabase]:
    tdb = fresh_database(tmp_path / "db", "fresh")
    yield tdb
    tdb.drop()


@pytest.fixture(scope="session")
def core_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestDatabase]:
    tdb = fresh_database(tmp_path_factory.mktemp("coredb"), "core")
    yield tdb
    tdb.drop()


def build_runtime(tmp: Path, tdb: TestDatabase, plugins: list[tuple[str, Any]] | None = None,
                  do_migrate: bool = True, **overrides: Any) -> Runtime:
    """A runtime with the core and `plugins` only (no entry points), the proxy left as it was."""
    previous = db.database.obj
    settings = test_settings(tmp, tdb.url, tdb.redis_url, **overrides)
    try:
        rt = create_runtime(settings, plugins=plugins if plugins is not None
                            else [("testnotes", testnotes)], entry_points=False)
        if do_migrate:
            migrate(rt)
    finally:
        if previous is not None:
            db.database.initialize(previous)
    return rt


@pytest.fixture(scope="session")
def _core_runtime(core_database: TestDatabase, tmp_path_factory: pytest.TempPathFactory
                  ) -> Runtime:
    return build_runtime(tmp_path_factory.mktemp("core"), core_database)


@pytest.fixture
def core_runtime(_core_runtime: Runtime) -> Iterator[Runtime]:
    with use_runtime(_core_runtime):
        yield _core_runtime


@pytest.fixture(scope="session")
def _core_app(_core_runtime: Runtime) -> Any:
    return create_app(_core_runtime)


@pytest.fixture
def core_app(core_runtime: Runtime, _core_app: Any) -> Any:
    return _core_app


@pytest.fixture
def tenant_a(core_runtime: Runtime) -> TenantInfo:
    return make_tenant(core_runtime)


@pytest.fixture
def tenant_b(core_runtime: Runtime) -> TenantInfo:
    return make_tenant(core_runtime)


def token(tenant: TenantInfo, role: str = "student", user: int = 1) -> str:
    return f"note:{tenant.id}:{role}:{user}"


@pytest.fixture
def client(core_app: Any, tenant_a: TenantInfo) -> Client:
    return Client(core_app, tenant_a, token(tenant_a))


# -- subprocesses ----------------------------------------------------------------------------


def cli_env(tmp: Path, tdb: TestDatabase, pythonpath: list[Path] | None = None,
            **settings: str) -> dict[str, str]:
    """Environment for a learnplat subprocess: configuration by env vars only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNPLAT_")}
    env.update({
        "LEARNPLAT_HOME": str(REPO),  # whatever the subprocess's cwd (tests of the rule unset it)
        "LEARNPLAT_DATABASE_URL": tdb.url,
        "LEARNPLAT_REDIS_URL": tdb.redis_url,
        "LEARNPLAT_REDIS_PREFIX": f"lptest-{uuid.uuid4().hex[:12]}",
        "LEARNPLAT_APP_VAR_DIR": str(tmp / "var"),
        "LEARNPLAT_APP_SECRET_KEY": "test-secret-key-not-for-production",
        "LEARNPLAT_STORAGE_URL": f"file://{tmp / 'storage'}",
        "LEARNPLAT_QUEUE_SQLITE_PATH": str(tmp / "var" / "huey.db"),
        "LEARNPLAT_TENANCY_CACHE_SECONDS": "0",
    })
    env.update({f"LEARNPLAT_{k.upper()}": v for k, v in settings.items()})
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in pythonpath)
    return env


def run_cli(args: list[str], env: dict[str, str], timeout: float = 60, **kw: Any
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=kw.pop("cwd", REPO), **kw)


def fake_distribution(root: Path, dist: str, entry_points: dict[str, str],
                      modules: dict[str, str]) -> Path:
    """Write modules and a minimal .dist-info with learnplat.plugins entry points into `root`,
    so a subprocess with PYTHONPATH=root finds them exactly as it finds an installed plugin."""
    root.mkdir(parents=True, exist_ok=True)
    for relpath, source in modules.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[learnplat.plugins]\n{lines}")
    return root


@pytest.fixture(scope="module")
def module_server(lp_runtime: Any, lp_database: Any, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[str]:
    """A real gunicorn for the module, on the suite's runtime and database (lp_live_server
    is one per test): the generated clients' tests drive several tests through one."""
    with serve_with_gunicorn(lp_runtime, lp_database, tmp_path_factory.mktemp("gunicorn")
                             ) as url:
        yield url
