"""create_app(): the Falcon WSGI app of a Runtime; get_app(): the same from the environment,
for gunicorn (`learnplat.http.app:get_app()`)."""

from __future__ import annotations

from typing import Any

import falcon
import orjson
from falcon import media

from ..auth import AUTHENTICATED, PUBLIC
from ..registry import StartupError
from ..runtime import Runtime, create_runtime
from ..settings import Settings
from ..timestamps import JSON_OPTIONS
from . import problems
from .endpoint import spec_of
from .middleware import RequestContextMiddleware
from .openapi import responders


def _json_handler() -> media.JSONHandler:
    return media.JSONHandler(
        # JSON_OPTIONS: the timestamp format learnplat.plugin.api_timestamp also writes.
        dumps=lambda obj: orjson.dumps(obj, option=JSON_OPTIONS).decode(),
        loads=orjson.loads,
    )


def is_websocket_route(route: Any) -> bool:
    """A route whose resource has an async ``on_websocket`` responder: served by the ASGI
    entry (learnplat.http.asgi), not by this WSGI app."""
    return callable(getattr(route.resource, "on_websocket", None))


def check_routes(runtime: Runtime) -> None:
    """Every responder declares its permission, and that permission exists; a WebSocket
    resource has no HTTP responders."""
    known = set(runtime.registry.permissions) | {PUBLIC, AUTHENTICATED}
    seen: set[int] = set()
    for route in runtime.registry.routes:
        if id(route.resource) in seen:
            raise StartupError(f"plugin {route.plugin!r}: one resource object on two routes "
                               f"({route.path}); give each route its own")
        seen.add(id(route.resource))
        methods = responders(route.resource)
        if is_websocket_route(route):
            if methods:
                raise StartupError(f"plugin {route.plugin!r}: WebSocket route {route.path} "
                                   "also has HTTP responders; give them their own path")
            continue
        if not methods:
            raise StartupError(f"plugin {route.plugin!r}: route {route.path} has no responders")
        for method, fn in methods:
            spec = spec_of(fn)
            where = f"plugin {route.plugin!r}: {method} {route.path}"
            if spec is None:
                raise StartupError(f"{where} has no @endpoint declaration (permission, schemas)")
            if spec.permission not in known:
                raise StartupError(f"{where} declares unknown permission {spec.permission!r}")


class LearnplatApp(falcon.App):
    """A Falcon app that knows its Runtime (tests and tools reach it as app.runtime)."""

    runtime: Runtime


def create_app(runtime: Runtime | None = None, settings: Settings | None = None) -> LearnplatApp:
    runtime = runtime or create_runtime(settings)
    check_routes(runtime)
    app = LearnplatApp(middleware=[RequestContextMiddleware(runtime)])
    app.req_options.strip_url_path_trailing_slash = True
    handler = _json_handler()
    app.req_options.media_handlers[falcon.MEDIA_JSON] = handler
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = handler
    problems.install(app)
    app.set_error_serializer(problems.serialize_http_error)
    for route in runtime.registry.routes:
        route.resource.__learnplat_route__ = route
        if not is_websocket_route(route):
            app.add_route(route.path, route.resource)
    app.runtime = runtime
    return app


_app: Any = None


def get_app() -> falcon.App:
    """The process's app, built on first call from the environment's configuration."""
    global _app
    if _app is None:
        _app = create_app()
    return _app
