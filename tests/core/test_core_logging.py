"""Logging as an operator sees it (issue 34, item 7): real `learnplat serve` and `learnplat
worker` processes from a fresh home, their output read as journald would get it.

* `learnplat serve`: gunicorn's master and workers and the embedded queue worker log through
  the same configuration (time, level, logger, [request id, client, school]); one access line
  per request, with the request id, the resolved client and the school.
* An outage (Redis on a closed port): each failure kind once with its traceback, then one
  "repeated N times" line per interval, instead of a traceback per request or per poll.
* An idle `learnplat worker` writes no INFO line about its periodic housekeeping tasks.

The filters themselves (learnplat.logs) are also exercised in-process with real records and
real exceptions, where the timing would make a process test slow.
"""

from __future__ import annotations

import io
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import peewee
import pytest
import redis
import requests

from learnplat.logs import PeriodicTaskFilter, RepeatFilter, failure_kind
from learnplat.testing import free_port, fresh_home_env, wait_until_serving

LEARNPLAT = Path(sys.executable).with_name("learnplat")  # the console script
PASSWORD = "correct horse battery"
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
                  r"(\S+) ")


def learnplat(env: dict[str, str], *args: str) -> str:
    r = subprocess.run([str(LEARNPLAT), *args], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def start(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    """A long-running command, its stdout and stderr in `log` (as journald gets them; a pipe
    nobody reads meanwhile would fill and stop the server)."""
    with log.open("wb") as out:
        return subprocess.Popen([str(LEARNPLAT), *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen[bytes], sig: int, log: Path) -> str:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return log.read_text()


def kinds_with_traceback(out: str) -> Counter[str]:
    """How many times each (level, logger, message) line was followed by a traceback."""
    lines = out.splitlines()
    found: Counter[str] = Counter()
    for i, line in enumerate(lines[:-1]):
        if LINE.match(line) and lines[i + 1].startswith("Traceback"):
            # The message without ids, addresses and numbers: its kind.
            found[re.sub(r"[0-9a-f-]{8,}|\d+", "N", line.split(" ", 3)[3])] += 1
    return found


@pytest.mark.e2e
def test_serve_logs_access_lines_and_an_outage_in_a_few_lines(tmp_path: Path) -> None:
    env = fresh_home_env(tmp_path)
    learnplat(env, "migrate")
    learnplat(env, "tenants", "create", "demo", "--name", "Demo School", "--domain",
              "demo.localhost", "--admin-email", "boss@demo.example", "--admin-password",
              PASSWORD)
    # Redis "down" from the start: the key-value store, the rate limits and the embedded
    # worker's queue fail on every call (a port bound and released: nothing listens, so
    # refused, not a timeout). Summaries every 2 s instead of every 60.
    port = free_port()
    env.update(LEARNPLAT_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
               LEARNPLAT_LOGGING_REPEAT_SECONDS="2")
    log = tmp_path / "serve.log"
    proc = start(env, log, "serve", "--bind", f"127.0.0.1:{port}", "--workers", "1")
    base = f"http://127.0.0.1:{port}"
    codes: Counter[int] = Counter()
    try:
        wait_until_serving(base, proc, log.read_text)
        # The catalogue answers without Redis (rate limits not enforced: a warning); a login
        # cannot (503: a logged error). 25 of each over ~5 s: two summary intervals.
        for i in range(25):
            r = requests.get(f"{base}/courses", timeout=10,
                             headers={"X-Tenant": "demo", "X-Request-Id": f"catalogue-{i}"})
            codes[r.status_code] += 1
            r = requests.post(f"{base}/auth/login", timeout=10,
                              headers={"X-Tenant": "demo", "X-Request-Id": f"login-{i}"},
                              json={"email": "boss@demo.example", "password": PASSWORD})
            codes[r.status_code] += 1
            time.sleep(0.2)
        time.sleep(2.5)  # the last interval's summaries
    finally:
        out = stop(proc, signal.SIGTERM, log)
    assert codes == {200: 25, 503: 25}, (codes, out[-3000:])
    # gunicorn's master and worker lines are formatted as the app's.
    assert re.search(r"^\S+ \S+ INFO gunicorn\.error \[- - -\] Listening at: ", out, re.M), out
    assert re.search(r"^\S+ \S+ INFO gunicorn\.error \[- - -\] started embedded queue worker",
                     out, re.M), out
    # One access line per request: client, request line, status, bytes, duration, school, id.
    access = [line for line in out.splitlines() if " INFO gunicorn.access " in line]
    assert len([line for line in access if "/courses" in line or "/auth/login" in line]) == 50
    assert re.search(r'^\S+ \S+ INFO gunicorn\.access 127\.0\.0\.1 "GET /courses HTTP/1\.1" '
                     r'200 \d+ \d+ms demo catalogue-0 "python-requests/\S+"$', out, re.M), access
    assert re.search(r'^\S+ \S+ INFO gunicorn\.access 127\.0\.0\.1 "POST /auth/login HTTP/1\.1" '
                     r'503 \d+ \d+ms demo login-0 ', out, re.M), access
    # The app's warning in that request: time, level, logger, [request id, client, school].
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING learnplat\.ratelimit "
                     r"\[catalogue-0 127\.0\.0\.1 demo\] rate limits not enforced", out, re.M), out
    assert re.search(r"^\S+ \S+ ERROR learnplat\.http \[login-0 127\.0\.0\.1 demo\] dependency "
                     r"unavailable on POST /auth/login", out, re.M), out
    # The outage: 25 failed logins, two queue consumer threads and a scheduler polling a dead
    # Redis for ~8 s. Each kind's first line (with its traceback for the queue's) and then
    # summaries; before, a traceback per poll (~100 in 10 s) and an error line per request.
    tracebacks = kinds_with_traceback(out)
    assert tracebacks and all(n <= 2 for n in tracebacks.values()), tracebacks
    assert sum(tracebacks.values()) <= 8, tracebacks
    logins = re.findall(r"ERROR learnplat\.http \[\S+ \S+ demo\] dependency unavailable on "
                        r"POST /auth/login.*", out)
    assert 2 <= len(logins) <= 6, logins  # the first, then one summary per 2 s
    assert any(re.search(r"\(repeated (\d+ times|once) in the last 2 s\)$", line)
               for line in logins)
    summed = sum(1 if m == "once" else int(m.split()[0]) for m in re.findall(
        r"dependency unavailable on POST /auth/login.*\(repeated (\d+ times|once)", out))
    assert summed + 1 >= 20, logins  # what was held back is counted (the last may be pending)
    assert re.search(r"ERROR huey\.consumer\.\w+ \[- - -\] Error reading .*\(repeated "
                     r"(\d+ times|once) in the last 2 s: ConnectionError: ", out), out[-3000:]


@pytest.mark.e2e
def test_an_idle_worker_is_quiet(tmp_path: Path) -> None:
    """Periodic housekeeping (five tasks a minute) wrote 15 INFO lines a minute; the consumer
    runs them at once at start, so a short run shows whether they are still announced."""
    env = fresh_home_env(tmp_path)
    learnplat(env, "migrate")
    log = tmp_path / "worker.log"
    proc = start(env, log, "worker", "--workers", "1")
    try:
        time.sleep(12)
    finally:
        out = stop(proc, signal.SIGINT, log)
    lines = out.splitlines()
    assert any("Periodic tasks are enabled" in line for line in lines), out
    info = [line for line in lines if (m := LINE.match(line)) and m.group(1) == "INFO"]
    periodic = [line for line in info if re.search(
        r"Enqueueing periodic task|requeue_pending|notifications\.recover|flush_heartbeats|"
        r"close_expired|sweep_events", line)]
    assert not periodic, "\n".join(periodic)
    # Once started (the banner, the task list and the one-off start-up dispatch), nothing.
    started = next(i for i, line in enumerate(lines) if "Periodic tasks are enabled" in line)
    after = [line for line in lines[started + 1:] if LINE.match(line)
             and "dispatch_events" not in line and "huey.consumer [" not in line]
    assert not after, "\n".join(after)


# -- the filters, in-process ---------------------------------------------------------------


def _logger(name: str, *filters: logging.Filter) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    for f in filters:
        handler.addFilter(f)
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def _redis_refused() -> redis.ConnectionError:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    try:  # no retries: redis-py's default backoff would take seconds per refusal
        redis.Redis(port=free_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
                    ).ping()
    except redis.ConnectionError as exc:
        return exc
    raise AssertionError("something listens on the closed port")


def _database_refused() -> peewee.OperationalError:
    db = peewee.PostgresqlDatabase("x", host="127.0.0.1", port=free_port(), user="x",
                                   connect_timeout=1)
    try:
        db.connect()
    except peewee.OperationalError as exc:
        return exc
    raise AssertionError("something listens on the closed port")


def test_a_failure_kind_is_logged_once_then_summarised_per_interval() -> None:
    repeats = RepeatFilter(interval=0.3)
    log, stream = _logger("lptest.repeats", repeats)
    down = _redis_refused()
    for i in range(20):
        try:
            raise down
        except redis.ConnectionError:
            log.exception("could not read %s", f"key{i}")
    time.sleep(0.5)  # the interval ends: one summary, from the filter's own thread
    text = stream.getvalue()
    # One traceback (its chain: ConnectionRefusedError, then redis's ConnectionError from it).
    assert text.count("ConnectionRefusedError") == 1, text
    assert text.startswith("ERROR lptest.repeats could not read key0\nTraceback"), text
    assert re.search(r"^ERROR lptest\.repeats could not read key19 \(repeated 19 times in the "
                     r"last 0\.3 s: ConnectionError: .*\)$", text, re.M), text
    # A quiet interval ends the kind: the next failure is a first again, traceback included.
    time.sleep(0.5)
    stream.truncate(0)
    stream.seek(0)
    try:
        raise down
    except redis.ConnectionError:
        log.exception("could not read %s", "again")
    assert stream.getvalue().count("ConnectionRefusedError") == 1


def test_kinds_are_told_apart_and_defects_never_held_back() -> None:
    repeats = RepeatFilter(interval=60)
    log, stream = _logger("lptest.kinds", repeats)
    database = _database_refused()
    assert failure_kind(logging.makeLogRecord({"args": (database,)})) is peewee.OperationalError
    for _ in range(5):
        log.error("dependency unavailable: %r", database)  # the exception as an argument
        log.warning("store failed: %s", _redis_refused())
        try:
            {}["missing"]
        except KeyError:
            log.exception("a defect")  # every one has its request id: none held back
        log.info("a line with no exception")
    text = stream.getvalue()
    assert text.count("dependency unavailable") == 1
    assert text.count("store failed") == 1
    assert text.count("ERROR lptest.kinds a defect") == 5
    assert text.count("a line with no exception") == 5
    # Several handlers sharing the filter agree on each record (no second one "repeated").
    second = io.StringIO()
    other = logging.StreamHandler(second)
    other.addFilter(repeats)
    log.addHandler(other)
    log.error("new kind: %r", _redis_refused())
    assert "new kind" in stream.getvalue() and "new kind" in second.getvalue()


def test_periodic_task_lines_are_debug() -> None:
    from huey import MemoryHuey, crontab

    huey = MemoryHuey(immediate=True)
    periodic = huey.periodic_task(crontab(minute="*"), name="lptest.sweep")(lambda: None)
    one_off = huey.task(name="lptest.once")(lambda: None)
    log, stream = _logger("huey", PeriodicTaskFilter())
    periodic()
    one_off()
    text = stream.getvalue()
    assert "lptest.sweep" not in text, text
    assert re.search(r"^INFO huey \S*lptest\.once: \S+ executed in", text, re.M), text
    # Asked for (logging.toml: [loggers.huey] level = "DEBUG"), they are shown, as DEBUG.
    log.setLevel(logging.DEBUG)
    periodic()
    assert re.search(r"^DEBUG huey \S*lptest\.sweep: \S+ executed in", stream.getvalue(), re.M)
