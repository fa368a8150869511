"""Helpers for the delivery engine's tests (test_core_outbound.py): real HTTP receivers on
loopback, a test sink registered through register_sinks, and a clock the engine reads."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from learnplat import db
from learnplat.models import utcnow
from learnplat.plugin import (
    Answer,
    DestinationInfo,
    MessageInfo,
    NotReady,
    OutboundRequest,
    Plugin,
    Sink,
    Verdict,
    current_tenant,
    hookimpl,
)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """An HTTP server on 127.0.0.1 answering every POST with `status` and `body` (after
    `delay` seconds: a hanging endpoint), recording what it received. Change `status`,
    `body` or `delay` between requests."""

    def __init__(self, status: int = 200, body: bytes = b"ok", delay: float = 0.0,
                 status_for: Callable[[bytes], int] | None = None):
        self.status = status
        self.status_for = status_for  # the status from the body received, when given
        self.body = body
        self.delay = delay
        self.received: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            # The status line and headers, then the body: without this the body waits for
            # the client's delayed ACK (40 ms a request).
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length)
                receiver.received.append(Received(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, data))
                if receiver.delay:
                    time.sleep(receiver.delay)
                try:
                    self.send_response(receiver.status_for(data) if receiver.status_for
                                       else receiver.status)
                    self.send_header("Content-Length", str(len(receiver.body)))
                    self.end_headers()
                    self.wfile.write(receiver.body)
                except OSError:  # the client gave up waiting (a timeout test)
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False  # a hanging handler must not hold close()
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def keys(self) -> list[str]:
        return [r.headers["x-key"] for r in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def receivers(*specs: dict[str, Any]) -> Iterator[list[Receiver]]:
    started = [Receiver(**spec) for spec in specs]
    try:
        yield started
    finally:
        for r in started:
            r.close()


@dataclass
class SinkState:
    """What the test sinks were told, and where their destinations are."""

    urls: dict[str, str] = field(default_factory=dict)  # ref -> URL
    gone: set[str] = field(default_factory=set)  # refs whose request is None (cancelled)
    raising: set[str] = field(default_factory=set)  # refs whose request raises
    disabled: list[tuple[int, str, str]] = field(default_factory=list)  # tenant, ref, reason
    requests: list[tuple[str, list[str]]] = field(default_factory=list)  # ref, keys
    # ref -> the token `authorize` adds (Authorization: Bearer ...), or None: NotReady
    tokens: dict[str, str | None] = field(default_factory=dict)
    authorized: list[tuple[str, bool]] = field(default_factory=list)  # ref, in a transaction
    # (keys, final status, the answer's HTTP status, in a transaction) told by Sink.settled
    settled: list[tuple[list[str], str, int | None, bool]] = field(default_factory=list)

    def reset(self) -> None:
        self.urls.clear()
        self.gone.clear()
        self.raising.clear()
        self.disabled.clear()
        self.requests.clear()
        self.tokens.clear()
        self.authorized.clear()
        self.settled.clear()


STATE = SinkState()


class TestSink(Sink):
    """One message per request: the payload as the body, the key in X-Key. A 400 is a
    permanent refusal of the message (REJECTED), as an xAPI sink would judge it."""

    __test__ = False
    name = "testsink"

    def request(self, destination: DestinationInfo, messages: Sequence[MessageInfo]
                ) -> OutboundRequest | None:
        ref = destination.ref
        if ref in STATE.raising:
            raise RuntimeError("the sink is broken")
        if ref in STATE.gone:
            return None
        STATE.requests.append((ref, [m.key for m in messages]))
        payload = messages[0].payload if len(messages) == 1 else [m.payload for m in messages]
        return OutboundRequest(STATE.urls[ref], json.dumps(payload).encode(),
                               {"Content-Type": "application/json",
                                "X-Key": ",".join(m.key for m in messages)})

    def authorize(self, destination: DestinationInfo, request: OutboundRequest
                  ) -> Mapping[str, str]:
        ref = destination.ref
        if ref not in STATE.tokens:
            return {}
        STATE.authorized.append((ref, db.current_unit() is not None
                                 or bool(db.database.obj._state.transactions)))
        token = STATE.tokens[ref]
        if token is None:
            raise NotReady("token endpoint answered 401: invalid_client")
        return {"Authorization": f"Bearer {token}"}

    def settled(self, messages: Sequence[MessageInfo], status: str, answer: Answer) -> None:
        STATE.settled.append(([m.key for m in messages], status, answer.status,
                              bool(db.database.obj._state.transactions)))

    def verdict(self, answer: Answer, messages: Sequence[MessageInfo]) -> Verdict:
        if answer.status == 400:
            return Verdict.REJECTED
        return super().verdict(answer, messages)

    def disabled(self, destination: DestinationInfo, reason: str) -> None:
        STATE.disabled.append((current_tenant().id, destination.ref, reason))


class BatchSink(TestSink):
    """Up to three messages per request (as an xAPI sink posts a list of statements)."""

    name = "batchsink"
    batch_size = 3

    def verdict(self, answer: Answer, messages: Sequence[MessageInfo]) -> Verdict:
        if answer.status == 400 and len(messages) > 1:
            return Verdict.SPLIT  # which message is bad, the answer does not say
        return super().verdict(answer, messages)


class OutboundTestPlugin(Plugin):
    """Registers the test sinks through the register_sinks hook."""

    @hookimpl
    def register_sinks(self, runtime: Any) -> list[Sink]:
        return [TestSink(), BatchSink()]


class Clock:
    """The engine's clock, moved forward by the tests (a retry due in 100 s is due now)."""

    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += dt.timedelta(seconds=seconds)


class QueueSpy:
    """Stands in for runtime.queue.enqueue: records the tasks queued (after commit, as the
    queue sends them) without running them, as a queue with no worker running would hold
    them; `run_all` then runs them in order (a worker draining the queue)."""

    def __init__(self, runtime: Any):
        self.runtime = runtime
        self.queued: list[tuple[str, tuple[Any, ...], float | None]] = []
        self.ran: list[tuple[str, tuple[Any, ...]]] = []

    def __call__(self, name: str, *args: Any, delay: float | None = None, **kwargs: Any
                 ) -> None:
        db.on_commit(lambda: self.queued.append((name, args, delay)))

    def names(self) -> list[str]:
        return [name for name, _, _ in self.queued]

    def run_all(self, limit: int = 1000) -> None:
        """Run every task queued without a delay, first in first out, including those the
        tasks queue themselves."""
        from learnplat.outbound.engine import DELIVER_TASK

        for _ in range(limit):
            due = [q for q in self.queued if not q[2]]
            if not due:
                return
            self.queued.remove(due[0])
            name, args, _ = due[0]
            self.ran.append((name, args))
            assert name == DELIVER_TASK, name
            self.runtime.outbound.deliver(*args)
        raise AssertionError("the queue never drained")
