"""Request and response schemas of the notifications routes."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import JsonDict

from learnplat.plugin import Schema

from .api import NotificationInfo
from .settings import Channel
from .templates import KINDS

BroadcastAudience = Literal["user", "course", "role", "tenant"]
BroadcastStatus = Literal["queued", "sending", "done"]
Kind = Literal[KINDS]  # type: ignore[valid-type]  # computed kinds: pydantic checks, mypy cannot
# Each audience field: (name, its schema when it is the one chosen, its schema otherwise).
_AUDIENCES: tuple[tuple[str, JsonDict, JsonDict], ...] = (
    ("user_id", {"type": "integer", "minimum": 1}, {"type": "null"}),
    ("course_id", {"type": "integer", "minimum": 1}, {"type": "null"}),
    ("role", {"enum": ["admin", "instructor", "student"]}, {"type": "null"}),
    ("everyone", {"const": True}, {"const": False}))


class NotificationOut(NotificationInfo):
    # NotificationInfo as REST answers and WebSocket messages show it (a comment, not a
    # docstring, which would become the schema's description).
    read: bool

    @classmethod
    def of(cls, n: NotificationInfo) -> NotificationOut:
        """The one shape of a notification: REST answers and WebSocket messages alike."""
        # Not validated again: a NotificationInfo is validated when it is made. Its fields
        # are read from __dict__: dict(n), iterating the model, costs more than validating.
        return cls.model_construct(**{**n.__dict__, "read": n.read_at is not None})


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    next_cursor: str | None = None


class ListQuery(BaseModel):
    limit: int = Field(20, ge=1, le=100, description="Items per page (max 100).")
    cursor: str | None = Field(None, max_length=1000, pattern=r"^[A-Za-z0-9_-]+$",
                               description="The next_cursor of the previous page.")
    unread: bool | None = Field(None, description="true: only unread; false: only read.")


class UnreadOut(BaseModel):
    unread: int


class ReadAllOut(BaseModel):
    updated: int


class NotifyIn(Schema):
    """Exactly one audience: `user_id` (one user: created at once, 201), `course_id` (the
    course's active students), `role` (every active user of the role) or `everyone: true`
    (the whole school); audiences are fanned out in the background (202)."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [
        {"required": [chosen], "properties": {
            name: (value if name == chosen else none) for name, value, none in _AUDIENCES}}
        for chosen in ("user_id", "course_id", "role", "everyone")]})

    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=5000)
    user_id: int | None = Field(None, ge=1)
    course_id: int | None = Field(None, ge=1)
    role: Literal["admin", "instructor", "student"] | None = None
    everyone: bool = False
    data: dict[str, Any] = Field(default_factory=dict,
                                 description="Free JSON for clients (e.g. a link).")

    @model_validator(mode="after")
    def _one_audience(self) -> NotifyIn:
        chosen = [self.user_id is not None, self.course_id is not None, self.role is not None,
                  self.everyone]
        if sum(chosen) != 1:
            raise ValueError("give exactly one of user_id, course_id, role, everyone: true")
        if len(repr(self.data)) > 5000:
            raise ValueError("data is too large (5000 characters at most)")
        return self


class BroadcastOut(BaseModel):
    id: int
    audience: BroadcastAudience
    target: str | None
    kind: str
    title: str
    status: BroadcastStatus
    recipients: int
    created_at: dt.datetime
    finished_at: dt.datetime | None


class PreferencesOut(BaseModel):
    channels: dict[str, Channel] = Field(
        description="Channel per notification kind: in_app, email (immediately), digest "
                    "(daily email), off.")


class PreferencesIn(Schema):
    channels: dict[Kind, Channel] = Field(min_length=1)
