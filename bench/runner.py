"""How bin/bench measures a scenario: sample requests, a warm-up, then alternating baseline and
learnplat wrk runs (the best run counts), optionally one more run under py-spy; the baseline
server; the scenarios run as their own processes (certificates, WebSockets)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import common, spy
from bench.scenarios import TARGETS, Scenario
from bench.wrk import Item, run_wrk, write_lua

# Before each baseline run the whole machine must be this quiet (cores busy), not only
# learnplat's processes (--quick skips it: its smoke run shares the machine with the tests).
QUIET_MACHINE_CORES = 0.35


def sample(base: str, items: list[Item], n: int = 3) -> list[dict[str, Any]]:
    """Send the first few requests of a scenario once and keep status and (for errors) the
    start of the body: a scenario that fails is shown failing, with its reason."""
    import requests

    out = []
    for it in items[:n]:
        headers = {"X-Tenant": it.tenant} if it.tenant else {}
        if it.token:
            headers["Authorization"] = f"Bearer {it.token}"
        if it.body:
            headers["Content-Type"] = "application/json"
        headers.update(it.headers)
        r = requests.request(it.method, base + it.path, headers=headers,
                             data=it.body or None, timeout=30)
        entry: dict[str, Any] = {"status": r.status_code}
        if r.status_code >= 300:
            entry["body"] = r.text[:300]
        out.append(entry)
    return out


def start_baseline(port: int, log: Path) -> subprocess.Popen[bytes]:
    """bench/baseline.py under gunicorn gthread, 2 workers x 4 threads (learnplat's serving
    model's WSGI twin), started like every bench server (learnplat.testing's launcher)."""
    return common.start_server(
        [str(Path(sys.executable).parent / "gunicorn"), "--no-control-socket", "-k",
         "gthread", "--threads", "4", "-w", "2", "-b", f"127.0.0.1:{port}",
         "bench.baseline:app"],
        f"http://127.0.0.1:{port}", common.clean_env(), common.ROOT, log)


def limits_section() -> bool:
    """Whether this learnplat knows a [limits] section (per-user / per-tenant API rate
    limits): then the throughput runs switch it off (an unknown section would stop start-up)."""
    import learnplat.settings as s

    settings_model = getattr(s, "Settings", None)
    fields = getattr(settings_model, "model_fields", {}) or {}
    return "limits" in fields or hasattr(s, "LimitsSettings")


def measure(wrk: str, base: str, baseline_url: str, sc: Scenario, args: argparse.Namespace,
            tmp: Path, kind: str, server_pid: int | None = None) -> dict[str, Any]:
    if sc.prepare is not None:
        sc.prepare(base)
    items = sc.items()
    checked = sample(base, items)
    sc.consumed(len(checked))
    runs = []
    script = tmp / f"{sc.name}.lua"
    # warm-up: caches, pools, the first requests of each worker
    write_lua(sc.items(), script)
    conns = sc.connections or args.connections
    warm = run_wrk(wrk, base, args.warmup, conns, script)
    sc.consumed(warm["requests"] + conns)  # those still in flight were sent too
    quiet = []
    for _ in range(args.runs):
        if server_pid is not None:
            quiet.append(spy.wait_quiet(server_pid, machine_cores=None if args.quick
                                        else QUIET_MACHINE_CORES))
        b = run_wrk(wrk, baseline_url, args.seconds, args.connections, None)
        write_lua(sc.items(), script)
        r = run_wrk(wrk, base, args.seconds, conns, script)
        sc.consumed(r["requests"] + conns)
        r["baseline_rps"] = b["rps"]
        r["baseline_p50_ms"], r["baseline_p99_ms"] = b["p50_ms"], b["p99_ms"]
        r["ratio"] = round(r["rps"] / b["rps"], 3) if b["rps"] else None
        runs.append(r)
    best = max(runs, key=lambda r: r["rps"])
    # Best against best: both sides suffer the same noise (and gunicorn's uneven spread of
    # keep-alive connections over its 2 workers, which halves either side in some runs), so
    # the ratio of the two best runs is the stable one; a same-round ratio inflates whenever
    # that round's baseline was the unlucky one.
    best_baseline = max(r["baseline_rps"] for r in runs)
    errors = sum(r["non_2xx"] + r["socket_errors"] for r in runs) + warm["non_2xx"]
    bad_samples = [c for c in checked if c["status"] not in sc.ok]
    status: dict[str, int] = {}
    for r in runs:
        for code, n in r.get("status", {}).items():
            status[code] = status.get(code, 0) + n
    first_errors = [r["first_error"] for r in [warm, *runs] if r.get("first_error")]
    res = {"what": sc.what, "worker_class": kind, "connections": conns, "rps": best["rps"],
           "status": status, **({"first_error": first_errors[0]} if first_errors else {}),
           "p50_ms": best["p50_ms"], "p99_ms": best["p99_ms"],
           "bytes_per_answer": best.get("bytes_per_answer"),
           "baseline_rps": best_baseline,
           "ratio": (round(best["rps"] / best_baseline, 3) if best_baseline else None)
           if sc.ratio else None,
           "target_ratio": TARGETS.get(sc.name), "errors": errors,
           "requests": sum(r["requests"] for r in runs), "samples": checked, "runs": runs,
           "waited_for_quiet_s": quiet}
    res.update(sc.state)
    if args.spy and server_pid is not None:
        res["spy"] = profile_served(wrk, base, sc, args, script, server_pid, f"{sc.name}-{kind}")
    if bad_samples:
        res["errors"] = errors or len(bad_samples)
        res["sample_errors"] = bad_samples
    return res


def profile_served(wrk: str, base: str, sc: Scenario, args: argparse.Namespace, script: Path,
                   server_pid: int, name: str) -> dict[str, Any]:
    """One more (uncounted) run of the scenario while py-spy samples the served processes."""
    processes = spy.served_processes(server_pid)
    spy.wait_quiet(server_pid)
    write_lua(sc.items(), script)
    rec = spy.record(args.pyspy, processes, args.seconds, args.spy_dir, name)
    r = run_wrk(wrk, base, args.seconds, sc.connections or args.connections, script)
    sc.consumed(r["requests"] + (sc.connections or args.connections))
    summary = spy.summarize(rec.wait())
    return {"rps_while_sampled": r["rps"], "dir": str(args.spy_dir), **summary}


def certificates(admin: str, n: int) -> dict[str, Any]:
    """bench/certificates_issue.py on PostgreSQL: the issue task's body, one thread."""
    env = common.clean_env(LEARNPLAT_BENCH_DATABASE_URL=admin)
    proc = subprocess.run([sys.executable, "-m", "bench.certificates_issue", "--postgres",
                           "--certificates", str(n)], cwd=common.ROOT, env=env,
                          capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        return {"errors": 1, "error": proc.stderr.strip()[-800:]}
    data = json.loads(proc.stdout)
    return {"what": "certificates issued per second by one worker thread (PDF + QR + "
                    "Open Badges VC-JWT + storage + row + event), PostgreSQL",
            "per_second": data["per_second"], "per_cpu_second": data["per_cpu_second"],
            "p50_ms": data["ms_p50"], "p95_ms": data["ms_p95"], "errors": 0, "detail": data}


def websocket(admin: str, redis_url: str, args: argparse.Namespace) -> dict[str, Any]:
    """bench/notifications.py ws: POST /notifications to one user at a time, time until the
    message reaches each of the user's sockets (asgi server, Redis pub/sub)."""
    env = common.clean_env(LEARNPLAT_BENCH_DATABASE_URL=admin,
                           LEARNPLAT_BENCH_REDIS_URL=redis_url)
    proc = subprocess.run([sys.executable, "-m", "bench.notifications", "ws", "--connections",
                           str(args.ws_connections), "--posts", str(args.ws_posts),
                           "--workers", str(args.workers)],
                          cwd=common.ROOT, env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        return {"errors": 1, "error": proc.stderr.strip()[-800:]}
    data = json.loads(proc.stdout)
    missing = data["expected_deliveries"] - data["deliveries"]
    return {"what": f"WebSocket delivery: {data['connected']} sockets, POST /notifications "
                    "to the first delivery at each of the user's devices",
            "p50_ms": data["p50_ms"], "p99_ms": data["p99_ms"], "max_ms": data["max_ms"],
            "deliveries": data["deliveries"], "expected": data["expected_deliveries"],
            "errors": max(0, missing), "detail": data}
