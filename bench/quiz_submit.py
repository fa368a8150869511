"""Quiz benchmark: submit-and-grade throughput of a 20-question quiz under concurrent students,
against a real gunicorn with PostgreSQL (RLS on) and Redis, plus the pure grading function's
throughput in-process.

    .venv/bin/python -m bench.quiz_submit [--students 64] [--seconds 20] [--workers 2] ...

Each client is one student looping: POST .../attempts (start), POST .../submit with 20 answers
(graded at once: 19 automatic questions and one short_text auto-accepted), until --seconds
pass. Reports submits/s (= attempts graded/s), questions graded/s, and p50/p90/p99 latency of
submit and of start, as the clients saw them.

Needs LEARNPLAT_BENCH_DATABASE_URL (an admin URL of PostgreSQL; a fresh database owned by a
non-superuser role is made and dropped) and LEARNPLAT_BENCH_REDIS_URL (keys go under a fresh
prefix and are deleted afterwards; nothing is flushed). Prints a JSON report.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import sys
import threading
import time
import uuid
from typing import Any

from learnplat_quizzes.seed import sample_answers, sample_quiz

from bench import common

QUESTIONS = 20


def _client_proc(base: str, tenant: str, path: str, tokens: list[str],
                 questions: list[dict[str, Any]], until: float, out: Any,
                 baseline: bool = False) -> None:
    import requests

    submit_lat: list[float] = []
    start_lat: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def run(token: str) -> None:
        rng = random.Random(token)
        session = requests.Session()
        session.headers.update({"Authorization": f"Bearer {token}", "X-Tenant": tenant})
        subs, starts, bad = [], [], 0
        while time.perf_counter() < until:
            t0 = time.perf_counter()
            if baseline:  # authentication + a read transaction, no quiz code
                r = session.get(f"{base}/auth/profile")
                subs.append(time.perf_counter() - t0)
                bad += r.status_code != 200
                continue
            r = session.post(f"{base}{path}/attempts")
            t1 = time.perf_counter()
            if r.status_code not in (200, 201):
                bad += 1
                continue
            starts.append(t1 - t0)
            r = session.post(f"{base}{path}/submit", json={
                "attempt_id": r.json()["id"], "answers": sample_answers(questions, rng)})
            subs.append(time.perf_counter() - t1)
            if r.status_code != 200:
                bad += 1
        with lock:
            submit_lat.extend(subs)
            start_lat.extend(starts)
            errors[0] += bad

    threads = [threading.Thread(target=run, args=(tok,)) for tok in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((submit_lat, start_lat, errors[0]))


_pct = common.pct


def _ms(values: list[float]) -> dict[str, float]:
    return {k: round(1000 * _pct(values, q), 1) for k, q in
            (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))}


def grading_throughput(questions: list[dict[str, Any]], seconds: float = 3.0) -> dict[str, Any]:
    """The pure function alone: attempts of 20 questions graded per second, one core."""
    from learnplat_quizzes import grading as g

    frozen = [g.Question.from_dict(q) for q in questions]
    rng = random.Random(1)
    samples = [sample_answers(questions, rng) for _ in range(200)]
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for answers in samples:
            g.grade(frozen, answers, 60)
        n += len(samples)
    took = time.perf_counter() - started
    return {"attempts_per_second": round(n / took), "questions_per_second": round(
        n * len(frozen) / took)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--students", type=int, default=64, help="concurrent students (clients)")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    ap.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker")
    ap.add_argument("--client-procs", type=int, default=2)
    args = ap.parse_args(argv)

    # Popped: LEARNPLAT_<SECTION>_* is configuration, and there is no [bench] section.
    admin_url = os.environ.pop("LEARNPLAT_BENCH_DATABASE_URL",
                               "postgresql://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.pop("LEARNPLAT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    prefix = f"lpbench-{uuid.uuid4().hex[:8]}"
    from learnplat.testing import forget_redis_keys, make_postgres_database

    tdb = make_postgres_database(admin_url, label="bench")
    os.environ.update({
        "LEARNPLAT_DATABASE_URL": tdb.url, "LEARNPLAT_REDIS_URL": redis_url,
        "LEARNPLAT_REDIS_PREFIX": prefix,
        "LEARNPLAT_APP_SECRET_KEY": "bench-secret-key-not-for-production",
        "LEARNPLAT_QUEUE_EMBEDDED_WORKER": "false", "LEARNPLAT_SERVER_THREADS": str(args.threads),
        "LEARNPLAT_TENANCY_CACHE_SECONDS": "60",
        "LEARNPLAT_DATABASE_MAX_CONNECTIONS": str(args.threads + 2),
    })
    server = None
    try:
        import requests

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
        h = {"X-Tenant": slug}
        t = {**h, "Authorization": f"Bearer {teacher}"}
        cid = requests.post(f"{base}/courses", json={"title": "Bench"}, headers=t).json()["id"]
        mid = requests.post(f"{base}/courses/{cid}/modules", headers=t,
                            json={"title": "Quiz"}).json()["id"]
        r = requests.post(f"{base}/courses/{cid}/modules/{mid}/quiz", headers=t,
                          json=sample_quiz())
        r.raise_for_status()
        quiz = r.json()
        path = f"/courses/{cid}/modules/{mid}/quiz/{quiz['id']}"
        requests.post(f"{base}/courses/{cid}/submit", headers=t).raise_for_status()
        requests.post(f"{base}/courses/{cid}/approve",
                      headers={**h, "Authorization": f"Bearer {admin}"}).raise_for_status()
        for tok in students:
            requests.post(f"{base}/courses/{cid}/enroll",
                          headers={**h, "Authorization": f"Bearer {tok}"}).raise_for_status()

        def load(seconds: float, baseline: bool = False
                 ) -> tuple[list[float], list[float], int, float]:
            until = time.perf_counter() + seconds
            queue: Any = mp.Queue()
            chunks = [students[i::args.client_procs] for i in range(args.client_procs)]
            ps = [mp.Process(target=_client_proc, args=(
                base, slug, path, c, quiz["questions"], until, queue, baseline))
                for c in chunks if c]
            started = time.perf_counter()
            for p in ps:
                p.start()
            submit_lat: list[float] = []
            start_lat: list[float] = []
            errors = 0
            for _ in ps:
                subs, starts, bad = queue.get()
                submit_lat += subs
                start_lat += starts
                errors += bad
            for p in ps:
                p.join()
            return submit_lat, start_lat, errors, time.perf_counter() - started

        base_lat, _, base_errors, base_took = load(args.seconds / 2, baseline=True)
        submit_lat, start_lat, errors, took = load(args.seconds)
        report = {
            "baseline_get_profile": {
                "requests_per_second": round(len(base_lat) / base_took, 1),
                "errors": base_errors, "latency_ms": _ms(base_lat)},
            "students": args.students, "questions": QUESTIONS,
            "gunicorn_workers": args.workers, "threads_per_worker": args.threads,
            "cpus": os.cpu_count(), "seconds": round(took, 2), "errors": errors,
            "submits": len(submit_lat),
            "submits_per_second": round(len(submit_lat) / took, 1),
            "questions_graded_per_second": round(QUESTIONS * len(submit_lat) / took),
            "attempt_cycles_per_second": round(len(submit_lat) / took, 1),
            "submit_latency_ms": _ms(submit_lat),
            "start_latency_ms": _ms(start_lat),
            "pure_grading_one_core": grading_throughput(quiz["questions"]),
        }
        print(json.dumps(report, indent=2))
        return 0
    finally:
        common.stop(server)
        from learnplat import db as _db

        if _db.database.obj is not None and hasattr(_db.database.obj, "close_all"):
            _db.database.obj.close_all()
        tdb.drop()
        forget_redis_keys(redis_url, prefix)


if __name__ == "__main__":
    sys.exit(main())
