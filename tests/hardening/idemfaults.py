"""A test-only WSGI entry for tests/hardening/test_idempotency_servers.py: learnplat's app, and
two faults a request asks for with a header. Gunicorn loads it as ``idemfaults:application``
(with this directory on PYTHONPATH); nothing else ever imports it.

- ``X-Test-Die: after-answer``: once the app has returned (the request's transaction
  committed, its Idempotency-Key's lease given back, the answer built) the worker SIGKILLs
  itself, before the first byte of the answer is sent: the client sees the connection drop,
  as when a worker is killed (OOM, a deploy) between the write and the answer.
- ``X-Test-Hold: <seconds>``: the request sleeps right before its answer is stored, inside its
  transaction and holding its key's lease: a request that is still running.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from learnplat import idempotency
from learnplat.http.app import get_app

_local = threading.local()
_record = idempotency.Claim.record


def _held_record(self: idempotency.Claim, req: Any, resp: Any) -> None:
    hold = getattr(_local, "hold", 0.0)
    if hold:
        time.sleep(hold)
    _record(self, req, resp)


idempotency.Claim.record = _held_record  # type: ignore[method-assign]  # a test-only patch


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    _local.hold = float(environ.get("HTTP_X_TEST_HOLD") or 0)
    try:
        result = get_app()(environ, start_response)
    finally:
        _local.hold = 0.0
    if environ.get("HTTP_X_TEST_DIE") == "after-answer":
        # gthread sends the status line and headers with the first body write, after this
        # returns: nothing of the answer has left the process.
        os.kill(os.getpid(), signal.SIGKILL)
    return result
