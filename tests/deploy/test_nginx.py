"""The shipped nginx example (config/nginx/learnplat.conf) with a real nginx from the
distribution (Debian 12: 1.22) in front of two real `learnplat serve` processes: `nginx -t`
accepts it, HTTP redirects to HTTPS, TLS and HTTP/2 work, REST and the notifications WebSocket
pass through, both processes get requests, learnplat sees each client's own address (not
nginx's) in its rate limits and audit log, a body refused before it is read gets the app's
answer, not a 502. The docs show that file and no other nginx configuration (issue 34, item
4); compose's proxy (config/docker/nginx.conf) keeps its upstream and proxy settings."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from deployhelpers import (
    DOMAIN,
    REPO,
    Nginx,
    client,
    nginx_binary,
    running_nginx,
    servers,
    write_nginx,
)
from websockets.sync.client import connect

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(
    nginx_binary() is None, reason="no nginx binary (.ci/run installs the distribution's)")]

INCLUDED = re.compile(r"<!-- file: (\S+) -->\n```nginx\n(.*?)```", re.S)


def test_the_example_passes_nginx_t(tmp_path: Path) -> None:
    nginx = write_nginx(tmp_path, (18001, 18002))
    checked = nginx.check()
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr and "test is successful" in checked.stderr
    # Not even a warning: `listen ... http2` is the form 1.22 knows; a deprecated or ignored
    # directive would show here first.
    assert "[warn]" not in checked.stderr and "[emerg]" not in checked.stderr, checked.stderr


def test_the_docs_show_the_example_and_no_other_nginx_configuration() -> None:
    """One configuration to keep working: every nginx block in the docs is the shipped file,
    as it is (the divergent copies were how `http2 on;` and a missing X-Forwarded-For got in)."""
    blocks = 0
    for path in sorted((REPO / "docs").rglob("*.md")):
        text = path.read_text()
        included = INCLUDED.findall(text)
        for name, body in included:
            assert body == (REPO / name).read_text(), f"{path.name} shows an old {name}"
        assert text.count("```nginx") == len(included), f"{path.name}: an nginx block that " \
            "is not config/nginx/learnplat.conf"
        blocks += len(included)
    assert blocks >= 1
    deployment = (REPO / "docs" / "deployment.md").read_text()
    assert "<!-- file: config/nginx/learnplat.conf -->" in deployment
    assert "config/nginx/learnplat.conf" in (REPO / "docs" / "notifications.md").read_text()


@pytest.fixture
def deployment(lp_runtime: Any, lp_database: Any, tmp_path: Path) -> Iterator[Nginx]:
    """Two `learnplat serve` behind nginx with the example; a login budget of 3 per address
    (identity.login_per_ip) so that whose budget a login spends is visible."""
    extra = {"LEARNPLAT_IDENTITY_LOGIN_PER_IP": "3"}
    with servers(lp_runtime, lp_database, tmp_path, extra, workers=1) as pair:
        nginx = write_nginx(tmp_path, (pair[0].port, pair[1].port))
        with running_nginx(nginx):
            yield nginx


def test_through_nginx(deployment: Nginx, lp_users: Any, lp_tenant: Any) -> None:
    nginx, slug = deployment, lp_tenant.slug
    web = client(nginx, slug)

    # Plain HTTP answers only with a redirect to HTTPS (and serves certbot's challenges).
    r = requests.get(f"http://127.0.0.1:{nginx.http_port}/courses?page=2",
                     headers={"Host": DOMAIN}, allow_redirects=False, timeout=10)
    assert (r.status_code, r.headers["Location"]) == (301, f"https://{DOMAIN}/courses?page=2")
    challenge = nginx.prefix / "acme" / ".well-known" / "acme-challenge" / "t0ken"
    challenge.write_text("t0ken.thumbprint")
    r = requests.get(f"http://127.0.0.1:{nginx.http_port}/.well-known/acme-challenge/t0ken",
                     headers={"Host": DOMAIN}, timeout=10)
    assert (r.status_code, r.text) == (200, "t0ken.thumbprint")

    # TLS with the configured certificate (verified), HTTP/2 offered, learnplat answering.
    with socket.create_connection(("127.0.0.1", nginx.https_port), timeout=10) as raw:
        context = nginx.ssl_context()
        context.set_alpn_protocols(["h2", "http/1.1"])
        with context.wrap_socket(raw, server_hostname=DOMAIN) as tls:
            assert tls.selected_alpn_protocol() == "h2"
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    r = web.get(f"{nginx.https}/courses", timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")
    # nginx's $request_id reached learnplat, which answers with it.
    rid = r.headers["X-Request-Id"]
    # nginx logs a request after its answer is sent: on a busy machine the client can read
    # the log first (a CI run saw no line yet), so give it a few seconds.
    deadline = time.monotonic() + 10
    while not any(rid in line for line in nginx.access_log.read_text().splitlines()):
        assert time.monotonic() < deadline, f"{rid} not in nginx's access log"
        time.sleep(0.1)

    # Each client is itself: five pupils from five addresses log in at once, though one
    # address may try only 3 times a minute...
    pupils = [lp_users.make("student") for _ in range(5)]
    for n, pupil in enumerate(pupils):
        r = client(nginx, slug, f"127.0.0.{n + 2}").post(
            f"{nginx.https}/auth/login", json={"email": pupil.email, "password": pupil.password},
            timeout=15)
        assert r.status_code == 200, r.text
    # ...and one address's budget is its own, shared by both processes, and not renewed by
    # a forged X-Forwarded-For (nginx appends the real address; learnplat reads from the right).
    guesser = client(nginx, slug, "127.0.0.20")
    wrong = {"email": "nobody@school.example", "password": "wrong password!"}
    codes = [guesser.post(f"{nginx.https}/auth/login", json=wrong, timeout=15).status_code
             for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    forged = guesser.post(f"{nginx.https}/auth/login", json=wrong, timeout=15,
                          headers={"X-Forwarded-For": "192.0.2.1"})
    assert forged.status_code == 429
    other = client(nginx, slug, "127.0.0.21").post(f"{nginx.https}/auth/login", json=wrong,
                                                   timeout=15)
    assert other.status_code == 401
    admin = lp_users.make("admin")
    web.headers["Authorization"] = f"Bearer {admin.token}"
    page = web.get(f"{nginx.https}/audit?action=login.succeeded&limit=100", timeout=10).json()
    assert {e["ip"] for e in page["items"]} == {f"127.0.0.{n + 2}" for n in range(5)}
    page = web.get(f"{nginx.https}/audit?action=login.failed&limit=100", timeout=10).json()
    assert {e["ip"] for e in page["items"]} == {"127.0.0.20", "127.0.0.21"}

    # The notifications WebSocket through nginx (TLS, upgrade), pushed a notification that
    # was created through nginx too: whichever process holds the socket gets it.
    student = pupils[0]
    url = f"{nginx.wss}/notifications/ws?token={student.token}&tenant={slug}"
    with connect(url, ssl=nginx.ssl_context(), server_hostname=DOMAIN, open_timeout=10,
                 source_address=("127.0.0.9", 0)) as ws:
        ready = json.loads(ws.recv(timeout=10))
        assert (ready["type"], ready["user_id"]) == ("ready", student.id)
        for i in range(4):  # round robin: the POSTs land on both processes
            start = time.monotonic()
            r = web.post(f"{nginx.https}/notifications", timeout=10,
                         json={"title": f"Through nginx {i}", "body": "b",
                               "user_id": student.id})
            assert r.status_code == 201, r.text
            pushed = json.loads(ws.recv(timeout=10))
            assert (pushed["type"], pushed["title"]) == ("notification", f"Through nginx {i}")
            assert time.monotonic() - start < 5

    # Round robin reached both processes.
    assert len({u for u in nginx.upstreams() if u != "-"}) == 2, nginx.upstreams()



def test_refused_bodies_reach_the_client_through_nginx(deployment: Nginx, lp_tenant: Any
                                                       ) -> None:
    """A body refused before it is read (413 over app.max_body_bytes, 401 on an upload route)
    gets the app's answer through nginx, not a 502. nginx sends the buffered body after the
    head; learnplat used to answer and close at once, so the unread body made the kernel reset
    the connection and nginx, still writing, answered 502 (intermittent at 2 MB and more: 20
    tries made it fail every run)."""
    web = client(deployment, lp_tenant.slug)
    seen: list[tuple[int, str]] = []
    for n in range(20):
        size = (4 + n % 5) * 1024 * 1024  # 4-8 MiB, over the 1 MiB JSON limit
        body = b'{"email": "' + b"a" * size + b'"}'
        r = web.post(f"{deployment.https}/auth/login", data=body, timeout=30,
                     headers={"Content-Type": "application/json"})
        seen.append((r.status_code, r.headers.get("Content-Type", "")))
    assert seen == [(413, "application/problem+json")] * 20, seen
    refused = []
    for n in range(10):
        files = {"file": ("photo.jpg", b"\xff" * ((4 + n % 5) * 1024 * 1024), "image/jpeg")}
        r = web.post(f"{deployment.https}/users/1/photo", files=files, timeout=30)
        refused.append((r.status_code, r.headers.get("Content-Type", "")))
    assert refused == [(401, "application/problem+json")] * 10, refused


# What only the one-machine example has: TLS, its HTTPS redirect and certbot's challenges, its
# own addresses and processes, its upload limit (the compose file's is its own).
_EXAMPLE_ONLY = ("listen ", "ssl_", "server ", "server_name ", "root ", "return ",
                 "add_header Strict-Transport-Security", "client_max_body_size ")


def _directives(text: str) -> set[str]:
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return {re.sub(r"\s+", " ", line) for line in lines if line.endswith(";")}


def test_the_compose_proxy_has_the_examples_settings_and_passes_nginx_t(tmp_path: Path
                                                                         ) -> None:
    """config/docker/nginx.conf (compose's proxy, HTTP only) keeps the example's upstream and
    proxy settings (least_conn, keep-alive closed by nginx first, safe retries, slow-client
    timeouts): it had drifted to plain round robin without keepalive_timeout."""
    docker = (REPO / "config" / "docker" / "nginx.conf").read_text()
    example = (REPO / "config" / "nginx" / "learnplat.conf").read_text()
    missing = {d for d in _directives(example) - _directives(docker)
               if not d.startswith(_EXAMPLE_ONLY)}
    assert not missing, f"config/docker/nginx.conf lacks {sorted(missing)}"
    # `api` resolves only inside compose; bench/scale_out_rehearsal.py substitutes the same two.
    for old in ("server api:8000;", "listen 80 default_server;"):
        assert old in docker, f"config/docker/nginx.conf no longer contains {old!r}"
    site = docker.replace("server api:8000;", "server 127.0.0.1:18001;").replace(
        "listen 80 default_server;", "listen 127.0.0.1:18080 default_server;")
    nginx = write_nginx(tmp_path, (18001, 18002))
    (nginx.prefix / "learnplat.conf").write_text(site)  # the file the main config includes
    checked = nginx.check()
    assert checked.returncode == 0, checked.stderr
    assert "[warn]" not in checked.stderr and "[emerg]" not in checked.stderr, checked.stderr
