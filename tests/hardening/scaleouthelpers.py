"""The scale-out rehearsal's stack on one machine: two API servers (separate gunicorn masters,
as `learnplat serve` runs them) and two `learnplat worker` processes sharing one PostgreSQL
database, one Redis db (one key prefix) and one S3 bucket (moto); and a small HTTP client
that counts what it sends to each server."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from learnplat.testing import ServerURL, TestDatabase, moto_s3_server, serve_with_gunicorn

# A tenant lookup is cached this long in each process (tenancy.cache_seconds; 5 s by
# default): a disable done anywhere reaches every process within it.
CACHE_SECONDS = 2.0
REVALIDATE_SECONDS = 1.0  # notifications.revalidate_seconds: open sockets re-check this often
S3_KEY, S3_SECRET = "scaleoutkey", "scaleoutsecret"


@dataclass
class Stack:
    a: ServerURL  # the two API servers (base URL; .pid: the gunicorn master)
    b: ServerURL
    s3: str  # host:port of the S3 server
    bucket: str
    workers: list[subprocess.Popen[bytes]]
    logs: Path
    sent: Counter[str] = field(default_factory=Counter)  # requests per server

    def api(self, base: str, tenant: Any, token: str | None = None) -> Api:
        return Api(self, base, tenant.slug, token)

    def ws(self, base: str) -> str:
        return base.replace("http://", "ws://")

    def check_alive(self) -> None:
        for proc in self.workers:
            assert proc.poll() is None, f"a worker exited: {self.worker_log()}"

    def tasks_per_worker(self) -> list[int]:
        return [(self.logs / f"worker{i}.log").read_text().count(" Executing ")
                for i in range(len(self.workers))]

    def worker_log(self) -> str:
        return "\n".join(p.read_text()[-3000:] for p in sorted(self.logs.glob("worker*.log")))


@dataclass
class Api:
    """requests against one server, as one caller of one tenant."""

    stack: Stack
    base: str
    tenant: str
    token: str | None = None

    def as_(self, token: str | None) -> Api:
        return Api(self.stack, self.base, self.tenant, token)

    def on(self, base: str) -> Api:
        return Api(self.stack, base, self.tenant, self.token)

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {"X-Tenant": self.tenant, **kw.pop("headers", {})}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self.stack.sent[self.base] += 1
        return requests.request(method, f"{self.base}{path}", headers=headers, timeout=15, **kw)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> requests.Response:
        return self.request("PUT", path, **kw)


def _env(database: TestDatabase, runtime: Any, extra: dict[str, str]) -> dict[str, str]:
    """What both servers and both workers share (serve_with_gunicorn adds the rest for the
    servers from the same runtime)."""
    settings = runtime.settings
    return {
        "LEARNPLAT_DATABASE_URL": database.url,
        "LEARNPLAT_REDIS_URL": database.redis_url,
        "LEARNPLAT_REDIS_PREFIX": settings.redis.prefix,
        "LEARNPLAT_APP_SECRET_KEY": settings.app.secret_key,
        "LEARNPLAT_APP_VAR_DIR": str(settings.var_path),
        **extra,
    }


@contextmanager
def start_stack(runtime: Any, database: TestDatabase, tmp: Path) -> Iterator[Stack]:
    """moto, two API servers (1 gunicorn worker each: two processes, not two threads of one)
    and two `learnplat worker` processes, all with the queue on Redis (not immediate)."""
    with ExitStack() as stack:
        s3 = stack.enter_context(moto_s3_server())
        bucket = f"scaleout-{tmp.name[-8:].lower().replace('_', '-')}"
        shared = {
            "LEARNPLAT_STORAGE_URL": f"s3://{S3_KEY}:{S3_SECRET}@{s3}/{bucket}?secure=false",
            "LEARNPLAT_QUEUE_IMMEDIATE": "false",
            "LEARNPLAT_QUEUE_EMBEDDED_WORKER": "false",
            "LEARNPLAT_EVENTS_INLINE_DISPATCH": "false",  # the workers deliver every event
            "LEARNPLAT_EVENTS_BACKOFF_SECONDS": "1",
            "LEARNPLAT_TENANCY_CACHE_SECONDS": str(CACHE_SECONDS),
            "LEARNPLAT_NOTIFICATIONS_REVALIDATE_SECONDS": str(REVALIDATE_SECONDS),
            "LEARNPLAT_NOTIFICATIONS_SOCKET_MAX_LAG_SECONDS": "30",
            "LEARNPLAT_HOME": str(runtime.settings.home),  # never the per-user home
            # API rate limits on, with budgets no test reaches; a school of its own lowers them
            # (tenant setting `limits`) to show that both servers spend one budget.
            "LEARNPLAT_LIMITS_ENABLED": "true",
            **{f"LEARNPLAT_LIMITS_{kind}_{what}": "100000" for kind in
               ("USER", "TENANT", "ANONYMOUS", "HEARTBEAT") for what in ("RATE", "BURST")},
        }
        # The workers first: they start up while the servers do.
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNPLAT_")}
        env.update(_env(database, runtime, shared))
        cli = str(Path(sys.executable).parent / "learnplat")
        workers = []
        stack.callback(_stop, workers)
        for i in range(2):
            log = (tmp / f"worker{i}.log").open("wb")
            stack.callback(log.close)
            workers.append(subprocess.Popen([cli, "worker", "--workers", "2"], env=env,
                                            cwd=runtime.settings.home, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True))
        servers = []
        for i in range(2):
            (tmp / f"api{i}").mkdir()
            # With the gunicorn settings `learnplat serve` uses (its hooks included).
            servers.append(stack.enter_context(serve_with_gunicorn(
                runtime, database, tmp / f"api{i}", workers=1, env=shared,
                args=("-c", "python:learnplat.gunicorn_conf"))))
        a, b = servers
        yield Stack(a, b, s3, bucket, workers, tmp)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to every worker at once (Huey's clean stop), then wait for them together."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def wait_for(check: Callable[[], Any], timeout: float, interval: float = 0.05,
             what: str = "") -> tuple[Any, float]:
    """Poll `check` until it returns something truthy: (that value, seconds it took)."""
    start = time.monotonic()
    while True:
        value = check()
        if value:
            return value, time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what or check}")
        time.sleep(interval)


BOUNDARY = "scaleoutboundary41"


def mp4(duration_seconds: int = 42, payload: int = 200_000) -> bytes:
    """A small MP4 whose mvhd says `duration_seconds` (enough for the media plugin's probe)."""
    def box(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", 8 + len(body)) + kind + body

    mvhd = box(b"mvhd", b"\x00" * 4 + struct.pack(">IIII", 0, 0, 1000, duration_seconds * 1000)
               + b"\x00" * 80)
    return (box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41")
            + box(b"mdat", bytes(range(256)) * (payload // 256)) + box(b"moov", mvhd))


def multipart(data: bytes, filename: str = "lecture.mp4") -> tuple[bytes, dict[str, str]]:
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\nContent-Type: video/mp4\r\n\r\n").encode()
    return (head + data + f"\r\n--{BOUNDARY}--\r\n".encode(),
            {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
