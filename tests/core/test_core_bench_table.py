"""bin/bench's table: a ratio measured against a disturbed baseline is never called met."""

from __future__ import annotations

from bench.run import table


def _result(ratio: float, **extra: object) -> dict[str, object]:
    return {"rps": 3000.0, "p50_ms": 5.0, "p99_ms": 9.0, "baseline_rps": 3000 / ratio,
            "ratio": ratio, "target_ratio": 0.5, "errors": 0, **extra}


def test_a_disturbed_baseline_is_flagged_and_not_counted():
    report = {"started_at": "now", "machine": {"nproc": 2}, "results": {
        "heartbeat": _result(0.7, baseline_disturbed={"median_baseline_rps": 8800.0}),
        "catalogue_anon": _result(0.52)}}
    lines = {line.split("|")[1].strip(): line for line in table(report).splitlines()
             if line.startswith("| ") and "scenario" not in line}
    assert "ok (baseline disturbed: not counted)" in lines["heartbeat"]
    assert lines["catalogue_anon"].endswith(" ok | 0 |")
