"""The deployment of docs/deployment.md for real: gunicorn (with learnplat serve's settings) behind
a reverse proxy that appends the client to X-Forwarded-For like nginx's
$proxy_add_x_forwarded_for. Clients connect from different loopback addresses (127.0.0.2...),
the proxy from 127.0.0.1, the one address in server.trusted_proxies."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from learnplat.testing import serve_with_gunicorn

PROXY_ADDR = "127.0.0.1"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host",
              "x-forwarded-for"}


class _ProxyHandler(BaseHTTPRequestHandler):
    upstream_port = 0

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        # nginx: proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        prior = self.headers.get_all("X-Forwarded-For") or []
        headers["X-Forwarded-For"] = ", ".join([*prior, self.client_address[0]])
        headers["Host"] = self.headers.get("Host", "")
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60,
                                          source_address=(PROXY_ADDR, 0))
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            upstream = conn.getresponse()
            data = upstream.read()
        finally:
            conn.close()
        self.send_response(upstream.status)
        for name, value in upstream.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _forward

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def deployment(lp_runtime, lp_database, tmp_path) -> Iterator[tuple[int, int, Path]]:
    """(proxy port, gunicorn port, access log) with a login budget of 3 per address."""
    access_log = tmp_path / "access.log"
    env = {"LEARNPLAT_SERVER_TRUSTED_PROXIES": PROXY_ADDR,
           "LEARNPLAT_IDENTITY_LOGIN_PER_IP": "3"}
    # learnplat serve's gunicorn settings (config/gunicorn.conf.py of the checkout is the same).
    conf = "python:learnplat.gunicorn_conf"
    with serve_with_gunicorn(lp_runtime, lp_database, tmp_path, workers=1, threads=8, env=env,
                             args=("-c", conf, "--access-logfile", str(access_log))
                             ) as base:
        upstream = urlsplit(base).port
        handler = type("Handler", (_ProxyHandler,), {"upstream_port": upstream})
        proxy = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=proxy.serve_forever, daemon=True)
        thread.start()
        try:
            yield proxy.server_address[1], upstream, access_log
        finally:
            proxy.shutdown()
            proxy.server_close()


def call(port: int, source: str, method: str, path: str, tenant: str, body=None,
         headers: dict[str, str] | None = None, token: str | None = None) -> tuple[int, dict]:
    """One request to 127.0.0.1:port from the loopback address `source`."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=(source, 0))
    hdrs = {"X-Tenant": tenant, **(headers or {})}
    if body is not None:
        hdrs["Content-Type"] = "application/json"
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data else {}
    finally:
        conn.close()


def test_behind_a_real_proxy_each_client_is_itself(deployment, lp_users, lp_tenant):
    proxy, server, access_log = deployment
    slug = lp_tenant.slug
    admin = lp_users.make("admin")
    pupils = [lp_users.make("student") for _ in range(5)]

    def pupil_logs_in(n: int) -> int:
        return call(proxy, f"127.0.0.{n + 2}", "POST", "/auth/login", slug,
                    {"email": pupils[n].email, "password": pupils[n].password})[0]

    # Five clients at once, more than one address's budget of 3: each has its own.
    with ThreadPoolExecutor(5) as pool:
        assert list(pool.map(pupil_logs_in, range(5))) == [200] * 5
    # One client's budget is its own: the fourth attempt from 127.0.0.20 is refused...
    codes = [call(proxy, "127.0.0.20", "POST", "/auth/login", slug,
                  {"email": f"nobody{i}@school.example", "password": "wrong password!"})[0]
             for i in range(4)]
    assert codes == [401, 401, 401, 429]
    # ...and forging X-Forwarded-For through the proxy does not buy a new one.
    status, _ = call(proxy, "127.0.0.20", "POST", "/auth/login", slug,
                     {"email": "nobody@school.example", "password": "wrong password!"},
                     headers={"X-Forwarded-For": "192.0.2.1"})
    assert status == 429
    # Another client through the same proxy is unaffected.
    assert call(proxy, "127.0.0.21", "POST", "/auth/login", slug,
                {"email": "ghost@school.example", "password": "wrong password!"})[0] == 401
    # The audit log names the client, not the proxy, and never a forged address.
    call(proxy, "127.0.0.22", "POST", "/auth/login", slug,
         {"email": pupils[0].email, "password": "wrong password!"},
         headers={"X-Forwarded-For": "203.0.113.66"})
    # Straight to gunicorn from an address that is not a trusted proxy: the header is ignored.
    call(server, "127.0.0.23", "POST", "/auth/login", slug,
         {"email": pupils[1].email, "password": "wrong password!"},
         headers={"X-Forwarded-For": "203.0.113.67"})
    status, page = call(proxy, "127.0.0.2", "GET", "/audit?action=login.failed&limit=100", slug,
                        token=admin.token)
    assert status == 200, page
    failed = {e["ip"] for e in page["items"]}
    assert {"127.0.0.20", "127.0.0.21", "127.0.0.22", "127.0.0.23"} <= failed
    assert not failed & {"127.0.0.1", "192.0.2.1", "203.0.113.66", "203.0.113.67"}
    status, page = call(server, "127.0.0.2", "GET", "/audit?action=login.succeeded", slug,
                        token=admin.token)
    assert {e["ip"] for e in page["items"]} == {f"127.0.0.{n + 2}" for n in range(5)}
    # gunicorn's access log (config/gunicorn.conf.py) shows the client as the app resolved it.
    lines = access_log.read_text().splitlines()
    proxied = [line for line in lines if "/auth/login" in line]
    assert proxied and all(not line.startswith("127.0.0.1 ") for line in proxied), lines[:5]
    assert any(line.startswith("127.0.0.20 ") for line in proxied)
    assert any(line.startswith("127.0.0.23 ") for line in proxied)
