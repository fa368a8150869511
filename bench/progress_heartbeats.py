"""Heartbeat benchmark: throughput and latency of POST /progress/{id} heartbeats against a real
gunicorn with PostgreSQL and Redis, and how many heartbeats the database absorbs per write.

    .venv/bin/python -m bench.progress_heartbeats [--students 200] [--seconds 20] ...

(`bin/bench --only heartbeat`, or its alias `bin/bench-progress`, measures the saturation
phase on the full data set against the baseline; this module adds the paced phase.)

Phases:
1. saturation: every student sends heartbeats back to back for --seconds; reports requests/s
   and p50/p90/p99 latency as the clients saw them.
2. paced: every student sends one heartbeat every --interval seconds while this process runs
   the flush (the body of the periodic task progress.flush_heartbeats) every --flush seconds;
   reports heartbeats per flushed row and per database write statement / transaction, from
   the flush counters kept in Redis. Real cadence is 5 s / 60 s; --scale divides both (the
   ratio only depends on their quotient), so the default run takes seconds, not minutes.

Needs LEARNPLAT_BENCH_DATABASE_URL (an admin URL of PostgreSQL; a fresh database owned by a
non-superuser role is made and dropped) and LEARNPLAT_BENCH_REDIS_URL (a Redis database that is
flushed). Prints a JSON report.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import threading
import time
import uuid
from typing import Any

from bench import common


def _client_proc(base: str, tenant: str, course_id: int, jobs: list[tuple[str, int]],
                 until: float, interval: float, out: Any, baseline: bool = False) -> None:
    """One load-generating process: a thread per (token, module)."""
    import requests

    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def run(token: str, module_id: int) -> None:
        session = requests.Session()
        session.headers.update({"Authorization": f"Bearer {token}", "X-Tenant": tenant})
        url = f"{base}/progress/{course_id}"
        position, mine, bad = random.uniform(0, 100), [], 0
        if interval:
            time.sleep(random.uniform(0, interval))  # spread the students over the interval
        while True:
            start = time.perf_counter()
            if start >= until:
                break
            if baseline:  # authentication + a read transaction, no progress code
                r = session.get(f"{base}/auth/profile")
            else:
                r = session.post(url, json={"module_id": module_id,
                                            "position_seconds": position,
                                            "duration_seconds": 3600.0})
            took = time.perf_counter() - start
            if r.status_code != 200:
                bad += 1
            mine.append(took)
            position = min(position + 5.0, 3000.0)
            if interval:
                time.sleep(max(0.0, interval - took))
        with lock:
            lat.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=run, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((lat, errors[0]))


def _load(base: str, tenant: str, course_id: int, jobs: list[tuple[str, int]], seconds: float,
          interval: float, procs: int, baseline: bool = False
          ) -> tuple[list[float], int, float]:
    until = time.perf_counter() + seconds
    queue: Any = mp.Queue()
    chunks = [jobs[i::procs] for i in range(procs)]
    ps = [mp.Process(target=_client_proc, args=(base, tenant, course_id, c, until, interval,
                                                queue, baseline)) for c in chunks if c]
    started = time.perf_counter()
    for p in ps:
        p.start()
    lat: list[float] = []
    errors = 0
    for _ in ps:
        part, bad = queue.get()
        lat.extend(part)
        errors += bad
    for p in ps:
        p.join()
    return lat, errors, time.perf_counter() - started


_pct = common.pct


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--students", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=32,
                    help="clients sending back to back in the saturation phase")
    ap.add_argument("--seconds", type=float, default=20, help="saturation phase length")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    ap.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker")
    ap.add_argument("--client-procs", type=int, default=2)
    ap.add_argument("--interval", type=float, default=5.0, help="real heartbeat interval (s)")
    ap.add_argument("--flush", type=float, default=60.0, help="real flush interval (s)")
    ap.add_argument("--scale", type=float, default=4.0, help="divide both intervals by this")
    ap.add_argument("--flushes", type=int, default=4, help="paced phase length, in flushes")
    args = ap.parse_args(argv)

    admin_url, redis_url = common.pop_bench_env()
    tdb = common.make_database(admin_url)
    os.environ.update({
        "LEARNPLAT_DATABASE_URL": tdb.url, "LEARNPLAT_REDIS_URL": redis_url,
        "LEARNPLAT_APP_SECRET_KEY": "bench-secret-key-not-for-production",
        "LEARNPLAT_QUEUE_EMBEDDED_WORKER": "false", "LEARNPLAT_SERVER_THREADS": str(args.threads),
        "LEARNPLAT_TENANCY_CACHE_SECONDS": "60",
        "LEARNPLAT_DATABASE_MAX_CONNECTIONS": str(args.threads + 2),
    })
    common.flush_redis(redis_url)
    server = None
    try:
        from learnplat import db
        from learnplat.migrate import migrate
        from learnplat.runtime import create_runtime
        from learnplat.tenancy import tenant_context
        from learnplat.tenants import TenantSpec

        runtime = create_runtime()
        migrate(runtime)
        slug = f"bench-{uuid.uuid4().hex[:6]}"
        with db.connection():
            tenant = runtime.tenants.create(TenantSpec(slug=slug, name="Bench"))
        ids = runtime.service("identity")
        with db.connection(), tenant_context(tenant), db.transaction():
            def token(role: str) -> str:
                user = ids.create_user(f"{role}-{uuid.uuid4().hex[:8]}@bench.example", "x" * 16,
                                       role, role=role)
                return ids.issue_pair(user)["access_token"]

            teacher, admin = token("instructor"), token("admin")
            students = [token("student") for _ in range(args.students)]

        port = common.free_port()
        base = f"http://127.0.0.1:{port}"
        server = common.start_learnplat(dict(os.environ), port, args.workers)
        import requests

        h = {"X-Tenant": slug}
        t = {**h, "Authorization": f"Bearer {teacher}"}
        cid = requests.post(f"{base}/courses", json={"title": "Bench"}, headers=t).json()["id"]
        mids = [requests.post(f"{base}/courses/{cid}/modules", headers=t,
                              json={"title": f"Video {i}", "kind": "video"}).json()["id"]
                for i in range(4)]
        requests.post(f"{base}/courses/{cid}/submit", headers=t).raise_for_status()
        requests.post(f"{base}/courses/{cid}/approve",
                      headers={**h, "Authorization": f"Bearer {admin}"}).raise_for_status()
        for tok in students:
            requests.post(f"{base}/courses/{cid}/enroll",
                          headers={**h, "Authorization": f"Bearer {tok}"}).raise_for_status()
        jobs = [(tok, mids[i % len(mids)]) for i, tok in enumerate(students)]
        svc = runtime.service("progress")

        def summary(lat: list[float], errors: int, took: float) -> dict[str, Any]:
            return {
                "requests": len(lat), "errors": errors, "seconds": round(took, 2),
                "requests_per_second": round(len(lat) / took, 1),
                "latency_ms": {"p50": round(1000 * _pct(lat, 0.50), 2),
                               "p90": round(1000 * _pct(lat, 0.90), 2),
                               "p99": round(1000 * _pct(lat, 0.99), 2)},
            }

        # 0. baseline: the same clients on an authenticated read (GET /auth/profile)
        few = jobs[:args.concurrency]
        baseline = summary(*_load(base, slug, cid, few, args.seconds / 2, 0.0,
                                  args.client_procs, baseline=True))
        # 1. saturation
        lat, errors, took = _load(base, slug, cid, few, args.seconds, 0.0, args.client_procs)
        with db.connection():
            svc.flush_heartbeats()
        saturation = {
            "requests": len(lat), "errors": errors, "seconds": round(took, 2),
            "heartbeats_per_second": round(len(lat) / took, 1),
            "latency_ms": {"p50": round(1000 * _pct(lat, 0.50), 2),
                           "p90": round(1000 * _pct(lat, 0.90), 2),
                           "p99": round(1000 * _pct(lat, 0.99), 2),
                           "mean": round(1000 * statistics.fmean(lat), 2) if lat else 0},
        }

        # 2. paced, with the flush every (scaled) flush interval
        interval, flush_every = args.interval / args.scale, args.flush / args.scale
        before = svc.store.stats()
        stop = threading.Event()

        def flusher() -> None:
            while not stop.wait(flush_every):
                with db.connection():
                    svc.flush_heartbeats()

        ft = threading.Thread(target=flusher)
        ft.start()
        plat, perrors, ptook = _load(base, slug, cid, jobs, flush_every * args.flushes,
                                     interval, args.client_procs)
        stop.set()
        ft.join()
        with db.connection():
            svc.flush_heartbeats()
        after = svc.store.stats()
        diff = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        hb = diff.get("heartbeats", 0)
        paced = {
            "heartbeat_interval_s": args.interval, "flush_interval_s": args.flush,
            "time_scale": args.scale, "seconds": round(ptook, 2), "heartbeats": hb,
            "errors": perrors, "flushed_rows": diff.get("flush_rows", 0),
            "write_statements": diff.get("flush_statements", 0),
            "write_transactions": diff.get("flush_transactions", 0),
            "write_through_completions": diff.get("write_through", 0),
            "heartbeats_per_row_write": round(hb / max(1, diff.get("flush_rows", 0)), 1),
            "heartbeats_per_write_statement": round(
                hb / max(1, diff.get("flush_statements", 0) + diff.get("write_through", 0)), 1),
            "latency_ms": {"p50": round(1000 * _pct(plat, 0.50), 2),
                           "p99": round(1000 * _pct(plat, 0.99), 2)},
        }
        report = {"students": args.students, "concurrency": args.concurrency,
                  "gunicorn_workers": args.workers, "threads_per_worker": args.threads,
                  "cpus": os.cpu_count(), "baseline_get_profile": baseline,
                  "saturation": saturation, "paced": paced}
        print(json.dumps(report, indent=2))
        return 0
    finally:
        common.stop(server)
        common.close_pool()
        tdb.drop()


if __name__ == "__main__":
    sys.exit(main())
