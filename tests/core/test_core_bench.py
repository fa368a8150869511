"""bin/bench's smoke run: seeds a tiny data set (bench/seed.py: the plugins' services and
models), serves learnplat and the baseline with learnplat.testing's launcher, drives the
anonymous catalogue and the authenticated floor with wrk, samples the served processes with
py-spy (--spy) and writes its JSON report (PostgreSQL + Redis only, needs wrk)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from learnplat.testing import backend

ROOT = Path(__file__).resolve().parents[2]

# The PostgreSQL + Redis pass only: bin/test keeps LEARNPLAT_TEST_DATABASE_URL set in its
# SQLite pass too, where this test ran the very same benchmark (on PostgreSQL) a second time.
pytestmark = pytest.mark.skipif(
    backend() != "postgres" or not os.environ.get("LEARNPLAT_TEST_DATABASE_URL")
    or not shutil.which("wrk"),
    reason="needs the PostgreSQL backend (LEARNPLAT_TEST_DATABASE_URL) and wrk")


def test_bench_quick_catalogue(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNPLAT_")}
    env["LEARNPLAT_BENCH_DATABASE_URL"] = os.environ["LEARNPLAT_TEST_DATABASE_URL"]
    env["LEARNPLAT_BENCH_REDIS_URL"] = (os.environ.get("LEARNPLAT_TEST_REDIS_URL")
                                        or "redis://127.0.0.1:6379/12")
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--only", "catalogue_anon,floor_auth",
         "--spy", "--shared-redis", "--output", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    result = report["results"]["catalogue_anon"]
    assert result["errors"] == 0
    assert result["rps"] > 0 and result["baseline_rps"] > 0 and result["ratio"] > 0
    rows = report["data"]["rows"]
    plan = report["data"]["plan"]
    assert {k: rows[k] for k in plan} == plan  # every tenant, user, course, module, enrollment
    for table in ("course_tags", "quizzes", "quiz_questions", "course_progress",
                  "module_progress", "quiz_attempts", "student_quizzes", "notifications"):
        assert rows[table] > 0, table
    assert rows["quizzes"] == plan["courses"] and rows["course_progress"] == plan["enrollments"]
    assert "| catalogue_anon |" in proc.stdout
    floor = report["results"]["floor_auth"]
    assert floor["errors"] == 0 and floor["rps"] > 0 and floor["status"] == {
        "200": floor["requests"]}  # authenticated: every token accepted
    # --spy: the web workers were sampled while they served, with their stacks kept
    sampled = result["spy"]
    assert sampled["web"]["processes"] == 2 and sampled["web"]["samples"] > 0
    frames = " ".join(name for _pct, name in sampled["web"]["inclusive_pct"])
    assert "App.__call__ (falcon/app.py)" in frames
    raw = sorted(p.name for p in Path(sampled["dir"]).iterdir())
    assert any(n.startswith("catalogue_anon-asgi-web-") for n in raw)
