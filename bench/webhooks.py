"""Webhook delivery benchmark (issue 27; docs/performance.md "Webhooks"): real processes.

    .venv/bin/python -m bench.webhooks [--endpoints 4] [--events 250] [--threads 2]
                                       [--rate 10] [--seconds 8] [--quick]

One `learnplat worker` process (the Huey consumer, `--threads` threads: the `queue.workers`
default is 2) on PostgreSQL + Redis delivers the events this process records to webhook
endpoints served on loopback by this process (bench.webhooks.Inbox: 200 at once). Three
phases, each measured from the commit that recorded an event to its arrival at an endpoint:

* burst: `--events` events recorded in one transaction, each subscribed to by `--endpoints`
  endpoints of one school: deliveries per second of the worker (event dispatch, fan-out,
  signing, the HTTP requests and the attempt log: the whole path) and per CPU second of
  the worker process;
* healthy: events recorded one per transaction, paced at `--rate` a second for `--seconds`
  (open loop): the event-to-delivery latency p50/p99/max over every delivery;
* dead: the same with one more endpoint of the same school subscribed to the same events,
  a port that accepts connections and never answers (the worker's read timeout, breaker
  and backoff at their defaults): the healthy endpoints' latency beside the previous phase,
  and how often the dead one was tried.

LEARNPLAT_BENCH_DATABASE_URL: PostgreSQL admin URL (a fresh database is made and dropped);
LEARNPLAT_BENCH_REDIS_URL: the Redis database (keys under a fresh prefix, deleted after; never
flushed). Prints a JSON report.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench import common

EVENT = "progress.module_completed.v1"
PHASES = {"burst": 1, "healthy": 2, "dead": 3}  # the module_id the events of a phase carry


class Inbox:
    """A loopback HTTP server taking every POST at once (200), remembering when each
    delivery arrived (time.time()) by endpoint (the URL path) and by the event's
    `data.user_id` (the sequence number the benchmark gave the event)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.arrivals: dict[tuple[str, int, int], float] = {}  # (path, phase, seq) -> first
        self.requests = 0
        self.repeats = 0
        self.secrets: dict[str, str] = {}  # path -> signing secret: the first one is verified
        self.verified: dict[str, bool] = {}
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                now = time.time()
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                inbox.arrived(self.path, body, dict(self.headers.items()), now)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def arrived(self, path: str, body: bytes, headers: dict[str, str], at: float) -> None:
        data = json.loads(body)["data"]
        key = (path, int(data["module_id"]), int(data["user_id"]))
        with self.lock:
            self.requests += 1
            if key in self.arrivals:
                self.repeats += 1
            else:
                self.arrivals[key] = at
            check = path in self.secrets and path not in self.verified
            if check:
                self.verified[path] = False
        if check:  # the first delivery to each endpoint: signed as Standard Webhooks says
            self.verified[path] = verify(self.secrets[path], body, headers)

    def count(self, phase: int, paths: set[str] | None = None) -> int:
        with self.lock:
            return sum(1 for (p, ph, _s) in self.arrivals if ph == phase
                       and (paths is None or p in paths))

    def times(self, phase: int, paths: set[str]) -> dict[tuple[str, int], float]:
        with self.lock:
            return {(p, s): t for (p, ph, s), t in self.arrivals.items()
                    if ph == phase and p in paths}

    def __enter__(self) -> Inbox:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def verify(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    try:
        from standardwebhooks import Webhook
    except ImportError:  # the test extra is not installed: nothing to check with
        return True
    try:
        Webhook(secret).verify(body, {k.lower(): v for k, v in headers.items()})
        return True
    except Exception:
        return False


class DeadPort:
    """A port that accepts connections and never answers: each connection is one attempt
    of the worker, held until the worker gives up (its read timeout) and closes it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.held.append(conn)

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/dead"

    def __enter__(self) -> DeadPort:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` and its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until(check: Callable[[], bool], timeout: float, what: str,
               proc: Any = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log else ""
            raise RuntimeError(f"the worker exited ({proc.returncode}) waiting for {what}:\n"
                               f"{tail}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.01)


class World:
    """The database, this process's runtime (queueing into the worker's Redis queue), the
    school and its endpoints."""

    def __init__(self, tmp: Path, admin: str, redis_url: str) -> None:
        self.tmp = tmp
        self.tdb = common.make_database(admin, "whbench")
        self.prefix = f"lpbench-wh-{uuid.uuid4().hex[:8]}"
        self.redis_url = redis_url
        self.env = {
            "LEARNPLAT_HOME": str(common.ROOT),
            "LEARNPLAT_DATABASE_URL": self.tdb.url, "LEARNPLAT_REDIS_URL": redis_url,
            "LEARNPLAT_REDIS_PREFIX": self.prefix,
            "LEARNPLAT_APP_SECRET_KEY": common.SECRET,
            "LEARNPLAT_APP_VAR_DIR": str(tmp / "var"),
            "LEARNPLAT_STORAGE_URL": f"file://{tmp / 'var' / 'storage'}",
            "LEARNPLAT_QUEUE_IMMEDIATE": "false",
            "LEARNPLAT_QUEUE_EMBEDDED_WORKER": "false",
            # The worker dispatches the events (this process only records them).
            "LEARNPLAT_EVENTS_INLINE_DISPATCH": "false",
            "LEARNPLAT_TENANCY_CACHE_SECONDS": "0",
            "LEARNPLAT_LIMITS_ENABLED": "false",
            # The receivers are on loopback, over plain HTTP: allowed explicitly, as a test
            # does; every other [outbound] setting keeps its default.
            "LEARNPLAT_OUTBOUND_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
            "LEARNPLAT_OUTBOUND_REQUIRE_HTTPS": "false",
        }
        os.environ.update(self.env)
        from learnplat.migrate import migrate
        from learnplat.runtime import create_runtime

        self.runtime = create_runtime()
        migrate(self.runtime)
        from learnplat.testing import make_tenant

        self.tenant = make_tenant(self.runtime, slug=f"northfield-{uuid.uuid4().hex[:6]}",
                                  name="Northfield")
        from learnplat_identity.testing import UserFactory

        self.admin = UserFactory(self.runtime, self.tenant).make("admin")
        from learnplat.http.app import create_app
        from learnplat.testing import Client

        self.client = Client(create_app(self.runtime), self.tenant, self.admin.token)

    def endpoint(self, url: str) -> dict[str, Any]:
        r = self.client.post("/webhooks/endpoints", json={
            "url": url, "event_types": [EVENT], "description": "bench"})
        if r.status_code != 201:
            raise RuntimeError(f"POST /webhooks/endpoints: {r.status_code} {r.text[:500]}")
        return dict(r.json)

    def record(self, phase: int, seqs: range) -> float:
        """Record one event per number of `seqs` in one transaction; the commit's time."""
        from learnplat_progress.events import ModuleCompleted

        from learnplat import db
        from learnplat.tenancy import tenant_context

        with db.connection(), tenant_context(self.tenant):
            with db.transaction():
                for seq in seqs:
                    self.runtime.events.record(ModuleCompleted(
                        course_id=42, module_id=phase, user_id=seq, source="manual"))
            return time.time()

    def queued(self, phase: int) -> dict[tuple[str, int], float]:
        """When the fan-out queued each message of `phase` (the engine's created_at), by
        endpoint id and sequence number."""
        from learnplat import db
        from learnplat.tenancy import tenant_context

        with db.connection(), tenant_context(self.tenant):
            found = self.runtime.outbound.messages("webhooks", limit=100_000)
        return {(m.ref, int(m.payload["data"]["user_id"])): m.created_at.timestamp()
                for m in found if m.payload["data"]["module_id"] == phase}

    def worker(self, threads: int, log: Path) -> Any:
        import subprocess

        cli = Path(sys.executable).with_name("learnplat")
        env = common.clean_env(**self.env)
        with log.open("ab") as out:
            return subprocess.Popen([str(cli), "worker", "--workers", str(threads)], env=env,
                                    stdout=out, stderr=subprocess.STDOUT)

    def close(self) -> None:
        from learnplat.testing import forget_redis_keys

        common.close_pool()
        self.tdb.drop()
        forget_redis_keys(self.redis_url, self.prefix)


def paced(world: World, inbox: Inbox, phase: int, rate: float, seconds: float,
          paths: dict[str, str]) -> dict[str, Any]:
    """Events recorded one per transaction at `rate` a second for `seconds` (open loop),
    then every delivery to `paths` (path -> endpoint id) awaited: latency from each event's
    commit to its arrival at each endpoint, and its two legs."""
    n = max(1, round(rate * seconds))
    committed: dict[int, float] = {}
    lags = []
    start = time.perf_counter()
    for seq in range(n):
        due = start + seq / rate
        if (wait := due - time.perf_counter()) > 0:
            time.sleep(wait)
        lags.append(time.perf_counter() - due)
        committed[seq] = world.record(phase, range(seq, seq + 1))
    want = n * len(paths)
    wait_until(lambda: inbox.count(phase, set(paths)) >= want, 120 + seconds,
               f"{want} deliveries of phase {phase}")
    arrived = inbox.times(phase, set(paths))
    queued = world.queued(phase)
    lat = [(t - committed[s]) * 1000 for (_p, s), t in arrived.items()]
    # The two legs: the event dispatched to the fan-out (outbox -> message queued), and the
    # message sent (queued -> arrived).
    fan = [(queued[(paths[p], s)] - committed[s]) * 1000 for (p, s) in arrived]
    send = [(t - queued[(paths[p], s)]) * 1000 for (p, s), t in arrived.items()]
    return {"events": n, "deliveries": len(lat),
            "p50_ms": round(common.pct(lat, 0.50), 1), "p99_ms": round(common.pct(lat, 0.99), 1),
            "max_ms": round(max(lat), 1),
            "queued_p50_ms": round(common.pct(fan, 0.50), 1),
            "queued_p99_ms": round(common.pct(fan, 0.99), 1),
            "sent_p50_ms": round(common.pct(send, 0.50), 1),
            "sent_p99_ms": round(common.pct(send, 0.99), 1),
            # The shape of the sent leg's tail: a cluster at 0.5-1.5 s is a message that
            # came due while its destination's turn was ending, queued again with a delay.
            "sent_ms_histogram": {
                f"<{hi}" if hi else f">={lo}": sum(1 for x in send if lo <= x and (
                    not hi or x < hi)) for lo, hi in ((0, 100), (100, 450), (450, 0))},
            "recording_lag_max_ms": round(max(lags) * 1000, 1)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    admin, redis_url = common.pop_bench_env()
    machine = common.machine()
    tmp = Path(tempfile.mkdtemp(prefix="lp-bench-wh-"))
    world = World(tmp, admin, redis_url)
    proc = None
    log = tmp / "worker.log"
    try:
        with Inbox() as inbox, DeadPort() as dead:
            paths: dict[str, str] = {}  # path -> endpoint id
            for i in range(args.endpoints):
                path = f"/hooks/{i}"
                made = world.endpoint(inbox.url(path))
                inbox.secrets[path] = made["secret"]
                paths[path] = str(made["id"])
            proc = world.worker(args.threads, log)
            # Warm-up: the worker started (its imports, connections) and delivering.
            warm = world.record(0, range(3))
            wait_until(lambda: inbox.count(0, set(paths)) >= 3 * len(paths), 60,
                       "the warm-up deliveries", proc, log)
            warm_ms = round((time.time() - warm) * 1000, 1)

            # 1. burst
            phase = PHASES["burst"]
            want = args.events * len(paths)
            cpu0 = process_cpu_seconds(proc.pid)
            t0 = world.record(phase, range(args.events))
            wait_until(lambda: inbox.count(phase, set(paths)) >= want, 300,
                       f"the burst's {want} deliveries", proc, log)
            cpu = process_cpu_seconds(proc.pid) - cpu0
            last = max(inbox.times(phase, set(paths)).values())
            span = last - t0
            burst = {"events": args.events, "endpoints": len(paths), "deliveries": want,
                     "seconds": round(span, 2), "per_second": round(want / span, 1),
                     "worker_cpu_seconds": round(cpu, 2),
                     "per_cpu_second": round(want / cpu, 1) if cpu else None}
            print(f"  burst: {json.dumps(burst)}", file=sys.stderr)

            # 2. healthy endpoints only
            healthy = paced(world, inbox, PHASES["healthy"], args.rate, args.seconds, paths)
            print(f"  healthy: {json.dumps(healthy)}", file=sys.stderr)

            # 3. one dead endpoint of the same school beside them
            world.endpoint(dead.url())
            with_dead = paced(world, inbox, PHASES["dead"], args.rate, args.seconds, paths)
            with_dead["dead_endpoint_connections"] = dead.accepted
            print(f"  with a dead endpoint: {json.dumps(with_dead)}", file=sys.stderr)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        world.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "what": (f"one `learnplat worker` process ({args.threads} threads), PostgreSQL + "
                 f"Redis, {args.endpoints} endpoints of one school on loopback answering "
                 "200 at once; latency from the commit recording an event to its arrival"),
        "machine": {**machine, "loadavg_at_end": [round(x, 2) for x in os.getloadavg()]},
        "options": dict(vars(args)),
        "threads": args.threads, "warmup_ms": warm_ms,
        "verified": all(inbox.verified.get(p, False) for p in paths),
        "repeated_deliveries": inbox.repeats,
        "burst": burst, "healthy": healthy, "with_dead_endpoint": with_dead,
        "p99_factor": (round(with_dead["p99_ms"] / healthy["p99_ms"], 2)
                       if healthy["p99_ms"] else None),
    }


def scenario(admin: str, redis_url: str, quick: bool) -> dict[str, Any]:
    """bin/bench's `webhooks` scenario: this module in its own process (its own database),
    its report summarised for the table."""
    import subprocess

    env = common.clean_env(LEARNPLAT_BENCH_DATABASE_URL=admin,
                           LEARNPLAT_BENCH_REDIS_URL=redis_url)
    proc = subprocess.run([sys.executable, "-m", "bench.webhooks",
                           *(["--quick"] if quick else [])], cwd=common.ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        return {"errors": 1, "error": proc.stderr.strip()[-800:]}
    return summary(json.loads(proc.stdout))


def summary(data: dict[str, Any]) -> dict[str, Any]:
    """The figures of a report bin/bench's table shows, the report under `detail`."""
    return {"what": data["what"], "per_second": data["burst"]["per_second"],
            "per_cpu_second": data["burst"]["per_cpu_second"],
            "healthy_p50_ms": data["healthy"]["p50_ms"],
            "healthy_p99_ms": data["healthy"]["p99_ms"],
            "dead_p50_ms": data["with_dead_endpoint"]["p50_ms"],
            "dead_p99_ms": data["with_dead_endpoint"]["p99_ms"],
            "errors": 0 if data["verified"] else 1, "detail": data}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--endpoints", type=int, default=4)
    ap.add_argument("--events", type=int, default=250, help="events of the burst")
    ap.add_argument("--threads", type=int, default=2, help="the worker's threads")
    ap.add_argument("--rate", type=float, default=10.0, help="paced events per second")
    ap.add_argument("--seconds", type=float, default=8.0, help="length of a paced phase")
    ap.add_argument("--quick", action="store_true", help="smoke run: small burst, short phases")
    args = ap.parse_args(argv)
    if args.quick:
        args.events, args.seconds = min(args.events, 20), min(args.seconds, 1.5)
    print(json.dumps(run(args), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
