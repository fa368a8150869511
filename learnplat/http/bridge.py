"""Run a WSGI app for an ASGI request whose body is already in memory, in one thread hand-off.

a2wsgi (kept for streamed uploads) hands every piece of a request across threads: the thread
that runs the app blocks on the event loop to read each body chunk, to send the response's
start, each body chunk and its end (four to five loop round trips for a small JSON answer,
each a GIL hand-over between two busy threads). The ASGI entry reads every body of up to
`app.max_body_bytes` in the event loop anyway (slow clients, docs/security.md), so for those
requests this bridge runs the app in the thread pool once, with the body as a BytesIO, collects
the answer there, and sends it from the loop. A response larger than `BUFFER_BYTES` (a file
download) is streamed: its remaining chunks are pulled in the pool one at a time, so memory
stays bounded. Decision 0013 (per-request cost) has the measurements.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import io
import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from a2wsgi.wsgi import build_environ
from a2wsgi.wsgi_typing import Environ

from .problems import outside_the_app

log = logging.getLogger("learnplat.http")

BUFFER_BYTES = 256 * 1024  # answers up to this size are sent in one message


class _Answer:
    """What the app answered, collected in the worker thread."""

    __slots__ = ("chunks", "headers", "iterable", "rest", "status")

    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.rest: Iterator[bytes] | None = None  # set when the answer is streamed
        self.iterable: Iterable[bytes] | None = None


class BufferedBridge:
    """`await bridge(scope, body, send)`: the WSGI `app` answers a request whose whole body is
    `body`, in a thread of `executor` (the REST API's `server.threads` threads, shared with
    the streamed path so that the two never run more requests at once than the database pool
    is sized for)."""

    def __init__(self, app: Any, executor: ThreadPoolExecutor):
        self.app = app
        self.executor = executor

    async def __call__(self, scope: dict[str, Any], body: bytes, send: Any) -> None:
        loop = asyncio.get_running_loop()
        # a2wsgi annotates its own TypedDict scope and Body class: any such dict and file do.
        environ = build_environ(scope, io.BytesIO(body))  # type: ignore[arg-type]  # a2wsgi
        context = contextvars.copy_context()
        try:
            answer = await loop.run_in_executor(
                self.executor, functools.partial(context.run, self._run, environ))
        except Exception:
            # The app let an error out (Falcon turns its own into problem+json): nothing has
            # been sent yet, so the client gets a 500 rather than a dropped connection.
            headers, problem = outside_the_app(
                500, "an unexpected error occurred; quote the request id when reporting it",
                scope)
            log.exception("unhandled error on %s %s (request id %s)", scope.get("method"),
                          scope.get("path"), dict(headers)[b"x-request-id"].decode())
            await _send_whole(send, 500, headers, problem)
            return
        if answer.rest is None:
            await _send_whole(send, answer.status, answer.headers, b"".join(answer.chunks))
            return
        await self._stream(loop, context, answer, send)

    def _run(self, environ: Environ) -> _Answer:
        answer = _Answer()

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> Any:
            answer.status = int(status.split(" ", 1)[0])
            answer.headers = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                              for k, v in headers]
            return answer.chunks.append  # the WSGI write() callable

        iterable = self.app(environ, start_response)
        chunks = iter(iterable)
        size = 0
        try:
            for chunk in chunks:
                if chunk:
                    answer.chunks.append(chunk)
                    size += len(chunk)
                if size > BUFFER_BYTES:  # a download: the rest is pulled as it is sent
                    answer.rest, answer.iterable = chunks, iterable
                    return answer
        except BaseException:
            _close(iterable)
            raise
        _close(iterable)
        return answer

    async def _stream(self, loop: asyncio.AbstractEventLoop, context: contextvars.Context,
                      answer: _Answer, send: Any) -> None:
        assert answer.rest is not None
        await send({"type": "http.response.start", "status": answer.status,
                    "headers": answer.headers})
        try:
            for chunk in answer.chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            while True:
                more = await loop.run_in_executor(
                    self.executor, functools.partial(context.run, next, answer.rest, None))
                if more is None:
                    break
                if more:
                    await send({"type": "http.response.body", "body": more,
                                "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await loop.run_in_executor(self.executor, _close, answer.iterable)


async def _send_whole(send: Any, status: int, headers: list[tuple[bytes, bytes]],
                      body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _close(iterable: Any) -> None:
    close = getattr(iterable, "close", None)
    if close is not None:
        close()
