"""Request and response schemas of the notifications routes."""

from __future__ import annotations

import datetime as dt
import inspect
from typing import Any, Literal, Union, cast

from pydantic import (
    BaseModel,
    Field,
    GetJsonSchemaHandler,
    TypeAdapter,
    create_model,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from learnplat.plugin import Schema

from .api import NotificationInfo
from .settings import Channel
from .templates import KINDS

BroadcastAudience = Literal["user", "course", "role", "tenant"]
BroadcastStatus = Literal["queued", "sending", "done"]
Kind = Literal[KINDS]  # type: ignore[valid-type]  # computed kinds: pydantic checks, mypy cannot
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

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        # The document gives one whole typed request per audience (_AUDIENCE_DOC), so that
        # generated clients can build each; validation stays _one_audience's.
        return {"title": cls.__name__, "description": inspect.cleandoc(cls.__doc__ or ""),
                "oneOf": handler(_AUDIENCE_DOC.core_schema)["anyOf"]}


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


def _audience_model(chosen: str) -> type[Schema]:
    """The document's model of a notification to one kind of audience (never validates)."""
    title, doc, field = _AUDIENCES[chosen]
    fields: dict[str, Any] = {}
    for name, info in NotifyIn.model_fields.items():
        if name == chosen:
            fields[name] = field
        elif name == "everyone":
            fields[name] = (bool, Field(False, json_schema_extra={"enum": [False]}))
        elif name in _AUDIENCES:
            fields[name] = (None, None)
        else:
            fields[name] = (info.annotation, info)
    return create_model(title, __base__=Schema, __doc__=doc, **fields)


# (A union of classes made at run time: a type only to pydantic, hence the cast.)
_AUDIENCE_DOC: TypeAdapter[Any] = TypeAdapter(cast(
    Any, Union[tuple(_audience_model(chosen) for chosen in _AUDIENCES)]))  # noqa: UP007


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
