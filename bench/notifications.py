"""Notifications benchmark (decision 0011, docs/notifications.md "Numbers").

    .venv/bin/python -m bench.notifications rest     [--seconds 10] [--clients 16]
    .venv/bin/python -m bench.notifications ws       [--connections 1000] [--posts 200]
    .venv/bin/python -m bench.notifications fanout   [--students 10000]

* rest: REST throughput of the same WSGI app under gunicorn gthread (the old `learnplat
  serve`) and under gunicorn's asgi worker through learnplat.http.asgi (a2wsgi), 2 workers x
  4 threads each, alternating A/B/A/B; GET /healthz (dispatch only) and an authenticated
  GET /notifications/unread-count (tenant, token, one query). Requests/s and p50/p99.
* ws: --connections WebSockets (users x devices) held by a 2-worker asgi server; POST
  /notifications one at a time and time each delivery from just before the POST to the
  message's arrival at every device of the user (p50/p99/max), plus each worker's RSS.
* fanout: a tenant-wide broadcast to --students students: the fan-out task's body, timed.

Runs on SQLite + the embedded mechanisms by default; LEARNPLAT_BENCH_DATABASE_URL (PostgreSQL
admin URL) and LEARNPLAT_BENCH_REDIS_URL switch to PostgreSQL and Redis pub/sub. Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from learnplat import db
from learnplat.migrate import migrate
from learnplat.runtime import create_runtime
from learnplat.tenancy import tenant_context
from learnplat.testing import (
    TestDatabase,
    make_postgres_database,
    make_tenant,
    serve_with_gunicorn,
    test_settings,
)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


@contextmanager
def world(tmp: Path) -> Any:
    admin_url = os.environ.get("LEARNPLAT_BENCH_DATABASE_URL")
    if admin_url:
        database = make_postgres_database(admin_url, "bench")
        database.redis_url = os.environ.get("LEARNPLAT_BENCH_REDIS_URL", "")
    else:
        database = TestDatabase(url=f"sqlite:///{tmp / 'bench.db'}")
    runtime = create_runtime(test_settings(tmp, database.url, database.redis_url))
    migrate(runtime)
    try:
        yield runtime, database
    finally:
        if admin_url:
            db.database.obj.close()
            database.drop()


def make_users(runtime: Any, tenant: Any, n: int, role: str = "student",
               tokens: bool = True) -> list[tuple[int, str]]:
    """n users without passwords (no hashing: quick), with access tokens."""
    ident = runtime.service("identity")
    out = []
    with db.connection(), tenant_context(tenant), db.transaction():
        for _ in range(n):
            user = ident.create_user(f"{role}-{random.getrandbits(48):x}@bench.example", None,
                                     role=role)
            out.append((user.id, ident.issue_pair(user)["access_token"] if tokens else ""))
    return out


# -- rest ----------------------------------------------------------------------------------------


def _load(port: int, path: str, headers: dict[str, str], threads: int, until: float,
          out: Any) -> None:
    lat: list[float] = []
    lock = threading.Lock()
    errors = [0]

    def run() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        while time.monotonic() < until:
            start = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    errors[0] += 1
            except (OSError, http.client.HTTPException):
                errors[0] += 1
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            mine.append(time.perf_counter() - start)
        with lock:
            lat.extend(mine)

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put((lat, errors[0]))


def server_cpu_seconds() -> float:
    """CPU time (user + system) used so far by the gunicorn processes this process started:
    per request, it does not depend on what else the machine runs (unlike requests/s)."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    masters = {pid for pid, (ppid, _) in stats.items() if ppid == os.getpid()}
    return sum(cpu for pid, (ppid, cpu) in stats.items()
               if pid in masters or ppid in masters) / ticks


def measure(port: int, path: str, headers: dict[str, str], clients: int, seconds: float
            ) -> dict[str, Any]:
    procs_n = 2
    cpu_before = server_cpu_seconds()
    until = time.monotonic() + seconds
    queue: Any = mp.Queue()
    procs = [mp.Process(target=_load, args=(port, path, headers, clients // procs_n, until,
                                             queue)) for _ in range(procs_n)]
    for p in procs:
        p.start()
    lat: list[float] = []
    errors = 0
    for _ in procs:
        part, bad = queue.get()
        lat += part
        errors += bad
    for p in procs:
        p.join()
    cpu = server_cpu_seconds() - cpu_before
    return {"rps": round(len(lat) / seconds, 1), "p50_ms": round(pct(lat, 50) * 1000, 2),
            "p99_ms": round(pct(lat, 99) * 1000, 2), "errors": errors,
            "server_cpu_us_per_request": round(cpu / max(1, len(lat)) * 1e6)}


def bench_rest(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="lp-bench-"))
    report: dict[str, Any] = {"seconds": args.seconds, "clients": args.clients, "runs": []}
    with world(tmp) as (runtime, database):
        tenant = make_tenant(runtime)
        (_, token), = make_users(runtime, tenant, 1)
        headers = {"Authorization": f"Bearer {token}", "X-Tenant": tenant.slug}
        for round_ in range(args.rounds):
            for kind in ("gthread", "asgi"):
                (tmp / f"{kind}{round_}").mkdir()
                with serve_with_gunicorn(runtime, database, tmp / f"{kind}{round_}",
                                         workers=2, threads=4, worker_class=kind) as base:
                    port = int(base.rsplit(":", 1)[1])
                    measure(port, "/healthz", {}, args.clients, 2)  # warm up
                    run = {"worker": kind, "round": round_}
                    run["healthz"] = measure(port, "/healthz", {}, args.clients, args.seconds)
                    run["unread_count"] = measure(port, "/notifications/unread-count",
                                                  headers, args.clients, args.seconds)
                    report["runs"].append(run)
                    print(json.dumps(run), file=sys.stderr)
    for path in ("healthz", "unread_count"):
        for metric in ("rps", "server_cpu_us_per_request"):
            by = {k: statistics.median(r[path][metric] for r in report["runs"]
                                       if r["worker"] == k) for k in ("gthread", "asgi")}
            report[f"{path}_{metric}_median"] = by
            report[f"{path}_{metric}_asgi_vs_gthread"] = round(by["asgi"] / by["gthread"], 3)
    return report


# -- ws --------------------------------------------------------------------------------------


def worker_sockets() -> list[int]:
    """Open sockets of each gunicorn worker this process started (≈ its connections)."""
    out = []
    for pid in _workers():
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
            out.append(sum(1 for fd in fds if os.readlink(fd).startswith("socket:")))
        except OSError:
            continue
    return out


def _workers() -> list[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat[1])
    masters = {pid for pid, ppid in parents.items() if ppid == os.getpid()}
    return [pid for pid, ppid in parents.items() if ppid in masters]


def worker_rss() -> list[int]:
    """RSS (kB) of the gunicorn workers this process started (children of its children)."""
    procs = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        procs[int(entry.name)] = (int(fields["PPid"]), int(fields.get("VmRSS", "0 kB").split()[0]))
    masters = {pid for pid, (ppid, _) in procs.items() if ppid == os.getpid()}
    return [rss for pid, (ppid, rss) in procs.items() if ppid in masters]


async def _ws_phase(base: str, tenant: str, admin_token: str, users: list[tuple[int, str]],
                    devices: int, posts: int) -> dict[str, Any]:
    import requests
    from websockets.asyncio.client import connect

    result: dict[str, Any] = {}

    ws_base = base.replace("http://", "ws://")
    arrivals: dict[int, list[float]] = {}
    sockets = []

    async def hold(token: str) -> None:
        async with connect(f"{ws_base}/notifications/ws?token={token}&tenant={tenant}",
                           open_timeout=60, max_queue=None) as ws:
            sockets.append(ws)
            async for raw in ws:
                msg = json.loads(raw)
                if msg.get("type") == "notification":
                    arrivals.setdefault(msg["id"], []).append(time.perf_counter())

    start = time.perf_counter()
    tasks = []
    for _, token in users:
        for _ in range(devices):
            tasks.append(asyncio.create_task(hold(token)))
            await asyncio.sleep(0.002)  # do not trip the listen backlog
    while len(sockets) < len(tasks):
        await asyncio.sleep(0.1)
        if time.perf_counter() - start > 180:
            raise RuntimeError(f"only {len(sockets)} of {len(tasks)} sockets connected")
    connect_seconds = time.perf_counter() - start
    await asyncio.sleep(1)
    result["sockets_per_worker"] = worker_sockets()
    result["worker_rss_kb"] = worker_rss()

    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {admin_token}", "X-Tenant": tenant})
    sent: dict[int, float] = {}

    def post(user_id: int) -> None:
        t0 = time.perf_counter()
        r = session.post(f"{base}/notifications", json={"title": "Bench", "body": "b",
                                                        "user_id": user_id}, timeout=30)
        r.raise_for_status()
        sent[r.json()["id"]] = t0

    for _ in range(posts):
        await asyncio.to_thread(post, random.choice(users)[0])
        await asyncio.sleep(0.02)
    await asyncio.sleep(3)
    latencies = [arrived - sent[nid] for nid, times in arrivals.items() if nid in sent
                 for arrived in times]
    expected = posts * devices
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {**result, "connected": len(sockets), "connect_seconds": round(connect_seconds, 2),
            "deliveries": len(latencies), "expected_deliveries": expected,
            "p50_ms": round(pct(latencies, 50) * 1000, 1),
            "p99_ms": round(pct(latencies, 99) * 1000, 1),
            "max_ms": round(max(latencies, default=float("nan")) * 1000, 1)}


def bench_ws(args: argparse.Namespace) -> dict[str, Any]:
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    tmp = Path(tempfile.mkdtemp(prefix="lp-bench-"))
    devices = 10
    with world(tmp) as (runtime, database):
        tenant = make_tenant(runtime)
        (_, admin_token), = make_users(runtime, tenant, 1, role="admin")
        users = make_users(runtime, tenant, max(1, args.connections // devices))
        (tmp / "ws").mkdir()
        with serve_with_gunicorn(runtime, database, tmp / "ws", workers=args.workers,
                                 env={"LEARNPLAT_SERVER_CONNECTIONS": "10000"}) as base:
            result = asyncio.run(_ws_phase(base, tenant.slug, admin_token, users, devices,
                                           args.posts))
            result["workers"] = args.workers
            result["backend"] = "redis pub/sub" if database.redis_url else "table polling"
    return result


# -- fan-out ---------------------------------------------------------------------------------


def bench_fanout(args: argparse.Namespace) -> dict[str, Any]:
    from learnplat_notifications.api import NOTIFICATIONS

    from learnplat.plugin import Principal

    tmp = Path(tempfile.mkdtemp(prefix="lp-bench-"))
    with world(tmp) as (runtime, database):
        tenant = make_tenant(runtime)
        (admin_id, _), = make_users(runtime, tenant, 1, role="admin", tokens=False)
        t0 = time.perf_counter()
        make_users(runtime, tenant, args.students, tokens=False)
        made = time.perf_counter() - t0
        notes = runtime.service(NOTIFICATIONS)
        admin = Principal(admin_id, tenant.id, "admin", runtime.registry.grants_for("admin"))
        # The service's broadcast: a Broadcast row and the fan-out task, which runs inline here
        # (queue.immediate), page after page; timed to its commit.
        start = time.perf_counter()
        with db.connection(), tenant_context(tenant), db.transaction():
            _kind, doc = notes.broadcast(admin, "Snow day", "School is closed.",
                                         "announcement", {}, everyone=True)
        seconds = time.perf_counter() - start
        with db.connection(), tenant_context(tenant), db.transaction():
            created = notes.get_broadcast(admin, doc.id).recipients
    return {"students": args.students, "notifications": created,
            "fan_out_seconds": round(seconds, 2),
            "notifications_per_second": round(created / seconds),
            "users_setup_seconds": round(made, 1),
            "backend": "postgresql" if database.url.startswith("postgres") else "sqlite"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("phase", choices=("rest", "ws", "fanout"))
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--students", type=int, default=10_000)
    args = parser.parse_args()
    phase = {"rest": bench_rest, "ws": bench_ws, "fanout": bench_fanout}[args.phase]
    print(json.dumps(phase(args), indent=2))


if __name__ == "__main__":
    main()
