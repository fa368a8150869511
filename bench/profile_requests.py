"""Per-request cost of the hot paths, in-process: CPU time, SQL statements and Redis round
trips per request, for the catalogue, course detail and a heartbeat (issue 14's profile).

    .venv/bin/python -m bench.profile_requests [--requests 400] [--profile catalogue]

PostgreSQL and Redis from LEARNPLAT_BENCH_DATABASE_URL / LEARNPLAT_BENCH_REDIS_URL (defaults:
loopback). Runs the WSGI app through falcon's test client (no HTTP, no gunicorn), so the
figures are the app's own cost plus the test client's (~0.1-0.2 ms: wsgiref's validator and
falcon's ASGI check). `--profile NAME` prints a cProfile of that scenario; with
PROFILE_CALLERS=<function name> also who called that function.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

import falcon.testing
import redis

for key in [k for k in os.environ if k.startswith("LEARNPLAT_BENCH")]:
    os.environ.setdefault("_" + key, os.environ.pop(key))  # the runtime refuses unknown keys

from learnplat import db  # noqa: E402
from learnplat.http.app import create_app  # noqa: E402
from learnplat.migrate import migrate  # noqa: E402
from learnplat.runtime import create_runtime  # noqa: E402
from learnplat.testing import make_postgres_database, make_tenant, test_settings  # noqa: E402


class RedisCounter:
    """Counts commands sent to Redis (a pipeline or script is one round trip)."""

    def __init__(self) -> None:
        self.count = 0
        original = redis.connection.Connection.send_packed_command

        def counting(conn: Any, command: Any, check_health: bool = True) -> Any:
            self.count += 1
            return original(conn, command, check_health)

        redis.connection.Connection.send_packed_command = counting  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--profile", default="")
    parser.add_argument("--queries", action="store_true", help="print each scenario's SQL")
    args = parser.parse_args()
    admin_url = os.environ.get("_LEARNPLAT_BENCH_DATABASE_URL",
                               "postgresql://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("_LEARNPLAT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    tdb = make_postgres_database(admin_url, label="prof")
    tmp = Path(tempfile.mkdtemp())
    try:
        settings = test_settings(tmp, tdb.url, redis_url, tenancy={"cache_seconds": 5},
                                 limits={"enabled": True, "user_burst": 10**6,
                                         "tenant_burst": 10**7, "anonymous_burst": 10**6,
                                         "heartbeat_burst": 10**6})
        runtime = create_runtime(settings)
        migrate(runtime)
        app = create_app(runtime)
        run(app, runtime, args)
    finally:
        db.database.obj.close_all()
        tdb.drop()


def run(app: Any, runtime: Any, args: argparse.Namespace) -> None:
    from learnplat_identity.testing import UserFactory

    tenant = make_tenant(runtime)
    users = UserFactory(runtime, tenant)
    client = falcon.testing.TestClient(app)
    teacher, admin, student = users.make("instructor"), users.make("admin"), users.make("student")

    def call(method: str, path: str, token: str | None = None, **kw: Any) -> Any:
        headers = {"X-Tenant": tenant.slug}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return client.simulate_request(method, path, headers=headers, **kw)

    course_ids = []
    for i in range(25):
        cid = call("POST", "/courses", teacher.token, json={
            "title": f"Course {i}", "description": "d", "tags": ["math", f"t{i % 5}"]}).json["id"]
        video = call("POST", f"/courses/{cid}/modules", teacher.token, json={
            "title": "Video", "kind": "video"})
        assert video.status_code == 201, video.text
        texts = [call("POST", f"/courses/{cid}/modules", teacher.token,
                      json={"title": f"M{m}"}).json["id"] for m in range(4)]
        assert call("POST", f"/courses/{cid}/submit", teacher.token).status_code == 200
        assert call("POST", f"/courses/{cid}/approve", admin.token).status_code == 200
        course_ids.append((cid, video.json["id"], texts[0]))
    cid, vid, text_id = course_ids[0]
    assert call("POST", f"/courses/{cid}/enroll", student.token).status_code == 201
    position = [0.0]

    def heartbeat() -> Any:
        position[0] += 1
        return call("POST", f"/progress/{cid}", student.token, json={
            "module_id": vid, "position_seconds": position[0] % 500,
            "duration_seconds": 600})

    scenarios = {
        "catalogue_anon": lambda: call("GET", "/courses?limit=20"),
        "catalogue": lambda: call("GET", "/courses?limit=20", student.token),
        "course_detail": lambda: call("GET", f"/courses/{cid}", student.token),
        "heartbeat": heartbeat,
        "progress": lambda: call("GET", f"/progress/{cid}", student.token),
        "healthz": lambda: call("GET", "/healthz"),
        "auth_floor": lambda: call("GET", "/auth/roles", student.token),
        # marking a module complete again (idempotent: the same statements every time)
        "complete": lambda: call("POST", f"/progress/{cid}", student.token,
                                 json={"module_id": text_id, "completed": True}),
    }
    rc = RedisCounter()
    statements = [0]
    db.database.obj.query_hooks.append(lambda event: statements.__setitem__(0, statements[0] + 1))
    print(f"{'scenario':16} {'status':>6} {'cpu ms':>7} {'SQL':>5} {'Redis':>6}")
    for name, fn in scenarios.items():
        for _ in range(20):  # warm caches, pools, verified tokens
            r = fn()
        assert r.status_code < 300, (name, r.status_code, r.text)
        statements[0], rc.count = 0, 0
        start = time.process_time()
        for _ in range(args.requests):
            fn()
        cpu = (time.process_time() - start) / args.requests * 1000
        print(f"{name:16} {r.status_code:>6} {cpu:7.3f} {statements[0] / args.requests:5.1f} "
              f"{rc.count / args.requests:6.1f}")
        if args.queries:
            from learnplat.testing import count_queries

            with count_queries() as q:
                fn()
            for sql in q.all:
                print("   ", sql[:160])
        if args.profile == name:
            prof = cProfile.Profile(time.process_time)  # CPU, not waiting
            prof.enable()
            for _ in range(args.requests):
                fn()
            prof.disable()
            stats = pstats.Stats(prof).sort_stats(os.environ.get("PROFILE_SORT", "tottime"))
            stats.print_stats(30)
            if os.environ.get("PROFILE_CALLERS"):
                stats.print_callers(os.environ["PROFILE_CALLERS"])


if __name__ == "__main__":
    main()
