"""PostgreSQL stopped (immediate: a crash) and started again while gunicorn serves reads and
writes: every answer during the outage is a success or a clean 503 (problem+json, Retry-After)
within a bound, the pool recovers by itself within seconds (same gunicorn workers), and no
write is half-applied (each course or enrollment row has exactly its one outbox event).

Private PostgreSQL cluster and Redis (servicefaults.py); PostgreSQL + Redis backend only.
The figures are printed (pytest -s) and recorded in docs/reliability.md.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from servicefaults import (
    Load,
    PrivatePostgres,
    PrivateRedis,
    Stack,
    build_stack,
    needs_pg_binaries,
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

pytestmark = [needs_services, needs_pg_binaries, needs_redis_server]

OUTAGE_SECONDS = 4.0
# An answer during the outage may take this long at most (connect_timeout, pool_timeout).
LATENCY_BOUND = 10.0
# Successes resume within this many seconds of PostgreSQL accepting connections again.
RECOVERY_BOUND = 10.0
DELIVERY_BOUND = 40.0  # the worker's queue polling backs off while its tasks fail
STUDENTS = 150


@pytest.fixture(scope="module")
def pg() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    yield cluster
    cluster.close()  # the cluster goes with its databases


@pytest.fixture(scope="module")
def stack(pg: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    rds = PrivateRedis()
    try:
        yield build_stack(tmp_path_factory.mktemp("faults-pg"), pg.admin_url, rds.url,
                          STUDENTS)
    finally:
        rds.close()


def test_postgres_restart_under_load(stack: Stack, pg: PrivatePostgres) -> None:
    env = {"LEARNPLAT_QUEUE_IMMEDIATE": "false"}
    with serve(stack, env=env) as base, queue_worker(stack, {}) as worker:
        publish_course(base, stack)
        cid = stack.course_id
        titles = itertools.count()
        students = iter(stack.students)

        def read_course(_: int) -> tuple[str, str, str, Any, dict[str, str], Any]:
            return ("read", "GET", f"/courses/{cid}", None, stack.headers(stack.admin), None)

        def read_catalogue(_: int) -> tuple[str, str, str, Any, dict[str, str], Any]:
            return ("read", "GET", "/courses?limit=5", None,
                    stack.headers(stack.students[0]), None)

        def create_course(_: int) -> tuple[str, str, str, Any, dict[str, str], Any]:
            title = f"fault-{next(titles)}"
            return ("create", "POST", "/courses", {"title": title},
                    stack.headers(stack.instructor), title)

        def enroll(i: int) -> tuple[str, str, str, Any, dict[str, str], Any]:
            student = next(students, None)
            if student is None:
                return read_course(i)
            return ("enroll", "POST", f"/courses/{cid}/enroll", None, stack.headers(student),
                    student.id)

        pids = worker_pids(base.pid)  # type: ignore[attr-defined]
        assert len(pids) == 2
        with Load(base, [read_course, create_course, enroll, read_catalogue], threads=4,
                  pause=0.02) as load:
            time.sleep(1.5)
            down = time.monotonic()
            pg.stop("immediate")
            time.sleep(1)
            # Liveness holds (no orchestrator restart); readiness says the database is gone.
            live = requests.get(f"{base}/healthz", timeout=10)
            ready = requests.get(f"{base}/readyz", timeout=10)
            time.sleep(OUTAGE_SECONDS - 1)
            pg.start()  # -w: returns once it accepts connections
            up = time.monotonic()
            deadline = up + RECOVERY_BOUND + 5
            while time.monotonic() < deadline:
                time.sleep(0.5)
                back = recovered_at(load.answers, up)
                if back is not None and time.monotonic() - back > 2:
                    break
        answers = load.answers
        during = load.between(down, up)
        assert worker.poll() is None, "the queue worker died"
        back = recovered_at(answers, up)
        assert worker_pids(base.pid) == pids, "gunicorn workers were replaced"  # type: ignore[attr-defined]

        figures = {"outage_s": round(up - down, 2), "during": summary(during),
                   "ambiguous": _ambiguous(stack, answers),
                   "all": summary(answers),
                   "recovery_s": None if back is None else round(max(0.0, back - up), 2)}
        print("\nPOSTGRES RESTART", json.dumps(figures))

        assert live.status_code == 200
        assert ready.status_code == 503 and ready.json()["checks"]["database"] != "ok"
        bad = unclean(answers)
        assert not bad, [(a.op, a.status, a.content_type, a.retry_after, a.body, a.error)
                         for a in bad[:5]]
        assert sum(1 for a in during if a.status == 503) > 0, "the outage was not noticed"
        assert max(a.seconds for a in during) <= LATENCY_BOUND, figures
        assert back is not None and back - up <= RECOVERY_BOUND, figures
        for a in during:
            if a.status == 503:
                assert a.body["status"] == 503 and a.body["code"] == "service_unavailable"
        # The server still serves after the fault (no restart needed).
        r = requests.get(f"{base}/courses/{cid}", headers=stack.headers(stack.admin),
                         timeout=10)
        assert r.status_code == 200

        # The worker's pool recovered too: every event is delivered, exactly once.
        tid = stack.tenant.id
        took = wait_for(lambda: stack.sql(
            "SELECT count(*) FROM learnplat_event WHERE tenant_id = %s AND status <> 'done'",
            tid)[0][0] == 0, DELIVERY_BOUND, step=0.5)
        enrolled = {u for (u,) in stack.sql(
            "SELECT user_id FROM enrollment_enrollment WHERE tenant_id = %s", tid)}
        notified = dict(stack.sql(
            "SELECT user_id, count(*) FROM notifications_notification WHERE tenant_id = %s "
            "AND kind = 'enrolled' GROUP BY user_id", tid))
        losses = enrolled - set(notified)
        duplicates = {u: n for u, n in notified.items() if n > 1}
        print("POSTGRES RESTART events", json.dumps({
            "enrolled": len(enrolled), "all_delivered_after_s": round(took, 2),
            "losses": len(losses), "duplicates": len(duplicates)}))
        assert not losses and not duplicates, (losses, duplicates)

    _check_all_or_nothing(stack, answers)


def _check_all_or_nothing(stack: Stack, answers: list[Any]) -> None:
    """Every row the load wrote has its one outbox event and the reverse; every success is
    in the database. (A request that failed after its COMMIT reached the server may have
    written anyway: that is not half-applied, and is allowed.)"""
    tid = stack.tenant.id
    courses = {title: cid for cid, title in stack.sql(
        "SELECT id, title FROM courses_course WHERE tenant_id = %s AND title LIKE 'fault-%%'",
        tid)}
    created = [json.loads(p)["course_id"] for (p,) in stack.sql(
        "SELECT payload FROM learnplat_event WHERE tenant_id = %s AND name = %s", tid,
        "course.created.v1")]
    fault_ids = set(courses.values())
    assert sorted(c for c in created if c in fault_ids) == sorted(fault_ids)
    assert not set(created) - fault_ids - {stack.course_id}, "an event without its course"
    for a in answers:
        if a.op == "create" and a.status == 201:
            assert courses.get(a.key) == a.body["id"], a.key
    enrolled = {uid for (uid,) in stack.sql(
        "SELECT user_id FROM enrollment_enrollment WHERE tenant_id = %s", tid)}
    events = [json.loads(p)["user_id"] for (p,) in stack.sql(
        "SELECT payload FROM learnplat_event WHERE tenant_id = %s AND name = %s", tid,
        "enrollment.created.v1")]
    assert sorted(events) == sorted(enrolled), "an enrollment and its event differ"
    for a in answers:
        if a.op == "enroll" and a.status in (200, 201):
            assert a.key in enrolled


def _ambiguous(stack: Stack, answers: list[Any]) -> int:
    """Writes in the database whose request got no success (committed as the server died)."""
    ok_titles = {a.key for a in answers if a.op == "create" and a.status == 201}
    tried = {a.key for a in answers if a.op == "create"}
    titles = {t for (t,) in stack.sql("SELECT title FROM courses_course WHERE tenant_id = %s",
                                      stack.tenant.id)}
    ok_students = {a.key for a in answers if a.op == "enroll" and a.status in (200, 201)}
    tried_students = {a.key for a in answers if a.op == "enroll"}
    enrolled = {u for (u,) in stack.sql(
        "SELECT user_id FROM enrollment_enrollment WHERE tenant_id = %s", stack.tenant.id)}
    return len((titles & tried) - ok_titles) + len((enrolled & tried_students) - ok_students)


def test_a_worker_started_while_postgres_is_down_waits_for_it(stack: Stack,
                                                              pg: PrivatePostgres) -> None:
    """A host booting, or a restart: `learnplat worker` checks its keys against the database
    at start; with the database unreachable it waits (logged) instead of exiting, and starts
    its consumer once PostgreSQL is back."""
    log = stack.tmp / "worker.log"
    seen = log.stat().st_size if log.exists() else 0

    def logged() -> str:
        with log.open("rb") as f:
            f.seek(seen)
            return f.read().decode(errors="replace")

    pg.stop("immediate")
    down = True
    try:
        with queue_worker(stack, {}) as worker:
            wait_for(lambda: "database not reachable" in logged(), 30)
            assert worker.poll() is None, logged()
            pg.start()
            down = False
            wait_for(lambda: "consumer started" in logged().lower(), 30)
            assert worker.poll() is None, logged()
    finally:
        if down:
            pg.start()
