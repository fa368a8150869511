"""The delivery engine: messages queued per destination, sent by workers one destination at a
time, retried on a schedule, with a circuit breaker, a record of every attempt, and
redelivery (docs/architecture.md "Outbound delivery", docs/decisions/0019).

How a message travels:

1. A sink's event handler calls `Outbound.enqueue` in its transaction: the message is
   inserted (once per destination and key) and the destination is *woken*: its
   ``next_due_at`` set to now unless it already was due, and only then one deliver task is
   queued after commit. A flood of events queues one task per destination, not one per event.
2. The task (`Outbound.deliver`) takes the destination's lease (one worker per destination)
   and sends its due messages, oldest first, for one *turn* (``turn_seconds`` or
   ``turn_messages``), each request sent with no transaction and no pooled connection held;
   each outcome commits on its own. A failure ends the turn: a dead endpoint costs one
   timeout per retry, not one per message.
3. At the end of the turn, under the destination's row lock, ``next_due_at`` becomes the
   earliest due message (or the breaker's end) and the lease is released; a destination
   still due queues itself again at the back of the queue (round robin between destinations
   and schools), one due soon queues itself with a delay, and the minute's `sweep` covers
   the rest, including destinations whose worker died holding the lease.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import peewee

from .. import db
from ..models import utcnow
from ..tenancy import TenantInfo, tenant_context
from .models import OutboundAttempt, OutboundDestination, OutboundMessage
from .sink import (
    MESSAGE_STATUSES,
    Answer,
    AttemptInfo,
    DestinationInfo,
    MessageInfo,
    NotReady,
    OutboundRequest,
    Sink,
    Verdict,
)

if TYPE_CHECKING:
    from ..registry import Registry, TaskSpec
    from ..settings import OutboundSettings
    from ..tasks import TaskQueue
    from .safe_http import Policy

log = logging.getLogger(__name__)

DELIVER_TASK = "learnplat.outbound_deliver"
SWEEP_TASK = "learnplat.outbound_sweep"
# A destination due within this many seconds after its turn queues itself with a delay;
# later ones are found by the minute's sweep.
DELAY_HORIZON = 300.0
# A school that is disabled (or gone), or a sink no loaded plugin registers: its destination
# is looked at again after this long (the sweep), not every minute.
PARKED = dt.timedelta(minutes=15)
SWEEP_LIMIT = 1000
# A deliver task this late (after the time it was queued for) is taken for lost (a worker
# killed with it in hand, a queue flushed): the sweep queues another, with a new ticket, and
# the late one, should it still come, finds its ticket spent.
STALE_TICKET = dt.timedelta(seconds=60)
# The ticket of a task queued by the sweep for a destination whose lease still runs: it may
# start a turn only when no other task is on its way (its worker died mid-turn).
AFTER_LAPSE = 0
_TEXT_LIMIT = 2000  # of an error message stored


class _Host(Protocol):
    @property
    def registry(self) -> Registry: ...


def _clean(text: str) -> str:
    # PostgreSQL's text cannot hold NUL; an answer's bytes may.
    return text.replace("\x00", "\ufffd")


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def destination_info(row: OutboundDestination) -> DestinationInfo:
    return DestinationInfo(
        id=row.id, tenant_id=row.tenant_id, sink=row.sink, ref=row.ref,
        consecutive_failures=row.consecutive_failures, failing_since=row.failing_since,
        open_until=row.open_until, last_success_at=row.last_success_at,
        disabled_at=row.disabled_at, disabled_reason=row.disabled_reason)


def message_info(row: OutboundMessage, sink: str, ref: str) -> MessageInfo:
    return MessageInfo(
        id=row.id, destination_id=row.destination_id, sink=sink, ref=ref, key=row.key,
        event_id=row.event_id, event_type=row.event_type, payload=row.payload,
        status=row.status, attempts=row.attempts, created_at=row.created_at,
        next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
        last_attempt_at=row.last_attempt_at, delivered_at=row.delivered_at,
        last_status=row.last_status, last_error=row.last_error)


def attempt_info(row: OutboundAttempt) -> AttemptInfo:
    return AttemptInfo(id=row.id, message_id=row.message_id, at=row.at, status=row.status,
                       latency_ms=row.latency_ms, answer=row.answer, error=row.error)


class _Turn:
    """What one turn of one destination did."""

    def __init__(self) -> None:
        self.settled = 0  # messages delivered, failed or cancelled
        self.sent = 0  # messages carried by requests
        self.budget_spent = False  # ended by turn_seconds / turn_messages: due again at once
        self.failed = False  # ended by a failed attempt
        # Messages of a batch the destination refused as a whole (Verdict.SPLIT): sent one at
        # a time before anything else this turn.
        self.single: list[int] = []


class Outbound:
    """`runtime.outbound`: the engine sinks use (see the module doc). Every method but
    `deliver` and `sweep` acts in the current school and runs in a transaction (a savepoint
    inside the caller's)."""

    def __init__(self, settings: OutboundSettings, queue: TaskQueue,
                 tenant_by_id: Callable[[int], TenantInfo | None],
                 host: Callable[[], _Host]):
        self.settings = settings
        self.queue = queue
        self.tenant_by_id = tenant_by_id
        self.host = host
        # The engine's clock: every time it stores or compares comes from here (tests move it).
        self.now: Callable[[], dt.datetime] = utcnow
        self.rng = random.Random()
        self._policy: Policy | None = None
        self._local = threading.local()

    def _ticket(self, at: dt.datetime) -> int:
        """A new ticket (OutboundDestination.ticket) for a task queued to run `at`: that time
        in milliseconds, and a random part."""
        return int(at.timestamp() * 1000) * 1000 + self.rng.randrange(1, 1000)

    def _queue(self, destination_id: int, ticket: int, delay: float | None = None) -> None:
        self.queue.enqueue(DELIVER_TASK, destination_id, ticket, delay=delay)

    # -- sinks and the HTTP policy -------------------------------------------------------------

    @property
    def policy(self) -> Policy:
        if self._policy is None:
            from .safe_http import Policy

            self._policy = Policy.from_settings(self.settings)
        return self._policy

    @policy.setter
    def policy(self, value: Policy) -> None:
        self._policy = value

    def sinks(self) -> dict[str, Sink]:
        sinks: dict[str, Sink] = self.host().registry.sinks
        return sinks

    def _sink(self, name: str) -> Sink:
        sink = self.sinks().get(name)
        if sink is None:
            raise KeyError(f"no loaded plugin registers the sink {name!r} (register_sinks)")
        return sink

    def fetch(self, request: OutboundRequest) -> Answer:
        """Send one request now, under the same policy as deliveries (the address checked
        and pinned, no redirects, the timeouts, at most ``outbound.max_answer_bytes`` read),
        for a plugin's own synchronous calls to a school's systems: a peer's JWKS, an OAuth 2
        token. The whole body read is in ``Answer.head``. Never raises for network trouble
        (``Answer.error``); call it outside a transaction."""
        from .safe_http import send

        policy = dataclasses.replace(self.policy,
                                     answer_bytes_kept=self.policy.max_answer_bytes)
        return send(request, policy)

    def check_url(self, url: str) -> str:
        """`url` normalised, or UnsafeURL (422 ``unsafe_url``) when the settings' policy
        refuses it (a private address, plain HTTP where HTTPS is required...)."""
        from .safe_http import check_url

        return check_url(url, self.policy)

    # -- destinations --------------------------------------------------------------------------

    def _row(self, sink: str, ref: str, *, lock: bool = False) -> OutboundDestination | None:
        from ..tenancy import current_tenant

        query = OutboundDestination.select().where(
            (OutboundDestination.tenant == current_tenant().id)
            & (OutboundDestination.sink == sink) & (OutboundDestination.ref == ref))
        if lock and db.is_postgres():
            query = query.for_update()
        row: OutboundDestination | None = query.first()
        return row

    def _ensure(self, sink: str, ref: str, *, lock: bool = False) -> OutboundDestination:
        from ..tenancy import current_tenant

        self._sink(sink)
        if not ref or len(ref) > 200:
            raise ValueError("a destination's ref is 1 to 200 characters")
        row = self._row(sink, ref, lock=lock)
        if row is None:
            OutboundDestination.insert(tenant=current_tenant().id, sink=sink, ref=ref
                                       ).on_conflict_ignore().execute()
            row = self._row(sink, ref, lock=lock)
            assert row is not None
        return row

    def ensure_destination(self, sink: str, ref: str) -> DestinationInfo:
        """The destination `ref` of `sink` in this school, made when it is new."""
        with db.transaction():
            return destination_info(self._ensure(sink, ref))

    def destination(self, sink: str, ref: str) -> DestinationInfo | None:
        with db.transaction(write=False):
            row = self._row(sink, ref)
            return destination_info(row) if row is not None else None

    def _wake(self, destination_id: int) -> None:
        """Make the destination due now, unless it is already due (a task is on its way or
        a worker is at it), disabled or waiting for its breaker; queue its deliver task
        after commit only when this changed it: one task per destination, however many
        messages are queued."""
        now = self.now()
        d = OutboundDestination
        ticket = self._ticket(now)
        changed = d.update(next_due_at=now, ticket=ticket).where(
            (d.id == destination_id) & d.disabled_at.is_null()
            & (d.open_until.is_null() | (d.open_until <= now))
            & (d.next_due_at.is_null() | (d.next_due_at > now))).execute()
        if changed:
            self._queue(destination_id, ticket)

    def enqueue(self, sink: str, ref: str, key: str, payload: Any, *,
                event_id: int | None = None, event_type: str = "") -> bool:
        """Queue a message for the destination `ref` of `sink` (made when new); False when
        one with this `key` was queued before (nothing changes: a repeated event handler
        adds nothing). Delivery starts after the caller's transaction commits."""
        if not key or len(key) > 200:
            raise ValueError("a message's key is 1 to 200 characters")
        now = self.now()
        with db.transaction():
            # The destination's row lock (PostgreSQL; SQLite writers are serialised anyway)
            # orders this with a worker ending its turn: either the worker sees this message
            # when it computes next_due_at, or this wake sees the turn's outcome.
            row = self._ensure(sink, ref, lock=True)
            m = OutboundMessage
            exists = m.select(m.id).where((m.destination == row.id) & (m.key == key)).first()
            if exists is not None:
                return False
            m.insert(destination=row.id, key=key, event_id=event_id,
                     event_type=event_type[:120], payload=payload, status="pending",
                     created_at=now, next_attempt_at=now).execute()
            self._wake(row.id)
        return True

    def enable(self, sink: str, ref: str) -> DestinationInfo:
        """Switch the destination on again: not disabled, the breaker closed and its failures
        forgotten; its pending messages are sent now. Messages failed when it was disabled
        stay failed (`redeliver` them)."""
        with db.transaction():
            row = self._ensure(sink, ref, lock=True)
            OutboundDestination.update(
                disabled_at=None, disabled_reason=None, consecutive_failures=0,
                failing_since=None, open_until=None).where(
                    OutboundDestination.id == row.id).execute()
            self._wake(row.id)
            return destination_info(OutboundDestination.get_by_id(row.id))

    def disable(self, sink: str, ref: str, reason: str) -> DestinationInfo:
        """Switch the destination off (its sink or an admin did): nothing is sent while it is
        disabled; its pending messages stay pending and go out after `enable`."""
        with db.transaction():
            row = self._ensure(sink, ref, lock=True)
            OutboundDestination.update(
                disabled_at=row.disabled_at or self.now(), disabled_reason=reason[:2000],
                next_due_at=None).where(OutboundDestination.id == row.id).execute()
            return destination_info(OutboundDestination.get_by_id(row.id))

    def forget(self, sink: str, ref: str) -> None:
        """Delete the destination, its messages and their attempts."""
        from ..tenancy import current_tenant

        with db.transaction():
            d = OutboundDestination
            d.delete().where((d.tenant == current_tenant().id) & (d.sink == sink)
                             & (d.ref == ref)).execute()

    # -- the log -------------------------------------------------------------------------------

    def _messages_query(self, sink: str, ref: str | None
                        ) -> peewee.ModelSelect[OutboundMessage]:
        from ..tenancy import current_tenant

        d = OutboundDestination
        query = (OutboundMessage.select(OutboundMessage, d.id, d.sink, d.ref)
                 .join(d, on=(OutboundMessage.destination == d.id))
                 .where((d.tenant == current_tenant().id) & (d.sink == sink)))
        if ref is not None:
            query = query.where(d.ref == ref)
        return query

    @staticmethod
    def _check_statuses(statuses: Sequence[str]) -> None:
        unknown = [s for s in statuses if s not in MESSAGE_STATUSES]
        if unknown:
            raise ValueError(f"unknown message status {unknown[0]!r} (one of "
                             f"{', '.join(MESSAGE_STATUSES)})")

    def messages(self, sink: str, ref: str | None = None, *, statuses: Sequence[str] = (),
                 event_type: str | None = None, since: dt.datetime | None = None,
                 until: dt.datetime | None = None, before_id: int | None = None,
                 limit: int = 50) -> list[MessageInfo]:
        """The sink's messages in this school (of one destination with `ref`), newest first:
        `statuses` (all when empty), `event_type`, created in [`since`, `until`), with an id
        below `before_id` (the next page: the last id of this one)."""
        self._check_statuses(statuses)
        if limit <= 0:
            return []
        m = OutboundMessage
        query = self._messages_query(sink, ref)
        if statuses:
            query = query.where(m.status.in_(list(statuses)))
        if event_type is not None:
            query = query.where(m.event_type == event_type)
        if since is not None:
            query = query.where(m.created_at >= since)
        if until is not None:
            query = query.where(m.created_at < until)
        if before_id is not None:
            query = query.where(m.id < before_id)
        with db.transaction(write=False):
            rows = list(query.order_by(m.id.desc()).limit(limit))
        return [message_info(r, r.destination.sink, r.destination.ref) for r in rows]

    def message(self, sink: str, message_id: int) -> MessageInfo | None:
        """One message of the sink in this school; None for another sink's or school's."""
        with db.transaction(write=False):
            row = self._messages_query(sink, None).where(OutboundMessage.id == message_id
                                                         ).first()
        return message_info(row, row.destination.sink, row.destination.ref) if row else None

    def attempts(self, message_id: int, limit: int = 100) -> list[AttemptInfo]:
        """A message's attempts in this school, newest first."""
        if limit <= 0:
            return []
        a = OutboundAttempt
        with db.transaction(write=False):
            rows = list(a.select().where(a.message == message_id)
                        .order_by(a.id.desc()).limit(limit))
        return [attempt_info(r) for r in rows]

    def redeliver(self, sink: str, ref: str | None = None, *,
                  ids: Sequence[int] | None = None, since: dt.datetime | None = None,
                  until: dt.datetime | None = None,
                  statuses: Sequence[str] = ("failed",)) -> list[MessageInfo]:
        """Send messages again: those of `ids` (or all the sink's in this school, of the
        destination `ref` when given) with one of `statuses`, created in [`since`, `until`).
        Each goes back to pending, due now, with the same key and content; its attempts
        stay in the log and the retry schedule starts over (`retry_base`). The breaker of
        each destination involved lets the next attempt through (an admin's redelivery is a
        probe); a disabled destination keeps them pending until it is enabled. Ids of
        another sink or school are not found (and not touched)."""
        self._check_statuses(statuses)
        if ids is not None and not ids:
            return []
        m = OutboundMessage
        query = self._messages_query(sink, ref)
        if ids is not None:
            query = query.where(m.id.in_(sorted(set(ids))))
        if statuses:
            query = query.where(m.status.in_(list(statuses)))
        if since is not None:
            query = query.where(m.created_at >= since)
        if until is not None:
            query = query.where(m.created_at < until)
        now = self.now()
        with db.transaction():
            found = list(query.order_by(m.id))
            if not found:
                return []
            dest_ids = sorted({r.destination_id for r in found})
            d = OutboundDestination
            if db.is_postgres():
                # Destinations first, in id order, as the workers lock them.
                list(d.select(d.id).where(d.id.in_(dest_ids)).order_by(d.id).for_update())
            chosen = [r.id for r in found]
            for start in range(0, len(chosen), 500):
                m.update(status="pending", next_attempt_at=now, retry_base=m.attempts,
                         delivered_at=None).where(
                             m.id.in_(chosen[start:start + 500])).execute()
            d.update(open_until=None).where(d.id.in_(dest_ids)
                                            & d.open_until.is_null(False)).execute()
            for dest_id in dest_ids:
                self._wake(dest_id)
            rows = list(self._messages_query(sink, ref).where(m.id.in_(chosen)).order_by(m.id))
        return [message_info(r, r.destination.sink, r.destination.ref) for r in rows]

    # -- the worker ----------------------------------------------------------------------------

    def sweep(self, limit: int = SWEEP_LIMIT) -> int:
        """Queue a deliver task for each destination that is due, not leased and has no task
        on its way (a retry come due, a worker that died holding a lease, a task lost with a
        killed worker: one queued over STALE_TICKET ago); how many. Reads the destinations of
        every school (the shared table only). A destination whose task is on its way gets
        none: a flooding destination never gains a second place in the queue.

        A due destination whose lease still runs, with no task on its way, gets a task
        delayed to the lease's end that starts a turn only if none was queued meanwhile:
        should its worker have died (a restarted worker sweeps at start), its messages go out
        when the lease lapses, not up to a minute later; if the worker is alive, it queues
        its next turn itself and that task finds nothing to do."""
        now = self.now()
        d = OutboundDestination
        due = (d.next_due_at <= now) & d.disabled_at.is_null()
        free = (d.lease_until.is_null() | (d.lease_until < now)) & (
            d.ticket.is_null() | (d.ticket < self._ticket(now - STALE_TICKET)))
        queued: list[tuple[int, int]] = []
        with db.connection():
            candidates = [r.id for r in d.select(d.id).where(due & free)
                          .order_by(d.next_due_at).limit(limit)]
            for destination_id in candidates:
                ticket = self._ticket(now)
                with db.transaction():
                    if d.update(ticket=ticket).where((d.id == destination_id) & due
                                                     & free).execute():
                        queued.append((destination_id, ticket))
            leased = [(r.id, r.lease_until) for r in d.select(d.id, d.lease_until).where(
                due & (d.lease_until >= now) & d.ticket.is_null())
                .order_by(d.lease_until).limit(limit)]
        for destination_id, ticket in queued:
            self._queue(destination_id, ticket)
        for destination_id, lease_until in leased:
            lapses = (lease_until - now).total_seconds()
            if lapses <= DELAY_HORIZON:
                self._queue(destination_id, AFTER_LAPSE, delay=lapses + 1)
        return len(queued)

    def deliver(self, destination_id: int, ticket: int | None = None) -> int:
        """Give the destination one turn (see the module doc); how many messages it settled
        (delivered, failed or cancelled). Nothing when another worker holds its lease,
        nothing is due, or `ticket` (the deliver task's) is not the destination's: a
        duplicate task. None (an operator, a test): whatever task is on its way. Runs
        outside any transaction: it commits several times.

        With the immediate queue (tests) a deliver queued by a turn runs inline, inside the
        turn that queued it: it is run after it instead, on this thread, so that a long
        chain of turns never nests."""
        pending: deque[tuple[int, int | None]] | None = getattr(self._local, "pending", None)
        if pending is not None:
            pending.append((destination_id, ticket))
            return 0
        if db.current_unit() is not None:
            raise RuntimeError("Outbound.deliver() runs outside a transaction")
        pending = self._local.pending = deque([(destination_id, ticket)])
        settled = 0
        try:
            while pending:
                settled += self._turn(*pending.popleft())
        finally:
            self._local.pending = None
        return settled

    def _claim(self, destination_id: int, me: str, ticket: int | None = None
               ) -> OutboundDestination | None:
        now = self.now()
        d = OutboundDestination
        mine = (d.ticket.is_null() if ticket == AFTER_LAPSE else
                d.ticket == ticket if ticket is not None else True)
        with db.transaction():
            taken = d.update(lease_until=now + dt.timedelta(seconds=self.settings.lease_seconds),
                             leased_by=me, ticket=None).where(
                (d.id == destination_id) & (d.lease_until.is_null() | (d.lease_until < now))
                & d.next_due_at.is_null(False) & (d.next_due_at <= now) & mine).execute()
            if taken:
                row: OutboundDestination = d.get_by_id(destination_id)
                return row
            if ticket:
                # Come too early (a clock's skew with the queue's): still this task's turn,
                # later. A spent ticket or a leased destination: a duplicate, nothing to do.
                early = d.get_or_none((d.id == destination_id) & (d.ticket == ticket)
                                      & (d.next_due_at > now))
                if early is not None:
                    wait = (early.next_due_at - now).total_seconds()
                    self._queue(destination_id, ticket, delay=max(wait, 0.5))
            return None

    def _turn(self, destination_id: int, ticket: int | None) -> int:
        # The connection is given back around each request (PostgreSQL): see
        # _release_connection; each transaction below takes one again.
        with db.connection():
            return self._turn_connected(destination_id, ticket)

    def _turn_connected(self, destination_id: int, ticket: int | None) -> int:
        me = _worker_id()
        row = self._claim(destination_id, me, ticket)
        if row is None:
            return 0
        turn = _Turn()
        park = False
        try:
            tenant = self.tenant_by_id(row.tenant_id)
            sink = self.sinks().get(row.sink)
            if sink is None:
                log.warning("outbound: no loaded plugin registers the sink %r; destination %s "
                            "waits", row.sink, destination_id)
            if tenant is None or not tenant.enabled or sink is None or not (
                    tenant.plugin_enabled(self.host().registry.sink_plugin(row.sink))):
                # A school switched off (or the sink's plugin, in that school): its messages
                # wait, looked at again now and then, and go out once it is back.
                park = True
            else:
                self._send_due(destination_id, row.sink, row.ref, tenant, sink, turn)
        except Exception:
            # A defect or the database gone: the lease is released below (or lapses), and
            # what was not settled stays pending for the next turn.
            log.exception("outbound: turn of destination %s failed", destination_id)
        finally:
            requeue = self._end_turn(destination_id, row.tenant_id, me, park, turn)
        if requeue is not None:
            self._queue(destination_id, *requeue)
        return turn.settled

    def _next_turn(self, next_due: dt.datetime | None, park: bool, turn: _Turn
                   ) -> float | None:
        """When the destination's next turn is queued by this one (seconds from now; None:
        not by this turn, by a wake or the minute's sweep)."""
        if next_due is None:
            return None
        wait = (next_due - self.now()).total_seconds()
        if wait <= 0 and not turn.failed:
            # At once, at the back of the queue: the turn's budget is spent, or a message
            # came while it ended (its wake saw the turn under way and queued nothing).
            return 0.0
        if wait <= DELAY_HORIZON and not park:
            # After a failure, not at once: the breaker needs the failures spaced.
            floor = self.settings.retry_schedule[0] if turn.failed else 0.5
            return max(wait, floor)
        return None

    def _send_due(self, destination_id: int, sink_name: str, ref: str, tenant: TenantInfo,
                  sink: Sink, turn: _Turn) -> None:
        s = self.settings
        started = time.monotonic()
        batch = max(1, int(getattr(sink, "batch_size", 1) or 1))
        while True:
            if turn.sent >= s.turn_messages or time.monotonic() - started >= s.turn_seconds:
                turn.budget_spent = True
                return
            now = self.now()
            request: OutboundRequest | None = None
            error: str | None = None
            with tenant_context(tenant), db.transaction():
                row = OutboundDestination.get_or_none(OutboundDestination.id == destination_id)
                if row is None or row.disabled_at is not None or (
                        row.open_until is not None and row.open_until > now):
                    return
                info = destination_info(row)
                m = OutboundMessage
                due = (m.destination == destination_id) & (m.status == "pending")
                if turn.single:
                    rows = list(m.select().where(due & (m.id == turn.single.pop(0))))
                    if not rows:
                        continue  # settled meanwhile (a redelivery, an admin)
                else:
                    rows = list(m.select().where(due & (m.next_attempt_at <= now))
                                .order_by(m.next_attempt_at, m.id)
                                .limit(min(batch, s.turn_messages - turn.sent)))
                if not rows:
                    return
                messages = [message_info(r, sink_name, ref) for r in rows]
                try:
                    with db.transaction():  # a savepoint: what the sink read or wrote is undone
                        request = sink.request(info, messages)
                except Exception as exc:
                    log.exception("outbound: sink %s failed to build a request for "
                                  "destination %s", sink_name, destination_id)
                    error = f"sink error: {type(exc).__name__}: {exc}"
                if request is None and error is None:
                    m.update(status="cancelled", next_attempt_at=None,
                             last_error="cancelled: the destination is gone on the sink's side"
                             ).where(m.id.in_([r.id for r in rows])).execute()
                    turn.settled += len(rows)
                    turn.sent += len(rows)  # within the turn's budget too
                    continue
            self._release_connection()
            if request is not None:
                request, error = self._authorized(sink, info, request, tenant)
            if request is not None:
                answer = self._send(request)
            else:
                answer = Answer(status=None, latency_ms=0.0, error=error)
            turn.sent += len(messages)
            if not self._settle(destination_id, tenant, sink, info, messages, answer, turn):
                return

    @staticmethod
    def _authorized(sink: Sink, info: DestinationInfo, request: OutboundRequest,
                    tenant: TenantInfo) -> tuple[OutboundRequest | None, str | None]:
        """`request` with the headers `Sink.authorize` adds (an access token fetched from
        the destination's own server), outside any transaction; (None, why) when it could
        not: the attempt is then a failure with that reason, retried on the schedule."""
        try:
            with tenant_context(tenant):
                extra = sink.authorize(info, request)
        except NotReady as exc:
            return None, str(exc)
        except Exception as exc:
            log.exception("outbound: sink %s failed to authorize a request for destination "
                          "%s", sink.name, info.id)
            return None, f"sink error: {type(exc).__name__}: {exc}"
        if not extra:
            return request, None
        return dataclasses.replace(request, headers={**request.headers, **extra}), None

    @staticmethod
    def _release_connection() -> None:
        """Give the pooled connection back before the request goes out: a slow endpoint
        must never hold one of the pool's connections (PostgreSQL). SQLite's connection is
        not pooled and holds no lock between transactions: kept."""
        database = db.database.obj
        if (db.is_postgres() and db.current_unit() is None
                and not database._state.transactions and not database.is_closed()):
            database.close()

    def _send(self, request: OutboundRequest) -> Answer:
        from .safe_http import send

        try:
            return send(request, self.policy)
        except Exception as exc:  # send promises not to raise; a defect must not stop a turn
            log.exception("outbound: sending failed")
            return Answer(status=None, latency_ms=0.0, error=f"{type(exc).__name__}: {exc}")

    def _settle(self, destination_id: int, tenant: TenantInfo, sink: Sink,
                info: DestinationInfo, messages: Sequence[MessageInfo], answer: Answer,
                turn: _Turn) -> bool:
        """Record the attempt for each message and apply the verdict, in one transaction;
        whether the turn goes on."""
        s = self.settings
        now = self.now()
        kept = _clean(answer.head[:s.answer_bytes_kept].decode("utf-8", errors="replace"))
        if answer.status is None:
            error = answer.error or "no answer"
        elif answer.ok:
            error = None
        else:
            error = answer.error or f"HTTP {answer.status}"
        error = _clean(error)[:_TEXT_LIMIT] if error is not None else None
        ids = [msg.id for msg in messages]
        try:
            with tenant_context(tenant), db.transaction():
                d, m = OutboundDestination, OutboundMessage
                query = d.select().where(d.id == destination_id)
                if db.is_postgres():
                    query = query.for_update()
                row = query.first()
                if row is None:  # forgotten meanwhile: so are its messages
                    return False
                present = {r.id: r for r in m.select().where(m.id.in_(ids)
                                                             & (m.status == "pending"))}
                if present:
                    OutboundAttempt.insert_many([
                        {"message": i, "at": now, "status": answer.status,
                         "latency_ms": float(answer.latency_ms), "answer": kept,
                         "error": error} for i in ids if i in present]).execute()
                if error is not None and answer.status is None:
                    verdict = Verdict.RETRY
                else:
                    try:
                        verdict = sink.verdict(answer, messages)
                    except Exception:
                        log.exception("outbound: sink %s failed to judge an answer", info.sink)
                        verdict = Verdict.RETRY
                if verdict is Verdict.DELIVERED:
                    m.update(status="delivered", delivered_at=now, next_attempt_at=None,
                             attempts=m.attempts + 1, last_attempt_at=now,
                             last_status=answer.status, last_error=None
                             ).where(m.id.in_(list(present))).execute()
                    d.update(consecutive_failures=0, failing_since=None, open_until=None,
                             last_success_at=now).where(d.id == destination_id).execute()
                    turn.settled += len(present)
                    self._tell_settled(sink, messages, set(present), "delivered", answer)
                    return True
                if verdict is Verdict.SPLIT and len(present) > 1:
                    # Not the destination's failure: the batch's. Each goes again alone, now.
                    m.update(attempts=m.attempts + 1, last_attempt_at=now,
                             last_status=answer.status,
                             last_error=f"batch refused ({error}); sent one by one"
                             ).where(m.id.in_(list(present))).execute()
                    turn.single = [i for i in ids if i in present]
                    return True
                if verdict is Verdict.SPLIT:
                    verdict = Verdict.RETRY
                if verdict is Verdict.REJECTED:
                    m.update(status="failed", next_attempt_at=None, attempts=m.attempts + 1,
                             last_attempt_at=now, last_status=answer.status,
                             last_error=f"rejected: {error or 'refused by the destination'}"
                             ).where(m.id.in_(list(present))).execute()
                    turn.settled += len(present)
                    self._tell_settled(sink, messages, set(present), "failed", answer)
                    return True  # the endpoint answered: the others still go
                turn.failed = True
                if verdict is Verdict.GONE:
                    m.update(attempts=m.attempts + 1, last_attempt_at=now,
                             last_status=answer.status, last_error=error
                             ).where(m.id.in_(list(present))).execute()
                    turn.settled += self._disable(row, tenant, sink, "the destination answered "
                                                  f"{answer.status} Gone", now)
                    return False
                gave_up = self._retry_later(list(present.values()), answer, error, now)
                turn.settled += len(gave_up)
                self._tell_settled(sink, messages, gave_up, "failed", answer)
                failures = row.consecutive_failures + 1
                failing_since = row.failing_since or now
                open_until = None
                if failures >= s.breaker_failures:
                    step = min(failures - s.breaker_failures, len(s.retry_schedule) - 1)
                    open_until = now + dt.timedelta(seconds=self._wait(step))
                d.update(consecutive_failures=failures, failing_since=failing_since,
                         open_until=open_until).where(d.id == destination_id).execute()
                if now - failing_since >= dt.timedelta(hours=s.disable_after_hours):
                    turn.settled += self._disable(
                        row, tenant, sink, f"no successful delivery for "
                        f"{s.disable_after_hours:g} hours (last error: {error})", now)
                return False
        except peewee.IntegrityError:
            # A message or the destination was deleted between the read and the insert.
            log.warning("outbound: destination %s changed during an attempt; its record is "
                        "dropped", destination_id, exc_info=True)
            return False

    def _wait(self, step: int) -> float:
        s = self.settings
        base = s.retry_schedule[min(step, len(s.retry_schedule) - 1)]
        return float(base) * (1 + self.rng.uniform(-s.jitter, s.jitter))

    @staticmethod
    def _tell_settled(sink: Sink, messages: Sequence[MessageInfo], ids: set[int], status: str,
                      answer: Answer) -> None:
        """Sink.settled for the messages of `ids` that reached `status` in this attempt, in
        a savepoint: a failing sink cannot undo what the engine recorded."""
        done = [msg for msg in messages if msg.id in ids]
        if not done:
            return
        try:
            with db.transaction():
                sink.settled(done, status, answer)
        except Exception:
            log.exception("outbound: sink %s failed while told of %d %s message(s)",
                          sink.name, len(done), status)

    def _retry_later(self, rows: list[OutboundMessage], answer: Answer, error: str | None,
                     now: dt.datetime) -> set[int]:
        """Each failed message: its next attempt after its schedule's next wait, or failed
        when the schedule is spent; the ids of those that failed."""
        schedule = self.settings.retry_schedule
        gave_up: set[int] = set()
        for r in rows:
            attempts = r.attempts + 1
            step = attempts - r.retry_base - 1  # 0 after the first failure since (re)start
            fields: dict[str, Any] = {"attempts": attempts, "last_attempt_at": now,
                                      "last_status": answer.status, "last_error": error}
            if step < len(schedule):
                fields["next_attempt_at"] = now + dt.timedelta(seconds=self._wait(step))
            else:
                fields.update(status="failed", next_attempt_at=None,
                              last_error=f"gave up after {attempts - r.retry_base} attempts: "
                                         f"{error}"[:_TEXT_LIMIT])
                gave_up.add(r.id)
            OutboundMessage.update(**fields).where(OutboundMessage.id == r.id).execute()
        return gave_up

    def _disable(self, row: OutboundDestination, tenant: TenantInfo, sink: Sink, reason: str,
                 now: dt.datetime) -> int:
        """The engine disables the destination (inside the caller's transaction, in its
        school): its pending messages fail (redeliverable), and the sink is told. How many
        messages failed."""
        d, m = OutboundDestination, OutboundMessage
        d.update(disabled_at=now, disabled_reason=reason[:_TEXT_LIMIT], next_due_at=None,
                 open_until=None).where(d.id == row.id).execute()
        failed = m.update(status="failed", next_attempt_at=None,
                          last_error=f"destination disabled: {reason}"[:_TEXT_LIMIT]).where(
            (m.destination == row.id) & (m.status == "pending")).execute()
        log.warning("outbound: disabled %s destination %s of tenant %s: %s", row.sink, row.ref,
                    tenant.slug, reason)
        info = destination_info(d.get_by_id(row.id))
        try:
            with db.transaction():  # a savepoint: a failing sink cannot undo the disabling
                sink.disabled(info, reason)
        except Exception:
            log.exception("outbound: sink %s failed while told destination %s is disabled",
                          row.sink, row.ref)
        return int(failed)

    def _end_turn(self, destination_id: int, tenant_id: int, me: str, park: bool,
                  turn: _Turn) -> tuple[int, float | None] | None:
        """Release the lease and set next_due_at under the destination's row lock; the
        (ticket, delay) of the next turn to queue once that committed (None: none)."""
        tenant = self.tenant_by_id(tenant_id)
        try:
            with db.connection():
                if tenant is None:  # the school is gone (its destinations with it)
                    with db.transaction():
                        self._release(destination_id, me, None, None)
                    return None
                with tenant_context(tenant), db.transaction():
                    return self._release_locked(destination_id, me, park, turn)
        except Exception:
            log.exception("outbound: could not end the turn of destination %s; its lease "
                          "lapses in %gs", destination_id, self.settings.lease_seconds)
            return None

    def _release_locked(self, destination_id: int, me: str, park: bool, turn: _Turn
                        ) -> tuple[int, float | None] | None:
        d, m = OutboundDestination, OutboundMessage
        query = d.select().where(d.id == destination_id)
        if db.is_postgres():
            # An enqueue holds this lock from its wake to its commit: we either wait and then
            # see its message, or it waits and then sees next_due_at as we leave it.
            query = query.for_update()
        row = query.first()
        if row is None:
            return None
        if row.leased_by != me:
            log.warning("outbound: destination %s: the lease lapsed during the turn and "
                        "another worker holds it now", destination_id)
            return None
        next_due: dt.datetime | None = None
        if row.disabled_at is None:
            # The first in the (destination, status, next_attempt_at) index: MIN() without
            # the stored text to convert back (SQLite).
            first = (m.select(m.next_attempt_at)
                     .where((m.destination == destination_id) & (m.status == "pending"))
                     .order_by(m.next_attempt_at).limit(1).first())
            next_due = first.next_attempt_at if first is not None else None
            if next_due is not None and row.open_until is not None:
                next_due = max(next_due, row.open_until)
            if next_due is not None and park:
                next_due = max(next_due, self.now() + PARKED)
        # No wake fires while the turn holds the lease (next_due_at is due): the next task,
        # if this turn queues it, is the only one on its way.
        delay = self._next_turn(next_due, park, turn)
        ticket = (self._ticket(self.now() + dt.timedelta(seconds=delay))
                  if delay is not None else None)
        self._release(destination_id, me, next_due, ticket)
        return (ticket, delay or None) if ticket is not None else None

    def _release(self, destination_id: int, me: str, next_due: dt.datetime | None,
                 ticket: int | None) -> None:
        d = OutboundDestination
        d.update(next_due_at=next_due, lease_until=None, leased_by=None, ticket=ticket).where(
            (d.id == destination_id) & (d.leased_by == me)).execute()


# -- tasks -----------------------------------------------------------------------------------


class _HasOutbound(Protocol):
    @property
    def outbound(self) -> Outbound: ...


def _deliver_task(runtime: _HasOutbound, destination_id: int, ticket: int | None = None
                  ) -> int:
    return runtime.outbound.deliver(destination_id, ticket)


def _sweep_task(runtime: _HasOutbound) -> int:
    return runtime.outbound.sweep()


def outbound_tasks() -> list[TaskSpec]:
    """The deliver task (its argument the destination's id; not tenant-scoped: a turn enters
    the destination's school itself and commits several times) and the minute's sweep, also
    queued when a worker starts (destinations whose worker died holding the lease)."""
    from huey import crontab

    from ..registry import TaskSpec

    return [
        TaskSpec(DELIVER_TASK, _deliver_task, tenant_scoped=False, retries=0),
        TaskSpec(SWEEP_TASK, _sweep_task, tenant_scoped=False, retries=0,
                 periodic=crontab(minute="*"), at_start=True),
    ]
