"""Helpers of the fault tests of a killed worker and of storage faults (tests/hardening/
test_faults_worker.py, test_faults_storage.py): a real `learnplat worker` process on the
test database and its own Redis queue, a deliberately slow loopback SMTP server whose slow
step can be caught in the act, and bulk-made students."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from learnplat import db
from learnplat.tenancy import TenantInfo, tenant_context


class SlowInbox:
    """An aiosmtpd handler that takes `delay` seconds to answer each RCPT TO, and keeps what
    it accepts. `in_rcpt` counts the sessions waiting in that delay right now: a client
    killed then has not sent its message (nothing was accepted), so a kill timed on it lands
    in the middle of a batch without the unknowable "accepted, not yet marked sent" window."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.messages: list[Any] = []
        self.in_rcpt = 0
        self._lock = threading.Lock()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        with self._lock:
            self.in_rcpt += 1
        try:
            await asyncio.sleep(self.delay)
        finally:
            with self._lock:
                self.in_rcpt -= 1
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import email

        msg = email.message_from_bytes(envelope.content)
        msg.rcpt = list(envelope.rcpt_tos)
        with self._lock:
            self.messages.append(msg)
        return "250 OK"

    def count(self) -> int:
        with self._lock:
            return len(self.messages)


class SmtpServer:
    """The loopback SMTP server of a SlowInbox: `with SmtpServer(0.02) as smtp: smtp.port`."""

    def __init__(self, delay: float) -> None:
        self.inbox = SlowInbox(delay)
        self.port = 0
        self._controller: Any = None

    def __enter__(self) -> SmtpServer:
        from aiosmtpd.controller import Controller

        from learnplat.testing import free_port

        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=free_port())
        self._controller.start()
        self.port = self._controller.port
        return self

    def __exit__(self, *exc: Any) -> None:
        self._controller.stop()


def worker_env(runtime: Any, database: Any, prefix: str, **settings: str) -> dict[str, str]:
    """The environment of a `learnplat worker` on the test database and storage, with the
    Redis key prefix `prefix` (its own queue), plus LEARNPLAT_* `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNPLAT_")}
    env.update({
        "LEARNPLAT_DATABASE_URL": database.url,
        "LEARNPLAT_REDIS_URL": database.redis_url,
        "LEARNPLAT_REDIS_PREFIX": prefix,
        "LEARNPLAT_QUEUE_IMMEDIATE": "false",
        "LEARNPLAT_STORAGE_URL": runtime.settings.storage.url,
        "LEARNPLAT_APP_VAR_DIR": str(runtime.settings.var_path),
        "LEARNPLAT_APP_SECRET_KEY": runtime.settings.app.secret_key,
        "LEARNPLAT_TENANCY_CACHE_SECONDS": "0",
        "LEARNPLAT_LIMITS_ENABLED": "false",
        "LEARNPLAT_EVENTS_INLINE_DISPATCH": "false",
        **{f"LEARNPLAT_{k.upper()}": v for k, v in settings.items()},
    })
    return env


def start_worker(env: dict[str, str], log_path: Path, threads: int = 2) -> subprocess.Popen:
    cli = os.path.join(os.path.dirname(sys.executable), "learnplat")
    log = log_path.open("ab")
    try:
        return subprocess.Popen([cli, "worker", "--workers", str(threads)], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()  # the child has its own copy


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.05,
             alive: subprocess.Popen | None = None, log_path: Path | None = None) -> Any:
    """Poll `check()` until it returns something truthy (returned); fail after `timeout`
    seconds, or as soon as the `alive` process has exited."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if alive is not None and alive.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:] if log_path else ""
            raise AssertionError(f"the worker exited ({alive.returncode}) while waiting for "
                                 f"{what}:\n{tail}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def make_students(runtime: Any, tenant: TenantInfo, n: int) -> list[int]:
    """`n` students of `tenant` in one insert (no password: they never log in); their ids."""
    from learnplat_identity.models import User

    tag = uuid.uuid4().hex[:6]
    rows = [{"email": f"s{i}-{tag}@example.org", "name": f"Student {i}", "role": "student",
             "password_hash": None} for i in range(n)]
    with db.connection(), tenant_context(tenant), db.transaction():
        User.insert_many(rows).execute()
        return [u.id for u in User.select(User.id).where(User.email.endswith(f"-{tag}@example.org"))
                .order_by(User.id)]


def in_tenant(tenant: TenantInfo, fn: Callable[[], Any]) -> Any:
    """`fn()` in the tenant, a connection and a read transaction."""
    with db.connection(), tenant_context(tenant), db.transaction(write=False):
        return fn()


# -- storage faults ---------------------------------------------------------------------------

BOUNDARY = "lpfaultboundary"
PDF_HEAD = b"%PDF-1.4\n"


def multipart_body(data: bytes, filename: str, content_type: str) -> tuple[bytes, dict]:
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n").encode()
    return (head + data + f"\r\n--{BOUNDARY}--\r\n".encode(),
            {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})


def pdf(size: int) -> bytes:
    """A file the media plugin takes as a PDF attachment, `size` bytes long."""
    body = PDF_HEAD + b"1 0 obj << >> endobj\n" * (size // 21 + 1)
    return body[:size - 6] + b"%%EOF\n"


def png(side: int = 400) -> bytes:
    """A PNG of noise (does not compress): about 3 * side**2 bytes."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(3 * side * side)).save(out, "PNG")
    return out.getvalue()


def course_with_module(client: Any, users: Any) -> tuple[Any, int, int]:
    """(the owner's client, course id, module id) of a new draft course with one module."""
    teacher = users.make("instructor")
    t = client.as_(teacher.token)
    course_id = t.post("/courses", json={"title": "Storage faults"}).json["id"]
    r = t.post(f"/courses/{course_id}/modules", json={"title": "M1"})
    assert r.status_code == 201, r.text
    return t, course_id, r.json["id"]
