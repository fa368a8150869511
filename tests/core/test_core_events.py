"""The outbox event bus: nothing from a rolled-back change, isolated handlers with retries and
backoff, at-least-once delivery with a stable id, and delivery by a real `learnplat worker`."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import subprocess
import time

import pytest
from corehelpers import CLI, REPO, build_runtime, cli_env, fake_distribution, run_cli

from learnplat import db
from learnplat.models import EventDelivery, OutboxEvent
from learnplat.registry import EventHandler
from learnplat.tenancy import tenant_context
from learnplat.testing import (
    backend,
    declare_event,
    forget_redis_keys,
    make_tenant,
    use_runtime,
)
from learnplat.testing import test_redis_url as worker_redis_url


@pytest.fixture
def bus_runtime(tmp_path, core_database, _core_runtime):
    """A runtime whose queue is not immediate, so the test decides when dispatch runs."""
    rt = build_runtime(tmp_path, core_database, do_migrate=False,
                       queue={"immediate": False}, redis={"url": ""},
                       events={"max_attempts": 3, "backoff_seconds": 10})
    with use_runtime(rt):
        yield rt


def add_handler(rt, event, name, fn):
    handler = EventHandler(event, name, fn, plugin="tests")
    rt.registry.handlers.append(handler)
    return handler


def record(rt, tenant, name, payload=None, fail=False):
    with db.connection(), tenant_context(tenant):
        try:
            with db.transaction():
                event_id = rt.events.record(declare_event(rt, name)(**(payload or {})))
                if fail:
                    raise RuntimeError("the change fails")
        except RuntimeError:
            pass
    return event_id


def make_due(event_id):
    with db.connection():
        OutboxEvent.update(next_attempt_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).where(
            OutboxEvent.id == event_id).execute()


def test_rolled_back_event_is_never_delivered(bus_runtime):
    tenant = make_tenant(bus_runtime)
    got = []
    add_handler(bus_runtime, "t.rollback.v1", "h", lambda rt, e: got.append(e))
    event_id = record(bus_runtime, tenant, "t.rollback.v1", fail=True)
    bus_runtime.events.dispatch_pending()
    assert got == []
    with db.connection():
        assert OutboxEvent.get_or_none(OutboxEvent.id == event_id) is None
    ok_id = record(bus_runtime, tenant, "t.rollback.v1", {"n": 1})
    bus_runtime.events.dispatch_pending()
    assert [(e.id, e.payload, e.tenant_id) for e in got] == [(ok_id, {"n": 1}, tenant.id)]


def test_handlers_are_isolated_retried_with_backoff_and_finally_failed(bus_runtime, caplog):
    tenant = make_tenant(bus_runtime)
    good, bad_calls = [], []

    def bad(rt, event):
        bad_calls.append((event.id, event.attempt))
        raise ValueError("handler broke")

    add_handler(bus_runtime, "t.iso.v1", "bad", bad)
    add_handler(bus_runtime, "t.iso.v1", "good", lambda rt, e: good.append(e.id))
    event_id = record(bus_runtime, tenant, "t.iso.v1")
    caplog.set_level(logging.WARNING, logger="learnplat.events")

    before = dt.datetime.now(dt.UTC)
    bus_runtime.events.dispatch_pending()
    assert good == [event_id]  # the raising handler did not stop the other
    with db.connection():
        ev = OutboxEvent.get_by_id(event_id)
        assert ev.status == "pending" and ev.attempts == 1
        delay = (ev.next_attempt_at - before).total_seconds()
        assert 9 <= delay <= 12  # backoff_seconds * 2**0
    bus_runtime.events.dispatch_pending()  # not due yet: nothing happens
    assert len(bad_calls) == 1

    make_due(event_id)
    bus_runtime.events.dispatch_pending()
    with db.connection():
        ev = OutboxEvent.get_by_id(event_id)
        delay = (ev.next_attempt_at - dt.datetime.now(dt.UTC)).total_seconds()
        assert 18 <= delay <= 21  # doubled
    make_due(event_id)
    bus_runtime.events.dispatch_pending()

    assert good == [event_id]  # delivered once, never again on retries
    assert bad_calls == [(event_id, 1), (event_id, 2), (event_id, 3)]  # stable id
    with db.connection():
        ev = OutboxEvent.get_by_id(event_id)
        assert ev.status == "failed" and ev.attempts == 3
        deliveries = {d.handler: d for d in EventDelivery.select().where(
            EventDelivery.event == event_id)}
        assert deliveries["tests.good"].status == "done"
        assert deliveries["tests.bad"].status == "failed"
        assert "handler broke" in deliveries["tests.bad"].last_error
    warnings = [r for r in caplog.records if "tests.bad" in r.getMessage()]
    assert len(warnings) == 3
    assert any(r.levelno == logging.ERROR and str(event_id) in r.getMessage()
               for r in caplog.records)
    make_due(event_id)
    bus_runtime.events.dispatch_pending()
    assert len(bad_calls) == 3  # failed is final


def test_handler_writes_roll_back_with_its_failure_and_retry_sees_same_event(bus_runtime):
    from testnotes import Note

    tenant = make_tenant(bus_runtime)
    seen = []

    def flaky(rt, event):
        Note.create(title=f"from event {event.id} attempt {event.attempt}")
        seen.append(event.id)
        if event.attempt == 1:
            raise RuntimeError("first try fails")

    add_handler(bus_runtime, "t.flaky.v1", "flaky", flaky)
    event_id = record(bus_runtime, tenant, "t.flaky.v1")
    bus_runtime.events.dispatch_pending()
    make_due(event_id)
    bus_runtime.events.dispatch_pending()
    assert seen == [event_id, event_id]
    with db.connection(), tenant_context(tenant), db.transaction():
        assert [n.title for n in Note.select()] == [f"from event {event_id} attempt 2"]
        assert OutboxEvent.get_by_id(event_id).status == "done"


def test_a_failed_handler_leaves_no_after_commit_work_behind(bus_runtime):
    """A handler that asked for work after commit (a task enqueued, on_commit) and then failed
    rolls that back with its writes; a handler that succeeded beside it keeps its own."""
    tenant = make_tenant(bus_runtime)
    ran = []

    def fails_after_asking(rt, event):
        db.on_commit(lambda: ran.append(("failed handler", event.attempt)))
        if event.attempt == 1:
            raise RuntimeError("after asking for work")

    def succeeds(rt, event):
        db.on_commit(lambda: ran.append(("good handler", event.attempt)))

    add_handler(bus_runtime, "t.asks.v1", "asks", fails_after_asking)
    add_handler(bus_runtime, "t.asks.v1", "good", succeeds)
    event_id = record(bus_runtime, tenant, "t.asks.v1")
    bus_runtime.events.dispatch_pending()
    assert ran == [("good handler", 1)]
    make_due(event_id)
    bus_runtime.events.dispatch_pending()
    assert ran == [("good handler", 1), ("failed handler", 2)]


def test_an_event_no_plugin_declares_is_left_for_a_worker_that_knows_it(bus_runtime):
    """A worker of an older release (or without the plugin) sees an event it does not know:
    it must not mark it done (that would deliver it to nobody); it stays pending for a worker
    that knows it, which then delivers it, and fails only after max_attempts."""
    tenant = make_tenant(bus_runtime)
    newer_handled = []
    newer = declare_event(bus_runtime, "t.newer.v1")
    with db.connection(), tenant_context(tenant), db.transaction():
        event_id = bus_runtime.events.record(newer())
    # This worker's release does not know it.
    declaration = bus_runtime.registry.events.pop("t.newer.v1")
    bus_runtime.events.dispatch_pending()
    with db.connection():
        assert OutboxEvent.get_by_id(event_id).status == "pending"
    # A worker of the newer release knows it and delivers it.
    bus_runtime.registry.events["t.newer.v1"] = declaration
    add_handler(bus_runtime, "t.newer.v1", "newer", lambda rt, e: newer_handled.append(e.id))
    make_due(event_id)
    bus_runtime.events.dispatch_pending()
    assert newer_handled == [event_id]
    with db.connection():
        assert OutboxEvent.get_by_id(event_id).status == "done"
    # With nobody who knows it, it fails after max_attempts (3 here), not silently done.
    orphan = declare_event(bus_runtime, "t.orphan.v1")
    with db.connection(), tenant_context(tenant), db.transaction():
        orphan_id = bus_runtime.events.record(orphan())
    del bus_runtime.registry.events["t.orphan.v1"]
    for _ in range(3):
        make_due(orphan_id)
        bus_runtime.events.dispatch_pending()
    with db.connection():
        assert OutboxEvent.get_by_id(orphan_id).status == "failed"


def test_handler_of_a_plugin_disabled_in_the_tenant_is_skipped(bus_runtime):
    off = make_tenant(bus_runtime, disabled_plugins=["tests"])
    got = []
    add_handler(bus_runtime, "t.off.v1", "h", lambda rt, e: got.append(e.id))
    record(bus_runtime, off, "t.off.v1")
    bus_runtime.events.dispatch_pending()
    assert got == []


def test_record_outside_a_transaction_is_refused(bus_runtime):
    tenant = make_tenant(bus_runtime)
    with db.connection(), tenant_context(tenant), pytest.raises(RuntimeError):
        bus_runtime.events.record(declare_event(bus_runtime, "t.x.v1")())


def test_inline_dispatch_delivers_right_after_commit(tmp_path, core_database, _core_runtime):
    rt = build_runtime(tmp_path, core_database, do_migrate=False,
                       queue={"immediate": False}, redis={"url": ""},
                       events={"inline_dispatch": True})
    with use_runtime(rt):
        tenant = make_tenant(rt)
        got = []
        add_handler(rt, "t.inline.v1", "h", lambda r, e: got.append(e.id))
        event_id = record(rt, tenant, "t.inline.v1")
        assert got == [event_id]


E2E_PLUGIN = '''
"""Writes each delivered event to the file named by E2E_OUT."""
import os

from learnplat import hookimpl
from learnplat.registry import EventHandler


def write(runtime, event):
    with open(os.environ["E2E_OUT"], "a") as fh:
        fh.write(f"{event.id} {event.name} {event.tenant_id}\\n")


@hookimpl
def register_event_handlers():
    return [EventHandler("e2e.ping.v1", "write", write)]
'''


@pytest.mark.e2e
def test_events_recorded_without_a_worker_are_delivered_when_one_starts(tmp_path, fresh_db):
    plugin_root = fake_distribution(tmp_path / "site", "learnplat-e2e",
                                    {"e2e": "learnplat_e2e"},
                                    {"learnplat_e2e.py": E2E_PLUGIN})
    out = tmp_path / "delivered.txt"
    redis_url = worker_redis_url() if backend() == "postgres" else ""  # RedisHuey on PG
    fresh_db.redis_url = redis_url
    env = cli_env(tmp_path, fresh_db, pythonpath=[plugin_root], QUEUE_WORKERS="2")
    env["E2E_OUT"] = str(out)
    r = run_cli(["migrate"], env)
    assert r.returncode == 0, r.stderr

    # Record events in this process while no worker runs: they wait in the outbox.
    from learnplat.runtime import create_runtime
    from learnplat.settings import load_settings

    previous = db.database.obj  # create_runtime points the process's proxy at its database
    rt = create_runtime(load_settings(environ=env), entry_points=False)
    db.database.initialize(previous)
    with use_runtime(rt):
        assert type(rt.queue.huey).__name__ == ("RedisHuey" if redis_url else "SqliteHuey")
        tenant = make_tenant(rt)
        ids = [record(rt, tenant, "e2e.ping.v1", {"i": i}) for i in range(3)]
        with db.connection():
            assert OutboxEvent.select().where(OutboxEvent.id.in_(ids),
                                              OutboxEvent.status == "pending").count() == 3

        proc = subprocess.Popen([*CLI, "worker"], env=env, cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if out.exists() and len(out.read_text().splitlines()) >= 3:
                    break
                assert proc.poll() is None, proc.stdout.read()
                time.sleep(0.2)
            lines = sorted(out.read_text().splitlines()) if out.exists() else []
            if not lines:
                proc.send_signal(signal.SIGINT)
                raise AssertionError(proc.communicate(timeout=15)[0][-3000:])
            assert lines == sorted(f"{i} e2e.ping.v1 {tenant.id}" for i in ids)
            with db.connection():
                for _ in range(50):
                    done = OutboxEvent.select().where(OutboxEvent.id.in_(ids),
                                                      OutboxEvent.status == "done").count()
                    if done == 3:
                        break
                    time.sleep(0.1)
                assert done == 3
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
    forget_redis_keys(redis_url, env["LEARNPLAT_REDIS_PREFIX"])
