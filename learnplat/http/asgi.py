"""The ASGI entry (`learnplat.http.asgi:get_asgi_app()`, what `learnplat serve` runs under
gunicorn's `asgi` worker): one address for the REST API and WebSockets.

* HTTP scopes go to the same Falcon WSGI app as before (create_app), run in a thread pool of
  `server.threads` threads by a2wsgi: the request path, its middleware, transactions and
  plugins are unchanged (decision 0009 measures what this costs).
* WebSocket scopes go to a falcon.asgi app holding the routes whose resource has an async
  ``on_websocket`` responder (e.g. the notifications plugin's /notifications/ws). Those
  resources authenticate and pick their tenant themselves: the WSGI middleware does not run.
* Lifespan: answered here (start-up work happens when the app is built).
"""

from __future__ import annotations

from typing import Any

import falcon.asgi
from a2wsgi import WSGIMiddleware

from ..runtime import Runtime, create_runtime
from ..settings import Settings
from .app import create_app, is_websocket_route


def create_asgi_app(runtime: Runtime | None = None, settings: Settings | None = None) -> Any:
    runtime = runtime or create_runtime(settings)
    wsgi = create_app(runtime)

    def terminated(environ: dict[str, Any], start_response: Any) -> Any:
        # a2wsgi's wsgi.input ends where the request body ends (chunked bodies included), as
        # gunicorn's does: say so, so that the body limit applies to chunked bodies too.
        environ["wsgi.input_terminated"] = True
        return wsgi(environ, start_response)

    http = WSGIMiddleware(terminated, workers=runtime.settings.server.threads)
    sockets = falcon.asgi.App()
    sockets.req_options.strip_url_path_trailing_slash = True
    for route in runtime.registry.routes:
        if is_websocket_route(route):
            sockets.add_route(route.path, route.resource)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await http(scope, receive, send)
        elif kind == "websocket":
            await sockets(scope, receive, send)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    app.runtime = runtime  # type: ignore[attr-defined]
    app.wsgi = wsgi  # type: ignore[attr-defined]
    return app


_app: Any = None


def get_asgi_app() -> Any:
    """The process's ASGI app, built on first call from the environment's configuration."""
    global _app
    if _app is None:
        _app = create_asgi_app()
    return _app
