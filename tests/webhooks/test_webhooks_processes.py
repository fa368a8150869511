"""Webhooks delivered by real `learnplat worker` processes (the Huey consumer), issue 27:

* a worker SIGKILLed while an endpoint holds its request open loses nothing: once the lease
  of the dead worker lapses, the sweep hands the destination to the next worker, which sends
  the same message again with the same `webhook-id`;
* two workers on PostgreSQL + Redis deliver a burst to several endpoints of two schools:
  every event reaches every subscribed endpoint, no endpoint ever has two requests at once,
  a repeat is only ever the same message (the same `webhook-id`);
* fairness, as behaviour: a dead endpoint (it accepts the connection and never answers) is
  tried once per backoff step while another school's endpoints get every delivery; a
  school's flood of hundreds of events does not hold another school's single event back
  until the flood is through (each destination gets a turn, then goes to the back), even
  when the minute's sweep runs meanwhile (it never gives a destination a second place in the
  queue).

This process plays the publisher: it records the events in the outbox and queues into the
worker's queue (its own Redis prefix; on SQLite a Huey file of the test's); the worker
dispatches them to the webhooks plugin's fan-out and sends them to receivers on loopback
(receivers.py), which verify each request with the standardwebhooks library.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from receivers import Received, Receiver, Reply

from learnplat import db
from learnplat.tenancy import TenantInfo, tenant_context
from learnplat.testing import Client, backend, forget_redis_keys, make_tenant, use_runtime
from learnplat.testing import test_settings as make_settings

pytestmark = pytest.mark.e2e

EVENT = "progress.module_completed.v1"  # a published event with no side effects to wait for
SWEEP_TASK = "learnplat.outbound_sweep"
DELIVER = "Executing learnplat.task.learnplat.outbound_deliver"  # a worker's log: it runs one


class Dead:
    """An endpoint that accepts every connection and never answers (a hung server): each
    connection is one attempt, held until the worker's read timeout gives up on it."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.accepted: list[float] = []  # time.time() of each connection
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(time.time())
            self._held.append(conn)

    def __enter__(self) -> Dead:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.sock.close()
        for conn in self._held:
            conn.close()


class School:
    """A school whose admin manages endpoints through the API (this process's app)."""

    def __init__(self, procs: Procs, tenant: TenantInfo):
        from learnplat_identity.testing import UserFactory

        self.procs = procs
        self.tenant = tenant
        self.admin = UserFactory(procs.runtime, tenant).make("admin")
        self.api = Client(procs.app, tenant, self.admin.token)
        self.endpoints: dict[int, Receiver] = {}

    def endpoint(self, receiver: Receiver | Dead) -> int:
        url = receiver.url
        if isinstance(receiver, Receiver):
            url = PATHS[receiver] = f"{receiver.url}/{uuid.uuid4().hex[:12]}"
        r = self.api.post("/webhooks/endpoints", json={
            "url": url, "event_types": [EVENT], "description": "e2e"})
        assert r.status_code == 201, r.text
        if isinstance(receiver, Receiver):
            receiver.secrets.append(r.json["secret"])
            self.endpoints[r.json["id"]] = receiver
        return int(r.json["id"])

    def record(self, seqs: range) -> list[int]:
        """One event per number in `seqs` (carried as data.user_id), in one transaction;
        queued for the worker after commit."""
        from learnplat_progress.events import ModuleCompleted

        with db.connection(), tenant_context(self.tenant), db.transaction():
            return [self.procs.runtime.events.record(ModuleCompleted(
                course_id=42, module_id=7, user_id=seq, source="manual")) for seq in seqs]

    def messages(self, endpoint_id: int) -> list[Any]:
        with db.connection(), tenant_context(self.tenant):
            return self.procs.runtime.outbound.messages("webhooks", str(endpoint_id),
                                                        limit=1000)

    def destination(self, endpoint_id: int) -> Any:
        from learnplat.outbound.models import OutboundDestination as D

        with db.connection():
            return D.get((D.tenant == self.tenant.id) & (D.sink == "webhooks")
                         & (D.ref == str(endpoint_id)))


class Procs:
    """This process's runtime, queueing into the workers' queue, and the workers."""

    def __init__(self, lp_runtime: Any, lp_database: Any, tmp: Path):
        from learnplat.http.app import create_app
        from learnplat.runtime import create_runtime

        self.tmp = tmp
        self.prefix = f"{lp_runtime.settings.redis.prefix}-wh{uuid.uuid4().hex[:8]}"
        self.redis_url = lp_database.redis_url
        queue_path = tmp / "huey.db"  # SQLite: the queue is a file the workers share
        settings = make_settings(tmp, lp_database.url, self.redis_url,
                                 redis={"prefix": self.prefix},
                                 queue={"immediate": False, "sqlite_path": str(queue_path)},
                                 events={"inline_dispatch": False},
                                 storage={"url": lp_runtime.settings.storage.url})
        self.runtime = create_runtime(settings)
        self.app = create_app(self.runtime)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNPLAT_")}
        self.env.update({
            "LEARNPLAT_DATABASE_URL": lp_database.url,
            "LEARNPLAT_REDIS_URL": self.redis_url,
            "LEARNPLAT_REDIS_PREFIX": self.prefix,
            "LEARNPLAT_QUEUE_IMMEDIATE": "false",
            "LEARNPLAT_QUEUE_SQLITE_PATH": str(queue_path),
            "LEARNPLAT_STORAGE_URL": lp_runtime.settings.storage.url,
            "LEARNPLAT_APP_VAR_DIR": str(tmp / "var"),
            "LEARNPLAT_APP_SECRET_KEY": settings.app.secret_key,
            "LEARNPLAT_TENANCY_CACHE_SECONDS": "0",
            "LEARNPLAT_EVENTS_INLINE_DISPATCH": "false",
            "LEARNPLAT_OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8",
            "LEARNPLAT_OUTBOUND_REQUIRE_HTTPS": "false",
        })
        self.workers: list[tuple[subprocess.Popen[bytes], Path]] = []

    def school(self) -> School:
        return School(self, make_tenant(self.runtime))

    def worker(self, threads: int = 2, **outbound: Any) -> subprocess.Popen[bytes]:
        """A `learnplat worker` with these [outbound] settings; its log is worker<n>.log."""
        env = {**self.env, **{f"LEARNPLAT_OUTBOUND_{k.upper()}": str(v)
                              for k, v in outbound.items()}}
        log = self.tmp / f"worker{len(self.workers)}.log"
        cli = Path(sys.executable).with_name("learnplat")
        with log.open("ab") as out:
            proc = subprocess.Popen([str(cli), "worker", "--workers", str(threads)], env=env,
                                    stdout=out, stderr=subprocess.STDOUT)
        self.workers.append((proc, log))
        return proc

    def ready(self, proc: subprocess.Popen[bytes]) -> None:
        """Wait until the worker has run its start-up tasks (the dispatch, logged, then the
        recovery sweeps and the first periodic ones, which it does not log) and the queue is
        empty: what follows meets a worker already at work."""
        log = next(log for p, log in self.workers if p is proc)
        self.wait(lambda: "dispatch_events" in log.read_text(errors="replace")
                  and self.runtime.queue.huey.pending_count() == 0, 60, "the worker's start")
        time.sleep(0.2)  # the last of them finishing

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
                         for _proc, log in self.workers)

    def wait(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        """Poll `check()` until it is truthy; fail after `timeout` s or when a worker that
        was not killed on purpose has exited."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            for proc, _log in self.workers:
                if proc.poll() not in (None, -signal.SIGKILL):
                    raise AssertionError(f"a worker exited ({proc.returncode}) while waiting "
                                         f"for {what}\n{self.logs()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}\n"
                                     f"{self.logs()}")
            time.sleep(0.01)

    def close(self) -> None:
        for proc, _log in self.workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        forget_redis_keys(self.redis_url, self.prefix)


@pytest.fixture
def procs(lp_runtime: Any, lp_database: Any, tmp_path: Path) -> Iterator[Procs]:
    p = Procs(lp_runtime, lp_database, tmp_path)
    with use_runtime(p.runtime):
        try:
            yield p
        finally:
            p.close()
            PATHS.clear()


# Each receiver's endpoint URL (a path of its own): the workers also sweep up what other tests
# of the session left due in the shared database, and such a leftover could reach a receiver
# here that happens to listen on a port another test's receiver had. Only this test's
# requests are looked at.
PATHS: dict[Receiver, str] = {}


def mine(rx: Receiver) -> list[Received]:
    """The requests `rx` received for its endpoint of this test, in order."""
    path = PATHS[rx].split("/", 3)[3]
    return [item for item in list(rx.received) if item.path == f"/{path}"]


def seq_of(item: Received) -> int:
    return int(item.json["data"]["user_id"])


def by_event(received: list[Received]) -> dict[int, list[Received]]:
    out: dict[int, list[Received]] = defaultdict(list)
    for item in received:
        out[seq_of(item)].append(item)
    return out


def assert_each_once_or_repeated(rx: Receiver, seqs: range) -> dict[int, list[Received]]:
    """Every event arrived, every request verified with the reference library, and the
    requests for one event all carry one webhook-id (a repeat is the same message); two
    events never share one."""
    got = by_event(mine(rx))
    assert sorted(got) == list(seqs)
    assert all(item.verified for item in mine(rx)), [i.error for i in mine(rx)][:3]
    ids = {seq: {item.webhook_id for item in items} for seq, items in got.items()}
    assert all(len(v) == 1 for v in ids.values()), ids
    assert len({next(iter(v)) for v in ids.values()}) == len(seqs)
    return got


# -- a worker killed mid-delivery --------------------------------------------------------------

# Short: the killed worker's lease lapses within seconds (it must outlast a turn plus one
# attempt's timeouts: 0.5 + 0.5 + 3).
KILL_SETTINGS = {"lease_seconds": 4.5, "turn_seconds": 0.5, "connect_timeout": 0.5,
                 "read_timeout": 3, "jitter": 0}


def test_a_worker_killed_mid_delivery_loses_nothing_and_repeats_the_same_id(procs):
    school = procs.school()
    events = range(6)
    with Receiver() as held, Receiver(default=Reply(delay=0.02)) as other:
        a, b = school.endpoint(held), school.endpoint(other)
        held.script(200, 200, Reply(hang=True))  # the third request is held open
        school.record(events)
        first = procs.worker(**KILL_SETTINGS)
        procs.wait(lambda: len(mine(held)) >= 3, 60, "the held request")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        killed_at = time.time()
        in_flight = mine(held)[2]
        lease = school.destination(a)
        assert lease.leased_by is not None and lease.leased_by.split(":")[1] == str(first.pid)
        # Nothing settled the held message: it is still pending, its attempt unrecorded.
        pending = {m.key: m for m in school.messages(a)}[in_flight.webhook_id.removeprefix(
            "msg_")]
        assert (pending.status, pending.attempts) == ("pending", 0)

        # A new worker at once: its start-up sweep leaves the destination to the dead
        # worker's lease; once the lease lapses, the sweep (every minute; queued here, not
        # waited for) hands it over.
        procs.worker(**KILL_SETTINGS)
        lapse = lease.lease_until.timestamp()
        procs.wait(lambda: time.time() > lapse + 0.1, 10, "the lease to lapse")
        procs.runtime.queue.enqueue(SWEEP_TASK)
        procs.wait(lambda: len(by_event(mine(held))) == len(events)
                   and len(by_event(mine(other))) == len(events)
                   and all(m.status == "delivered" for e in (a, b)
                           for m in school.messages(e)), 60, "every delivery")

    at_a = assert_each_once_or_repeated(held, events)
    assert_each_once_or_repeated(other, events)
    # The held message arrived again, with the same id and content, after the lease.
    again = [i for i in mine(held)[3:] if i.webhook_id == in_flight.webhook_id]
    assert len(again) == 1 and again[0].body == in_flight.body
    assert again[0].at >= lapse
    # The only repeat at the held endpoint is the held message.
    assert {seq for seq, items in at_a.items() if len(items) > 1} == {seq_of(in_flight)}
    for endpoint in (a, b):
        assert {(m.status, m.last_status) for m in school.messages(endpoint)} == {
            ("delivered", 200)}
    print(f"\nkilled mid-delivery: redelivered {again[0].at - killed_at:.1f} s after the "
          f"kill (lease {KILL_SETTINGS['lease_seconds']} s)")


# -- two workers --------------------------------------------------------------------------------


@pytest.mark.skipif(backend() != "postgres",
                    reason="two workers on one queue: PostgreSQL + Redis only (as the other "
                           "multi-worker tests; SQLite's queue is per machine)")
def test_two_workers_deliver_a_burst_one_request_at_a_time_per_endpoint(procs):
    schools = [procs.school(), procs.school()]
    per_school = 30
    receivers = [Receiver(default=Reply(delay=0.01)) for _ in range(4)]
    for rx in receivers:
        rx.start()
    try:
        for i, rx in enumerate(receivers):
            schools[i % 2].endpoint(rx)
        # Short turns: the destinations change hands between the workers all the time.
        settings = {"turn_messages": 3}
        workers = [procs.worker(**settings), procs.worker(**settings)]
        for proc in workers:  # both at work before the burst: it is theirs to share
            procs.ready(proc)
        for start in range(0, per_school, 5):  # several commits, several dispatch tasks
            for school in schools:
                school.record(range(start, start + 5))
        procs.wait(lambda: all(len(by_event(mine(rx))) == per_school
                               for rx in receivers), 90, "every delivery")
        procs.wait(lambda: all(m.status == "delivered" for s in schools for e in s.endpoints
                               for m in s.messages(e)), 30, "every message settled")
    finally:
        for rx in receivers:
            rx.stop()
    for rx in receivers:
        assert_each_once_or_repeated(rx, range(per_school))
        assert rx.max_in_flight == 1
    # Another school's events never reached these endpoints: each got its own school's.
    for school in schools:
        for rx in school.endpoints.values():
            assert {i.json["type"] for i in mine(rx)} == {EVENT}
    ran = [log.read_text().count(DELIVER) for _proc, log in procs.workers]
    assert all(n > 0 for n in ran), ran  # both workers delivered
    assert all(p.poll() is None for p in workers)
    repeats = sum(len(mine(rx)) - per_school for rx in receivers)
    print(f"\ntwo workers: deliver tasks per worker {ran}, repeats {repeats}")


# -- fairness -----------------------------------------------------------------------------------


def test_a_dead_endpoint_is_tried_once_per_backoff_step_while_others_deliver(procs):
    dead_school, healthy = procs.school(), procs.school()
    events = range(10)
    with Dead() as dead, Receiver() as r1, Receiver() as r2, Receiver() as r3:
        dead_id = dead_school.endpoint(dead)
        for rx in (r1, r2, r3):
            healthy.endpoint(rx)
        # The breaker opens at the first failure: the destination then waits retry_schedule
        # [0] (1 s) for a probe, and after the probe's failure [1] (10 minutes).
        procs.worker(read_timeout=0.5, connect_timeout=0.5, breaker_failures=1,
                     retry_schedule="1,600", jitter=0)
        started = time.time()
        dead_school.record(events)
        healthy.record(events)
        procs.wait(lambda: all(len(by_event(mine(rx))) == len(events)
                               for rx in (r1, r2, r3))
                   and dead_school.destination(dead_id).consecutive_failures >= 2, 60,
                   "the healthy deliveries and the dead endpoint's failed probe")
        tried = list(dead.accepted)
        done = max(i.at for rx in (r1, r2, r3) for i in mine(rx)) - started
        print(f"\ndead endpoint tried at {[round(t - started, 2) for t in tried]} s, healthy "
              f"deliveries done at {done:.2f} s")
        d = dead_school.destination(dead_id)
        messages = dead_school.messages(dead_id)
    for rx in (r1, r2, r3):
        assert_each_once_or_repeated(rx, events)
    # Two attempts in all (the first, then the probe after the first step), not one per
    # message: the other messages wait untouched, the destination for the second step.
    assert len(tried) == 2, tried
    assert tried[1] - tried[0] >= 1.0
    assert sum(m.attempts for m in messages) == 2
    assert {m.status for m in messages} == {"pending"}
    assert d.consecutive_failures == 2
    assert d.open_until - dt.datetime.now(dt.UTC) > dt.timedelta(minutes=9)


def test_a_schools_flood_does_not_hold_another_schools_event_until_it_is_through(procs):
    flooding, other = procs.school(), procs.school()
    flood = 200
    with Receiver(default=Reply(delay=0.003)) as fx, Receiver() as vx:
        flooding.endpoint(fx)
        other.endpoint(vx)
        # One worker thread: every destination waits for the same thread, so only the turns
        # (20 messages, then the back of the queue) let the other school in.
        procs.ready(procs.worker(threads=1, turn_messages=20))
        flooding.record(range(flood))
        procs.wait(lambda: mine(fx), 60, "the flood to start")
        other.record(range(1))
        recorded = time.time()
        single = procs.wait(lambda: mine(vx), 60, "the other school's event")[0]
        procs.wait(lambda: len(by_event(mine(fx))) == flood, 120, "the whole flood")
    before = [i for i in mine(fx) if i.at < single.at]
    assert len(by_event(before)) < flood, "the other school's event waited for the flood"
    # Round robin: between its commit and its delivery, the flood got the rest of the turn
    # under way, the turn queued before the other school's deliver task, and (should the
    # minute's sweep queue the flood's destination once more meanwhile) one more turn.
    meanwhile = [i for i in before if i.at >= recorded]
    assert len(meanwhile) <= 4 * 20, len(meanwhile)
    assert_each_once_or_repeated(fx, range(flood))
    assert_each_once_or_repeated(vx, range(1))
    print(f"\nflood: the other school's event arrived after {len(before)} of {flood} "
          f"flood deliveries, {len(meanwhile)} of them after it was recorded")


def test_the_minutes_sweep_gives_a_flooding_school_no_extra_turns(procs):
    """As above, with three sweeps (three minutes' worth) run while the flood is delivered:
    the other school's event still waits for no more than the turns round robin allows."""
    flooding, other = procs.school(), procs.school()
    flood = 200
    with Receiver(default=Reply(delay=0.003)) as fx, Receiver() as vx:
        flooding.endpoint(fx)
        other.endpoint(vx)
        procs.ready(procs.worker(threads=1, turn_messages=20))
        flooding.record(range(flood))
        procs.wait(lambda: mine(fx), 60, "the flood to start")
        for _ in range(3):
            procs.runtime.queue.enqueue(SWEEP_TASK)
        procs.wait(lambda: not any(SWEEP_TASK in m.name
                                   for m in procs.runtime.queue.huey.pending()), 60,
                   "the sweeps")
        other.record(range(1))
        recorded = time.time()
        single = procs.wait(lambda: mine(vx), 60, "the other school's event")[0]
        procs.wait(lambda: len(by_event(mine(fx))) == flood, 120, "the whole flood")
    meanwhile = [i for i in mine(fx) if recorded <= i.at < single.at]
    assert len(meanwhile) <= 3 * 20, len(meanwhile)
