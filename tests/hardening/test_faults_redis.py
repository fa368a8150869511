"""Redis killed (no persistence: it comes back empty) and started again while gunicorn and a
real `learnplat worker` serve reads, enrollments and video heartbeats.

Asserted, as docs/reliability.md states: the API keeps serving (authentication from the
database, heartbeats written through to the database, rate limits not enforced: fail open);
a token revoked before the outage stays refused during it and after Redis comes back empty;
writes that need Redis (a logout, a login's guess counting) answer a clean 503; every request
is answered within a bound; every event recorded during the outage is delivered once Redis is
back (the outbox is the source of truth): losses 0, duplicates 0.

Private Redis (servicefaults.py), the shared PostgreSQL; PostgreSQL + Redis backend only.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from servicefaults import (
    PASSWORD,
    Load,
    PrivateRedis,
    Stack,
    build_stack,
    needs_redis_server,
    needs_services,
    publish_course,
    queue_worker,
    recovered_at,
    serve,
    summary,
    unclean,
    wait_for,
    worker_pids,
)
from websockets.sync.client import connect

pytestmark = [needs_services, needs_redis_server]

OUTAGE_SECONDS = 4.0
LATENCY_BOUND = 5.0  # redis.connect_timeout and socket_timeout are 2 s
FREEZE_SECONDS = 7.0
# A hung Redis costs a request each Redis call it makes, up to socket_timeout (2 s) each;
# below FREEZE_SECONDS, so a request waiting for Redis to answer again fails the test.
HUNG_BOUND = 6.0
DELIVERY_BOUND = 40.0  # the worker's queue polling backs off while Redis is down
STUDENTS = 130
WATCHERS = 4

# Rate limits on, with budgets this load never spends: the test sees them counted (RateLimit
# headers) before and after the outage, and not enforced (fail open) during it.
LIMITS = {"LEARNPLAT_LIMITS_ENABLED": "true", "LEARNPLAT_LIMITS_USER_RATE": "100000",
          "LEARNPLAT_LIMITS_USER_BURST": "100000", "LEARNPLAT_LIMITS_TENANT_RATE": "100000",
          "LEARNPLAT_LIMITS_TENANT_BURST": "100000", "LEARNPLAT_LIMITS_HEARTBEAT_RATE": "100000",
          "LEARNPLAT_LIMITS_HEARTBEAT_BURST": "100000"}


@pytest.fixture(scope="module")
def rds() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    yield server
    server.close()


@pytest.fixture(scope="module")
def stack(rds: PrivateRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    admin = os.environ["LEARNPLAT_TEST_DATABASE_URL"]
    stack = build_stack(tmp_path_factory.mktemp("faults-redis"), admin, rds.url, STUDENTS)
    yield stack
    stack.runtime.database.close_all()
    stack.tdb.drop()


def test_redis_killed_and_restarted_under_load(stack: Stack, rds: PrivateRedis) -> None:
    env = {"LEARNPLAT_QUEUE_IMMEDIATE": "false", **LIMITS}
    with serve(stack, env=env) as base, queue_worker(stack, {}) as worker:
        publish_course(base, stack)
        cid, vid = stack.course_id, stack.video_module_id
        watchers = stack.students[:WATCHERS]
        revoked = stack.students[WATCHERS]
        fresh = iter(stack.students[WATCHERS + 1:-3])
        listener = stack.students[-3]  # holds a WebSocket; enrolls during the outage
        for w in watchers:
            assert requests.post(f"{base}/courses/{cid}/enroll", headers=stack.headers(w),
                                 timeout=10).status_code == 201
        assert requests.post(f"{base}/auth/logout", headers=stack.headers(revoked),
                             timeout=10).status_code in (200, 204)
        assert requests.get(f"{base}/courses/{cid}", headers=stack.headers(revoked),
                            timeout=10).status_code == 401
        position = iter(range(10**6))

        def read(_: int) -> tuple[str, str, str, Any, dict[str, str], Any]:
            return ("read", "GET", f"/courses/{cid}", None, stack.headers(stack.admin), None)

        def mine(i: int) -> tuple[str, str, str, Any, dict[str, str], Any]:
            return ("read", "GET", "/courses/enrollments", None,
                    stack.headers(watchers[i % WATCHERS]), None)

        def heartbeat(i: int) -> tuple[str, str, str, Any, dict[str, str], Any]:
            # Slow playback on a long video: never completes the module.
            pos = next(position) * 0.01
            return ("heartbeat", "POST", f"/progress/{cid}",
                    {"module_id": vid, "position_seconds": pos, "duration_seconds": 36000},
                    stack.headers(watchers[i % WATCHERS]), None)

        def enroll(i: int) -> tuple[str, str, str, Any, dict[str, str], Any]:
            student = next(fresh, None)
            if student is None:
                return read(i)
            return ("enroll", "POST", f"/courses/{cid}/enroll", None, stack.headers(student),
                    student.id)

        def refused(_: int) -> tuple[str, str, str, Any, dict[str, str], Any]:
            return ("revoked", "GET", f"/courses/{cid}", None, stack.headers(revoked), None)

        tid = stack.tenant.id

        def delivered() -> bool:
            pending = stack.sql("SELECT count(*) FROM learnplat_event WHERE tenant_id = %s "
                                "AND status <> 'done'", tid)[0][0]
            return pending == 0

        wait_for(delivered, 30)  # the worker is consuming
        pids = worker_pids(base.pid)  # type: ignore[attr-defined]
        ws = connect(f"ws{base[4:]}/notifications/ws?token={listener.token}"
                     f"&tenant={stack.tenant.slug}", open_timeout=10)
        assert json.loads(ws.recv(timeout=10))["type"] == "ready"
        with ws, Load(base, [read, heartbeat, enroll, mine, refused], threads=4,
                  pause=0.1) as load:
            time.sleep(1.5)
            down = time.monotonic()
            rds.stop()
            time.sleep(0.5)
            # Writes that need Redis answer a clean 503 (fail closed), not a 500.
            logout = requests.post(f"{base}/auth/logout",
                                   headers=stack.headers(stack.students[-1]), timeout=10)
            login = requests.post(f"{base}/auth/login", json={
                "email": stack.admin.email, "password": PASSWORD},
                headers={"X-Tenant": stack.tenant.slug}, timeout=10)
            # Its notification is made by the worker once Redis is back, and published.
            assert requests.post(f"{base}/courses/{cid}/enroll",
                                 headers=stack.headers(listener), timeout=10).status_code == 201
            # Liveness holds; readiness stays 200 "degraded" naming the cache, so a load
            # balancer keeps the processes that still serve (docs/deployment.md).
            live = requests.get(f"{base}/healthz", timeout=10)
            ready = requests.get(f"{base}/readyz", timeout=10)
            role = requests.put(f"{base}/users/{stack.students[-2].id}/role",
                                json={"role": "instructor"}, headers=stack.headers(stack.admin),
                                timeout=10)
            time.sleep(OUTAGE_SECONDS - 0.5)
            restarting = time.monotonic()
            rds.start()  # empty: no persistence
            up = time.monotonic()
            # Enrollments go on after the restart: each commit queues a dispatch, which takes
            # every due event of the outbox, those recorded during the outage included.
            took = wait_for(delivered, DELIVERY_BOUND, step=0.25)
            # The WebSocket (whose process resubscribed to Redis) gets the notification.
            message = json.loads(ws.recv(timeout=DELIVERY_BOUND))
            pushed = time.monotonic() - up
            time.sleep(1)
            # Then Redis hangs (SIGSTOP): connections stay open and nothing answers. Requests
            # are bounded by redis.socket_timeout / connect_timeout, then degrade as above.
            # The admin changes the enrollment rules during the hang, which every caller's
            # course page shows: the bump of the pages' generation cannot be written then;
            # the process writes it once Redis answers again, and no server keeps serving the
            # page it cached before.
            page = f"{base}/courses/{cid}"
            closes = "2199-01-01T00:00:00Z"

            def closes_at() -> Any:
                r = requests.get(page, headers=stack.headers(watchers[0]), timeout=10)
                assert r.status_code == 200, r.text
                return r.json()["enrollment"]["closes_at"]

            assert [closes_at() for _ in range(4)] == [None] * 4
            frozen = time.monotonic()
            rds.freeze()
            time.sleep(0.5)
            r = requests.put(f"{page}/enrollment-rules", json={"closes_at": closes},
                             headers=stack.headers(stack.admin), timeout=10)
            assert r.status_code == 200, r.text
            time.sleep(max(0.0, FREEZE_SECONDS - (time.monotonic() - frozen)))
            rds.freeze(False)
            thawed = time.monotonic()
            seen_after = wait_for(lambda: all(closes_at() == closes for _ in range(4)), 5,
                                  step=0.1)
            time.sleep(max(0.0, 1.5 - seen_after))
        assert message["type"] == "notification" and message["kind"] == "enrolled", message
        answers = load.answers
        during = load.between(down, up)
        hung = [a for a in load.between(frozen, thawed) if a.op != "revoked"]
        assert worker_pids(base.pid) == pids  # type: ignore[attr-defined]
        assert worker.poll() is None, "the queue worker died"

        assert live.status_code == 200
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        assert ready.json()["checks"]["cache"] != "ok"
        assert ready.json()["checks"]["database"] == "ok"
        for r in (logout, login, role):
            assert r.status_code == 503, r.text
            assert r.headers["Content-Type"].startswith("application/problem+json")
            assert r.headers.get("Retry-After")

        bad = [a for a in unclean(answers) if a.op != "revoked"]
        assert not bad, [(a.op, a.status, a.body, a.error) for a in bad[:5]]
        # The API kept serving: reads and heartbeats succeeded during the outage.
        for op in ("read", "heartbeat"):
            ok = [a for a in during if a.op == op and 200 <= a.status < 300]
            assert ok and len(ok) == len([a for a in during if a.op == op]), op
        assert max(a.seconds for a in during) <= LATENCY_BOUND, summary(during)
        assert max(a.seconds for a in hung) <= HUNG_BOUND, summary(hung)
        # The revoked token: refused before, during and after (Redis came back empty).
        probes = [a for a in answers if a.op == "revoked"]
        assert probes and {a.status for a in probes} == {401}, {a.status for a in probes}
        assert [a for a in probes if a.started > up + 1], "no probe after the restart"
        # Rate limits: counted before and after, not enforced (fail open) during.
        uncounted = [(round(a.started - up, 2), round(a.seconds, 2)) for a in answers
                     if a.op == "read" and not a.ratelimit
                     and (a.started + a.seconds < down
                          or (a.started > up + 1 and a.started + a.seconds < frozen)
                          or a.started > thawed + 0.5)]
        assert not uncounted, (uncounted, round(frozen - up, 2), round(thawed - up, 2))
        assert not [a for a in answers if a.op == "read" and a.started > down + 0.2
                    and a.started + a.seconds < restarting and a.ratelimit]

        # Events: every enrollment's event delivered exactly once (its notification), those
        # recorded while Redis was down included.
        outage_enrolled = [a.key for a in during if a.op == "enroll" and a.status == 201]
        assert outage_enrolled, "no enrollment during the outage"
        assert next(fresh, None) is not None, "enrollments ran out: raise STUDENTS"
        # The refused role change left nothing behind.
        assert stack.sql("SELECT role FROM identity_user WHERE id = %s",
                         stack.students[-2].id) == [("student",)]
        wait_for(delivered, DELIVERY_BOUND, step=0.5)  # those of the last second
        enrolled = {uid for (uid,) in stack.sql(
            "SELECT user_id FROM enrollment_enrollment WHERE tenant_id = %s", tid)}
        notes = stack.sql("SELECT user_id, count(*) FROM notifications_notification "
                          "WHERE tenant_id = %s AND kind = 'enrolled' GROUP BY user_id", tid)
        per_user = dict(notes)
        losses = sorted(enrolled - set(per_user))
        duplicates = {u: n for u, n in per_user.items() if n > 1}
        deliveries = stack.sql(
            "SELECT count(*) FROM (SELECT event_id, handler FROM learnplat_event_delivery d "
            "JOIN learnplat_event e ON e.id = d.event_id WHERE e.tenant_id = %s "
            "GROUP BY event_id, handler HAVING count(*) > 1) x", tid)[0][0]
        back = recovered_at([a for a in answers if a.op == "enroll"], up)
        served = [a for a in answers if a.op != "revoked"]
        figures = {"outage_s": round(up - down, 2),
                   "during": summary([a for a in during if a.op != "revoked"]),
                   "all": summary(served), "revoked_probes": summary(probes),
                   "hung_s": round(thawed - frozen, 2), "during_hang": summary(hung),
                   "enrolled": len(enrolled),
                   "enrolled_during_outage": len(outage_enrolled),
                   "outage_events_delivered_after_s": round(took, 2), "losses": len(losses),
                   "duplicates": len(duplicates) + deliveries,
                   "websocket_notified_after_s": round(pushed, 2),
                   "enroll_recovery_s": None if back is None else round(back - up, 2)}
        print("\nREDIS RESTART", json.dumps(figures))
        assert not losses, losses
        assert not duplicates and deliveries == 0, duplicates
        # A token works after the restart (its state re-read from the database).
        r = requests.get(f"{base}/courses/{cid}", headers=stack.headers(watchers[0]),
                         timeout=10)
        assert r.status_code == 200 and r.headers.get("RateLimit")
