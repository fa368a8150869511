"""How many certificates one worker core issues per second: the body of the
certificates.issue task (names through the identity and courses contracts, the PDF with its QR
code and embedded font, the Open Badges VC-JWT, the PDF written to storage, the row updated,
the event recorded), each in its own transaction, one thread.

    .venv/bin/python -m bench.certificates_issue [--certificates 200] [--postgres]

SQLite in a temporary directory by default; --postgres makes (and drops) a database on
LEARNPLAT_BENCH_DATABASE_URL (an admin URL, default postgresql://postgres@127.0.0.1:5432/postgres).
Storage is local files in the temporary directory. Prints a JSON report.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid

from bench import common


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--certificates", type=int, default=200)
    ap.add_argument("--postgres", action="store_true")
    ap.add_argument("--logo", action="store_true", help="with a logo and a signature image")
    args = ap.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="lp-bench-certs-")
    tdb = None
    # Popped: LEARNPLAT_<SECTION>_* is configuration, and there is no [bench] section.
    admin, _redis = common.pop_bench_env()
    if args.postgres:
        tdb = common.make_database(admin)
        url = tdb.url
    else:
        url = f"sqlite:///{tmp}/bench.db"
    os.environ.update({"LEARNPLAT_DATABASE_URL": url, "LEARNPLAT_REDIS_URL": "",
                       "LEARNPLAT_QUEUE_IMMEDIATE": "true",
                       "LEARNPLAT_STORAGE_URL": f"file://{tmp}/storage",
                       "LEARNPLAT_APP_VAR_DIR": f"{tmp}/var",
                       "LEARNPLAT_APP_SECRET_KEY": "bench-secret-key-not-for-production"})
    try:
        return run(args)
    finally:
        if tdb is not None:
            common.close_pool()
            tdb.drop()


def run(args: argparse.Namespace) -> int:
    from learnplat_certificates.plugin import CertificatesPlugin

    from learnplat import db
    from learnplat.auth import Principal
    from learnplat.migrate import migrate
    from learnplat.runtime import create_runtime
    from learnplat.tenancy import tenant_context
    from learnplat.tenants import TenantSpec

    runtime = create_runtime()
    migrate(runtime)
    with db.connection():
        tenant = runtime.tenants.create(TenantSpec(slug=f"bench-{uuid.uuid4().hex[:6]}",
                                                   name="Σχολή Bench Académie"))
    identity, courses, certs = (runtime.service("identity"), runtime.service("courses"),
                                runtime.plugin(CertificatesPlugin).certificates)
    # Queue nothing: the benchmark calls the task body itself, timed.
    runtime.queue.enqueue_for_tenant = lambda *a, **k: None  # type: ignore[method-assign]
    names = ["Ελένη Παπαδοπούλου", "Дмитрий Шостакович", "Zoë Ñúñez", "Ada Lovelace"]
    with db.connection(), tenant_context(tenant), db.transaction():
        teacher = identity.create_user(f"t-{uuid.uuid4().hex[:6]}@bench.example", None,
                                       "José Müller", role="instructor")
        owner = Principal(teacher.id, tenant.id, "instructor",
                          runtime.registry.grants_for("instructor"))
        course = courses.create(owner, {"title": "Введение в Python"})
        ids = []
        for i in range(args.certificates):
            user = identity.create_user(f"s{i}-{uuid.uuid4().hex[:6]}@bench.example", None,
                                        f"{names[i % len(names)]} {i}")
            ids.append(certs.ensure_queued(course.id, user.id)[0].id)
        if args.logo:
            import io

            from PIL import Image

            out = io.BytesIO()
            Image.new("RGB", (600, 240), (20, 60, 160)).save(out, "PNG")
            from learnplat_certificates.templates import Templates

            tpl = Templates(runtime)
            tpl.set_image("logo", io.BytesIO(out.getvalue()))
            tpl.set_image("signature", io.BytesIO(out.getvalue()))
    # Warm up once (font registration, first key creation) outside the timing.
    with db.connection(), tenant_context(tenant), db.transaction():
        certs.issue(ids[0])
    timings = []
    started = time.perf_counter()
    cpu_started = time.process_time()
    for cid in ids[1:]:
        t0 = time.perf_counter()
        with db.connection(), tenant_context(tenant), db.transaction():
            assert certs.issue(cid) == "issued"
        timings.append(time.perf_counter() - t0)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    n = len(timings)
    timings.sort()
    report = {
        "backend": "postgresql" if args.postgres else "sqlite",
        "with_images": bool(args.logo),
        "certificates": n,
        "seconds": round(wall, 3),
        "per_second": round(n / wall, 1),
        "per_cpu_second": round(n / cpu, 1),
        "ms_p50": round(statistics.median(timings) * 1000, 1),
        "ms_p95": round(timings[int(n * 0.95) - 1] * 1000, 1),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
