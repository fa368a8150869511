"""The outbox as an operator sees it: each handler's delivery of each event, and a way to put
failed deliveries back in the queue. No click here: `learnplat events deliveries|redeliver`
call it, and so can an admin API later."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import peewee

from . import db
from .models import EventDelivery, OutboxEvent, Tenant, utcnow

if TYPE_CHECKING:
    from .runtime import Runtime

# pending: will be tried (again) when due; failed: given up, until redelivered; done: the
# handler ran and committed; skipped: left pending by an event that finished without it (the
# handler's plugin was switched off in the tenant, or uninstalled), so never tried again.
STATUSES = ("pending", "failed", "done", "skipped")


@dataclass(frozen=True)
class DeliveryInfo:
    """One handler's delivery of one event."""

    id: int | None  # None: not tried yet (a delivery row is written at the first attempt)
    event_id: int
    event: str
    handler: str
    tenant_id: int
    tenant: str | None  # the slug; None when the school no longer exists
    status: str
    attempts: int
    last_error: str | None
    created_at: dt.datetime  # when the event was recorded
    next_attempt_at: dt.datetime | None  # pending only: when the dispatcher tries it next
    delivered_at: dt.datetime | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Redelivery:
    """What `redeliver` did: the deliveries put back in the queue, and those it left alone
    with the reason (delivery id, reason)."""

    requeued: list[DeliveryInfo] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"requeued": [d.as_dict() for d in self.requeued],
                "skipped": [{"id": i, "reason": r} for i, r in self.skipped]}


def effective_status(delivery_status: str, event_status: str) -> str:
    """A delivery row's status as the dispatcher will treat it: a row left pending by an
    event that gave up will never be tried again, so it is failed (and can be redelivered)."""
    if delivery_status == "pending" and event_status == "failed":
        return "failed"
    if delivery_status == "pending" and event_status == "done":
        return "skipped"
    return delivery_status


def _status_condition(status: str) -> Any:
    """The SQL of `effective_status(...) == status` over a delivery joined to its event."""
    d, e = EventDelivery, OutboxEvent
    if status == "failed":
        return (d.status == "failed") | ((d.status == "pending") & (e.status == "failed"))
    if status == "pending":
        return (d.status == "pending") & (e.status == "pending")
    if status == "skipped":
        return (d.status == "pending") & (e.status == "done")
    if status == "done":
        return d.status == "done"
    raise ValueError(f"unknown delivery status {status!r} (one of {', '.join(STATUSES)})")


def _handler_matches(key: str, handlers: Sequence[str]) -> bool:
    return not handlers or any(key == h or key.startswith(h + ".") for h in handlers)


def _handler_condition(handlers: Sequence[str]) -> Any:
    # A handler key ("notifications.enrolled") or a plugin name ("notifications"): a prefix
    # compared with SUBSTR rather than LIKE, so "_" and "%" in a name are not wildcards.
    column = EventDelivery.handler
    parts = [(column == h) | (peewee.fn.SUBSTR(column, 1, len(h) + 1) == h + ".")
             for h in handlers]
    condition = parts[0]
    for part in parts[1:]:
        condition = condition | part
    return condition


def _slugs(tenant_ids: Iterable[int]) -> dict[int, str]:
    ids = sorted(set(tenant_ids))
    if not ids:
        return {}
    return {t.id: t.slug for t in Tenant.select(Tenant.id, Tenant.slug).where(Tenant.id.in_(ids))}


def _info(d: EventDelivery, e: OutboxEvent, slugs: dict[int, str]) -> DeliveryInfo:
    status = effective_status(d.status, e.status)
    return DeliveryInfo(
        id=d.id, event_id=e.id, event=e.name, handler=d.handler, tenant_id=e.tenant_id,
        tenant=slugs.get(e.tenant_id), status=status, attempts=d.attempts,
        last_error=d.last_error, created_at=e.created_at,
        next_attempt_at=e.next_attempt_at if status == "pending" else None,
        delivered_at=d.delivered_at)


def _untried(runtime: Runtime, tenant_id: int | None, handlers: Sequence[str], limit: int
             ) -> list[DeliveryInfo]:
    """Pending deliveries that have no row yet: the handlers of events not dispatched yet (an
    event's first attempt writes a row per handler it runs; a redelivered event is back at
    0 attempts with its rows)."""
    query = OutboxEvent.select().where(
        (OutboxEvent.status == "pending") & (OutboxEvent.attempts == 0))
    if tenant_id is not None:
        query = query.where(OutboxEvent.tenant_id == tenant_id)
    events = list(query.order_by(OutboxEvent.id.desc()).limit(limit))
    slugs = _slugs(e.tenant_id for e in events)
    tried = {(d.event_id, d.handler) for d in EventDelivery.select(
        EventDelivery.event, EventDelivery.handler).where(
            EventDelivery.event.in_([e.id for e in events]))} if events else set()
    rows = []
    for e in events:
        tenant = runtime.tenants.get_by_id(e.tenant_id)
        for h in runtime.registry.handlers_for(e.name):
            if not _handler_matches(h.key, handlers) or (e.id, h.key) in tried:
                continue
            if tenant is not None and not tenant.plugin_enabled(h.plugin):
                continue  # the dispatcher skips it: it is not waiting for anything
            rows.append(DeliveryInfo(
                id=None, event_id=e.id, event=e.name, handler=h.key, tenant_id=e.tenant_id,
                tenant=slugs.get(e.tenant_id), status="pending", attempts=0, last_error=None,
                created_at=e.created_at, next_attempt_at=e.next_attempt_at, delivered_at=None))
    return rows


def list_deliveries(runtime: Runtime, *, tenant_id: int | None = None,
                    statuses: Sequence[str] = (), handlers: Sequence[str] = (),
                    limit: int = 100) -> list[DeliveryInfo]:
    """Deliveries, newest event first (then by handler), at most `limit`.

    `statuses` (any of STATUSES; all when empty), `handlers` (handler keys or plugin names;
    all when empty) and `tenant_id` narrow the list. Pending includes the handlers of events
    not dispatched yet (``id`` None). Needs a connection; reads across every tenant (the
    outbox is the core's table, not a tenant's).
    """
    wanted = tuple(statuses) or STATUSES
    for status in wanted:
        _status_condition(status)  # an unknown status is a ValueError, whatever the data
    if limit <= 0:
        return []
    conditions = [_status_condition(s) for s in wanted]
    where = conditions[0]
    for c in conditions[1:]:
        where = where | c
    query = (EventDelivery.select(EventDelivery, OutboxEvent).join(OutboxEvent).where(where))
    if tenant_id is not None:
        query = query.where(OutboxEvent.tenant_id == tenant_id)
    if handlers:
        query = query.where(_handler_condition(handlers))
    pairs = [(d, d.event) for d in query.order_by(OutboxEvent.id.desc(), EventDelivery.handler)
             .limit(limit)]
    slugs = _slugs(e.tenant_id for _, e in pairs)
    rows = [_info(d, e, slugs) for d, e in pairs]
    if "pending" in wanted:
        rows += _untried(runtime, tenant_id, handlers, limit)
        rows.sort(key=lambda r: (-r.event_id, r.handler))
    return rows[:limit]


def redeliver(runtime: Runtime, ids: Sequence[int] | None = None, *,
              tenant_id: int | None = None, handlers: Sequence[str] = ()) -> Redelivery:
    """Put failed deliveries back in the queue: the deliveries `ids`, or (`ids` None) every
    failed one in `tenant_id` and of `handlers` when given.

    Each one goes back to pending with no attempts, and its event to pending, due now, with
    its attempts reset: the handler gets `events.max_attempts` tries again with the backoff
    starting over (so do the event's other handlers still pending). Handlers already done are
    not run again; failed ones not chosen stay failed. The dispatcher is queued after commit,
    so a worker delivers them at once (or the minute's sweep does). A delivery that is not
    failed, whose handler is not loaded, or whose school is gone is skipped with the reason.
    Needs a connection; runs in its own transaction (a savepoint inside one).
    """
    if ids is not None and not ids:
        return Redelivery()
    loaded = {h.key for h in runtime.registry.handlers}
    requeued: list[DeliveryInfo] = []
    skipped: list[tuple[int, str]] = []
    with db.transaction():
        query = EventDelivery.select(EventDelivery, OutboxEvent).join(OutboxEvent)
        if ids is not None:
            query = query.where(EventDelivery.id.in_(list(ids)))
        else:
            query = query.where(_status_condition("failed"))
        if tenant_id is not None:
            query = query.where(OutboxEvent.tenant_id == tenant_id)
        if handlers:
            query = query.where(_handler_condition(handlers))
        candidates = list(query.order_by(OutboxEvent.id, EventDelivery.handler))
        if db.is_postgres() and candidates:
            # A dispatcher holding one of these events finishes first; then we re-read them.
            event_ids = sorted({d.event_id for d in candidates})
            list(OutboxEvent.select(OutboxEvent.id).where(OutboxEvent.id.in_(event_ids))
                 .order_by(OutboxEvent.id).for_update())
            candidates = list(EventDelivery.select(EventDelivery, OutboxEvent).join(OutboxEvent)
                              .where(EventDelivery.id.in_([d.id for d in candidates]))
                              .order_by(OutboxEvent.id, EventDelivery.handler))
        if ids is not None:
            found = {d.id for d in candidates}
            missing = "no such delivery" + (" matching the filters"
                                            if tenant_id is not None or handlers else "")
            skipped += [(i, missing) for i in dict.fromkeys(ids) if i not in found]
        slugs = _slugs(d.event.tenant_id for d in candidates)
        chosen: list[tuple[EventDelivery, OutboxEvent]] = []
        for d in candidates:
            e = d.event
            status = effective_status(d.status, e.status)
            if status != "failed":
                skipped.append((d.id, f"{status}, not failed"))
            elif d.handler not in loaded:
                skipped.append((d.id, f"handler {d.handler} is not loaded"))
            elif e.tenant_id not in slugs:
                skipped.append((d.id, f"tenant {e.tenant_id} no longer exists"))
            else:
                chosen.append((d, e))
        if chosen:
            now = utcnow()
            EventDelivery.update(status="pending", attempts=0).where(
                EventDelivery.id.in_([d.id for d, _ in chosen])).execute()
            OutboxEvent.update(status="pending", attempts=0, next_attempt_at=now).where(
                OutboxEvent.id.in_(sorted({e.id for _, e in chosen}))).execute()
            for d, e in chosen:
                requeued.append(DeliveryInfo(
                    id=d.id, event_id=e.id, event=e.name, handler=d.handler,
                    tenant_id=e.tenant_id, tenant=slugs.get(e.tenant_id), status="pending",
                    attempts=0, last_error=d.last_error, created_at=e.created_at,
                    next_attempt_at=now, delivered_at=None))
            db.on_commit(runtime.events.notify)
    return Redelivery(requeued, sorted(skipped))
