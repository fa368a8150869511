"""bench/spy.py (bin/bench --spy): finding the served processes and summing py-spy's stacks."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench import spy

# A stand-in for `learnplat serve`: a "gunicorn" master forking two "gunicorn" workers and the
# embedded queue worker ("learnplat.cli worker"), as the real one does (the names are what the
# search looks at: the processes' command lines).
_MASTER = """
import subprocess, sys, time
kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "gunicorn"])
        for _ in range(2)]
kids.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                              "learnplat.cli worker"]))
print("ready", flush=True)
time.sleep(60)
"""


def test_served_processes_are_the_web_workers_and_the_queue_worker() -> None:
    master = subprocess.Popen([sys.executable, "-c", _MASTER, "gunicorn"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert master.stdout is not None and master.stdout.readline().strip() == "ready"
        for _ in range(50):
            found = spy.served_processes(master.pid)
            if len(found) == 3:
                break
            time.sleep(0.05)
        assert sorted(found.values()) == ["queue", "web", "web"]
        assert master.pid not in found  # the master only forks and watches
    finally:
        for pid in spy.served_processes(master.pid):
            subprocess.run(["kill", str(pid)], check=False)
        master.kill()
        master.wait()


def test_summarize_counts_each_frame_once_per_stack_and_the_innermost_as_self(
        tmp_path: Path) -> None:
    raw = tmp_path / "heartbeat-asgi-web-1.txt"
    raw.write_text(
        "run (loop.py:10);handle (app.py:5);auth (auth.py:7);auth (auth.py:9) 3\n"
        "run (loop.py:10);handle (app.py:5);send (io.py:2) 1\n")
    queue = tmp_path / "heartbeat-asgi-queue-2.txt"
    queue.write_text("loop (huey.py:1);wait (threading.py:3) 4\n")
    out = spy.summarize([(1, "web", raw), (2, "queue", queue)])
    web = out["web"]
    assert web["samples"] == 4 and web["processes"] == 1
    incl = {name: pct for pct, name in web["inclusive_pct"]}
    # line numbers are dropped; a recursive frame counts once per stack
    assert incl == {"run (loop.py)": 100.0, "handle (app.py)": 100.0, "auth (auth.py)": 75.0,
                    "send (io.py)": 25.0}
    assert web["self_pct"][0] == [75.0, "auth (auth.py)"]
    assert out["queue"]["samples"] == 4
