"""Domain logic of the webhooks plugin: endpoints and their secrets, which published events
an endpoint receives (the fan-out), the delivery log over the engine's messages, redelivery,
and telling a school's admins that an endpoint was disabled. No Falcon here.

Delivering (the queue, retries, the breaker, the attempt log) is the core's delivery engine
(``runtime.outbound``); this plugin is one of its sinks (sink.py)."""

from __future__ import annotations

import datetime as dt
import fnmatch
import logging
import secrets as random
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from learnplat_identity.api import IDENTITY
from learnplat_notifications.api import NOTIFICATIONS

from learnplat.plugin import (
    Conflict,
    Event,
    EventMessage,
    NotFound,
    ValidationFailed,
    api_timestamp,
    current_tenant,
    db,
    utcnow,
)

from .models import Endpoint, EndpointSecret
from .settings import DEFAULT_MAX_ENDPOINTS
from .signing import SecretStore, new_secret

if TYPE_CHECKING:
    from learnplat.plugin import Runtime

log = logging.getLogger(__name__)
SINK = "webhooks"
TEST_EVENT = "webhook.test"  # the ping of POST /webhooks/endpoints/{id}/test (no declared event)
REDELIVER_STATUSES = {"failed": ("failed",), "delivered": ("delivered",),
                      "cancelled": ("cancelled",), "any": ("failed", "delivered", "cancelled")}


def matches(patterns: Iterable[str], name: str) -> bool:
    """Whether a versioned event name is one of `patterns` (`*` matches any characters,
    dots included: ``enrollment.*`` is every enrollment event, ``*`` every event)."""
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def rfc3339(moment: dt.datetime) -> str:
    return api_timestamp(moment) if moment.tzinfo else api_timestamp(
        moment.replace(tzinfo=dt.UTC))


def webhook_id(key: str) -> str:
    """The `webhook-id` of a message: derived from its key (the event id, or a ping's own
    key), so every attempt and every redelivery carries the same one."""
    return f"msg_{key}"


class WebhooksService:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.store = SecretStore(runtime.secret_keys)

    @property
    def outbound(self) -> Any:
        return self.runtime.outbound

    # -- the events an endpoint may receive ------------------------------------------------

    def published(self) -> dict[str, Any]:
        """The published events (name -> EventDecl), by name."""
        events = self.runtime.registry.events
        return {name: events[name] for name in sorted(events) if events[name].type.published}

    def check_event_types(self, patterns: list[str]) -> list[str]:
        """Each an exact published event name or a pattern matching at least one; else 422
        naming the entry."""
        names = list(self.published())
        for i, pattern in enumerate(patterns):
            if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
                raise ValidationFailed.field(
                    f"event_types[{i}]", f"{pattern!r} is no published event type and matches "
                    "none (GET /webhooks/event-types lists them)", "unknown_event_type")
        return patterns

    # -- endpoints --------------------------------------------------------------------------

    def check_url(self, url: str) -> str:
        """The URL as the engine will reach it; UnsafeURL (422 `unsafe_url`) otherwise."""
        checked = str(self.outbound.check_url(url))
        if len(checked) > 2000:  # its normal form (IDNA) may be longer than what was sent
            raise ValidationFailed.field("url", "longer than 2000 characters once normalised",
                                         "unsafe_url")
        return checked

    def max_endpoints(self) -> int:
        value = current_tenant().setting("webhooks.max_endpoints")
        return value if isinstance(value, int) and value > 0 else DEFAULT_MAX_ENDPOINTS

    def create(self, url: str, event_types: list[str], description: str = "",
               enabled: bool = True, created_by: int | None = None) -> tuple[Endpoint, str]:
        """A new endpoint and its first secret (returned in clear this once)."""
        url = self.check_url(url)
        self.check_event_types(event_types)
        # Locks nothing: two concurrent creations may pass the count together and end one
        # over the cap, which is harmless (the cap is against runaway scripts, not a quota).
        if Endpoint.select().count() >= self.max_endpoints():
            raise Conflict(f"this school has {self.max_endpoints()} webhook endpoints already, "
                           "its maximum (setting webhooks.max_endpoints): delete one first",
                           code="too_many_endpoints")
        now = utcnow()
        row = Endpoint.create(url=url, description=description, event_types=event_types,
                              enabled=enabled, created_by=created_by, created_at=now,
                              updated_at=now,
                              disabled_reason=None if enabled else "disabled by an admin",
                              disabled_at=None if enabled else now)
        secret = new_secret()
        EndpointSecret.create(endpoint_id=row.id, secret=self.store.seal(secret), created_at=now)
        self.outbound.ensure_destination(SINK, str(row.id))
        return row, secret

    def get(self, endpoint_id: int, lock: bool = False) -> Endpoint:
        query = Endpoint.select().where(Endpoint.id == endpoint_id)
        if lock and db.is_postgres():
            query = query.for_update()
        row = query.first()
        if row is None:
            raise NotFound("no such webhook endpoint", code="no_endpoint")
        return row

    def update(self, endpoint_id: int, changes: dict[str, Any],
               precondition: Callable[[], None] | None = None) -> Endpoint:
        row = self.get(endpoint_id, lock=True)
        if precondition is not None:
            precondition()
        if "url" in changes:
            row.url = self.check_url(changes["url"])
        if "event_types" in changes:
            row.event_types = self.check_event_types(changes["event_types"])
        if "description" in changes:
            row.description = changes["description"]
        if "enabled" in changes and changes["enabled"] != row.enabled:
            row.enabled = changes["enabled"]
            ref = str(row.id)
            if row.enabled:
                row.disabled_reason, row.disabled_at = None, None
                self.outbound.enable(SINK, ref)
            else:
                row.disabled_reason, row.disabled_at = "disabled by an admin", utcnow()
                row.save()  # first: the engine's disabled() callback then finds it off
                self.outbound.disable(SINK, ref, "disabled by an admin")
        elif changes.get("enabled") and row.enabled:
            # Enabled here but perhaps disabled in the engine (it failed for days and an admin
            # fixed it): enabling again also closes the breaker there.
            self.outbound.enable(SINK, str(row.id))
        row.updated_at = utcnow()
        row.save()
        return row

    def delete(self, endpoint_id: int, precondition: Callable[[], None] | None = None) -> None:
        row = self.get(endpoint_id, lock=True)
        if precondition is not None:
            precondition()
        EndpointSecret.delete().where(EndpointSecret.endpoint_id == row.id).execute()
        row.delete_instance()
        # Its queued deliveries and their log go with it.
        self.outbound.forget(SINK, str(endpoint_id))

    def rotate(self, endpoint_id: int, overlap_hours: int) -> tuple[str, dt.datetime | None]:
        """A new secret; the ones in force keep signing for `overlap_hours` more (never longer
        than they would have). Returns (the new secret, until when the old ones sign)."""
        row = self.get(endpoint_id, lock=True)
        now = utcnow()
        until = now + dt.timedelta(hours=overlap_hours)
        old = list(EndpointSecret.select().where(EndpointSecret.endpoint_id == row.id))
        previous: dt.datetime | None = None
        for s in old:
            if s.expires_at is not None and s.expires_at <= now:
                s.delete_instance()  # expired: nothing to keep
                continue
            if s.expires_at is None or s.expires_at > until:
                s.expires_at = until
                s.save()
            previous = max(previous or s.expires_at, s.expires_at)
        secret = new_secret()
        EndpointSecret.create(endpoint_id=row.id, secret=self.store.seal(secret), created_at=now)
        row.updated_at = now
        row.save()
        return secret, previous

    def secrets_in_force(self, endpoint_id: int) -> list[str]:
        """The endpoint's secrets that sign now, newest first."""
        now = utcnow()
        rows = EndpointSecret.select().where(
            (EndpointSecret.endpoint_id == endpoint_id)
            & (EndpointSecret.expires_at.is_null() | (EndpointSecret.expires_at > now))
        ).order_by(EndpointSecret.id.desc())
        return [self.store.open(r.secret) for r in rows]

    # -- the fan-out ----------------------------------------------------------------------------

    def payload(self, decl_type: type[Event], message: EventMessage[Any]) -> dict[str, Any]:
        """The body of a delivery: {type, timestamp, data}, `data` the event's public fields
        only (its declared contract, never the internal ones)."""
        return {"type": message.name, "timestamp": rfc3339(message.created_at),
                "data": decl_type.public_payload(message.payload)}

    def fan_out(self, runtime: Runtime, message: EventMessage[Any]) -> None:
        """Queue `message` for each enabled endpoint of its school that subscribes to it.
        The engine's unique (destination, key) makes a redelivered event add nothing."""
        decl = self.runtime.registry.events.get(message.name)
        if decl is None or not decl.type.published:
            return
        endpoints = [e for e in Endpoint.select().where(Endpoint.enabled == True)  # noqa: E712
                     if matches(e.event_types, message.name)]
        if not endpoints:
            return
        body = self.payload(decl.type, message)
        for e in endpoints:
            self.outbound.enqueue(SINK, str(e.id), str(message.id), body,
                                  event_id=message.id, event_type=message.name)

    def ping(self, endpoint_id: int) -> Any:
        """Queue a `webhook.test` delivery to the endpoint (whatever it subscribes to)."""
        row = self.get(endpoint_id)
        if not row.enabled:
            raise Conflict("the endpoint is disabled: enable it first", code="endpoint_disabled")
        key = f"test_{random.token_hex(8)}"
        body = {"type": TEST_EVENT, "timestamp": rfc3339(utcnow()),
                "data": {"endpoint_id": row.id, "school": current_tenant().slug}}
        self.outbound.enqueue(SINK, str(row.id), key, body, event_type=TEST_EVENT)
        found = self.outbound.messages(SINK, str(row.id), event_type=TEST_EVENT, limit=20)
        return next(m for m in found if m.key == key)

    # -- deliveries -----------------------------------------------------------------------------

    def deliveries(self, endpoint_id: int, *, status: str | None = None,
                   event_type: str | None = None, since: dt.datetime | None = None,
                   until: dt.datetime | None = None, before_id: int | None = None,
                   limit: int = 50) -> list[Any]:
        self.get(endpoint_id)
        return list(self.outbound.messages(
            SINK, str(endpoint_id), statuses=(status,) if status else (),
            event_type=event_type, since=since, until=until, before_id=before_id, limit=limit))

    def all_deliveries(self, *, status: str | None = None, endpoint_id: int | None = None,
                       since: dt.datetime | None = None, until: dt.datetime | None = None,
                       before_id: int | None = None, limit: int = 50) -> list[Any]:
        ref = str(endpoint_id) if endpoint_id is not None else None
        return list(self.outbound.messages(
            SINK, ref, statuses=(status,) if status else (), since=since, until=until,
            before_id=before_id, limit=limit))

    def delivery(self, delivery_id: int) -> Any:
        """A delivery of this school's (the engine scopes messages to the school)."""
        found = self.outbound.message(SINK, delivery_id) if 0 < delivery_id < 2**63 else None
        if found is None:
            raise NotFound("no such delivery", code="no_delivery")
        return found

    def attempts(self, delivery_id: int) -> list[Any]:
        return list(self.outbound.attempts(delivery_id))

    def redeliver(self, delivery_id: int) -> list[Any]:
        found = self.delivery(delivery_id)
        return list(self.outbound.redeliver(SINK, found.ref, ids=[found.id],
                                            statuses=REDELIVER_STATUSES["any"]))

    def redeliver_range(self, endpoint_id: int, since: dt.datetime,
                        until: dt.datetime | None, status: str) -> list[Any]:
        row = self.get(endpoint_id)
        return list(self.outbound.redeliver(SINK, str(row.id), since=since, until=until,
                                            statuses=REDELIVER_STATUSES[status]))

    # -- disabling (the engine's verdict) -------------------------------------------------------

    def mark_disabled(self, endpoint_id: int, reason: str) -> None:
        """The engine disabled the endpoint (a 410, or days of failures): mark it and tell
        the school's admins. Nothing when it was off already (an admin switched it off)."""
        row = Endpoint.select().where(Endpoint.id == endpoint_id).first()
        if row is None or not row.enabled:
            return
        now = utcnow()
        row.enabled, row.disabled_reason, row.disabled_at = False, reason[:500], now
        row.updated_at = now
        row.save()
        self.tell_admins(row, reason)

    def tell_admins(self, row: Endpoint, reason: str) -> None:
        if not self.runtime.has_service(NOTIFICATIONS) or not self.runtime.has_service(IDENTITY):
            log.warning("webhook endpoint %s of %s disabled (%s); the notifications plugin is "
                        "not loaded: no admin told", row.id, current_tenant().slug, reason)
            return
        admins = self.runtime.service(IDENTITY).user_ids(role="admin")
        if not admins:
            return
        self.runtime.service(NOTIFICATIONS).notify(
            admins, "webhook_disabled", f"Webhook endpoint {row.id} was disabled",
            f"Deliveries to {row.url} stopped: {reason}. Fix the receiver, then enable the "
            "endpoint again (PATCH /webhooks/endpoints/{id} with enabled: true) and redeliver "
            "what failed.", data={"endpoint_id": row.id, "url": row.url, "reason": reason},
            source=f"webhooks:disabled:{row.id}:{int(row.disabled_at.timestamp())}")
