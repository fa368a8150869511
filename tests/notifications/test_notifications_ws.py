"""Real-time delivery, end to end: real gunicorn servers started as `learnplat serve` starts
them (gunicorn's asgi worker, learnplat.http.asgi), a real WebSocket client, notifications
created through the REST API of *another* server process on the same database. On SQLite the
embedded mechanism (polling the table) carries them across processes; on PostgreSQL + Redis,
Redis pub/sub does."""

from __future__ import annotations

import json
import socket
import time
from contextlib import ExitStack

import pytest
import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from learnplat.testing import serve_with_gunicorn

pytestmark = pytest.mark.e2e


@pytest.fixture
def two_servers(lp_runtime, lp_database, tmp_path_factory):
    """Two independent servers (processes) on the test database: (ws_url, rest_url)."""
    # A slow socket is dropped only after 30 s of lag here: the fast one must never be, even
    # on a loaded CI machine (the drop itself: test_a_socket_that_falls_behind_is_dropped).
    env = {"LEARNPLAT_NOTIFICATIONS_SOCKET_QUEUE": "5",
           "LEARNPLAT_NOTIFICATIONS_SOCKET_MAX_LAG_SECONDS": "30",
           "LEARNPLAT_NOTIFICATIONS_REVALIDATE_SECONDS": "1"}
    with ExitStack() as stack:
        urls = [stack.enter_context(serve_with_gunicorn(
            lp_runtime, lp_database, tmp_path_factory.mktemp(f"gunicorn{i}"), workers=1,
            env=env)) for i in range(2)]
        yield urls[0].replace("http://", "ws://"), urls[1]


def _post(rest, admin, tenant, user_id, title="Hi", body="there"):
    r = requests.post(f"{rest}/notifications", timeout=10,
                      headers={"Authorization": f"Bearer {admin.token}", "X-Tenant": tenant.slug},
                      json={"title": title, "body": body, "user_id": user_id})
    assert r.status_code == 201, r.text
    return r.json()


def _ready(ws):
    msg = json.loads(ws.recv(timeout=10))
    assert msg["type"] == "ready", msg
    return msg


def test_a_notification_created_over_rest_arrives_on_the_socket(two_servers, person, admin,
                                                                 lp_tenant):
    ws_url, rest = two_servers
    student = person("student")
    _post(rest, admin, lp_tenant, student.id, title="Before")  # already there: not pushed
    url = f"{ws_url}/notifications/ws?token={student.token}&tenant={lp_tenant.slug}"
    with connect(url, open_timeout=10) as phone, connect(
            f"{ws_url}/notifications/ws", open_timeout=10) as laptop:
        laptop.send(json.dumps({"token": student.token, "tenant": lp_tenant.slug}))
        assert _ready(phone)["unread"] == 1
        assert _ready(laptop)["user_id"] == student.id
        latencies = []
        for i in range(3):
            start = time.monotonic()
            made = _post(rest, admin, lp_tenant, student.id, title=f"Live {i}")
            for device in (phone, laptop):
                msg = json.loads(device.recv(timeout=5))
                assert msg["type"] == "notification"
                assert (msg["id"], msg["kind"], msg["title"]) == (made["id"], "announcement",
                                                                  f"Live {i}")
                assert msg["created_at"].startswith(made["created_at"][:19])
            latencies.append(time.monotonic() - start)
        assert max(latencies) < 3, latencies  # within a second or two, even polling
        # Someone else's notification never reaches this user's sockets.
        other = person("student")
        _post(rest, admin, lp_tenant, other.id, title="Not yours")
        _post(rest, admin, lp_tenant, student.id, title="Yours")
        assert json.loads(phone.recv(timeout=5))["title"] == "Yours"
        phone.send(json.dumps({"type": "ping"}))
        assert json.loads(phone.recv(timeout=5)) == {"type": "pong"}


def test_bad_tokens_are_closed_with_policy_violation(two_servers, person, lp_tenant,
                                                     lp_other_tenant):
    ws_url, _ = two_servers
    student = person("student")
    cases = [
        f"?token=not-a-token&tenant={lp_tenant.slug}",
        f"?token={student.token}&tenant={lp_other_tenant.slug}",  # a token of another school
        f"?token={student.token}&tenant=no-such-school",
        f"?tenant={lp_tenant.slug}",  # then a first message without a token
    ]
    for query in cases:
        with connect(f"{ws_url}/notifications/ws{query}", open_timeout=10) as ws:
            if "token=" not in query:
                ws.send(json.dumps({"hello": 1}))
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=15)
            assert closed.value.rcvd.code == 1008, query
    with connect(f"{ws_url}/notifications/ws", open_timeout=10) as ws:
        ws.send(b"\x00binary")  # not a token either
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=15)
        assert closed.value.rcvd.code == 1008
    # A logged-out token: the open socket is closed at the next check (1 s here).
    with connect(f"{ws_url}/notifications/ws?token={student.token}&tenant={lp_tenant.slug}",
                 open_timeout=10) as ws:
        _ready(ws)
        assert person  # the logout goes through the API like a client's
        r = requests.post(f"{ws_url.replace('ws://', 'http://')}/auth/logout", timeout=10,
                          headers={"Authorization": f"Bearer {student.token}",
                                   "X-Tenant": lp_tenant.slug})
        assert r.status_code == 204, r.text
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=15)
        assert closed.value.rcvd.code == 1008


def _raw_socket_that_never_reads(ws_url, path):
    host, port = ws_url.removeprefix("ws://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills at once
    sock.connect((host, int(port)))
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    assert b" 101 " in sock.recv(200)
    return sock


def test_a_slow_client_does_not_hold_back_the_others(two_servers, person, admin, lp_tenant):
    ws_url, rest = two_servers
    student = person("student")
    path = f"/notifications/ws?token={student.token}&tenant={lp_tenant.slug}"
    slow = _raw_socket_that_never_reads(ws_url, path)
    # The fast device reads all the time (max_queue=None: its client library never stops
    # reading from the socket, however many messages the test has not looked at yet).
    with connect(f"{ws_url}{path}", open_timeout=10, max_queue=None) as fast:
        _ready(fast)
        big = "x" * 5000
        start = time.monotonic()
        for i in range(150):
            _post(rest, admin, lp_tenant, student.id, title=f"N{i}", body=big)
        titles = [json.loads(fast.recv(timeout=10))["title"] for _ in range(150)]
        assert titles == [f"N{i}" for i in range(150)]
        assert time.monotonic() - start < 60
    # Its ~750 kB sat in the kernel's socket buffers (up to 4 MB on Linux) while the fast
    # device got everything; past those buffers the server's per-socket queue overflows and
    # drops the slow one (test_a_socket_that_falls_behind_is_dropped, below, without TCP).
    slow.close()


def test_a_socket_that_falls_behind_is_dropped(lp_runtime):
    """The hub never waits for a socket: one whose sends block forever overflows its queue
    and is closed with 1013, while another socket of the same user gets every message."""
    import asyncio

    from learnplat_notifications.api import NOTIFICATIONS
    from learnplat_notifications.realtime import Connection, Hub
    from learnplat_notifications.ws import NotificationSocket

    from learnplat.gate import Arrival, Credentials

    class FakeSocket:
        def __init__(self, stuck):
            self.stuck, self.sent, self.closed = stuck, [], None

        async def send_text(self, text):
            if self.stuck:
                await asyncio.Event().wait()  # a client that never reads
            self.sent.append(json.loads(text))

        async def receive_text(self):
            await asyncio.Event().wait()

        async def close(self, code=None):
            self.closed = code

    async def scenario():
        resource = NotificationSocket(lp_runtime, lp_runtime.service(NOTIFICATIONS))
        hub = Hub(lp_runtime, resource.service.settings)
        hub.add = lambda conn: hub.conns[(conn.tenant_id, conn.user_id)].add(conn)
        slow, fast = FakeSocket(True), FakeSocket(False)
        conns = [Connection(1, 7, 0, 5, max_lag=0), Connection(1, 7, 0, 5, max_lag=0)]
        for c in conns:
            hub.add(c)
        arrival = Arrival(Credentials.bearer_token("t"), "", None, "s")
        tasks = [asyncio.create_task(resource._serve(ws, c, arrival))
                 for ws, c in zip((slow, fast), conns, strict=True)]
        for i in range(1, 21):
            hub.deliver(1, [{"id": i, "user_id": 7, "title": f"N{i}"}])
            hub.deliver(1, [{"id": 1000 + i, "user_id": 8, "title": "someone else"}])
            await asyncio.sleep(0)
        await asyncio.wait_for(tasks[0], 5)  # the slow one ended...
        assert slow.closed == 1013 and slow.sent == []
        assert not tasks[1].done()  # ...the fast one goes on, with everything
        assert [m["id"] for m in fast.sent] == list(range(1, 21))
        tasks[1].cancel()

    asyncio.run(scenario())


def test_socket_authentication_rules(lp_runtime, person, lp_tenant, lp_other_tenant):
    """Who may open the socket (checked in-process; the real server is tested above)."""
    from learnplat_notifications.api import NOTIFICATIONS
    from learnplat_notifications.ws import NotificationSocket

    from learnplat import db
    from learnplat.errors import NotFound, Unauthorized
    from learnplat.gate import Arrival, Credentials
    from learnplat.tenants import TenantSpec
    from learnplat.testing import make_tenant

    resource = NotificationSocket(lp_runtime, lp_runtime.service(NOTIFICATIONS))

    def knock(token, slug, host=None):
        return resource.authenticate(Arrival(Credentials.bearer_token(token), "", host, slug))

    student = person("student")
    tenant, principal, _newest, unread = knock(student.token, lp_tenant.slug)
    assert (tenant.id, principal.user_id, unread) == (lp_tenant.id, student.id, 0)
    with pytest.raises(Unauthorized):  # a token of another school
        knock(student.token, lp_other_tenant.slug)
    with pytest.raises(Unauthorized):  # no token
        knock("", lp_tenant.slug)
    with pytest.raises(NotFound):
        knock(student.token, None, "unknown.example")
    # A school with the plugin switched off has no socket (its REST routes answer 404).
    off = make_tenant(lp_runtime)
    with db.connection():
        lp_runtime.tenants.apply(TenantSpec(slug=off.slug, name=off.name,
                                            disabled_plugins=["notifications"]))
    there = person("student", tenant=off)
    with pytest.raises(NotFound):
        knock(there.token, off.slug)
    assert there.client.get("/notifications").status_code == 404


def test_the_handshake_is_rate_limited_like_a_request(lp_runtime, lp_database, tmp_path,
                                                      person, lp_tenant):
    """Each handshake is charged like a REST request: a refused token to the client's address,
    a valid one to its user; once the budget is spent the socket closes with 1013."""
    env = {"LEARNPLAT_LIMITS_ENABLED": "true", "LEARNPLAT_LIMITS_ANONYMOUS_BURST": "2",
           "LEARNPLAT_LIMITS_ANONYMOUS_RATE": "0.01", "LEARNPLAT_LIMITS_USER_BURST": "2",
           "LEARNPLAT_LIMITS_USER_RATE": "0.01",
           # The test talks as if through a proxy on loopback: the client address is the one
           # it forwards (resolved as for REST), not loopback, whose budget the server's own
           # start-up checks have spent.
           "LEARNPLAT_SERVER_TRUSTED_PROXIES": "127.0.0.1"}
    student = person("student")
    client = {"X-Forwarded-For": f"203.0.113.{int(time.time() * 1000) % 250 + 1}"}
    with serve_with_gunicorn(lp_runtime, lp_database, tmp_path, workers=1, env=env) as base:
        ws_url = base.replace("http://", "ws://") + "/notifications/ws"
        codes = []
        for _ in range(3):
            with connect(f"{ws_url}?token=nope&tenant={lp_tenant.slug}", open_timeout=10,
                         additional_headers=client) as ws:
                with pytest.raises(ConnectionClosed) as closed:
                    ws.recv(timeout=10)
                codes.append(closed.value.rcvd.code)
        assert codes == [1008, 1008, 1013]
        good = f"{ws_url}?token={student.token}&tenant={lp_tenant.slug}"
        for _ in range(2):
            with connect(good, open_timeout=10) as ws:
                assert _ready(ws)["user_id"] == student.id
        with connect(good, open_timeout=10) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd.code == 1013
            assert "retry after" in closed.value.rcvd.reason
