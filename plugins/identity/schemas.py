"""Request and response schemas of the identity routes (validation and OpenAPI)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, TypeAdapter

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


# The examples of the OpenAPI document (docs/plugins.md, "Examples"): Northfield College (tenant
# "northfield", id 3, at stats.example.edu); its student Ada Lovelace (user 1001), instructor
# Grace Okafor (1002, who teaches course 42, "Introduction to Statistics") and admin (1000).
_PASSWORD = "correct-horse-battery-staple"
_ACCESS_TOKEN = (
    "eyJhbGciOiJFZERTQSIsImtpZCI6Im5vcnRoZmllbGQtOGExYmU3Y2NlY2RmIiwidHlwIjoiSldUIn0."
    "eyJzdWIiOiIxMDAxIiwidGVuYW50IjozLCJyb2xlIjoic3R1ZGVudCIsImp0aSI6IlNRcFN2RnIyZlQ4cnNs"
    "TzhpZnZhUVEiLCJpYXQiOjE3ODg0NjAyMDAsImV4cCI6MTc4ODQ2MTEwMCwiaXNzIjoibGVhcm5wbGF0Iiwi"
    "YXVkIjoibGVhcm5wbGF0Om5vcnRoZmllbGQiLCJ2ZXIiOjAsImZhbSI6IjhjMTZhNDllZTY3Yjk5ZjMyZmM3"
    "ZDNkZWI4MjkzNjMwIn0."
    "fgO8ZxPnncjqLRtQgn8JRfYQNX022utesZ2iH8TBBvKl_rGHgsFRyOXLnGohwXKbfymWZLb51aPnbtnA2YC34g")
_REFRESH_TOKEN = "L7eo4ew7xPfBhnlq6ME9UHHIT1XFWHkk_UO5Quwhch8"
_ADA: dict[str, Any] = {
    "id": 1001, "email": "ada@example.edu", "name": "Ada Lovelace", "role": "student",
    "avatar_url": "https://stats.example.edu/users/1001/photo?v=3f2a9c1e8b7d6a50",
    "bio": "Second-year economics student; likes tidy data."}


class RegisterIn(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "email": "ada@example.edu", "password": _PASSWORD, "name": "Ada Lovelace"}]})

    email: Email
    # The policy (passwords.check_policy) names its rule in the 422; the document states it.
    password: str = Field(min_length=1, max_length=256, json_schema_extra={
        "minLength": PASSWORD_MIN_LENGTH,
        "description": f"At least {PASSWORD_MIN_LENGTH} characters once surrounding white "
                       "space is removed; must not be or contain the email's local part "
                       "(when it has 4 or more characters)."})
    name: str = Field(min_length=1, max_length=200)


class LoginIn(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "email": "ada@example.edu", "password": _PASSWORD}]})

    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=256)


class RefreshIn(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "refresh_token": _REFRESH_TOKEN}]})

    refresh_token: str = Field(min_length=10, max_length=200)


class TokenPair(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "access_token": _ACCESS_TOKEN, "refresh_token": _REFRESH_TOKEN, "token_type": "Bearer",
        "expires_in": 900}]})

    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int


# A user's account as the API shows it: the UserInfo other plugins get, and more. (Comments,
# not docstrings, on the Out models: a docstring would become the document's description.)
class UserOut(UserInfo):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        **_ADA, "active": True, "email_verified": True,
        "created_at": "2026-08-20T09:15:00Z"}]})

    bio: str = ""
    email_verified: bool = False
    created_at: dt.datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(id=user.id, email=user.email, name=user.name, role=cast(Role, user.role),
                   active=user.active, avatar_url=user.avatar_url, bio=user.bio,
                   email_verified=user.email_verified, created_at=user.created_at)


class ProfileOut(Person):  # the caller's own: a Person, without UserInfo's `active`
    model_config = ConfigDict(json_schema_extra={"examples": [{**_ADA, "tenant": "northfield"}]})

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
    # (Abridged: every role lists every permission it holds.)
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [
        {"name": "admin", "permissions": {"course.read": "any", "course.update": "any",
                                          "course.review": "any", "user.manage": "any",
                                          "audit.read": "any"}},
        {"name": "instructor", "permissions": {"course.read": "any", "course.create": "any",
                                               "course.update": "own",
                                               "enrollment.manage": "own"}},
        {"name": "student", "permissions": {"course.read": "any", "enrollment.enroll": "any",
                                            "progress.track": "any", "quiz.take": "any",
                                            "user.update": "own"}}]}]})

    items: list[RoleOut]


class JWKS(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"keys": [{
        "kty": "OKP", "crv": "Ed25519", "x": "6caBQoDbpC5Fsh0nA70bwWRCAUFpSE3XgwuHLNtuQBU",
        "kid": "northfield-8a1be7ccecdf", "use": "sig", "alg": "EdDSA"}]}]})

    keys: list[dict[str, str]]


class UserUpdateIn(Schema):
    """Profile fields; `role` is accepted only from an admin (a user cannot promote themself)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "name": "Ada King", "bio": "Second-year economics student; likes tidy data."}]})

    name: str | None = Field(None, min_length=1, max_length=200)
    bio: str | None = Field(None, max_length=2000)
    avatar_url: AvatarURL | None = Field(None, description="http(s) URL of the avatar, or \"\"")
    role: Role | None = None


class RoleIn(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [{"role": "instructor"}]})

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
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 5120, "action": "login.failed", "actor_id": None, "subject_id": 1001,
        "ip": "203.0.113.24",
        "detail": {"email": "ada@example.edu", "reason": "bad_credentials"},
        "created_at": "2026-09-03T18:29:41Z"}]})

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
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "code": "b-y97fnD2Cl4lrtV7vwuVBLwtu6y1yWrQr3WVo2LaPs"}]})

    code: str = Field(min_length=16, max_length=200)
