"""The ASGI entry (`learnplat.http.asgi:get_asgi_app()`, what `learnplat serve` runs under
gunicorn's `asgi` worker): one address for the REST API and WebSockets.

* HTTP scopes go to the same Falcon WSGI app as before (create_app), run in a thread pool of
  `server.threads` threads by a2wsgi: the request path, its middleware, transactions and
  plugins are unchanged (decision 0011 measures what this costs).
* WebSocket scopes go to a falcon.asgi app holding the routes whose resource has an async
  ``on_websocket`` responder (e.g. the notifications plugin's /notifications/ws). The WSGI
  middleware does not run for them: each handshake goes through the same gate
  (learnplat.gate: school, credentials, rate limits, unit of work) with `Gate.admit`.
* Lifespan: answered here (start-up work happens when the app is built).
* Stopping (SIGTERM: a rolling restart, a scale-in): open WebSockets are closed at once with
  1001 "going away", so that clients reconnect through the load balancer to a process that
  stays, and the process exits in a moment instead of after gunicorn's graceful_timeout.
* Request bodies up to `app.max_body_bytes` (every JSON body) are read here, in the event
  loop, before the request takes one of the `server.threads` threads: a client that sends its
  body slowly (slowloris) holds a socket, not a thread, a database connection or a transaction,
  and gets a 408 after `server.timeout` seconds. Larger bodies (uploads) stream to the thread
  as they arrive. docs/security.md, "Slow clients".
* A body the app did not read (a 413 over the route's limit, a 401/403 on an upload route,
  answered before reading) is read on and discarded after the answer, within bounds
  (`drain_unread`), before the connection closes: see there why.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import falcon.asgi
from a2wsgi import WSGIMiddleware
from gunicorn.glogging import Logger

from ..runtime import Runtime, create_runtime
from ..settings import Settings
from .app import create_app, is_websocket_route
from .bridge import BufferedBridge
from .middleware import CLIENT_ADDR_ENV, TENANT_ENV
from .problems import outside_the_app

if TYPE_CHECKING:
    from gunicorn.glogging import _AtomsDict

# The access log's %({learnplat.client_addr}e)s and %({learnplat.tenant}e)s: under the asgi
# worker gunicorn logs from an environ of its own, not the WSGI environ the middleware wrote the
# resolved client address and the school into; so the app hands them over by request id
# (X-Request-Id is on every response).
_client_by_request: OrderedDict[str, tuple[str, str | None]] = OrderedDict()
_client_lock = threading.Lock()
_log_clients = False  # set by AccessLogger when gunicorn's access log is on
_KEEP = 10_000


class AccessLogger(Logger):
    """gunicorn's logger (the packaged gunicorn settings' logger_class): learnplat's logging
    configuration for gunicorn's master and workers, and access lines with the client address
    and the school the app resolved."""

    def __init__(self, cfg: Any):
        super().__init__(cfg)
        global _log_clients
        _log_clients = bool(cfg.accesslog)

    def setup(self, cfg: Any) -> None:
        # Run in the master before it forks its workers (and again on SIGHUP): everything
        # gunicorn and the app log goes through config/logging.toml, formatted alike.
        super().setup(cfg)
        from ..logs import configure_gunicorn_logging
        from ..settings import load_settings

        settings = load_settings()
        configure_gunicorn_logging(settings.home, settings.logging.repeat_seconds)

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> _AtomsDict:
        atoms = super().atoms(resp, req, environ, request_time)
        # The same dict, with the "{name}i|o|e" keys gunicorn adds and its stub's TypedDict
        # leaves out.
        every = cast(dict[str, Any], atoms)
        rid = every.get("{x-request-id}o")
        if isinstance(rid, bytes):
            rid = rid.decode("latin-1")
        if rid:
            with _client_lock:
                known = _client_by_request.pop(rid, None)
            if known:
                every[f"{{{CLIENT_ADDR_ENV}}}e"] = known[0]
                if known[1]:
                    every[f"{{{TENANT_ENV}}}e"] = known[1]
        return atoms


def _remember_client(environ: dict[str, Any], headers: list[tuple[str, str]]) -> None:
    addr = environ.get(CLIENT_ADDR_ENV)
    rid = next((v for k, v in headers if k.lower() == "x-request-id"), None)
    if addr and rid:
        with _client_lock:
            _client_by_request[rid] = (addr, environ.get(TENANT_ENV))
            while len(_client_by_request) > _KEEP:
                _client_by_request.popitem(last=False)


GOING_AWAY = 1001  # WebSocket close code: the server is going down; reconnect elsewhere
_STOP_POLL_SECONDS = 0.2
# Whether this process has been told to stop (set by watch_worker in each gunicorn worker).
# gunicorn's asgi worker, on SIGTERM, stops accepting and then waits up to graceful_timeout
# (30 s) for its connections to end; a WebSocket never ends by itself, so without this the
# process lingers for the whole timeout and then drops its sockets without a close frame.
_told_to_stop: Callable[[], bool] | None = None
_stop_event: asyncio.Event | None = None
_stop_watcher: asyncio.Task[None] | None = None


def watch_worker(worker: Any) -> None:
    """Close this process's WebSockets (1001) once `worker` (a gunicorn worker) is told to stop;
    called by the gunicorn settings (post_worker_init) in each worker process."""
    global _told_to_stop
    _told_to_stop = lambda: not worker.alive  # noqa: E731


def _stopping() -> asyncio.Event | None:
    """The process-wide "stop now" event, watched by one task (not one poll per socket)."""
    global _stop_event, _stop_watcher
    if _told_to_stop is None:
        return None
    if _stop_event is None:
        _stop_event = asyncio.Event()

        async def watch(event: asyncio.Event, told: Callable[[], bool]) -> None:
            while not told():
                await asyncio.sleep(_STOP_POLL_SECONDS)
            event.set()

        _stop_watcher = asyncio.get_running_loop().create_task(watch(_stop_event, _told_to_stop))
    return _stop_event


async def serve_socket(handler: Awaitable[None], send: Any) -> None:
    """Run one WebSocket's handler; if the process is told to stop first, end the handler and
    close the socket with 1001 so that the client reconnects to another process."""
    stop = _stopping()
    if stop is None:
        await handler
        return
    task = asyncio.ensure_future(handler)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if stop.is_set():
                with contextlib.suppress(Exception):
                    await send({"type": "websocket.close", "code": GOING_AWAY,
                                "reason": "server restarting: reconnect"})
    if not task.cancelled():
        task.result()  # the handler's own error, if any


def _content_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class _Replay:
    """A receive callable that replays the messages read ahead, then reads on; `body` is the
    whole body when it came complete within the limit, else None."""

    __slots__ = ("body", "messages", "receive")

    def __init__(self, receive: Any, messages: list[dict[str, Any]], body: bytes | None):
        self.receive = receive
        self.messages = messages
        self.body = body

    async def __call__(self) -> Any:
        return self.messages.pop(0) if self.messages else await self.receive()


async def read_ahead(receive: Any, limit: int, timeout: float) -> _Replay | None:
    """Receive the request body in the event loop until it is complete or more than `limit`
    bytes have come; a receive callable that replays those messages, then reads on. Its
    `body` attribute is the whole body when it came complete within `limit`, else None. None
    when the body did not come within `timeout` seconds."""
    messages: list[dict[str, Any]] = []
    size = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await receive()
                if loop.time() >= deadline:
                    # The timeout's cancellation can be lost: on Python 3.11, gunicorn's
                    # receive() waits with asyncio.wait_for, which swallows a cancel that
                    # comes as a chunk arrives. Seen once in CI: a body dripping a byte every
                    # 0.5 s then held its request until it was complete.
                    return None
                messages.append(message)
                if message["type"] != "http.request":
                    break  # http.disconnect: the app sees it in turn
                size += len(message.get("body", b""))
                if not message.get("more_body") or size > limit:
                    break
    except TimeoutError:
        return None

    last = messages[-1] if messages else {}
    complete = last.get("type") == "http.request" and not last.get("more_body") \
        and size <= limit
    body = b"".join(m.get("body", b"") for m in messages) if complete else None
    return _Replay(receive, messages, body)


# How much of a body the app left unread is read and thrown away after the answer, at most.
# A proxy (nginx) sends the whole buffered body before it reads the answer at LAN speed; a
# client talking to learnplat directly may be slow or hostile, so a bounded amount and time.
DRAIN_BYTES = 64 * 1024 * 1024
DRAIN_SECONDS = 5.0


class _BodyTracker:
    """A receive callable that notes whether the request body has been read to its end."""

    __slots__ = ("done", "receive")

    def __init__(self, receive: Any):
        self.receive = receive
        self.done = False

    async def __call__(self) -> Any:
        message = await self.receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            self.done = True  # the last chunk, or the client is gone: nothing left to read
        return message


async def drain_unread(receive: _BodyTracker, limit: int = DRAIN_BYTES,
                       seconds: float = DRAIN_SECONDS) -> bool:
    """Read and discard what is left of a request body the app answered without reading
    (up to `limit` bytes within `seconds`); True when the body was read to its end.

    A lingering close. Answering early and closing with the body still arriving leaves unread
    bytes in the socket, so the kernel resets the connection (RST) instead of closing it:
    nginx, still writing the body it buffered, gets ECONNRESET, drops the answer it had not
    yet read and gives the client a 502 instead of our 413/401/403 (intermittent from about
    2 MB, tests/deploy/test_nginx.py). Read to the end, the body is framed, the answer is read
    by the proxy, and gunicorn may even keep the connection. Over the bounds (a client
    dripping or sending gigabytes) the connection is closed as before."""
    if receive.done:
        return True
    read = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            # The deadline is checked after each chunk too: on Python 3.11 the timeout's
            # cancellation can be lost in gunicorn's receive() (see read_ahead).
            while not receive.done and read <= limit and loop.time() < deadline:
                message = await receive()
                read += len(message.get("body", b""))
    return receive.done


async def _request_timeout(scope: dict[str, Any], send: Any) -> None:
    # Answered here, without the Falcon app: the same problem shape, request id included.
    headers, body = outside_the_app(408, "the request body did not arrive in time", scope)
    await send({"type": "http.response.start", "status": 408,
                "headers": [*headers, (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def create_asgi_app(runtime: Runtime | None = None, settings: Settings | None = None) -> Any:
    runtime = runtime or create_runtime(settings)
    wsgi = create_app(runtime)

    def terminated(environ: dict[str, Any], start_response: Any) -> Any:
        # a2wsgi's wsgi.input ends where the request body ends (chunked bodies included), as
        # gunicorn's does: say so, so that the body limit applies to chunked bodies too.
        environ["wsgi.input_terminated"] = True
        if not _log_clients:
            return wsgi(environ, start_response)

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            _remember_client(environ, headers)
            return start_response(status, headers, exc_info)

        return wsgi(environ, start)

    # Requests whose body came whole (every JSON body) run through `buffered`, in one thread
    # hand-off; streamed uploads through a2wsgi; both in the same `server.threads` threads.
    # a2wsgi types the environ and the scope as its own TypedDicts, which no plain dict (the
    # standard WSGI environ, falcon's ASGI scope) matches: hence the two ignores naming it.
    threads = runtime.settings.server.threads
    http = WSGIMiddleware(terminated, workers=threads)  # type: ignore[arg-type]  # a2wsgi
    buffered = BufferedBridge(terminated, http.executor)
    sockets = falcon.asgi.App()
    sockets.req_options.strip_url_path_trailing_slash = True
    for route in runtime.registry.routes:
        if is_websocket_route(route):
            sockets.add_route(route.path, route.resource)

    read_limit = runtime.settings.app.max_body_bytes
    read_timeout = float(runtime.settings.server.timeout)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            length = _content_length(scope)
            if length is None or 0 <= length <= read_limit:  # else an upload: it streams
                receive = await read_ahead(receive, read_limit, read_timeout)
                if receive is None:
                    await _request_timeout(scope, send)
                    return
                if receive.body is not None:  # the whole body is here: one thread hand-off
                    await buffered(scope, receive.body, send)
                    return
            tracked = _BodyTracker(receive)
            await http(scope, tracked, send)  # type: ignore[arg-type]  # a2wsgi's TypedDict
            await drain_unread(tracked)
        elif kind == "websocket":
            await serve_socket(sockets(scope, receive, send), send)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    vars(app).update(runtime=runtime, wsgi=wsgi)  # for tests and tools: app.runtime, app.wsgi
    return app


_app: Any = None


def get_asgi_app() -> Any:
    """The process's ASGI app, built on first call from the environment's configuration."""
    global _app
    if _app is None:
        _app = create_asgi_app()
    return _app
