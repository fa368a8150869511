"""Fixtures of the enrollment tests: a published course, the CLI, a query counter and a real
gunicorn serving the test database (helpers in enrollhelpers.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from enrollhelpers import CLI, PublishedCourse, QueryCounter, free_port, publish_course


@pytest.fixture
def published(lp_client: Any, lp_users: Any) -> PublishedCourse:
    return publish_course(lp_client, lp_users)


@pytest.fixture
def count_queries() -> QueryCounter:
    return QueryCounter()


@pytest.fixture
def enroll_cli(lp_runtime: Any) -> CLI:
    return CLI(lp_runtime)


@pytest.fixture
def live_server(lp_runtime: Any, lp_database: Any, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[str]:
    """gunicorn (3 workers x 4 threads) serving the test database; yields its base URL.
    Booting takes ~3 s on two cores, so the race scenarios share one test (and one server)."""
    import requests

    root = Path(__file__).resolve().parents[2]
    tmp = tmp_path_factory.mktemp("gunicorn")
    port = free_port()
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
    gunicorn = Path(sys.executable).parent / "gunicorn"
    log = (tmp / "gunicorn.log").open("wb")
    proc = subprocess.Popen(
        [str(gunicorn), "--no-control-socket", "-w", "3", "-k", "gthread", "--threads", "4",
         "-b", f"127.0.0.1:{port}", "--graceful-timeout", "2",
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
        # A throwaway server with nothing in flight: SIGKILL the group (a graceful stop
        # costs gunicorn ~2 s).
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        log.close()


