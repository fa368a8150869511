"""How long the progress analytics take on a large course: course_stats (the course_analytics
hook's two aggregate queries) and one students-list page, on PostgreSQL with RLS.

    .venv/bin/python -m bench.progress_analytics [--enrollments 100000] [--modules 10]

Needs LEARNPLAT_BENCH_DATABASE_URL (admin URL; a fresh database is made and dropped).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import uuid


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--enrollments", type=int, default=100_000)
    ap.add_argument("--modules", type=int, default=10)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    admin_url = os.environ.get("LEARNPLAT_BENCH_DATABASE_URL",
                               "postgresql://postgres@127.0.0.1:5432/postgres")
    from learnplat.testing import make_postgres_database

    tdb = make_postgres_database(admin_url, label="bench")
    os.environ.update({"LEARNPLAT_DATABASE_URL": tdb.url, "LEARNPLAT_REDIS_URL": "",
                       "LEARNPLAT_APP_SECRET_KEY": "bench-secret-key-not-for-production"})
    try:
        from learnplat_progress.models import CourseProgress, ModuleProgress

        from learnplat import db
        from learnplat.auth import Principal
        from learnplat.migrate import migrate
        from learnplat.models import utcnow
        from learnplat.pagination import PageQuery
        from learnplat.runtime import create_runtime
        from learnplat.tenancy import tenant_context
        from learnplat.tenants import TenantSpec

        runtime = create_runtime()
        migrate(runtime)
        with db.connection():
            tenant = runtime.tenants.create(TenantSpec(slug=f"bench-{uuid.uuid4().hex[:6]}",
                                                       name="Bench"))
        owner = Principal(1, tenant.id, "instructor", runtime.registry.grants_for("instructor"))
        courses, svc = runtime.service("courses"), runtime.service("progress")
        with db.connection(), tenant_context(tenant), db.transaction():
            course = courses.create(owner, {"title": "Big course"})
            mids = [courses.create_module(owner, course.id, {"title": f"M{i}"}).id
                    for i in range(args.modules)]
        # The progress rows in bulk through the progress plugin's models (as the app's role, in
        # the tenant's context): the service completes a module in ~26 ms, so 100,000
        # learners with ~500,000 completions would take hours (bench/seed.py says the same).
        started = time.perf_counter()
        now = utcnow()
        with db.connection(), tenant_context(tenant), db.transaction():
            cps, mps = [], []
            for user in range(1, args.enrollments + 1):
                done = random.randint(0, args.modules)
                cps.append({"course_id": course.id, "user_id": user,
                            "percent": round(100 * done / args.modules, 1),
                            "completed_count": done, "required_count": args.modules,
                            "completed_at": now if done == args.modules else None,
                            "last_activity_at": now, "created_at": now, "updated_at": now})
                mps += [{"course_id": course.id, "user_id": user, "module_id": m,
                         "completed_at": now, "completed_source": "manual", "updated_at": now}
                        for m in mids[:done]]
                if len(mps) > 20_000 or user == args.enrollments:
                    CourseProgress.insert_many(cps).execute()
                    ModuleProgress.insert_many(mps).execute()
                    cps, mps = [], []
            db.database.execute_sql("ANALYZE progress_course")
            db.database.execute_sql("ANALYZE progress_module")
        load = time.perf_counter() - started
        timings, page_timings = [], []
        admin = Principal(2, tenant.id, "admin", runtime.registry.grants_for("admin"))
        for _ in range(args.runs):
            with db.connection(), tenant_context(tenant), db.transaction(write=False):
                t0 = time.perf_counter()
                stats = svc.course_stats(course.id)
                timings.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                svc.students(admin, course.id, PageQuery(limit=100), "-percent", "active")
                page_timings.append(time.perf_counter() - t0)
        print(json.dumps({
            "enrollments": args.enrollments, "modules": args.modules,
            "module_rows": sum(m["completed"] for m in stats["modules"]),
            "load_seconds": round(load, 1),
            "course_stats_ms": {"median": round(1000 * statistics.median(timings), 1),
                                "max": round(1000 * max(timings), 1)},
            "students_page_ms": {"median": round(1000 * statistics.median(page_timings), 1)},
            "completion_rate": stats["completion_rate"],
            "average_progress": stats["average_progress"],
        }, indent=2))
        return 0
    finally:
        from learnplat import db as _db

        if _db.database.obj is not None and hasattr(_db.database.obj, "close_all"):
            _db.database.obj.close_all()
        tdb.drop()


if __name__ == "__main__":
    sys.exit(main())
