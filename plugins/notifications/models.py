"""Notification tables: the notifications themselves, admin broadcasts, per-kind preferences
and the email outbox."""

from __future__ import annotations

import peewee

from learnplat.plugin import JSONField, TenantModel, UTCDateTimeField, utcnow

from .api import NotificationInfo


class Notification(TenantModel):
    """One notification of one user. `source` names what caused it ("event:<id>",
    "broadcast:<id>"); unique per user, so a redelivered event or a retried fan-out never
    notifies anyone twice."""

    user_id = peewee.IntegerField()
    kind = peewee.CharField(max_length=40)
    title = peewee.CharField(max_length=200)
    body = peewee.TextField(default="")
    data = JSONField(default=dict)
    source = peewee.CharField(max_length=80, null=True)
    read_at = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "notifications_notification"
        indexes = (
            # The centre: a user's notifications newest first (id order is creation order).
            (("tenant", "user_id", "id"), False),
            (("tenant", "source", "user_id"), True),
        )


class Broadcast(TenantModel):
    """An admin's notification to an audience, fanned out by a task."""

    audience = peewee.CharField(max_length=10)  # user | course | role | tenant
    target = peewee.CharField(max_length=40, default="")  # the user id, course id or role
    kind = peewee.CharField(max_length=40, default="announcement")
    title = peewee.CharField(max_length=200)
    body = peewee.TextField(default="")
    data = JSONField(default=dict)
    created_by = peewee.IntegerField()
    status = peewee.CharField(max_length=10, default="queued")  # queued | sending | done
    recipients = peewee.IntegerField(default=0)
    created_at = UTCDateTimeField(default=utcnow)
    finished_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "notifications_broadcast"


class Preference(TenantModel):
    """How a user wants notifications of one kind: in_app | email | digest | off."""

    user_id = peewee.IntegerField()
    kind = peewee.CharField(max_length=40)
    channel = peewee.CharField(max_length=10)

    class Meta:
        table_name = "notifications_preference"
        indexes = ((("tenant", "user_id", "kind"), True),)


class Email(TenantModel):
    """The email outbox: one row per notification to mail, immediately or in the next digest.
    The send task drains it within the tenant's rate limit."""

    user_id = peewee.IntegerField()
    notification_id = peewee.IntegerField(null=True)
    mode = peewee.CharField(max_length=10)  # immediate | digest
    status = peewee.CharField(max_length=10, default="pending")  # pending | sent | failed | skipped
    attempts = peewee.IntegerField(default=0)
    error = peewee.TextField(default="")
    created_at = UTCDateTimeField(default=utcnow)
    sent_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "notifications_email"
        indexes = (
            (("tenant", "status", "mode", "id"), False),
            (("tenant", "status", "sent_at"), False),
            (("tenant", "notification_id"), True),
        )


MODELS = (Notification, Broadcast, Preference, Email)


def info(row: Notification) -> NotificationInfo:
    """A notification row as the contract's NotificationInfo (what the centre, the WebSocket
    and the published messages show)."""
    return NotificationInfo(id=row.id, user_id=row.user_id, kind=row.kind, title=row.title,
                            body=row.body, data=row.data or {}, read_at=row.read_at,
                            created_at=row.created_at)
