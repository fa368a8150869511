"""The `fairness` scenario of bin/bench (issue 16): one tenant floods the API, another keeps
its latency.

* The FLOODING tenant gets its own, low tenant budget through its tenant settings
  (`settings.limits.tenant_rate` / `tenant_burst`, applied with the runtime's tenant service
  before the server starts: the server caches tenants for 60 s).
* The VICTIM tenant keeps the bench configuration's budgets (beyond the load).
* A paced client (`paced`) sends the victim's requests at a fixed rate, open loop (each
  request is sent at its scheduled time by a pool of threads, whatever the previous ones
  take), first alone, then while wrk floods the server with the flooding tenant's students.

`run` starts the scenario's server and drives the rounds (wrk from bench.wrk).
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import common
from bench.wrk import Item, run_wrk, write_lua


@dataclass
class Caller:
    tenant: str
    token: str
    courses: list[int]


def callers(runtime: Any, tenant: Any, n: int) -> list[Caller]:
    """Access tokens for up to `n` enrolled students of a seeded tenant (bench.seed's
    TenantData), issued by the identity service in-process."""
    from learnplat_identity.api import IDENTITY

    from learnplat import db
    from learnplat.tenancy import tenant_context

    ident = runtime.service(IDENTITY)
    info = runtime.tenants.require(tenant.slug)
    out = []
    with db.connection(), tenant_context(info), db.transaction():
        for uid in [u for u in tenant.students if tenant.enrolled.get(u)][:n]:
            token = ident.issue_pair(ident.get_user(uid))["access_token"]
            out.append(Caller(tenant.slug, token, sorted(tenant.enrolled[uid])))
    return out


@contextmanager
def tenant_limits(runtime: Any, slug: str, **limits: float) -> Iterator[dict[str, Any]]:
    """Set `settings.limits` of tenant `slug` (merged into its other settings) through the
    tenant service, as `learnplat tenants apply` does; put the previous settings back after."""
    from learnplat import db
    from learnplat.tenants import TenantSpec

    def apply(settings: dict[str, Any]) -> dict[str, Any]:
        with db.connection():
            cur = runtime.tenants.require(slug)
            runtime.tenants.apply(TenantSpec(
                slug=cur.slug, name=cur.name, domains=list(cur.domains), enabled=cur.enabled,
                disabled_plugins=sorted(cur.disabled_plugins), settings=settings))
            return dict(runtime.tenants.require(slug).settings)

    with db.connection():
        before = dict(runtime.tenants.require(slug).settings)
    merged = {**before, "limits": {**(before.get("limits") or {}), **limits}}
    try:
        yield apply(merged)
    finally:
        apply(before)
        common.close_pool()


def paced(base: str, who: list[Caller], rate: float, seconds: float,
          stop: threading.Event | None = None) -> dict[str, Any]:
    """GET /courses/{id} (a course the caller is enrolled in; callers rotated) `rate` times a
    second for `seconds`, open loop. Latency is from the moment a request is sent to the end
    of its answer (thread-local keep-alive sessions); `lag_max_ms` is how late the client
    itself sent a request (a busy client would hide latency: it should stay small)."""
    import requests

    local = threading.local()
    lock = threading.Lock()
    lat: list[float] = []
    status: dict[str, int] = {}
    lags: list[float] = []
    first_error: list[str] = []

    def one(i: int, due: float) -> None:
        c = who[i % len(who)]
        s = getattr(local, "s", None)
        if s is None:
            s = local.s = requests.Session()
        headers = {"X-Tenant": c.tenant, "Authorization": f"Bearer {c.token}"}
        path = f"/courses/{c.courses[(i // len(who)) % len(c.courses)]}"
        t0 = time.perf_counter()
        try:
            r = s.get(base + path, headers=headers, timeout=30)
            code = str(r.status_code)
            if r.status_code >= 300 and not first_error:
                first_error.append(f"{code} {r.text[:300]}")
        except requests.RequestException as exc:
            code = "error"
            if not first_error:
                first_error.append(f"error {exc}"[:300])
        ms = (time.perf_counter() - t0) * 1000
        with lock:
            lat.append(ms)
            status[code] = status.get(code, 0) + 1
            lags.append((t0 - due) * 1000)

    n = max(1, round(rate * seconds))
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=32) as pool:
        for i in range(n):
            due = start + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            if stop is not None and stop.is_set():
                break
            pool.submit(one, i, due)
    elapsed = time.perf_counter() - start
    ok = sum(v for k, v in status.items() if k.startswith("2"))
    res = {"requests": len(lat), "per_second": round(len(lat) / elapsed, 1),
           "p50_ms": round(common.pct(lat, 0.50), 1), "p99_ms": round(common.pct(lat, 0.99), 1),
           "max_ms": round(max(lat, default=0.0), 1), "status": status,
           "non_2xx": len(lat) - ok, "lag_max_ms": round(max(lags, default=0.0), 1),
           "latencies_ms": [round(x, 2) for x in lat]}
    if first_error:
        res["first_error"] = first_error[0]
    return res


def run(wrk: str, runtime: Any, seeded: Any, env: dict[str, str], args: argparse.Namespace,
        tmp: Path, servers: list[Any], limited: bool = True) -> dict[str, Any]:
    """Issue 16's fairness: the flooding tenant (the last seeded one) gets `--flood-rate` /
    `--flood-burst` as its tenant budget (settings.limits, before its own server starts); the
    victim (the one before it) keeps the configuration's budgets. Each round: the victim's
    paced client alone, then the same client while wrk floods the same endpoint with the
    flooding tenant's students (tokens rotated: the tenant budget, not the per-user one,
    stops it). Latencies of all rounds are pooled per phase; the factor is flooded p99 /
    unloaded p99 (per round too). With `--limits off` (`limited` false) the same load runs
    with nothing refused: what the limits buy the victim."""
    flood_t, victim_t = seeded.tenants[-1], seeded.tenants[-2]
    flood = callers(runtime, flood_t, max(20, args.tokens // 2))
    victim = callers(runtime, victim_t, 20)
    rng = random.Random(16)
    items = [Item("GET", f"/courses/{rng.choice(c.courses)}", c.tenant, c.token)
             for c in (flood[i % len(flood)] for i in range(2000))]
    rng.shuffle(items)
    script = tmp / "fairness.lua"
    write_lua(items, script)
    seconds = max(4.0, 2 * args.seconds)  # per phase: 10 s by default, 4 s with --quick
    rounds = max(2, args.runs)
    conns = args.connections
    limits = {"tenant_rate": args.flood_rate, "tenant_burst": args.flood_burst}
    out_rounds: list[dict[str, Any]] = []

    def flood_run(box: dict[str, Any]) -> None:
        try:
            box["wrk"] = run_wrk(wrk, base, seconds, conns, script)
        except Exception as exc:  # reported, not raised from the thread
            box["error"] = str(exc)

    with tenant_limits(runtime, flood_t.slug, **limits) as applied:
        port = common.free_port()
        print(f"starting learnplat serve for fairness ({flood_t.slug} limits "
              f"{applied.get('limits')})", file=sys.stderr)
        server = common.start_learnplat(env, port, args.workers, tmp / "fairness.log")
        servers.append(server)
        base = f"http://127.0.0.1:{port}"
        try:
            paced(base, victim, args.victim_rate, 1.0)  # warm-up: pools, caches
            run_wrk(wrk, base, 1, conns, script)
            for _ in range(rounds):
                time.sleep(max(1.0, args.flood_burst / args.flood_rate))  # budget whole again
                alone = paced(base, victim, args.victim_rate, seconds - 1)
                box: dict[str, Any] = {}
                th = threading.Thread(target=flood_run, args=(box,))
                th.start()
                time.sleep(0.5)  # the victim's window lies within the flood's
                flooded = paced(base, victim, args.victim_rate, seconds - 1)
                th.join()
                if "error" in box:
                    return {"errors": 1, "error": box["error"]}
                out_rounds.append({"alone": alone, "flooded": flooded, "flood": box["wrk"]})
        finally:
            common.stop(server)
            servers.remove(server)

    return summarize(out_rounds, args, victim_t.slug, len(victim), flood_t.slug, len(flood),
                     seconds, limited)


def summarize(out_rounds: list[dict[str, Any]], args: argparse.Namespace, victim_slug: str,
              victims: int, flood_slug: str, floods: int, seconds: float, limited: bool
              ) -> dict[str, Any]:
    """The report of the rounds: latencies pooled per phase, the flood's statuses."""
    conns, rounds = args.connections, len(out_rounds)
    pool = {phase: [x for r in out_rounds for x in r[phase]["latencies_ms"]]
            for phase in ("alone", "flooded")}

    def pooled(phase: str, q: float) -> float:
        return round(common.pct(pool[phase], q), 1)

    for r in out_rounds:  # per-request latencies are pooled, not kept in the report
        r["factor"] = round(r["flooded"]["p99_ms"] / r["alone"]["p99_ms"], 2)
        for phase in ("alone", "flooded"):
            r[phase].pop("latencies_ms")
    status: dict[str, int] = {}
    for r in out_rounds:
        for code, n in r["flood"].get("status", {}).items():
            status[code] = status.get(code, 0) + n
    total = sum(status.values()) or 1
    ok = sum(n for code, n in status.items() if code.startswith("2"))
    other = {code: n for code, n in status.items() if code != "429" and not code.startswith("2")}
    socket_errors = sum(r["flood"]["socket_errors"] for r in out_rounds)
    victim_bad = sum(r[p]["non_2xx"] for r in out_rounds for p in ("alone", "flooded"))
    unloaded_p99, flooded_p99 = pooled("alone", 0.99), pooled("flooded", 0.99)
    return {
        "what": (f"victim tenant: GET /courses/{{id}} paced at {args.victim_rate:g}/s alone, "
                 f"then while wrk -c{conns} floods the same endpoint as another tenant whose "
                 f"tenant budget is {args.flood_rate:g}/s (burst {args.flood_burst}); "
                 f"{rounds} rounds of {seconds:g} s per phase, latencies pooled per phase"),
        "factor": round(flooded_p99 / unloaded_p99, 2) if unloaded_p99 else None,
        "factor_rounds": [r["factor"] for r in out_rounds],
        "victim": {
            "tenant": victim_slug, "callers": victims, "rate": args.victim_rate,
            "unloaded_p50_ms": pooled("alone", 0.5), "unloaded_p99_ms": unloaded_p99,
            "flooded_p50_ms": pooled("flooded", 0.5), "flooded_p99_ms": flooded_p99,
            "requests": sum(r[p]["requests"] for r in out_rounds for p in ("alone", "flooded")),
            "non_2xx": victim_bad},
        "flood": {
            "tenant": flood_slug, "callers": floods, "connections": conns,
            "limited": limited,
            "tenant_rate": args.flood_rate, "tenant_burst": args.flood_burst,
            "rps": round(sum(r["flood"]["rps"] for r in out_rounds) / len(out_rounds), 1),
            "requests": sum(status.values()), "status": status,
            "share_429": round(status.get("429", 0) / total, 4),
            "ok_per_second": round(ok / (seconds * len(out_rounds)), 1),
            # the budget's rate plus one whole burst per flood (it refills between rounds)
            "ok_allowed_per_second": (round(args.flood_rate + args.flood_burst / seconds, 1)
                                      if limited else None),
            "other": other, "socket_errors": socket_errors},
        "errors": victim_bad + sum(other.values()) + socket_errors,
        "rounds": out_rounds,
    }
