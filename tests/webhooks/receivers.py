"""A webhook receiver on loopback for tests: a real HTTP server in a thread that verifies each
request with the Standard Webhooks reference library (``standardwebhooks``, not learnplat's
signing code) and records it; its answers are scripted.

    with Receiver(secret) as rx:              # rx.url: http://127.0.0.1:<port>/hook
        rx.script(503, 503, 200)              # then 200 for ever (rx.default)
        ...
        got = rx.wait_for(3)                  # the first three requests, or AssertionError

A step of the script is a status (int) or a `Reply`: a status with a body, headers (a 3xx's
Location), a delay before answering, `hang` (never answer: the client's read timeout ends
it) or `close` (drop the connection without an answer).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    hang: bool = False  # never answer (until the receiver stops)
    close: bool = False  # drop the connection, no answer


@dataclass
class Received:
    """One request as it arrived."""

    webhook_id: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    verified: bool  # by standardwebhooks with at least one of the receiver's secrets
    verified_by: list[str]  # which of the secrets verify it
    at: float  # time.time() when it arrived
    path: str = "/hook"
    error: str | None = None  # why it did not verify

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def signatures(self) -> list[str]:
        return self.headers.get("webhook-signature", "").split()


def verify(secrets: Iterable[str], body: bytes, headers: dict[str, str]
           ) -> tuple[list[str], str | None]:
    """The secrets under which the reference library accepts the request, and the last
    refusal's message."""
    ok, error = [], None
    for secret in secrets:
        try:
            Webhook(secret).verify(body, headers)
            ok.append(secret)
        except WebhookVerificationError as exc:
            error = str(exc)
    return ok, error


class Receiver:
    def __init__(self, *secrets: str, default: int | Reply = 200, port: int = 0):
        self.secrets: list[str] = list(secrets)
        self.default = default
        self._script: deque[int | Reply] = deque()
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._stopping = threading.Event()
        # Requests being handled now, and the most ever at once: the engine sends one
        # endpoint one request at a time, whatever the number of workers.
        self.in_flight = 0
        self.max_in_flight = 0
        # `port`: listen where an earlier receiver did (an endpoint back after an outage).
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def script(self, *steps: int | Reply) -> Receiver:
        """Answer the next requests with `steps`, in order (then `default`)."""
        with self._lock:
            self._script.extend(steps)
        return self

    def _next(self) -> Reply:
        with self._lock:
            step = self._script.popleft() if self._script else self.default
        return step if isinstance(step, Reply) else Reply(status=step)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The first `count` requests, waiting up to `timeout` seconds for them."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.received)} requests arrived, not {count}")
                self._arrived.wait(left)
            return list(self.received[:count])

    def _record(self, item: Received) -> None:
        with self._arrived:
            self.received.append(item)
            self._arrived.notify_all()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                with receiver._lock:
                    receiver.in_flight += 1
                    receiver.max_in_flight = max(receiver.max_in_flight, receiver.in_flight)
                try:
                    self._post()
                finally:
                    with receiver._lock:
                        receiver.in_flight -= 1

            def _post(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                ok, error = verify(receiver.secrets, body, headers)
                receiver._record(Received(headers.get("webhook-id", ""), headers, body,
                                          bool(ok), ok, time.time(), self.path,
                                          None if ok else error))
                reply = receiver._next()
                if reply.delay:
                    receiver._stopping.wait(reply.delay)
                if reply.hang:
                    receiver._stopping.wait(60)
                    self.close_connection = True
                    return
                if reply.close:
                    self.close_connection = True
                    self.connection.close()
                    return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

        return Handler

    def start(self) -> Receiver:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                        name=f"webhook-receiver-{self.port}")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
