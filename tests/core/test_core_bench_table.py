"""bin/bench's table: a ratio measured against a disturbed baseline is never called met."""

from __future__ import annotations

from bench.run import flag_disturbed, table


def _result(rps: float, baselines: list[float]) -> dict[str, object]:
    best = max(baselines)
    return {"rps": rps, "p50_ms": 5.0, "p99_ms": 9.0, "baseline_rps": best,
            "ratio": round(rps / best, 3), "target_ratio": 0.5, "errors": 0,
            "runs": [{"baseline_rps": b} for b in baselines]}


def test_a_disturbed_baseline_is_flagged_and_not_counted():
    # Every baseline run of the heartbeat was a halved one (3,300 against 8,800 elsewhere).
    report = {"started_at": "now", "machine": {"nproc": 2}, "results": {
        "heartbeat": _result(2300, [3300, 3200]),
        "catalogue_anon": _result(4500, [8800, 3300])}}
    flag_disturbed(report)
    assert report["results"]["heartbeat"]["baseline_disturbed"]["ratio_to_it"] == 0.261
    assert "baseline_disturbed" not in report["results"]["catalogue_anon"]
    lines = {line.split("|")[1].strip(): line for line in table(report).splitlines()
             if line.startswith("| ") and "scenario" not in line}
    assert ">= 0.5 not counted: baseline disturbed (0.261 to the best)" in lines["heartbeat"]
    assert lines["catalogue_anon"].endswith(" ok | 0 |")
