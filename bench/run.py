"""bin/bench: learnplat's throughput and latency, end to end, as ratios to a bare Falcon app.

    bin/bench [--scale 1] [--runs 3] [--seconds 5] [--only catalogue_anon,heartbeat,...]
              [--worker-class asgi|gthread|asgi,gthread] [--quick] [--keep] [--limits on|off]
              [--victim-rate 20] [--flood-rate 50] [--flood-burst 100] [--spy]

1. Makes a fresh PostgreSQL database (LEARNPLAT_BENCH_DATABASE_URL, an admin URL; owned by a
   non-superuser role so RLS applies), flushes a Redis database (LEARNPLAT_BENCH_REDIS_URL,
   default db 12), migrates and seeds it (bench/seed.py: 50 tenants, 20,000 users, 2,000
   courses... x --scale).
2. Starts `learnplat serve` (gunicorn with config/gunicorn.conf.py, 2 workers, the embedded
   queue worker) and the baseline (bench/baseline.py under gunicorn gthread, 2 workers), both
   with learnplat.testing's launcher.
3. For each scenario (bench/scenarios.py), alternates baseline and scenario runs of `wrk -t1
   -c32 -d<seconds> --latency` (bench/wrk.py: Lua scripts rotate tokens, tenants, paths and
   bodies), --runs times (bench/runner.py); reports the best run's requests/s, p50 and p99 and
   its ratio to the best baseline run. With --spy, one more run per scenario while py-spy
   samples the served processes (bench/spy.py).
4. Certificates issued per second by one worker (bench/certificates_issue.py), WebSocket
   delivery latency (bench/notifications.py ws) and webhook deliveries by one worker process
   (bench/webhooks.py), run as their own processes.
5. Fairness between tenants (issue 16; bench/fairness.py).
6. Prints a table (bench/report.py) and writes bench/results/<UTC time>.json.

`--limits off` runs everything with `[limits] enabled = false` (default on, with budgets
beyond the load): two runs show what the limits cost, and what they buy in `fairness`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import common, report, runner, spy, webhooks
from bench import fairness as fair
from bench.report import flag_disturbed, table
from bench.scenarios import SCENARIOS, WRK_SCENARIOS, build_scenarios, make_world
from bench.wrk import ensure_wrk

__all__ = ["flag_disturbed", "main", "table"]  # bench.report's, kept importable from here

RESULTS = common.ROOT / "bench" / "results"
# Limits stay on, so their cost (one Redis script per request, folded with the
# authentication's reads) is in every figure; the budgets are sized so that the load
# generator's few hundred users never meet them. `fairness` measures them.
LIMITS_ON = ("[limits]\nenabled = true\nuser_rate = 1000000\nuser_burst = 1000000\n"
             "heartbeat_rate = 1000000\nheartbeat_burst = 1000000\ntenant_rate = 1000000\n"
             "tenant_burst = 1000000\nanonymous_rate = 1000000\nanonymous_burst = 1000000\n")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="bin/bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="data set size (1: 20,000 users)")
    ap.add_argument("--runs", type=int, default=3, help="alternating runs per scenario (best "
                    "one counts)")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each wrk run")
    ap.add_argument("--warmup", type=float, default=1.0,
                    help="seconds of load before a scenario's runs (fills the per-process "
                         "caches; a caller's course page is cached per caller)")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--only", default="", help=f"comma-separated subset of {','.join(SCENARIOS)}")
    ap.add_argument("--skip", default="", help="comma-separated scenarios to leave out")
    ap.add_argument("--worker-class", default="asgi",
                    help="learnplat's gunicorn worker: asgi (production default), gthread, "
                         "or both (asgi,gthread)")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers (both servers)")
    ap.add_argument("--threads", type=int, default=0,
                    help="learnplat's server.threads (default: the setting's, 4)")
    ap.add_argument("--tokens", type=int, default=400, help="students logged in and rotated")
    ap.add_argument("--token-tenants", type=int, default=8,
                    help="tenants the students are taken from")
    ap.add_argument("--certificates", type=int, default=100)
    ap.add_argument("--ws-connections", type=int, default=100)
    ap.add_argument("--ws-posts", type=int, default=50)
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: tiny data set, 1 run of 2 s, few tokens")
    ap.add_argument("--spy", action="store_true",
                    help="after each scenario's counted runs, one more run while py-spy samples "
                         "the served processes; summary in the JSON, raw stacks under "
                         "bench/results/<run>-spy/ (bench/spy.py)")
    ap.add_argument("--keep", action="store_true", help="do not drop the database afterwards")
    ap.add_argument("--shared-redis", action="store_true",
                    help="do not flush the Redis db: keys under a fresh prefix, deleted after "
                         "(for a Redis db others use, e.g. the test suite's)")
    ap.add_argument("--output", default="", help="JSON file (default bench/results/<time>.json)")
    ap.add_argument("--limits", choices=("on", "off"), default="on",
                    help="API rate limits: on (default; budgets beyond the load, so their cost "
                         "is in every figure) or off ([limits] enabled = false): two runs show "
                         "what the limits cost")
    ap.add_argument("--victim-rate", type=float, default=20.0,
                    help="fairness: the victim tenant's paced requests per second")
    ap.add_argument("--flood-rate", type=float, default=50.0,
                    help="fairness: the flooding tenant's tenant_rate (its settings.limits)")
    ap.add_argument("--flood-burst", type=int, default=100,
                    help="fairness: the flooding tenant's tenant_burst")
    return ap


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, list[str], list[str]]:
    """The options (--quick applied), the scenarios chosen and the worker classes."""
    ap = parser()
    args = ap.parse_args(argv)
    if args.quick:
        args.runs, args.seconds = 1, 2.0
        args.tokens, args.token_tenants = min(args.tokens, 40), 2
        args.certificates, args.ws_connections, args.ws_posts = 10, 10, 5
    only = [s for s in args.only.split(",") if s] or list(SCENARIOS)
    skip = {s for s in args.skip.split(",") if s}
    unknown = [s for s in [*only, *skip] if s not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    classes = [c for c in args.worker_class.split(",") if c]
    if any(c not in ("asgi", "gthread") for c in classes):
        ap.error("--worker-class takes asgi, gthread or asgi,gthread")
    return args, [s for s in SCENARIOS if s in only and s not in skip], classes


@dataclass
class Bench:
    """One run of bin/bench: its options, servers, database and report."""

    args: argparse.Namespace
    chosen: list[str]
    classes: list[str]
    admin: str
    redis_url: str
    tmp: Path
    out: Path
    doc: dict[str, Any]  # the JSON report
    wrk: str = ""
    prefix: str = field(default_factory=lambda: f"lpbench-{os.getpid()}-{int(time.time())}")
    servers: list[Any] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # LEARNPLAT_* of every server
    config: Path | None = None
    tdb: Any = None
    runtime: Any = None
    seeded: Any = None
    world: Any = None

    def server_env(self, kind: str) -> dict[str, str]:
        env = common.server_env(self.tdb.url, self.redis_url, self.tmp / "var", **self.env,
                                LEARNPLAT_CONFIG=str(self.config),
                                LEARNPLAT_SERVER_WORKER_CLASS=kind)
        if self.args.threads:
            env["LEARNPLAT_SERVER_THREADS"] = str(self.args.threads)
        return env


def start(argv: list[str] | None) -> Bench:
    args, chosen, classes = parse(argv)
    wrk = ensure_wrk() if any(s in (*WRK_SCENARIOS, "fairness") for s in chosen) else ""
    admin, redis_url = common.pop_bench_env()
    started_at = dt.datetime.now(dt.UTC)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ") + ("-quick" if args.quick else "")
    out = Path(args.output) if args.output else RESULTS / (stamp + ".json")
    args.spy_dir = out.with_name(out.stem + "-spy") if args.spy else None
    args.pyspy = spy.ensure_pyspy() if args.spy else ""
    data = {
        "started_at": started_at.isoformat(timespec="seconds"), "machine": common.machine(),
        "git": report.git_revision(), "options": dict(vars(args)),
        "method": (f"wrk -t1 -c{args.connections} -d{args.seconds:g}s --latency per run; "
                   f"each scenario alternates baseline and learnplat runs {args.runs} times; "
                   "the run with the most requests/s counts, its ratio is to the baseline "
                   "run just before it"),
        "results": {},
    }
    return Bench(args, chosen, classes, admin, redis_url,
                 Path(tempfile.mkdtemp(prefix="lp-bench-")), out, data, wrk)


def prepare(b: Bench) -> None:
    """The database migrated and seeded, the students' tokens, the servers' configuration."""
    b.tdb = common.make_database(b.admin)
    if not b.args.shared_redis:
        common.flush_redis(b.redis_url)
    b.env = {
        "LEARNPLAT_DATABASE_URL": b.tdb.url, "LEARNPLAT_REDIS_URL": b.redis_url,
        "LEARNPLAT_REDIS_PREFIX": b.prefix,
        "LEARNPLAT_APP_SECRET_KEY": common.SECRET,
        "LEARNPLAT_APP_VAR_DIR": str(b.tmp / "var"),
        "LEARNPLAT_STORAGE_URL": f"file://{b.tmp / 'var' / 'storage'}",
        "LEARNPLAT_TENANCY_CACHE_SECONDS": "60",
        # tokens are made once for the whole run, which can take longer than 15 minutes
        "LEARNPLAT_AUTH_ACCESS_TOKEN_TTL": "86400",
        # the load comes from one address and logs the same accounts in again and again
        "LEARNPLAT_IDENTITY_LOGIN_PER_IP": "100000000",
        "LEARNPLAT_IDENTITY_LOGIN_PER_ACCOUNT": "100000000",
    }
    os.environ.update(b.env)
    os.environ["LEARNPLAT_HOME"] = str(common.ROOT)
    # This process's runtime (seeding, tokens) runs its tasks and event deliveries inline:
    # nothing it records is left for the served queue worker to do during the runs.
    os.environ["LEARNPLAT_QUEUE_IMMEDIATE"] = "true"
    from bench.seed import Plan, seed
    from learnplat.migrate import migrate
    from learnplat.runtime import create_runtime

    b.runtime = create_runtime()
    migrate(b.runtime)
    plan = Plan.for_scale(b.args.scale, quick=b.args.quick)
    print(f"seeding {plan.describe()} ...", file=sys.stderr)
    b.seeded = seed(b.runtime, plan, b.tdb.extra[0], log=lambda m: print(m, file=sys.stderr))
    print(f"seeded in {b.seeded.seconds:.1f} s: {b.seeded.rows}", file=sys.stderr)
    b.doc["data"] = {"scale": b.args.scale, "quick": b.args.quick, "plan": plan.describe(),
                        "rows": b.seeded.rows, "seed_seconds": round(b.seeded.seconds, 1)}
    b.world = make_world(b.runtime, b.seeded, b.args.tokens, b.args.token_tenants)
    common.close_pool()
    b.config = b.tmp / "learnplat.toml"
    b.config.write_text("")
    if runner.limits_section() and b.args.limits == "off":
        b.config.write_text("[limits]\nenabled = false\n")
        b.doc["limits"] = "off ([limits] enabled = false)"
    elif runner.limits_section():
        b.config.write_text(LIMITS_ON)
        b.doc["limits"] = "on, budgets beyond the load (cost measured, never refused)"


def run_wrk_scenarios(b: Bench) -> None:
    """The wrk scenarios chosen, against each worker class in turn, beside the baseline."""
    wrk_chosen = [s for s in b.chosen if s in WRK_SCENARIOS]
    if not wrk_chosen:
        return
    scenarios = build_scenarios(b.world, random.Random(1400))
    bport = common.free_port()
    b.servers.append(runner.start_baseline(bport, b.tmp / "baseline.log"))
    burl = f"http://127.0.0.1:{bport}/courses"
    for kind in b.classes:
        port = common.free_port()
        print(f"starting learnplat serve ({kind}, {b.args.workers} workers)", file=sys.stderr)
        server = common.start_learnplat(b.server_env(kind), port, b.args.workers,
                                        b.tmp / f"{kind}.log")
        b.servers.append(server)
        for name in wrk_chosen:
            key = name if len(b.classes) == 1 else f"{name}@{kind}"
            b.doc["results"][key] = runner.measure(
                b.wrk, f"http://127.0.0.1:{port}", burl, scenarios[name], b.args, b.tmp, kind,
                server.pid)
            report.progress(key, b.doc["results"][key])
        common.stop(server)
        b.servers.remove(server)


def run_other_scenarios(b: Bench) -> None:
    results = b.doc["results"]
    if "fairness" in b.chosen:
        results["fairness"] = fair.run(
            b.wrk, b.runtime, b.seeded, b.server_env(b.classes[0]), b.args, b.tmp, b.servers,
            limited=runner.limits_section() and b.args.limits == "on")
        report.progress("fairness", {k: v for k, v in results["fairness"].items()
                                     if k != "rounds"})
    if "certificates" in b.chosen:
        results["certificates"] = runner.certificates(b.admin, b.args.certificates)
        report.progress("certificates", results["certificates"])
    if "websocket" in b.chosen:
        results["websocket"] = runner.websocket(b.admin, b.redis_url, b.args)
        report.progress("websocket", results["websocket"])
    if "webhooks" in b.chosen:
        results["webhooks"] = webhooks.scenario(b.admin, b.redis_url, b.args.quick)
        report.progress("webhooks", {k: v for k, v in results["webhooks"].items()
                                     if k != "detail"})


def clean_up(b: Bench) -> None:
    for proc in b.servers:
        common.stop(proc)
    common.close_pool()
    if b.tdb is not None and b.args.keep:
        print(f"kept database {b.tdb.name} ({b.tdb.url})", file=sys.stderr)
    elif b.tdb is not None:
        b.tdb.drop()
    shutil.rmtree(b.tmp, ignore_errors=True)
    if b.args.shared_redis:
        from learnplat.testing import forget_redis_keys

        forget_redis_keys(b.redis_url, b.prefix)


def finish(b: Bench) -> int:
    """Print the table, write the JSON; 1 when a scenario had errors."""
    flag_disturbed(b.doc)
    b.doc["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    b.doc["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(table(b.doc))
    b.out.parent.mkdir(parents=True, exist_ok=True)
    b.out.write_text(json.dumps(b.doc, indent=2, default=str) + "\n")
    print(f"\nwritten {b.out}")
    return 1 if any(r.get("errors") for r in b.doc["results"].values()) else 0


def main(argv: list[str] | None = None) -> int:
    b = start(argv)
    try:
        prepare(b)
        run_wrk_scenarios(b)
        run_other_scenarios(b)
    finally:
        clean_up(b)
    return finish(b)


if __name__ == "__main__":
    sys.exit(main())
