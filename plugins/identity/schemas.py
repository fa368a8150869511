"""Request and response schemas of the identity routes (validation and OpenAPI)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

from pydantic import AfterValidator, BaseModel, Field, HttpUrl, TypeAdapter

from learnplat.plugin import PageQuery, Schema

from .api import Person, Role, UserInfo
from .emails import MAX_LENGTH as EMAIL_MAX_LENGTH
from .emails import email_problem, normalize_email
from .passwords import MIN_LENGTH as PASSWORD_MIN_LENGTH

if TYPE_CHECKING:
    from .models import AuditEntry, User

_HTTP_URL = TypeAdapter(HttpUrl)


def _avatar_url(value: str) -> str:
    """An http(s) URL or "" (no avatar); stored as given, at most 500 characters."""
    if value == "":
        return value
    _HTTP_URL.validate_python(value)
    return value


# What _avatar_url accepts, for the OpenAPI document: "" or an http(s) URL with a host (the
# document's pattern is a little narrower than the validator: what it names is accepted).
_AVATAR_SCHEMA = {"anyOf": [
    {"type": "string", "maxLength": 0},
    {"type": "string", "maxLength": 500,
     "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?"
                "(\\.[A-Za-z]{2,10})*(/[A-Za-z0-9._~-]{0,40}){0,8}$"}]}
AvatarURL = Annotated[str, Field(max_length=500, json_schema_extra=_AVATAR_SCHEMA),
                      AfterValidator(_avatar_url)]


def _email(value: str) -> str:
    """The identity plugin's one e-mail rule (emails.py), the same as the CLI's."""
    if problem := email_problem(value):
        raise ValueError(problem)
    return normalize_email(value)


# email-validator refuses special-use domains (emails.email_problem); the document says so.
_SPECIAL_USE = "[.@]([Aa][Rr][Pp][Aa]|[Ii][Nn][Vv][Aa][Ll][Ii][Dd]|[Ll][Oo][Cc][Aa][Ll]" \
    "|[Ll][Oo][Cc][Aa][Ll][Hh][Oo][Ss][Tt]|[Oo][Nn][Ii][Oo][Nn]|[Tt][Ee][Ss][Tt])\\.?$"
Email = Annotated[str, Field(min_length=3, max_length=EMAIL_MAX_LENGTH, json_schema_extra={
    "format": "email", "not": {"pattern": _SPECIAL_USE}}), AfterValidator(_email)]


class RegisterIn(Schema):
    email: Email
    # The policy (passwords.check_policy) names its rule in the 422; the document states it.
    password: str = Field(min_length=1, max_length=256, json_schema_extra={
        "minLength": PASSWORD_MIN_LENGTH,
        "description": f"At least {PASSWORD_MIN_LENGTH} characters once surrounding white "
                       "space is removed; must not be or contain the email's local part "
                       "(when it has 4 or more characters)."})
    name: str = Field(min_length=1, max_length=200)


class LoginIn(Schema):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=256)


class RefreshIn(Schema):
    refresh_token: str = Field(min_length=10, max_length=200)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int


# A user's account as the API shows it: the UserInfo other plugins get, and more. (Comments,
# not docstrings, on the Out models: a docstring would become the document's description.)
class UserOut(UserInfo):
    bio: str = ""
    email_verified: bool = False
    created_at: dt.datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(id=user.id, email=user.email, name=user.name, role=cast(Role, user.role),
                   active=user.active, avatar_url=user.avatar_url, bio=user.bio,
                   email_verified=user.email_verified, created_at=user.created_at)


class ProfileOut(Person):  # the caller's own: a Person, without UserInfo's `active`
    tenant: str
    bio: str = ""

    @classmethod
    def of(cls, user: User, tenant: str) -> ProfileOut:
        return cls(id=user.id, email=user.email, name=user.name, role=cast(Role, user.role),
                   tenant=tenant, bio=user.bio, avatar_url=user.avatar_url)


Scope = Literal["any", "own"]


class RoleOut(BaseModel):
    name: Role
    permissions: dict[str, Scope]


class RolesOut(BaseModel):
    items: list[RoleOut]


class JWKS(BaseModel):
    keys: list[dict[str, str]]


class UserUpdateIn(Schema):
    """Profile fields; `role` is accepted only from an admin (a user cannot promote themself)."""

    name: str | None = Field(None, min_length=1, max_length=200)
    bio: str | None = Field(None, max_length=2000)
    avatar_url: AvatarURL | None = Field(None, description="http(s) URL of the avatar, or \"\"")
    role: Role | None = None


class RoleIn(Schema):
    role: Role


class UserListQuery(PageQuery):
    role: Role | None = Field(None, description="Only users with this role.")
    q: str | None = Field(None, min_length=1, max_length=100,
                          description="Text in the email or name (case-insensitive).")


class UserPage(BaseModel):
    items: list[UserOut]
    next_cursor: str | None = None


class AuditQuery(PageQuery):
    action: str | None = Field(None, max_length=60, pattern=r"^[a-z_.]+$",
                               description="Only entries with this action, e.g. login.failed.")
    subject_id: int | None = Field(None, ge=1, le=2**31 - 1,
                                   description="Only entries about this user.")


class AuditOut(BaseModel):
    id: int
    action: str
    actor_id: int | None
    subject_id: int | None
    ip: str
    detail: dict[str, Any]
    created_at: dt.datetime

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditOut:
        return cls(id=entry.id, action=entry.action, actor_id=entry.actor_id,
                   subject_id=entry.subject_id, ip=entry.ip, detail=entry.detail,
                   created_at=entry.created_at)


class AuditPage(BaseModel):
    items: list[AuditOut]
    next_cursor: str | None = None


class OAuthExchangeIn(Schema):
    code: str = Field(min_length=16, max_length=200)
