"""bin/serve (`learnplat serve`) end to end: migrations applied, gunicorn answering
/healthz and /readyz, the embedded queue worker started beside it, a chunked oversize body
refused with 413 by the real server, the notifications WebSocket on the same address, and a
clean SIGTERM that leaves no orphan worker."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests
from corehelpers import REPO, cli_env, free_port, run_cli

from learnplat.testing import forget_redis_keys, wait_until_serving


def children(pid: int) -> dict[int, str]:
    """Processes whose parent is `pid`, with their command lines (from /proc)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                out[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" "
                                                                                ).decode()
        except (OSError, IndexError, ValueError):
            continue
    return out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except OSError:
        return False


def notifications_websocket_on_the_same_address(base: str) -> None:
    """The WebSocket of the notifications plugin answers on bin/serve's address: a bad token
    is closed with 1008; a notification made over REST arrives on a good one."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    ws_url = base.replace("http://", "ws://") + "/notifications/ws"
    with connect(f"{ws_url}?token=nope&tenant=demo", open_timeout=10) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd.code == 1008

    def login(email: str, password: str) -> str:
        r = requests.post(f"{base}/auth/login", headers={"X-Tenant": "demo"}, timeout=10,
                          json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        return r.json()["access_token"]

    r = requests.post(f"{base}/auth/register", headers={"X-Tenant": "demo"}, timeout=10,
                      json={"email": "kid@demo.example", "password": "correct horse battery",
                            "name": "Kid"})
    assert r.status_code == 201, r.text
    student = login("kid@demo.example", "correct horse battery")
    admin = login("boss@demo.example", "correct horse battery")
    with connect(ws_url, open_timeout=10) as ws:
        ws.send(json.dumps({"token": student, "tenant": "demo"}))
        assert json.loads(ws.recv(timeout=10))["type"] == "ready"
        r = requests.post(f"{base}/notifications", timeout=10, json={
            "title": "Welcome", "body": "to Demo School", "user_id": r.json()["id"]},
            headers={"X-Tenant": "demo", "Authorization": f"Bearer {admin}"})
        assert r.status_code == 201, r.text
        msg = json.loads(ws.recv(timeout=10))
        assert (msg["id"], msg["kind"], msg["title"]) == (r.json()["id"], "announcement",
                                                          "Welcome")


@pytest.mark.e2e
def test_serve_end_to_end(tmp_path, fresh_db):
    port = free_port()
    env = cli_env(tmp_path, fresh_db, SERVER_WORKERS="1", APP_MAX_BODY_BYTES="1000")
    assert run_cli(["migrate"], env).returncode == 0
    assert run_cli(["tenants", "apply", str(REPO / "tenants")], env).returncode == 0
    assert run_cli(["users", "create", "--tenant", "demo", "--email", "boss@demo.example",
                    "--password", "correct horse battery", "--role", "admin"],
                   env).returncode == 0
    # bin/serve itself: venv check (already installed), then exec `learnplat serve`.
    proc = subprocess.Popen([str(REPO / "bin" / "serve"), "--bind", f"127.0.0.1:{port}"],
                            env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    worker_pid = None
    try:
        wait_until_serving(base, proc, proc.stdout.read)
        r = requests.get(f"{base}/readyz", timeout=5)
        assert r.status_code == 200, r.text
        assert set(r.json()["checks"].values()) == {"ok"}
        assert r.headers["X-Request-Id"]
        doc = requests.get(f"{base}/openapi.json", timeout=5).json()
        assert doc["openapi"].startswith("3.1")
        assert requests.get(f"{base}/courses", headers={"X-Tenant": "nobody"},
                            timeout=5).status_code == 404

        # The embedded worker: a `learnplat.cli worker` child of the gunicorn master.
        for _ in range(100):
            workers = [pid for pid, cmd in children(proc.pid).items()
                       if "learnplat.cli worker" in cmd]
            if workers:
                break
            time.sleep(0.1)
        assert len(workers) == 1, children(proc.pid)
        worker_pid = workers[0]

        # A chunked body with no Content-Length is still limited by app.max_body_bytes.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        payload = json.dumps({"email": "a@b.example", "password": "x" * 5000}).encode()
        conn.putrequest("POST", "/auth/login")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("X-Tenant", "demo")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        try:
            for i in range(0, len(payload), 1000):
                piece = payload[i:i + 1000]
                conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered as soon as the limit was passed, and closed: read it
        resp = conn.getresponse()
        assert resp.status == 413, resp.read()
        assert resp.getheader("Content-Type") == "application/problem+json"
        conn.close()

        notifications_websocket_on_the_same_address(base)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    forget_redis_keys(fresh_db.redis_url, env["LEARNPLAT_REDIS_PREFIX"])
    assert proc.returncode == 0, proc.stdout.read()
    if worker_pid is not None:
        for _ in range(50):
            if not alive(worker_pid):
                break
            time.sleep(0.1)
        assert not alive(worker_pid), "the embedded worker outlived the server"
