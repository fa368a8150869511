"""The identity plugin's contract: ``runtime.service(IDENTITY)`` is an ``IdentityAPI``. Users
cross the boundary as ``UserInfo`` (frozen data), never as the identity plugin's rows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, Protocol

from learnplat.plugin import Record, ServiceKey

ROLES = ("admin", "instructor", "student")
Role = Literal["admin", "instructor", "student"]


class Person(Record):
    """Who a user is, as every answer about one shows it (UserInfo, the caller's profile)."""

    id: int
    email: str
    name: str
    role: Role
    avatar_url: str = ""


class UserInfo(Person):
    active: bool


class IdentityAPI(Protocol):
    def user(self, user_id: int) -> UserInfo | None:
        """A user of the current tenant by id; None if unknown."""

    def users(self, user_ids: Iterable[int]) -> dict[int, UserInfo]:
        """Users by id, in one query per 500 ids; unknown ids are left out."""

    def users_by_email(self, emails: Iterable[str]) -> dict[str, UserInfo]:
        """Users by (normalized, lower-case) email; unknown emails are left out."""

    def user_ids(self, role: str | None = None, after_id: int = 0, limit: int = 1000
                 ) -> list[int]:
        """Ids of active users (of `role`, or all) above `after_id`, ascending, at most
        `limit`: page through a whole tenant for a fan-out."""

    def set_avatar_url(self, user_id: int, url: str) -> UserInfo:
        """Point a user's profile photo at `url` ("" removes it); NotFound if unknown."""


IDENTITY: ServiceKey[IdentityAPI] = ServiceKey("identity", IdentityAPI)
