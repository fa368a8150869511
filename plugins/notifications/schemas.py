"""Request and response schemas of the notifications routes."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from learnplat.plugin import Schema, Variant, Variants

from .api import NotificationInfo
from .settings import Channel
from .templates import KINDS

BroadcastAudience = Literal["user", "course", "role", "tenant"]
BroadcastStatus = Literal["queued", "sending", "done"]
Kind = Literal[KINDS]  # type: ignore[valid-type]  # computed kinds: pydantic checks, mypy cannot
class NotificationOut(NotificationInfo):
    # NotificationInfo as REST answers and WebSocket messages show it (a comment, not a
    # docstring, which would become the schema's description).
    read: bool = Field(examples=[False])

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
    unread: int = Field(examples=[3])


class ReadAllOut(BaseModel):
    updated: int = Field(examples=[3])


# Per audience: the title of the request that chooses it, its description, and its
# field's (annotation, field). The other audiences are null or left out; `everyone` is then
# false (an `enum`, not a boolean `const`: openapi-python-client 0.29 writes that as
# invalid Python).
_AUDIENCES: dict[str, tuple[str, str, tuple[Any, Any]]] = {
    "user_id": ("NotifyUserIn", "Notify one user (created at once: 201).",
                (int, Field(ge=1))),
    "course_id": ("NotifyCourseIn", "Notify a course's active students (in the background: "
                  "202).", (int, Field(ge=1))),
    "role": ("NotifyRoleIn", "Notify every active user of a role (in the background: 202).",
             (Literal["admin", "instructor", "student"], ...)),
    "everyone": ("NotifyEveryoneIn", "Notify the whole school (in the background: 202).",
                 (bool, Field(json_schema_extra={"enum": [True]}))),
}
_NO_LECTURE = ("Friday's lecture on sampling moves to next Tuesday, same time and room. "
               "Module 8's quiz stays open until Sunday.")


def _others_absent(chosen: str) -> dict[str, tuple[Any, Any]]:
    """A variant's overrides of the audiences it does not choose: null or left out, and
    `everyone` false."""
    return {name: (bool, Field(False, json_schema_extra={"enum": [False]}))
            if name == "everyone" else (None, None)
            for name in _AUDIENCES if name != chosen}


class NotifyIn(Schema):
    """Exactly one audience: `user_id` (one user: created at once, 201), `course_id` (the
    course's active students), `role` (every active user of the role) or `everyone: true`
    (the whole school); audiences are fanned out in the background (202)."""

    # An example per audience (the first: the operation's example); each is one variant.
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"title": "No lecture on Friday", "body": _NO_LECTURE, "course_id": 42,
         "data": {"course_id": 42}},
        {"title": "Your project was received", "body": "We will grade it within a week.",
         "user_id": 1001},
        {"title": "Grades are due on Monday", "body": "Please finish reviewing quizzes and "
         "assignments by Monday 18:00.", "role": "instructor"},
        {"title": "Maintenance on Saturday", "body": "The school is offline from 06:00 to "
         "07:00 UTC.", "everyone": True}]})

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

    # The document gives one whole typed request per audience, so that generated clients
    # can build each; validation stays _one_audience's.
    documented_as = Variants(
        *(Variant(title, doc, **_others_absent(chosen), **{chosen: field})
          for chosen, (title, doc, field) in _AUDIENCES.items()),
        keyword="oneOf")


class BroadcastOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 314, "audience": "course", "target": "42", "kind": "announcement",
        "title": "No lecture on Friday", "status": "queued", "recipients": 0,
        "created_at": "2026-09-10T07:45:00Z", "finished_at": None}]})

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
    model_config = ConfigDict(json_schema_extra={"examples": [{"channels": {
        "enrolled": "email", "module_published": "in_app", "quiz_published": "in_app",
        "quiz_graded": "email", "assignment_graded": "email", "milestone": "in_app",
        "course_completed": "email", "certificate_issued": "email",
        "course_approved": "email", "course_rejected": "email", "course_rated": "digest",
        "course_question": "email", "announcement": "in_app"}}]})

    channels: dict[str, Channel] = Field(
        description="Channel per notification kind: in_app, email (immediately), digest "
                    "(daily email), off.")


class PreferencesIn(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [{"channels": {
        "quiz_graded": "email", "module_published": "digest", "course_rated": "off"}}]})

    channels: dict[Kind, Channel] = Field(min_length=1)
