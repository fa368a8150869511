"""The delivery engine (learnplat.outbound.engine): a test sink registered through
register_sinks, real HTTP receivers on loopback (200, 500, 410, 400, hanging, a closed
port), and the engine's clock moved forward instead of waiting for retries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import testnotes
from corehelpers import build_runtime, fresh_database
from outboundhelpers import STATE, BatchSink, Clock, OutboundTestPlugin, QueueSpy, receivers

from learnplat import db
from learnplat.errors import UnsafeURL
from learnplat.models import utcnow
from learnplat.outbound.engine import AFTER_LAPSE, DELIVER_TASK, Outbound, _Turn
from learnplat.outbound.models import OutboundDestination, OutboundMessage
from learnplat.outbound.sink import OutboundRequest, Sink
from learnplat.registry import Registry, StartupError
from learnplat.runtime import Runtime
from learnplat.settings import ConfigError, load_settings
from learnplat.tenancy import TenantInfo, tenant_context
from learnplat.testing import free_port, make_tenant, use_runtime

SINK = "testsink"
SCHEDULE = [100, 200, 400]  # seconds after the 1st, 2nd, 3rd failure; then failed
SETTINGS = {
    "retry_schedule": SCHEDULE, "jitter": 0.2, "breaker_failures": 3, "turn_messages": 50,
    "connect_timeout": 0.5, "read_timeout": 0.4, "answer_bytes_kept": 64,
    "lease_seconds": 30, "disable_after_hours": 72,
}


@pytest.fixture(scope="module")
def _ob_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    tmp = tmp_path_factory.mktemp("outbound")
    tdb = fresh_database(tmp / "db", "outbound")
    rt = build_runtime(tmp, tdb, plugins=[("testnotes", testnotes),
                                          ("outboundtest", OutboundTestPlugin)],
                       outbound=SETTINGS)
    yield rt
    database = rt.database
    if hasattr(database, "close_all"):
        database.close_all()
    tdb.drop()


@pytest.fixture
def rt(_ob_runtime: Runtime) -> Iterator[Runtime]:
    STATE.reset()
    with use_runtime(_ob_runtime):
        yield _ob_runtime
        # What a test left due is no other test's business (the sweep reads every school).
        with db.connection():
            OutboundDestination.update(next_due_at=None).execute()
    _ob_runtime.outbound.now = utcnow


@pytest.fixture
def ob(rt: Runtime) -> Outbound:
    return rt.outbound


@pytest.fixture
def clock(ob: Outbound) -> Clock:
    c = Clock()
    ob.now = c
    return c


@pytest.fixture
def school(rt: Runtime) -> TenantInfo:
    return make_tenant(rt)


@pytest.fixture
def spy(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> QueueSpy:
    s = QueueSpy(rt)
    monkeypatch.setattr(rt.queue, "enqueue", s)
    return s


def enqueue(ob: Outbound, tenant: TenantInfo, ref: str, *keys: str, sink: str = SINK,
            **kw: Any) -> None:
    """Queue messages in one transaction, as an event handler does; tasks run after it."""
    with db.connection(), tenant_context(tenant), db.transaction():
        for key in keys:
            assert ob.enqueue(sink, ref, key, {"key": key, "course_id": 42}, **kw)


def in_school(tenant: TenantInfo, fn: Any, *args: Any, **kw: Any) -> Any:
    with db.connection(), tenant_context(tenant):
        return fn(*args, **kw)


def messages(ob: Outbound, tenant: TenantInfo, ref: str | None = None, **kw: Any) -> dict:
    """key -> MessageInfo of the test sink's messages in `tenant`."""
    return {m.key: m for m in in_school(tenant, ob.messages, kw.pop("sink", SINK), ref,
                                        limit=1000, **kw)}


def destination_row(destination_id: int) -> OutboundDestination:
    with db.connection():
        return OutboundDestination.get_by_id(destination_id)


def wait_of(message: Any) -> float:
    return (message.next_attempt_at - message.last_attempt_at).total_seconds()


# -- delivered, recorded ---------------------------------------------------------------------


def test_a_registered_sink_delivers_a_message_and_records_the_attempt(ob, school, clock):
    """register_sinks: the test plugin's sinks are the engine's; a message queued in a
    transaction is sent after commit, its attempt recorded with the answer's first bytes."""
    assert set(ob.sinks()) >= {"testsink", "batchsink"}
    with receivers({"status": 200, "body": b"A" * 50 + "é".encode() * 100}) as [ok]:
        STATE.urls["ep1"] = ok.url
        enqueue(ob, school, "ep1", "evt-1", event_id=7, event_type="enrollment.created.v1")
        assert ok.keys() == ["evt-1"]
        assert ok.received[0].json == {"key": "evt-1", "course_id": 42}
        assert ok.received[0].headers["user-agent"].startswith("learnplat/")
        m = messages(ob, school)["evt-1"]
        assert (m.status, m.attempts, m.last_status, m.last_error) == ("delivered", 1, 200,
                                                                       None)
        assert m.event_id == 7 and m.event_type == "enrollment.created.v1"
        assert m.delivered_at is not None and m.next_attempt_at is None
        [attempt] = in_school(school, ob.attempts, m.id)
        assert attempt.status == 200 and attempt.latency_ms > 0 and attempt.error is None
        # answer_bytes_kept = 64 bytes, decoded leniently (a character cut in half is U+FFFD)
        assert attempt.answer.startswith("A" * 50 + "é" * 7)
        assert len(attempt.answer.encode("utf-8", errors="replace")) <= 64 + 3
        # The same key again adds nothing and sends nothing.
        with db.connection(), tenant_context(school), db.transaction():
            assert ob.enqueue(SINK, "ep1", "evt-1", {"other": True}) is False
        assert ok.keys() == ["evt-1"]
        dest = in_school(school, ob.destination, SINK, "ep1")
        assert dest.last_success_at is not None and dest.consecutive_failures == 0
        assert destination_row(dest.id).next_due_at is None  # nothing left to send
        assert destination_row(dest.id).lease_until is None


def test_check_url_applies_the_settings_policy(ob):
    assert ob.check_url("http://127.0.0.1:8080/hook").startswith("http://127.0.0.1:8080")
    with pytest.raises(UnsafeURL):
        ob.check_url("http://10.0.0.7/hook")


# -- retries ---------------------------------------------------------------------------------


def test_retries_follow_the_schedule_with_jitter_and_fail_when_it_is_spent(ob, school, clock):
    with receivers({"status": 500, "body": b"boom"}) as [bad]:
        STATE.urls["ep"] = bad.url
        enqueue(ob, school, "ep", "k1")
        for n, base in enumerate(SCHEDULE, start=1):
            m = messages(ob, school)["k1"]
            assert (m.status, m.attempts, m.last_status) == ("pending", n, 500)
            assert base * 0.8 <= wait_of(m) <= base * 1.2
            # The turn queued its next one for when the retry is due; the immediate queue
            # holds delayed tasks back, so it is a minute late: the sweep queues another.
            clock.advance(base * 1.2 + 61)
            ob.sweep()
        m = messages(ob, school)["k1"]
        assert (m.status, m.attempts) == ("failed", 4)
        assert m.last_error.startswith("gave up after 4 attempts: HTTP 500")
        assert bad.keys() == ["k1"] * 4  # the same message (key) each time
        attempts = in_school(school, ob.attempts, m.id)
        assert [a.status for a in attempts] == [500] * 4 and attempts[0].answer == "boom"
        assert attempts[0].at > attempts[-1].at  # newest first


def test_the_jitter_spreads_the_waits(ob):
    waits = [ob._wait(0) for _ in range(200)]
    assert all(80 <= w <= 120 for w in waits)
    assert max(waits) - min(waits) > 10  # not one fixed wait: retries do not stampede


def test_a_failure_ends_the_turn_and_the_breaker_opens_then_a_probe_closes_it(
        ob, school, clock, spy):
    with receivers({"status": 503}) as [ep]:
        STATE.urls["ep"] = ep.url
        enqueue(ob, school, "ep", "k1", "k2", "k3", "k4", "k5")
        assert spy.names() == [DELIVER_TASK]  # one wake for five messages
        spy.run_all()
        assert ep.keys() == ["k1"]  # the failure ended the turn: one request, not five
        dest = in_school(school, ob.destination, SINK, "ep")
        # It is still due (k2..k5): queued again, with a pause, not at once.
        assert [(n, d is not None and d > 0) for n, _, d in spy.queued] == [
            (DELIVER_TASK, True)]
        for _ in range(2):
            [(_, args, delay)] = spy.queued  # the turn's own next turn, after a pause
            spy.queued.clear()
            assert ob.sweep() == 0  # it is on its way: the sweep adds no second one
            ob.deliver(*args)
        assert ep.keys() == ["k1", "k2", "k3"]
        info = in_school(school, ob.destination, SINK, "ep")
        assert info.consecutive_failures == 3 and info.failing_since is not None
        assert info.open_until is not None  # open: the destination waits as a whole
        wait = (info.open_until - clock()).total_seconds()
        assert 0 < wait <= SCHEDULE[0] * 1.2
        assert ob.sweep() == 0  # k4 and k5 are due, but the breaker holds them
        [(_, probe, delay)] = spy.queued  # the next turn: when the breaker lets go
        # (no sooner than the schedule's first wait after a failure: the breaker's spacing)
        assert max(wait, SCHEDULE[0]) - 1 <= delay <= max(wait, SCHEDULE[0]) + 1
        spy.queued.clear()
        enqueue(ob, school, "ep", "k6")
        assert spy.queued == []  # a new message does not wake an open destination
        ep.status = 200
        clock.advance(SCHEDULE[0] * 1.2 + 1)
        assert ob.sweep() == 0  # the turn's task is on its way: none more
        ob.deliver(*probe)
        spy.run_all()
        # The probe (the oldest due message) succeeded: the breaker closed, the rest went.
        assert ep.keys()[3:5] == ["k4", "k5"]
        assert sorted(ep.keys()[3:]) == ["k1", "k2", "k3", "k4", "k5", "k6"]
        assert {m.status for m in messages(ob, school).values()} == {"delivered"}
        info = in_school(school, ob.destination, SINK, "ep")
        assert (info.consecutive_failures, info.failing_since, info.open_until) == (0, None,
                                                                                     None)
        assert info.last_success_at is not None
        assert destination_row(dest.id).next_due_at is None


def test_a_hanging_endpoint_times_out_and_others_are_still_delivered(ob, school, clock):
    with receivers({"status": 200, "delay": 1.0}, {"status": 200}) as [slow, fast]:
        STATE.urls.update(slow=slow.url, fast=fast.url)
        enqueue(ob, school, "slow", "s1")
        enqueue(ob, school, "fast", "f1")
        s1 = messages(ob, school, "slow")["s1"]
        assert s1.status == "pending" and s1.last_status is None
        assert "timeout" in s1.last_error
        [attempt] = in_school(school, ob.attempts, s1.id)
        assert attempt.status is None and "timeout" in attempt.error
        assert messages(ob, school, "fast")["f1"].status == "delivered"


def test_a_closed_port_is_a_failed_attempt(ob, school, clock):
    STATE.urls["closed"] = f"http://127.0.0.1:{free_port()}/hook"
    enqueue(ob, school, "closed", "c1")
    m = messages(ob, school)["c1"]
    assert m.status == "pending" and m.attempts == 1 and m.last_status is None
    assert "refused" in m.last_error.lower()


# -- disabling ---------------------------------------------------------------------------------


def test_410_disables_the_destination_fails_its_pending_messages_and_tells_the_sink(
        ob, school, clock):
    with receivers({"status": 410}) as [ep]:
        STATE.urls["ep"] = ep.url
        enqueue(ob, school, "ep", "k1", "k2", "k3")
        assert ep.keys() == ["k1"]
        info = in_school(school, ob.destination, SINK, "ep")
        assert info.disabled_at is not None and "410" in info.disabled_reason
        assert STATE.disabled == [(school.id, "ep", info.disabled_reason)]
        found = messages(ob, school)
        assert {k: m.status for k, m in found.items()} == {
            "k1": "failed", "k2": "failed", "k3": "failed"}
        assert all(m.last_error.startswith("destination disabled: ") for m in found.values())
        assert found["k1"].attempts == 1 and found["k2"].attempts == 0
        # While disabled nothing is sent; a new message waits.
        enqueue(ob, school, "ep", "k4")
        assert ep.keys() == ["k1"] and messages(ob, school)["k4"].status == "pending"
        assert ob.sweep() == 0
        # Enabled again: the pending one goes; the failed ones wait for a redelivery.
        ep.status = 200
        info = in_school(school, ob.enable, SINK, "ep")
        assert info.disabled_at is None and info.consecutive_failures == 0
        assert ep.keys() == ["k1", "k4"]
        redone = in_school(school, ob.redeliver, SINK, "ep")
        assert sorted(m.key for m in redone) == ["k1", "k2", "k3"]
        assert {m.status for m in messages(ob, school).values()} == {"delivered"}


def test_a_destination_failing_for_days_is_disabled(ob, school, clock):
    STATE.urls["dead"] = f"http://127.0.0.1:{free_port()}/hook"
    enqueue(ob, school, "dead", "d1")
    clock.advance(60)
    enqueue(ob, school, "dead", "d2")  # a new message is tried: it fails too
    assert in_school(school, ob.destination, SINK, "dead").consecutive_failures == 2
    clock.advance(72 * 3600)
    ob.sweep()
    info = in_school(school, ob.destination, SINK, "dead")
    assert info.disabled_at is not None
    assert info.disabled_reason.startswith("no successful delivery for 72 hours")
    assert [(t, r) for t, r, _ in STATE.disabled] == [(school.id, "dead")]
    assert {m.status for m in messages(ob, school).values()} == {"failed"}


def test_a_sink_or_admin_disable_keeps_messages_pending_until_enabled(ob, school, clock):
    with receivers({"status": 200}) as [ep]:
        STATE.urls["ep"] = ep.url
        in_school(school, ob.ensure_destination, SINK, "ep")
        info = in_school(school, ob.disable, SINK, "ep", "switched off by the admin")
        assert info.disabled_reason == "switched off by the admin"
        enqueue(ob, school, "ep", "k1")
        assert ep.received == [] and messages(ob, school)["k1"].status == "pending"
        assert STATE.disabled == []  # the sink did it: it is not told
        in_school(school, ob.enable, SINK, "ep")
        assert ep.keys() == ["k1"]


def test_a_sink_without_a_request_cancels_and_a_broken_sink_is_retried(ob, school, clock):
    with receivers({"status": 200}) as [ep]:
        STATE.urls.update(gone=ep.url, broken=ep.url)
        STATE.gone.add("gone")
        enqueue(ob, school, "gone", "g1")
        g1 = messages(ob, school, "gone")["g1"]
        assert g1.status == "cancelled" and g1.attempts == 0
        STATE.raising.add("broken")
        enqueue(ob, school, "broken", "b1")
        b1 = messages(ob, school, "broken")["b1"]
        assert b1.status == "pending" and b1.attempts == 1
        assert "sink error: RuntimeError" in b1.last_error
        assert ep.received == []


def test_authorize_adds_a_token_outside_any_transaction_or_records_why_it_could_not(
        ob, school, clock):
    """Sink.authorize runs for every attempt, with no transaction open (a token fetched from
    the destination's own server must not hold a pooled connection); NotReady is a failed
    attempt with its reason, retried on the schedule; once a token is had, it is sent."""
    with receivers({"status": 200}) as [ep]:
        STATE.urls["authed"] = ep.url
        STATE.tokens["authed"] = None
        enqueue(ob, school, "authed", "a1")
        m = messages(ob, school, "authed")["a1"]
        assert (m.status, m.attempts, m.last_status) == ("pending", 1, None)
        assert m.last_error == "token endpoint answered 401: invalid_client"
        [attempt] = in_school(school, ob.attempts, m.id)
        assert attempt.error == m.last_error and attempt.status is None
        assert ep.received == []
        STATE.tokens["authed"] = "t0ken"
        clock.advance(wait_of(m) + 1)
        in_school(school, ob.deliver, m.destination_id)
        assert ep.received[0].headers["authorization"] == "Bearer t0ken"
        m = messages(ob, school, "authed")["a1"]
        assert (m.status, m.attempts) == ("delivered", 2)
        assert STATE.authorized == [("authed", False), ("authed", False)]


def test_the_sink_is_told_each_final_outcome_once_in_the_recording_transaction(
        ob, school, clock):
    """Sink.settled: delivered at once; refused for good (REJECTED); failed when the retry
    schedule is spent; never for an attempt that will be retried."""
    with receivers({"status": 200}, {"status": 400}, {"status": 503}) as [ok, refused, busy]:
        STATE.urls.update(ok=ok.url, refused=refused.url, busy=busy.url)
        enqueue(ob, school, "ok", "s-ok")
        enqueue(ob, school, "refused", "s-refused")
        assert STATE.settled == [(["s-ok"], "delivered", 200, True),
                                 (["s-refused"], "failed", 400, True)]
        STATE.settled.clear()
        enqueue(ob, school, "busy", "s-busy")
        for _ in range(len(ob.settings.retry_schedule)):
            assert STATE.settled == []  # retried later: nothing final yet
            m = messages(ob, school, "busy")["s-busy"]
            clock.advance(wait_of(m) + 1)
            in_school(school, ob.deliver, m.destination_id)
        assert messages(ob, school, "busy")["s-busy"].status == "failed"
        assert STATE.settled == [(["s-busy"], "failed", 503, True)]


def test_fetch_sends_one_request_under_the_policy_and_keeps_the_whole_answer(ob):
    body = b"{" + b'"k": "' + b"x" * 5000 + b'"}'
    with receivers({"status": 200, "body": body}) as [ep]:
        # (The receiver answers POSTs; a JWKS is a GET: fetch sends what it is given.)
        answer = ob.fetch(OutboundRequest(ep.url, b"grant_type=client_credentials",
                                          {"Accept": "application/json"}))
        assert answer.ok and answer.head == body  # not cut at answer_bytes_kept
    refused = ob.fetch(OutboundRequest("http://169.254.169.254/latest/meta-data", b"",
                                       method="GET"))
    assert refused.status is None and "169.254.169.254" in (refused.error or "")


def test_a_school_that_switched_the_sinks_plugin_off_keeps_its_messages(ob, rt, clock):
    off = make_tenant(rt, disabled_plugins=["outboundtest"])
    with receivers({"status": 200}) as [ep]:
        STATE.urls["ep"] = ep.url
        enqueue(ob, off, "ep", "k1")
        assert ep.received == [] and messages(ob, off)["k1"].status == "pending"
        dest = in_school(off, ob.destination, SINK, "ep")
        # Looked at again in a while (the sweep), not every minute.
        assert destination_row(dest.id).next_due_at > clock() + dt.timedelta(minutes=10)


# -- fairness: one task per destination, round robin ------------------------------------------


def test_a_flood_queues_one_task_per_destination_and_turns_alternate(ob, school, clock, spy):
    with receivers({"status": 200}, {"status": 200}) as [a, b]:
        STATE.urls.update(a=a.url, b=b.url)
        with db.connection():  # (one connection for the loop: SQLite's close is slow)
            for i in range(60):  # 60 events, each in its own transaction, two endpoints
                enqueue(ob, school, "a", f"a{i}")
                enqueue(ob, school, "b", f"b{i}")
        assert spy.names() == [DELIVER_TASK, DELIVER_TASK]  # one per destination
        ids = {ref: in_school(school, ob.destination, SINK, ref).id for ref in "ab"}
        assert sorted(args[0] for _, args, _ in spy.queued) == sorted(ids.values())
        spy.run_all()
        # turn_messages = 50: each turn sends 50 and goes to the back of the queue.
        assert [args[0] for _, args in spy.ran] == [ids["a"], ids["b"], ids["a"], ids["b"]]
        assert a.keys() == [f"a{i}" for i in range(60)]  # oldest first
        assert len(b.keys()) == 60


def test_batches_carry_up_to_the_sinks_batch_size(ob, school, clock):
    with receivers({"status": 200}) as [ep]:
        STATE.urls["lrs"] = ep.url
        enqueue(ob, school, "lrs", *[f"s{i}" for i in range(7)], sink=BatchSink.name)
        assert ep.keys() == ["s0,s1,s2", "s3,s4,s5", "s6"]
        found = messages(ob, school, sink=BatchSink.name)
        assert len(found) == 7 and {m.status for m in found.values()} == {"delivered"}
        for m in found.values():
            assert len(in_school(school, ob.attempts, m.id)) == 1  # one attempt each


def test_a_batch_refused_as_a_whole_is_split_and_each_judged_alone(ob, school, clock):
    """Verdict.SPLIT: a 400 for a batch that does not say which message is bad. Each goes
    again on its own at once: the good ones are delivered, the bad one rejected, and the
    destination's breaker counts no failure."""
    def status_for(body: bytes) -> int:
        return 400 if b'"bad"' in body else 200

    with receivers({"status_for": status_for}) as [ep]:
        STATE.urls["lrs"] = ep.url
        enqueue(ob, school, "lrs", "s0", "bad", "s2", "s3", sink=BatchSink.name)
        assert ep.keys() == ["s0,bad,s2", "s0", "bad", "s2", "s3"]
        found = messages(ob, school, sink=BatchSink.name)
        assert {k: m.status for k, m in found.items()} == {
            "s0": "delivered", "bad": "failed", "s2": "delivered", "s3": "delivered"}
        batch = ep.keys()[0].split(",")
        for key in batch:  # the batch's attempt, then its own
            assert len(in_school(school, ob.attempts, found[key].id)) == 2
        assert len(in_school(school, ob.attempts, found["s3"].id)) == 1
        assert "rejected" in (found["bad"].last_error or "")
        dest = in_school(school, ob.destination, BatchSink.name, "lrs")
        assert dest.consecutive_failures == 0 and dest.open_until is None


# -- leases ----------------------------------------------------------------------------------


def test_a_second_deliver_while_leased_does_nothing(ob, school, clock, spy):
    with receivers({"status": 200}) as [ep]:
        STATE.urls["ep"] = ep.url
        enqueue(ob, school, "ep", "k1")
        dest_id = in_school(school, ob.destination, SINK, "ep").id
        with db.connection():
            assert ob._claim(dest_id, "another-worker") is not None  # a live worker has it
        assert ob.deliver(dest_id) == 0
        assert ob.sweep() == 0
        assert ep.received == [] and messages(ob, school)["k1"].status == "pending"


def test_a_killed_workers_lease_lapses_and_the_sweep_sends_the_message_again(
        ob, school, clock, spy):
    with receivers({"status": 200}) as [ep]:
        STATE.urls["ep"] = ep.url
        enqueue(ob, school, "ep", "k1")
        dest_id = in_school(school, ob.destination, SINK, "ep").id
        spy.queued.clear()
        # A worker takes the lease, sends the request... and is killed before recording it.
        from learnplat.outbound.safe_http import send

        with db.connection():
            row = ob._claim(dest_id, "dead-host:1:1")
        assert row is not None
        with db.connection(), tenant_context(school), db.transaction():
            [m] = ob.messages(SINK, "ep")
            request = ob.sinks()[SINK].request(in_school(school, ob.destination, SINK, "ep"),
                                               [m])
        assert send(request, ob.policy).status == 200
        assert messages(ob, school)["k1"].status == "pending"  # nothing was recorded
        assert ob.sweep() == 0  # the lease still holds: a task waits for its end
        [(name, args, delay)] = spy.queued
        # A task for when the lease lapses, that starts a turn only if none was queued since.
        assert (name, args) == (DELIVER_TASK, (dest_id, AFTER_LAPSE))
        assert SETTINGS["lease_seconds"] - 5 < delay <= SETTINGS["lease_seconds"] + 1
        spy.queued.clear()
        clock.advance(SETTINGS["lease_seconds"] + 1)
        assert ob.sweep() == 1
        spy.run_all()
        assert ep.keys() == ["k1", "k1"]  # sent again, with the same key...
        assert ep.received[0].body == ep.received[1].body  # ...and the same content
        m = messages(ob, school)["k1"]
        assert m.status == "delivered" and m.attempts == 1
        assert destination_row(dest_id).leased_by is None


def test_a_turn_ending_while_a_message_is_queued_waits_for_it_and_sees_it(ob, school, clock,
                                                                          spy):
    """The race of a turn's end with an enqueue: the enqueue holds the destination's row
    lock from its wake to its commit, so the turn's end waits and then counts the message
    (without the lock it would see nothing due, and the message would wait for nobody)."""
    import threading

    with receivers({"status": 200}) as [ep]:
        STATE.urls["ep"] = ep.url
        dest_id = in_school(school, ob.ensure_destination, SINK, "ep").id
        with db.connection():  # a worker's turn that has sent everything, ending now
            OutboundDestination.update(next_due_at=clock()).where(
                OutboundDestination.id == dest_id).execute()
            assert ob._claim(dest_id, "turn") is not None
        queued, commit = threading.Event(), threading.Event()
        outcome: dict[str, Any] = {}

        def queue_a_message() -> None:
            with db.connection(), tenant_context(school), db.transaction():
                ob.enqueue(SINK, "ep", "k2", {"key": "k2"})
                queued.set()
                commit.wait(10)

        def end_the_turn() -> None:
            outcome["next_turn"] = ob._end_turn(dest_id, school.id, "turn", False, _Turn())

        writer = threading.Thread(target=queue_a_message)
        writer.start()
        assert queued.wait(10)
        ender = threading.Thread(target=end_the_turn)
        ender.start()
        ender.join(0.3)
        assert ender.is_alive()  # waiting for the enqueue's lock
        commit.set()
        writer.join(10)
        ender.join(10)
        assert outcome["next_turn"] is not None  # it saw k2: its next turn is to be queued
        ticket, _ = outcome["next_turn"]
        row = destination_row(dest_id)
        assert row.next_due_at is not None and row.leased_by is None and row.ticket == ticket
        assert spy.queued == []  # the wake saw a turn under way: no task of its own
        assert ob.sweep() == 0  # the turn's next one is on its way
        ob.deliver(dest_id, ticket)
        assert ep.keys() == ["k2"]


# -- the log, redelivery, schools --------------------------------------------------------------


def test_redeliver_by_ids_and_by_time_range_keeps_every_attempt(ob, school, clock):
    with receivers({"status": 400, "body": b"invalid statement"}) as [ep]:
        STATE.urls["ep"] = ep.url
        t0 = clock()
        for i in range(4):  # one message an hour, each refused for good (REJECTED)
            enqueue(ob, school, "ep", f"k{i}", event_type="quiz.passed.v1" if i else "x.v1")
            clock.advance(3600)
        found = messages(ob, school)
        assert {m.status for m in found.values()} == {"failed"}
        assert found["k0"].last_error.startswith("rejected: HTTP 400")
        # The log: filters and keyset pages, newest first.
        assert [m.key for m in in_school(school, ob.messages, SINK, statuses=["failed"],
                                         limit=2)] == ["k3", "k2"]
        page2 = in_school(school, ob.messages, SINK, before_id=found["k2"].id, limit=2)
        assert [m.key for m in page2] == ["k1", "k0"]
        assert [m.key for m in in_school(school, ob.messages, SINK,
                                         event_type="x.v1")] == ["k0"]
        assert in_school(school, ob.messages, SINK, statuses=["delivered"]) == []
        with pytest.raises(ValueError):
            in_school(school, ob.messages, SINK, statuses=["lost"])
        assert in_school(school, ob.message, SINK, found["k0"].id).key == "k0"
        assert in_school(school, ob.message, BatchSink.name, found["k0"].id) is None

        ep.status = 200
        redone = in_school(school, ob.redeliver, SINK, ids=[found["k0"].id])
        assert [m.key for m in redone] == ["k0"] and redone[0].status == "pending"
        k0 = messages(ob, school)["k0"]
        assert (k0.status, k0.attempts) == ("delivered", 2)
        assert [a.status for a in in_school(school, ob.attempts, k0.id)] == [200, 400]

        # [t0 + 1.5 h, t0 + 3 h): k2 only (k3 was created at t0 + 3 h: until is exclusive).
        redone = in_school(school, ob.redeliver, SINK, since=t0 + dt.timedelta(hours=1.5),
                           until=t0 + dt.timedelta(hours=3))
        assert [m.key for m in redone] == ["k2"]
        assert {k: m.status for k, m in messages(ob, school).items()} == {
            "k0": "delivered", "k1": "failed", "k2": "delivered", "k3": "failed"}
        assert ep.keys() == ["k0", "k1", "k2", "k3", "k0", "k2"]

        # A redelivered message's retry schedule starts over.
        ep.status = 500
        in_school(school, ob.redeliver, SINK, ids=[found["k1"].id])
        k1 = messages(ob, school)["k1"]
        assert (k1.status, k1.attempts) == ("pending", 2)
        assert SCHEDULE[0] * 0.8 <= wait_of(k1) <= SCHEDULE[0] * 1.2


def test_another_school_sees_and_touches_nothing(ob, school, rt, clock):
    other = make_tenant(rt)
    with receivers({"status": 400}) as [ep]:
        STATE.urls["ep"] = ep.url
        enqueue(ob, school, "ep", "k1")
        m = messages(ob, school)["k1"]
        assert m.status == "failed"
        assert in_school(other, ob.messages, SINK) == []
        assert in_school(other, ob.message, SINK, m.id) is None
        assert in_school(other, ob.attempts, m.id) == []
        assert in_school(other, ob.destination, SINK, "ep") is None
        assert in_school(other, ob.redeliver, SINK, ids=[m.id]) == []
        in_school(other, ob.forget, SINK, "ep")
        assert messages(ob, school)["k1"].status == "failed"  # untouched
        assert len(ep.received) == 1
        # The same ref in the other school is its own destination.
        ep.status = 200
        enqueue(ob, other, "ep", "k1")
        assert messages(ob, other)["k1"].status == "delivered"
        assert messages(ob, school)["k1"].status == "failed"
    with db.connection():  # and the database agrees, whatever the scoping of the queries
        assert OutboundMessage.unscoped().where(
            OutboundMessage.id == m.id).count() in (0, 1)


def test_forget_deletes_the_destination_its_messages_and_attempts(ob, school, clock):
    with receivers({"status": 200}) as [ep]:
        STATE.urls["ep"] = ep.url
        enqueue(ob, school, "ep", "k1")
        m = messages(ob, school)["k1"]
        in_school(school, ob.forget, SINK, "ep")
        assert in_school(school, ob.destination, SINK, "ep") is None
        assert messages(ob, school) == {}
        assert in_school(school, ob.attempts, m.id) == []
        assert in_school(school, ob.message, SINK, m.id) is None


# -- registration and settings -----------------------------------------------------------------


def test_two_sinks_with_one_name_stop_start_up():
    class One(Sink):
        name = "dup"

    reg = Registry()
    reg.add_sink(One(), "first")
    with pytest.raises(StartupError, match=r"'first'.*'second'"):
        reg.add_sink(One(), "second")
    with pytest.raises(StartupError):
        reg.add_sink(object(), "third")


@pytest.mark.parametrize(("values", "message"), [
    ({"retry_schedule": []}, "at least one wait"),
    ({"retry_schedule": "5, -1"}, "positive"),
    ({"allowed_networks": "10.0.0.1/8"}, "not a network"),
    ({"lease_seconds": 10}, "lease_seconds must exceed"),
    ({"answer_bytes_kept": 10, "max_answer_bytes": 5}, "answer_bytes_kept"),
])
def test_bad_outbound_settings_stop_start_up(tmp_path: Path, values: dict, message: str):
    with pytest.raises(ConfigError, match=message):
        load_settings(overrides={"outbound": values}, environ={}, home=tmp_path)


def test_outbound_settings_from_the_environment(tmp_path: Path):
    s = load_settings(environ={"LEARNPLAT_OUTBOUND_ALLOWED_NETWORKS": "10.1.0.0/16, fd00::/8",
                               "LEARNPLAT_OUTBOUND_RETRY_SCHEDULE": "1,2.5,60"},
                      home=tmp_path).outbound
    assert s.allowed_networks == ("10.1.0.0/16", "fd00::/8")
    assert s.retry_schedule == (1, 2.5, 60)
    assert sum(load_settings(environ={}, home=tmp_path).outbound.retry_schedule) > 2.5 * 86400
