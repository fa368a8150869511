"""The notifications plugin's contract: ``runtime.service(NOTIFICATIONS)`` is a
``NotificationsAPI``, for plugins that want to notify users of something of their own."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, Protocol

from learnplat.plugin import Record, ServiceKey


class NotificationInfo(Record):
    id: int
    user_id: int
    kind: str
    title: str
    body: str
    data: dict[str, Any]
    read_at: dt.datetime | None
    created_at: dt.datetime


class NotificationsAPI(Protocol):
    def notify(self, user_ids: Iterable[int], kind: str, title: str, body: str = "",
               data: dict[str, Any] | None = None, source: str | None = None) -> int:
        """Notify users of the current tenant (in the current transaction), honouring each
        user's preference for `kind` (in-app, email, digest, off); delivered in real time
        after commit. With `source` (e.g. "myplugin:event:42") a user is notified at most once
        per source, so a retried caller does not notify twice. Returns how many were created."""

    def unread_count(self, user_id: int) -> int:
        """How many unread notifications the user has."""


NOTIFICATIONS: ServiceKey[NotificationsAPI] = ServiceKey("notifications", NotificationsAPI)
