"""Scale-out rehearsal on one machine: two API servers (two gunicorn masters on two ports) and
two `learnplat worker` processes sharing PostgreSQL, Redis and an S3 bucket (moto), the client
alternating between the servers. What one process does holds at once on the other (sessions,
revocations, roles, one rate-limit budget), WebSocket pushes cross processes, signed URLs are
not tied to the process that signed them, a tenant disable reaches every process within
tenancy.cache_seconds, events recorded through both servers are delivered exactly once by the
two workers, and a server told to stop sends its sockets elsewhere at once.

PostgreSQL + Redis only: on SQLite the embedded queue and key-value store are per machine, the
very thing this rehearsal is about (docs/deployment.md). The figures it measures are printed
(`pytest -s`) and quoted in docs/deployment.md."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
from scaleouthelpers import (
    CACHE_SECONDS,
    REVALIDATE_SECONDS,
    Stack,
    mp4,
    multipart,
    start_stack,
    wait_for,
)
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from learnplat import db
from learnplat.testing import backend, make_tenant

pytestmark = [
    pytest.mark.e2e,
    # One stack per xdist worker that runs any of these: keep them on one (`--dist loadgroup`).
    pytest.mark.xdist_group("scale_out"),
    pytest.mark.skipif(backend() != "postgres",
                       reason="scale-out needs the shared services (PostgreSQL + Redis)"),
]

ENROLLMENTS = 12  # through both servers, delivered by both workers


@pytest.fixture(scope="module")
def stack(lp_runtime, lp_database, tmp_path_factory):
    with start_stack(lp_runtime, lp_database, tmp_path_factory.mktemp("scaleout")) as s:
        yield s
        print(f"\nscale-out requests per server: {list(s.sent.values())}, tasks run per "
              f"worker: {s.tasks_per_worker()}")


@pytest.fixture
def school(lp_runtime):
    return make_tenant(lp_runtime)


@pytest.fixture
def users(lp_runtime, school):
    from learnplat_identity.testing import UserFactory

    return UserFactory(lp_runtime, school)


def published_course(stack: Stack, school, teacher, admin, modules: int = 1
                     ) -> tuple[int, list[int]]:
    """A course made on A by `teacher`, approved on B by `admin`."""
    t = stack.api(stack.a, school, teacher.token)
    r = t.post("/courses", json={"title": "Distributed systems"})
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    mids = []
    for i in range(modules):
        r = t.post(f"/courses/{cid}/modules", json={"title": f"M{i}"})
        assert r.status_code == 201, r.text
        mids.append(r.json()["id"])
    assert t.post(f"/courses/{cid}/submit").status_code == 200
    assert stack.api(stack.b, school, admin.token).post(f"/courses/{cid}/approve"
                                                        ).status_code == 200
    return cid, mids


def test_sessions_revocations_and_roles_hold_across_processes(stack, school, users):
    student, admin = users.make("student"), users.make("admin")
    a, b = stack.api(stack.a, school), stack.api(stack.b, school)
    # Logged in on A: the token works on B.
    r = a.post("/auth/login", json={"email": student.email, "password": student.password})
    assert r.status_code == 200, r.text
    pair = r.json()
    r = b.as_(pair["access_token"]).get("/auth/profile")
    assert r.status_code == 200 and r.json()["id"] == student.id
    assert b.as_(pair["access_token"]).post("/courses", json={"title": "x"}).status_code == 403

    # A role change on A: the old token is refused on B at once; a refresh on B gives a token
    # of the new role, which both servers honour.
    r = a.as_(admin.token).put(f"/users/{student.id}/role", json={"role": "instructor"})
    assert r.status_code == 200, r.text
    refused = b.as_(pair["access_token"]).get("/auth/profile")
    assert refused.status_code == 401 and refused.json()["code"] == "token_revoked"
    r = b.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 200, r.text
    pair = r.json()
    assert b.as_(pair["access_token"]).post("/courses", json={"title": "Mine"}
                                            ).status_code == 201
    assert a.as_(pair["access_token"]).get("/auth/profile").json()["role"] == "instructor"

    # Logout on A: refused on B at once, and so is its refresh token.
    assert a.as_(pair["access_token"]).post("/auth/logout").status_code == 204
    assert b.as_(pair["access_token"]).get("/auth/profile").status_code == 401
    assert b.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}
                  ).status_code == 401

    # A refresh token rotated on A and replayed on B ends the whole session on both.
    first = b.post("/auth/login", json={"email": student.email, "password": student.password}
                   ).json()
    second = a.post("/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    assert a.as_(second["access_token"]).get("/auth/profile").status_code == 200
    assert b.post("/auth/refresh", json={"refresh_token": first["refresh_token"]}
                  ).status_code == 401
    assert a.as_(second["access_token"]).get("/auth/profile").status_code == 401
    assert b.post("/auth/refresh", json={"refresh_token": second["refresh_token"]}
                  ).status_code == 401


def test_rate_limits_are_one_budget_across_processes(stack, lp_runtime):
    """A user's budget lives in Redis: two servers do not double it (a per-process limiter
    would let N servers grant N budgets)."""
    from learnplat_identity.testing import UserFactory

    burst = 6
    school = make_tenant(lp_runtime, settings={"limits": {"user_burst": burst,
                                                          "user_rate": 0.01}})
    student = UserFactory(lp_runtime, school).make()
    answers = [stack.api(base, school, student.token).get("/auth/profile")
               for base in (stack.a, stack.b) * burst]
    codes = [r.status_code for r in answers]
    assert codes == [200] * burst + [429] * burst, codes
    refused = answers[burst:]
    assert {r.url.split("/auth")[0] for r in refused} == {stack.a, stack.b}
    assert all(int(r.headers["Retry-After"]) > 0 for r in refused)
    assert refused[0].headers["Content-Type"].startswith("application/problem+json")


def _recv(ws, timeout: float = 10) -> dict:
    return json.loads(ws.recv(timeout=timeout))


def test_a_socket_on_b_gets_what_is_caused_through_a(stack, school, users):
    teacher, admin, student = users.make("instructor"), users.make("admin"), users.make()
    cid, _ = published_course(stack, school, teacher, admin)
    a_admin = stack.api(stack.a, school, admin.token)
    url = f"{stack.ws(stack.b)}/notifications/ws?token={student.token}&tenant={school.slug}"
    with connect(url, open_timeout=10) as ws:
        assert _recv(ws)["type"] == "ready"
        # Written by a request on A (Redis pub/sub carries it to B's socket hub).
        direct = []
        for i in range(5):
            start = time.monotonic()
            r = a_admin.post("/notifications", json={"title": f"Hello {i}", "body": "from A",
                                                     "user_id": student.id})
            assert r.status_code == 201, r.text
            msg = _recv(ws, 5)
            direct.append(time.monotonic() - start)
            assert (msg["type"], msg["id"], msg["title"]) == ("notification", r.json()["id"],
                                                              f"Hello {i}")
        # Caused on A, written by a worker (enrollment.created.v1 -> "enrolled"), pushed on B.
        start = time.monotonic()
        r = stack.api(stack.a, school, student.token).post(f"/courses/{cid}/enroll")
        assert r.status_code == 201, r.text
        msg = _recv(ws, 15)
        via_worker = time.monotonic() - start
        assert (msg["type"], msg["kind"]) == ("notification", "enrolled")
        assert msg["data"].get("course_id", cid) == cid
    print(f"\nWS on B, notification POSTed on A: max {max(direct) * 1000:.0f} ms "
          f"(5 sends); via a worker (enrollment on A): {via_worker * 1000:.0f} ms")
    assert max(direct) < 2, direct
    assert via_worker < 5, via_worker


def test_events_from_both_servers_are_delivered_once_by_two_workers(stack, school, users):
    from learnplat_notifications.models import Notification

    from learnplat.models import EventDelivery, OutboxEvent
    from learnplat.tenancy import tenant_context

    teacher, admin = users.make("instructor"), users.make("admin")
    with ThreadPoolExecutor(2) as pool:  # password hashing dominates: two at a time
        students = list(pool.map(lambda _: users.make(), range(ENROLLMENTS)))
    cid, _ = published_course(stack, school, teacher, admin)

    def enroll(i: int) -> int:
        base = stack.a if i % 2 == 0 else stack.b
        return stack.api(base, school, students[i].token).post(f"/courses/{cid}/enroll"
                                                               ).status_code

    start = time.monotonic()
    with ThreadPoolExecutor(4) as pool:  # commits close together: the workers race
        assert list(pool.map(enroll, range(ENROLLMENTS))) == [201] * ENROLLMENTS

    def enrollment_events() -> list:
        with db.connection():
            return list(OutboxEvent.select().where(
                (OutboxEvent.tenant_id == school.id)
                & (OutboxEvent.name == "enrollment.created.v1")))

    def all_done() -> list | None:
        stack.check_alive()
        events = enrollment_events()
        return events if len(events) == ENROLLMENTS and all(
            e.status == "done" for e in events) else None

    events, _ = wait_for(all_done, 30, 0.1, "every enrollment event delivered")
    delivered_in = time.monotonic() - start
    # Each event was taken by one dispatcher once (no second attempt), each handler ran once.
    assert [e.attempts for e in events] == [1] * ENROLLMENTS
    with db.connection():
        deliveries = list(EventDelivery.select().where(
            EventDelivery.event.in_([e.id for e in events])))
    assert deliveries and all(d.attempts == 1 and d.status == "done" for d in deliveries)
    handlers = {d.handler for d in deliveries}
    assert len(deliveries) == ENROLLMENTS * len(handlers)
    # Exactly one "enrolled" notification per student, read through either server.
    with db.connection(), tenant_context(school), db.transaction(write=False):
        rows = list(Notification.select().where(Notification.kind == "enrolled"))
    assert sorted(n.user_id for n in rows) == sorted(s.id for s in students)
    assert sorted(n.source for n in rows) == sorted(f"event:{e.id}" for e in events)
    for i, s in enumerate(students):
        base = stack.b if i % 2 == 0 else stack.a  # the other server than the enrollment's
        items = stack.api(base, school, s.token).get("/notifications").json()["items"]
        assert [n["kind"] for n in items] == ["enrolled"]
    print(f"\n{ENROLLMENTS} enrollments alternating A/B: {len(events)} events, "
          f"{len(deliveries)} handler deliveries, all attempts 1, {len(rows)} notifications; "
          f"all delivered {delivered_in:.2f} s after the first request")


def test_signed_urls_work_on_either_server(stack, school, users):
    teacher, admin, student = users.make("instructor"), users.make("admin"), users.make()
    cid, (video_mid,) = published_course(stack, school, teacher, admin)
    body, headers = multipart(data := mp4())
    t_a = stack.api(stack.a, school, teacher.token)
    r = t_a.post(f"/courses/{cid}/modules/{video_mid}/video", data=body, headers=headers)
    assert r.status_code == 201, r.text
    s_b = stack.api(stack.b, school, student.token)
    assert s_b.post(f"/courses/{cid}/enroll").status_code == 201
    # Uploaded through A into the bucket; B presigns it; the store serves it.
    for api in (s_b, s_b.on(stack.a)):
        r = api.get(f"/courses/{cid}/modules/{video_mid}/video")
        assert r.status_code == 200, r.text
        url = r.json()["url"]
        assert urlparse(url).netloc == stack.s3 and f"/{stack.bucket}/t{school.id}/" in url
        got = requests.get(url, timeout=10)
        assert got.status_code == 200 and got.content == data

    # A certificate (issued by a worker, its PDF stored in the bucket): the presigned PDF and
    # the API-signed credential URL each server hands out work through the other server.
    teacher2 = users.make("instructor")
    cid2, (mid2,) = published_course(stack, school, teacher2, admin)
    s_a = s_b.on(stack.a)
    assert s_a.post(f"/courses/{cid2}/enroll").status_code == 201
    r = s_a.post(f"/progress/{cid2}", json={"module_id": mid2, "completed": True})
    assert r.status_code == 200, r.text

    def issued() -> dict | None:
        stack.check_alive()
        r = s_b.get(f"/courses/{cid2}/certificate")
        return r.json() if r.status_code == 200 and r.json()["status"] == "issued" else None

    _, took = wait_for(issued, 60, 0.2, "the certificate issued by a worker")
    for mine, other in ((s_a, stack.b), (s_b, stack.a)):
        doc = mine.get(f"/courses/{cid2}/certificate").json()
        pdf = requests.get(doc["pdf_url"], timeout=10)
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        credential = doc["credential_url"]
        path = urlparse(credential).path + "?" + urlparse(credential).query
        got = requests.get(f"{other}{path}", timeout=10)  # no token, no tenant header
        assert got.status_code == 200, got.text
        claims = _jwt_claims(got.text)  # a VC-JWT whose subject is the learner's hashed email
        assert _names_email(claims, student.email), claims
        forged = path[:-1] + ("0" if path[-1] != "0" else "1")  # another valid-looking sig
        assert requests.get(f"{other}{forged}", timeout=10).status_code in (403, 404)
    print(f"\ncertificate issued by a worker {took:.2f} s after completion on A")


def test_a_tenant_disable_reaches_both_servers_within_the_window(stack, school, users, lp_cli):
    student = users.make()
    apis = {"A": stack.api(stack.a, school, student.token),
            "B": stack.api(stack.b, school, student.token)}
    for api in apis.values():  # both have the tenant cached now
        assert api.get("/auth/profile").status_code == 200
    url = f"{stack.ws(stack.b)}/notifications/ws?token={student.token}&tenant={school.slug}"
    with connect(url, open_timeout=10) as ws:
        assert _recv(ws)["type"] == "ready"
        assert lp_cli("tenants", "disable", school.slug).exit_code == 0
        disabled_at = time.monotonic()
        seen = _propagation(apis, 404)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=CACHE_SECONDS + REVALIDATE_SECONDS + 5)
        socket_closed = time.monotonic() - disabled_at
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert lp_cli("tenants", "enable", school.slug).exit_code == 0
    back = _propagation(apis, 200)
    print(f"\ntenant disable seen as 404 after {seen} s (cache {CACHE_SECONDS} s), socket on B "
          f"closed after {socket_closed:.2f} s; enable seen after {back} s")
    # The documented window (tenancy.cache_seconds), plus the polling step.
    for took in (*seen.values(), *back.values()):
        assert took <= CACHE_SECONDS + 0.5
    assert socket_closed <= CACHE_SECONDS + REVALIDATE_SECONDS + 1.5


def _propagation(apis: dict, status: int) -> dict[str, float]:
    """Seconds until each server answers `status` (polled every 50 ms), once it has."""
    start = time.monotonic()
    seen: dict[str, float] = {}
    while len(seen) < len(apis):
        for name, api in apis.items():
            sent = time.monotonic()  # when the answering request left, not when it came back
            if name not in seen and api.get("/auth/profile").status_code == status:
                seen[name] = round(sent - start, 2)
        assert time.monotonic() - start < CACHE_SECONDS * 3, seen
        time.sleep(0.05)
    return seen


def _exited(pid: int) -> bool:
    """Whether child `pid` has exited (a zombie until serve_with_gunicorn reaps it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_stopping_server_sends_its_sockets_elsewhere(stack, school, users):
    """A rolling restart: SIGTERM to server A (the gunicorn settings `learnplat serve` uses)
    closes its sockets with 1001 at once, the client reconnects to B; A exits in a moment,
    not after graceful_timeout (30 s). The module's last test: A is gone after it."""
    admin, student = users.make("admin"), users.make()
    query = f"/notifications/ws?token={student.token}&tenant={school.slug}"
    with connect(stack.ws(stack.a) + query, open_timeout=10) as ws:
        assert _recv(ws)["type"] == "ready"
        start = time.monotonic()
        os.kill(stack.a.pid, signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=20)
        went_away = time.monotonic() - start
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    with connect(stack.ws(stack.b) + query, open_timeout=10) as ws:
        assert _recv(ws)["type"] == "ready"
        r = stack.api(stack.b, school, admin.token).post(
            "/notifications", json={"title": "Still here", "body": "b", "user_id": student.id})
        assert r.status_code == 201 and _recv(ws, 5)["title"] == "Still here"
    _, exited = wait_for(lambda: _exited(stack.a.pid), 20, 0.1, "the stopped server exits")
    print(f"\nrolling stop: socket closed 1001 after {went_away:.2f} s, server exited after "
          f"{went_away + exited:.2f} s (graceful_timeout 30 s)")
    assert went_away < 3
    assert went_away + exited < 10


def _jwt_claims(token: str) -> dict:
    payload = token.strip().split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _names_email(claims: dict, email: str) -> bool:
    """Whether an Open Badges identity object of the credential is `email`, hashed with its salt."""
    found = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("identityType") == "emailAddress":
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(claims)
    return any(o["identityHash"] == "sha256$" + hashlib.sha256(
        (email.lower() + o["salt"]).encode()).hexdigest() for o in found)
