"""The delivery engine's tables (migration learnplat/migrations/0003_outbound.py).

A destination is a core table shared by every school (like the outbox): the minute's sweep
reads it across schools to find the destinations with a message due, and nothing in it is a
school's data beyond its ids. Its messages and their attempts are a school's own
(``TenantModel``: scoped in every query, and guarded by row-level security on PostgreSQL).
"""

from __future__ import annotations

import peewee

from ..models import BaseModel, JSONField, Tenant, TenantModel, UTCDateTimeField, utcnow


class OutboundDestination(BaseModel):
    """One place a sink delivers to (a school's webhook endpoint, its learning record store):
    the sink's `ref` for it, whether it has a message due, who is delivering to it now (the
    lease), and its health (the circuit breaker, disabling)."""

    tenant = peewee.ForeignKeyField(Tenant, on_delete="CASCADE", lazy_load=False,
                                    column_name="tenant_id", index=False)
    sink = peewee.CharField(max_length=60)
    ref = peewee.CharField(max_length=200)
    # When a message of it is due (None: nothing to send, or disabled): what the sweep scans.
    next_due_at = UTCDateTimeField(null=True, index=True)
    lease_until = UTCDateTimeField(null=True)
    leased_by = peewee.CharField(max_length=200, null=True)
    # The deliver task on its way, if any: only the task carrying this ticket may start a
    # turn (a duplicate, from a sweep or a late wake, finds it spent and does nothing), so a
    # destination never holds two places in the queue. The time the task was queued to run
    # (milliseconds since the epoch) times 1000, plus a random part: the sweep tells a lost
    # task by how late it is.
    ticket = peewee.BigIntegerField(null=True)
    consecutive_failures = peewee.IntegerField(default=0)
    failing_since = UTCDateTimeField(null=True)
    open_until = UTCDateTimeField(null=True)
    last_success_at = UTCDateTimeField(null=True)
    disabled_at = UTCDateTimeField(null=True)
    disabled_reason = peewee.TextField(null=True)

    class Meta:
        table_name = "learnplat_outbound_destination"
        indexes = ((("tenant", "sink", "ref"), True),)


class OutboundMessage(TenantModel):
    """One message queued for one destination; its payload is fixed when it is queued."""

    id = peewee.BigAutoField()
    destination = peewee.ForeignKeyField(OutboundDestination, on_delete="CASCADE",
                                         lazy_load=False, index=False)
    key = peewee.CharField(max_length=200)
    event_id = peewee.BigIntegerField(null=True)
    event_type = peewee.CharField(max_length=120, default="")
    payload = JSONField(null=True)
    status = peewee.CharField(max_length=10, default="pending")  # see MESSAGE_STATUSES
    attempts = peewee.IntegerField(default=0)  # every attempt ever made (the log keeps them)
    # `attempts` when the retry schedule last started over (a redelivery): the next wait is
    # retry_schedule[attempts - retry_base - 1].
    retry_base = peewee.IntegerField(default=0)
    created_at = UTCDateTimeField(default=utcnow, index=True)
    next_attempt_at = UTCDateTimeField(null=True)
    last_attempt_at = UTCDateTimeField(null=True)
    delivered_at = UTCDateTimeField(null=True)
    last_status = peewee.IntegerField(null=True)
    last_error = peewee.TextField(null=True)

    class Meta:
        table_name = "learnplat_outbound_message"
        indexes = (
            (("destination", "key"), True),
            # A destination's due pending messages, oldest first (and its end-of-turn min).
            (("destination", "status", "next_attempt_at"), False),
        )


class OutboundAttempt(TenantModel):
    """One attempt to send one message (a batch's attempt is recorded for each message)."""

    id = peewee.BigAutoField()
    message = peewee.ForeignKeyField(OutboundMessage, on_delete="CASCADE", lazy_load=False)
    at = UTCDateTimeField(default=utcnow)
    status = peewee.IntegerField(null=True)
    latency_ms = peewee.FloatField(default=0)
    answer = peewee.TextField(default="")
    error = peewee.TextField(null=True)

    class Meta:
        table_name = "learnplat_outbound_attempt"


OUTBOUND_MODELS: tuple[type[BaseModel], ...] = (OutboundDestination, OutboundMessage,
                                                OutboundAttempt)
