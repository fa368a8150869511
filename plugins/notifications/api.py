"""The notifications plugin's contract: ``runtime.service(NOTIFICATIONS)`` is a
``NotificationsAPI``, for plugins that want to notify users of something of their own."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, Protocol

from learnplat.plugin import Field, Record, ServiceKey


class NotificationInfo(Record):
    # Each field's example (the OpenAPI document's, and NotificationOut's composed from them):
    # student 1001 told that an instructor reviewed their quiz in course 42.
    id: int = Field(examples=[9001])
    user_id: int = Field(examples=[1001])
    kind: str = Field(examples=["quiz_graded"])
    title: str = Field(examples=["Your quiz in Introduction to Statistics was graded"])
    body: str = Field(examples=["Score: 85%"])
    data: dict[str, Any] = Field(examples=[{"course_id": 42, "event": "quiz.graded.v1"}])
    read_at: dt.datetime | None = Field(examples=[None])
    created_at: dt.datetime = Field(examples=["2026-09-05T16:20:00Z"])


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
