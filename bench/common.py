"""Helpers shared by the benchmarks: the bench database and Redis, a `learnplat serve` server
(started and stopped by learnplat.testing's launcher, as the tests start theirs),
percentiles, the machine's description.

    LEARNPLAT_BENCH_DATABASE_URL  PostgreSQL admin URL (default postgresql://postgres@127.0.0.1:5432/postgres);
                                  a fresh database owned by a non-superuser role is made and dropped
    LEARNPLAT_BENCH_REDIS_URL     a Redis database the benchmark may flush (default db 12)
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from learnplat.testing import (
    free_port,
    learnplat_serve_argv,
    start_server,
    stop_server,
    wait_for_server,
)

__all__ = ["free_port", "start_learnplat", "start_server", "stop", "wait_for_server"]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"
SECRET = "bench-secret-key-not-for-production"


def admin_url() -> str:
    return os.environ.get("LEARNPLAT_BENCH_DATABASE_URL") or DEFAULT_ADMIN_URL


def redis_url() -> str:
    return os.environ.get("LEARNPLAT_BENCH_REDIS_URL") or DEFAULT_REDIS_URL


def pop_bench_env() -> tuple[str, str]:
    """The admin and Redis URLs, removed from the environment: LEARNPLAT_<SECTION>_* is
    configuration, and there is no [bench] section (a server started with them would refuse)."""
    admin, redis_ = admin_url(), redis_url()
    os.environ.pop("LEARNPLAT_BENCH_DATABASE_URL", None)
    os.environ.pop("LEARNPLAT_BENCH_REDIS_URL", None)
    return admin, redis_


def make_database(admin: str, label: str = "bench") -> Any:
    """A fresh PostgreSQL database owned by a NOSUPERUSER NOBYPASSRLS role (RLS enforced), as
    the test suite makes them. `.url` is the app role's URL, `.extra[0]` the admin URL of the
    same database (superuser: bulk seeding bypasses RLS), `.drop()` removes it."""
    from learnplat.testing import make_postgres_database

    return make_postgres_database(admin, label=label)


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values` (nearest rank); 0.0 for none."""
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any LEARNPLAT_* variable it set (configuration a bench
    child must not inherit), plus `extra`."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("LEARNPLAT_")}, **extra}


def server_env(database_url: str, redis: str, var_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a bench `learnplat serve`: the caller's, without any LEARNPLAT_*
    variable it set, plus the bench's settings."""
    env = clean_env()
    env.update({
        "LEARNPLAT_HOME": str(ROOT),
        "LEARNPLAT_DATABASE_URL": database_url,
        "LEARNPLAT_REDIS_URL": redis,
        "LEARNPLAT_APP_SECRET_KEY": SECRET,
        "LEARNPLAT_APP_VAR_DIR": str(var_dir),
        "LEARNPLAT_STORAGE_URL": f"file://{var_dir / 'storage'}",
        **extra,
    })
    return env


def start_learnplat(env: dict[str, str], port: int, workers: int = 2,
                    log: Path | None = None) -> subprocess.Popen[bytes]:
    """`learnplat serve --no-migrate` (gunicorn with the home's config/gunicorn.conf.py,
    --no-control-socket, plus the embedded queue worker unless the env turns it off) in its
    own process group; returns once /healthz answers."""
    return start_server(learnplat_serve_argv(f"127.0.0.1:{port}", workers),
                        f"http://127.0.0.1:{port}", env, ROOT, log)


def stop(proc: subprocess.Popen[bytes] | None, timeout: float = 20) -> None:
    """Stop a server started in its own session (SIGTERM to its group, SIGKILL if it lingers)."""
    stop_server(proc, grace=timeout)


def close_pool() -> None:
    """Close this process's database connections (before dropping the database)."""
    from learnplat import db

    obj = db.database.obj
    if obj is not None:
        if hasattr(obj, "close_all"):
            obj.close_all()
        else:
            obj.close()


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0, 0, 0)
    return {"nproc": os.cpu_count(), "cpu": cpu or platform.processor(), "ram_gb": ram_gb,
            "python": platform.python_version(), "kernel": platform.release(),
            "loadavg_at_start": [round(x, 2) for x in load]}
