"""bin/bench's `webhooks` scenario, smoke run (bench/webhooks.py --quick): a real `learnplat
worker` delivers a burst and two paced phases to receivers on loopback, the last with a dead
endpoint beside them, and the report holds every figure (PostgreSQL + Redis only, as the
bench itself)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report import table
from bench.webhooks import summary
from learnplat.testing import backend

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.e2e,
    # Once per suite run: in the PostgreSQL pass (bin/test runs SQLite, then PostgreSQL).
    pytest.mark.skipif(backend() != "postgres" or not os.environ.get(
        "LEARNPLAT_TEST_DATABASE_URL"), reason="PostgreSQL + Redis only, as bin/bench"),
]


def test_bench_webhooks_quick() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNPLAT_")}
    env["LEARNPLAT_BENCH_DATABASE_URL"] = os.environ["LEARNPLAT_TEST_DATABASE_URL"]
    env["LEARNPLAT_BENCH_REDIS_URL"] = (os.environ.get("LEARNPLAT_TEST_REDIS_URL")
                                        or "redis://127.0.0.1:6379/12")
    proc = subprocess.run([sys.executable, "-m", "bench.webhooks", "--quick"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["verified"]  # signed deliveries, checked with the reference library
    burst = report["burst"]
    assert burst["deliveries"] == burst["events"] * burst["endpoints"]
    assert burst["per_second"] > 0 and burst["per_cpu_second"] > 0
    for phase in ("healthy", "with_dead_endpoint"):
        r = report[phase]
        assert r["deliveries"] == r["events"] * burst["endpoints"]
        assert 0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"]
    assert report["with_dead_endpoint"]["dead_endpoint_connections"] >= 1
    # bin/bench's line under its table
    text = table({"started_at": "now", "machine": {"nproc": 2}, "results": {
        "webhooks": summary(report)}})
    assert f"webhooks: {burst['per_second']} deliveries/s per worker process" in text
