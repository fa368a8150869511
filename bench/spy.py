"""Profiles of the served processes under load (`bin/bench --spy`).

`bench.profile_requests` measures one request in-process; this answers the other question:
where do the *served* processes spend their time while wrk drives them (the event loop, the
thread hand-off, waiting for the GIL, Redis and PostgreSQL I/O, the app). For each scenario it
runs one extra, uncounted wrk run while py-spy samples every gunicorn web worker and the queue
worker (`py-spy record --gil --format raw --nonblocking`: only the thread holding the GIL, so
the samples are where the process spends its Python CPU, not threads blocked on a socket or
waiting for the GIL; the processes are never paused), writes
the raw stacks under bench/results/<run>-spy/ and a summary of the heaviest frames into the
JSON report. py-spy is installed into the venv on first use (like wrk). `wait_quiet` (used
before every baseline run) waits for the same processes to go idle.
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RATE = 250  # samples per second per process


def ensure_pyspy() -> str:
    here = Path(sys.executable).parent / "py-spy"
    if here.exists():
        return str(here)
    found = shutil.which("py-spy")
    if found:
        return found
    print("py-spy not found: installing it into the venv (pip install py-spy)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "py-spy"], check=True)
    return str(here)


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # the command may hold spaces and parentheses: the ppid follows the last ')'
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids[ppid].append(int(entry))
    return kids


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def served_processes(root: int) -> dict[int, str]:
    """{pid: role} under `root` (the `learnplat serve` process): the gunicorn web workers
    ("web") and the embedded queue worker ("queue"); the gunicorn master only forks and
    watches, so it is left out."""
    kids = _children()
    out: dict[int, str] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        for child in kids.get(pid, ()):
            todo.append(child)
            cmd = _cmdline(child)
            if "learnplat.cli worker" in cmd:
                out[child] = "queue"
            elif "gunicorn" in cmd and "gunicorn" in _cmdline(pid):
                out[child] = "web"  # a gunicorn process forked by the gunicorn master
    return out


def _cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


def _machine_busy_ticks() -> int:
    """CPU ticks the whole machine spent busy (all but idle and iowait), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)


def wait_quiet(root: int, cores: float = 0.1, window: float = 0.5, cap: float = 30.0,
               machine_cores: float | None = None) -> float:
    """Wait until the served processes under `root` use less than `cores` of CPU over
    `window` seconds, and the whole machine less than `machine_cores` (at most `cap`
    seconds; None: the machine is not checked, as in a smoke run beside the test suite); the
    seconds waited. A run must not start while the last one's after-effects
    still run: the heartbeat's write-behind flush, the events' dispatch in the queue worker,
    PostgreSQL's autovacuum or checkpoint after a write scenario (they would slow the baseline
    run that comes next, and inflate the ratio)."""
    hz = os.sysconf("SC_CLK_TCK")
    pids = list(served_processes(root))
    start = time.monotonic()
    while time.monotonic() - start < cap:
        before, machine = _cpu_ticks(pids), _machine_busy_ticks()
        time.sleep(window)
        if ((_cpu_ticks(pids) - before) / hz / window < cores
                and (machine_cores is None
                     or (_machine_busy_ticks() - machine) / hz / window < machine_cores)):
            break
    return round(time.monotonic() - start, 1)


@dataclass
class Recording:
    procs: list[tuple[int, str, Path, subprocess.Popen[bytes]]]

    def wait(self) -> list[tuple[int, str, Path]]:
        done = []
        for pid, role, path, proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            if path.exists():
                done.append((pid, role, path))
        return done


def record(pyspy: str, processes: dict[int, str], seconds: float, out_dir: Path,
           name: str) -> Recording:
    out_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    for pid, role in sorted(processes.items()):
        path = out_dir / f"{name}-{role}-{pid}.txt"
        proc = subprocess.Popen(
            [pyspy, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))),
             "--rate", str(RATE), "--format", "raw", "--nonblocking", "--gil",
             "--output", str(path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append((pid, role, path, proc))
    return Recording(procs)


def _frame(f: str) -> str:
    """'func (path/to/file.py:123)' -> 'func (path/to/file.py)'."""
    head, sep, rest = f.partition(" (")
    return f"{head} ({rest.rsplit(':', 1)[0]})" if sep else f


# Where a web worker's Python time goes, by the first rule a stack matches.
PARTS = (
    ("event loop (HTTP parsing, sending, the bridge's loop side)",
     lambda s: not s.startswith("Thread._bootstrap")),
    ("thread hand-off (pool, futures)", lambda s: "App.__call__ (falcon/app.py" not in s),
    ("authentication + limits (token, one Redis round trip)",
     lambda s: "Passage.authenticate" in s or "Passage.charge" in s),
    ("SQL (peewee + psycopg2)", lambda s: "execute_sql" in s or "psycopg2" in s),
    ("Redis (the route's own)", lambda s: "redis/" in s or "RedisScript" in s),
    ("app (Falcon, middleware, validation, plugin code)", lambda s: True),
)


def parts(stacks: dict[str, int]) -> list[list[Any]]:
    """[[percent, part], ...] of a web worker's samples, by PARTS."""
    total = sum(stacks.values()) or 1
    out: collections.Counter[str] = collections.Counter()
    for stack, n in stacks.items():
        out[next(name for name, match in PARTS if match(stack))] += n
    return [[round(100 * v / total, 1), k] for k, v in out.most_common()]


def summarize(files: list[tuple[int, str, Path]], top: int = 30) -> dict[str, Any]:
    """Per role: samples, and the frames with the largest inclusive share (a frame counts once
    per stack) and self share (the innermost frame: where the time is spent, including the
    waits for the GIL that py-spy attributes to the line that asked for it)."""
    out: dict[str, Any] = {}
    by_role: dict[str, list[Path]] = collections.defaultdict(list)
    for _pid, role, path in files:
        by_role[role].append(path)
    for role, paths in sorted(by_role.items()):
        incl: collections.Counter[str] = collections.Counter()
        leaf: collections.Counter[str] = collections.Counter()
        stacks: collections.Counter[str] = collections.Counter()
        total = 0
        for path in paths:
            for line in path.read_text().splitlines():
                stack, _, n = line.rpartition(" ")
                if not stack or not n.isdigit():
                    continue
                count = int(n)
                total += count
                stacks[stack] += count
                frames = [_frame(f) for f in stack.split(";") if f]
                for f in set(frames):
                    incl[f] += count
                if frames:
                    leaf[frames[-1]] += count
        if not total:
            continue

        def share(c: collections.Counter[str], total: int = total) -> list[list[Any]]:
            return [[round(100 * v / total, 1), k] for k, v in c.most_common(top)]

        out[role] = {"samples": total, "processes": len(paths), "parts_pct": parts(stacks),
                     "inclusive_pct": share(incl), "self_pct": share(leaf)}
    return out
