"""Fixtures of the LTI tests: the plugin object, and the app served over real HTTP on a
loopback port (LTI peers call learnplat's token, JWKS, AGS and NRPS endpoints and post
forms to it), with the plugin's public base URL pointed at that server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def lti_plugin(lp_runtime: Any) -> Any:
    from learnplat_lti.plugin import LtiPlugin

    return lp_runtime.plugin(LtiPlugin)


@pytest.fixture(scope="module")
def lti_served(lp_app: Any) -> Iterator[str]:
    """The app on a loopback port for the module: its base URL."""
    server = make_server("127.0.0.1", 0, lp_app, _Server, _Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def lti_base(lti_served: str, lti_plugin: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """The served app's base URL, which the plugin gives peers as the API's public URL."""
    monkeypatch.setattr(lti_plugin.urls, "base", lambda: lti_served)
    return lti_served
