"""The event bus: an outbox written in the change's transaction, delivered after commit.

``record()`` inserts the event in the same transaction as the change, so a rolled-back change
emits nothing. After commit the dispatcher is queued (a Huey task) and, with
``events.inline_dispatch``, also run in-process at once. Each handler runs in the event's tenant
inside its own savepoint: one raising handler neither stops the others nor undoes their work,
and is retried with exponential backoff until ``events.max_attempts``. Delivery is at least
once; ``event.id`` lets handlers be idempotent.
"""

from __future__ import annotations

import datetime as dt
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from pydantic import ValidationError

from . import db
from .contracts import Event
from .models import EventDelivery, OutboxEvent, utcnow
from .registry import EventHandler, Registry, TaskSpec
from .tenancy import TenantInfo, current_tenant, tenant_context

if TYPE_CHECKING:
    from .settings import EventSettings
    from .tasks import TaskQueue

log = logging.getLogger(__name__)
P = TypeVar("P")

DISPATCH_TASK = "learnplat.dispatch_events"
SWEEP_TASK = "learnplat.sweep_events"
_BATCH = 100


@dataclass(frozen=True)
class EventMessage(Generic[P]):
    """What a handler receives: never a model object, only data. Annotate a handler's
    argument ``EventMessage[CoursePublished]`` and ``event.data`` is typed. A handler declared
    with ``EventHandler(..., payload=Model)`` gets ``data`` as a ``Model`` (annotate
    ``EventMessage[Model]``)."""

    id: int
    name: str
    tenant_id: int
    payload: dict[str, Any]
    created_at: dt.datetime
    attempt: int
    data: P = None  # type: ignore[assignment]  # the declared payload type, parsed


class PayloadError(ValueError):
    """An event's stored payload does not parse as the model its handler declared
    (``EventHandler(payload=...)``): that handler's delivery fails, and is retried."""


def handler_message(handler: EventHandler, message: EventMessage[Any]) -> EventMessage[Any]:
    """The message `handler` receives: with a `payload` model declared, ``data`` is that
    model parsed from the stored payload (extra fields ignored; PayloadError when it does not
    parse); else `message` itself."""
    model = handler.payload
    if model is None:
        return message
    try:
        data = model.model_validate(message.payload, extra="ignore")
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(payload)'}: {e['msg']}" for e in exc.errors())
        raise PayloadError(f"event {message.id} {message.name}: payload does not match "
                           f"{model.__name__} of handler {handler.key} ({problems})") from None
    return replace(message, data=data)


class EventHost(Protocol):
    """What the bus needs of the runtime it serves, which is finished after the bus: the
    registry of declared events and their handlers. Handlers receive the host itself."""

    @property
    def registry(self) -> Registry: ...


class _HasEvents(Protocol):
    @property
    def events(self) -> EventBus: ...


def _dispatch_task(runtime: _HasEvents) -> int:
    return runtime.events.dispatch_pending()


def event_tasks() -> list[TaskSpec]:
    from huey import crontab

    return [
        TaskSpec(DISPATCH_TASK, _dispatch_task, tenant_scoped=False, retries=0),
        # Picks up retries whose backoff has passed, and anything recorded while no worker ran.
        TaskSpec(SWEEP_TASK, _dispatch_task, tenant_scoped=False, retries=0,
                 periodic=crontab(minute="*")),
    ]


class EventBus:
    """Records events in the outbox and delivers them (see the module doc).

    `queue` sends the dispatcher after commit; `tenant_by_id` finds an event's tenant;
    `host()` is the runtime once it is built: its registry names the events and handlers
    (collected after the bus exists), and each handler receives it."""

    def __init__(self, settings: EventSettings, queue: TaskQueue,
                 tenant_by_id: Callable[[int], TenantInfo | None],
                 host: Callable[[], EventHost]):
        self.settings = settings
        self.queue = queue
        self.tenant_by_id = tenant_by_id
        self.host = host

    def record(self, event: Event) -> int:
        """Record `event` (an instance of a declared Event type) for the current tenant in the
        current transaction; returns its id. Delivery starts after the outermost transaction
        commits."""
        decl = self.host().registry.events.get(getattr(event, "name", ""))
        if decl is None or decl.type is not type(event):
            raise TypeError(f"{type(event).__name__} is not an event declared by a loaded "
                            "plugin (register_events)")
        uow = db.current_unit()
        if uow is None:
            raise RuntimeError("record() must run inside db.transaction()")
        row = OutboxEvent.create(tenant_id=current_tenant().id, name=decl.name,
                                 payload=event.model_dump(mode="json"))
        if not uow.events_recorded:
            uow.events_recorded = True
            db.on_commit(self.notify)
        return row.id

    def notify(self) -> None:
        """Called after a commit that recorded events."""
        if self.settings.inline_dispatch:
            try:
                self.dispatch_pending()
            except Exception:
                log.exception("inline event dispatch failed; the queue will retry")
        if DISPATCH_TASK in self.queue.wrappers:
            self.queue.enqueue(DISPATCH_TASK)

    def dispatch_pending(self, limit: int = 1000) -> int:
        """Deliver due events; returns how many events were finished (done or failed)."""
        finished = 0
        with db.connection():
            while finished < limit:
                ids = [
                    e.id
                    for e in OutboxEvent.select(OutboxEvent.id)
                    .where((OutboxEvent.status == "pending")
                           & (OutboxEvent.next_attempt_at <= utcnow()))
                    .order_by(OutboxEvent.id)
                    .limit(_BATCH)
                ]
                if not ids:
                    break
                progressed = False
                for event_id in ids:
                    outcome = self._dispatch_one(event_id)
                    if outcome in ("done", "failed"):
                        finished += 1
                    progressed = progressed or outcome is not None
                if not progressed or len(ids) < _BATCH:
                    break
        return finished

    def _lock_event(self, event_id: int) -> OutboxEvent | None:
        query = OutboxEvent.select().where(
            (OutboxEvent.id == event_id) & (OutboxEvent.status == "pending"))
        if db.is_postgres():
            # Another dispatcher holding this event skips it instead of delivering it twice.
            query = query.for_update("FOR UPDATE SKIP LOCKED")
        event = query.first()
        if event is None or event.next_attempt_at > utcnow():
            return None
        return event

    def _dispatch_one(self, event_id: int) -> str | None:
        with db.transaction() as _:
            event = self._lock_event(event_id)
            if event is None:
                return None
            registry = self.host().registry
            handlers = registry.handlers_for(event.name)
            if event.name not in registry.events and not any(
                    h.event == event.name for h in handlers):
                return self._unknown(event)
            tenant = self.tenant_by_id(event.tenant_id)
            done = {
                d.handler: d
                for d in EventDelivery.select().where(EventDelivery.event == event.id)
            }
            message = self._message(event)
            failures = 0
            for handler in handlers:
                delivery = done.get(handler.key)
                if delivery is not None and delivery.status in ("done", "failed"):
                    continue
                if tenant is not None and not tenant.plugin_enabled(handler.plugin):
                    continue
                if not self._deliver(handler, message, tenant, delivery):
                    failures += 1
            event.attempts += 1
            if failures == 0:
                event.status = "done"
            elif event.attempts >= self.settings.max_attempts:
                event.status = "failed"
                log.error("event %s %s failed after %d attempts", event.id, event.name,
                          event.attempts)
            else:
                delay = self.settings.backoff_seconds * (2 ** (event.attempts - 1))
                event.next_attempt_at = utcnow() + dt.timedelta(seconds=delay)
            event.save()
            return event.status

    def _unknown(self, event: OutboxEvent) -> str:
        """An event no plugin of this process declares or handles by name: recorded by a
        newer release's process while this older one still runs (a rolling upgrade), or by a
        plugin since removed.
        Marking it done would deliver it to nobody, for good; it is left for a worker that
        knows it, with the usual backoff, and fails (loudly) only after max_attempts."""
        event.attempts += 1
        if event.attempts >= self.settings.max_attempts:
            event.status = "failed"
            log.error("event %s %s: no loaded plugin declares it (a newer release's event, "
                      "or a removed plugin's); failed after %d attempts", event.id, event.name,
                      event.attempts)
        else:
            log.warning("event %s %s: no loaded plugin declares it; left for a worker that "
                        "does", event.id, event.name)
            delay = self.settings.backoff_seconds * (2 ** (event.attempts - 1))
            event.next_attempt_at = utcnow() + dt.timedelta(seconds=delay)
        event.save()
        return event.status

    def _message(self, event: OutboxEvent) -> EventMessage[Any]:
        decl = self.host().registry.events.get(event.name)
        data = None
        if decl is not None:
            try:
                data = decl.type.model_validate(event.payload)
            except ValueError:  # an older payload the type no longer reads: handlers see None
                log.warning("event %s %s: payload does not match %s", event.id, event.name,
                            decl.type.__name__)
        return EventMessage(event.id, event.name, event.tenant_id, event.payload,
                            event.created_at, event.attempts + 1, data)

    def _deliver(self, handler: EventHandler, message: EventMessage[Any],
                 tenant: TenantInfo | None, delivery: EventDelivery | None) -> bool:
        if delivery is None:
            delivery = EventDelivery(event=message.id, handler=handler.key)
        delivery.attempts += 1
        try:
            # A savepoint per handler: its writes and its delivery mark commit together, and
            # what it asked to run after commit is dropped with it when it fails.
            with db.transaction():
                if tenant is None:
                    raise LookupError(f"tenant {message.tenant_id} no longer exists")
                with tenant_context(tenant):
                    handler.fn(self.host(), handler_message(handler, message))
        except Exception as exc:
            log.warning("event %s %s: handler %s failed (attempt %d): %r", message.id,
                        message.name, handler.key, delivery.attempts, exc, exc_info=True)
            db.forget_tenant()
            delivery.last_error = "".join(traceback.format_exception_only(exc)).strip()[:2000]
            if delivery.attempts >= self.settings.max_attempts:
                delivery.status = "failed"
            delivery.save()
            return False
        delivery.status = "done"
        delivery.delivered_at = utcnow()
        delivery.last_error = None
        delivery.save()
        return True
