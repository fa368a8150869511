"""The identity plugin's contract: ``runtime.service(IDENTITY)`` is an ``IdentityAPI``. Users
cross the boundary as ``UserInfo`` (frozen data), never as the identity plugin's rows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, Protocol

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

    def create_account(self, email: str, name: str, role: str, actor_id: int | None = None
                       ) -> UserInfo:
        """A new active user with no password (one who signs in through another system: an
        LTI platform, a SAML identity provider), audited as ``user.created``. ValidationFailed
        for a bad e-mail or role; Conflict (``email_taken``) when the e-mail has an account.
        Since 0.3."""

    def sign_in_code(self, user_id: int, method: str, ip: str = "",
                     detail: dict[str, Any] | None = None) -> str:
        """Sign a user in who proved who they are elsewhere (`method`: "lti", ...): audited
        as ``login.succeeded`` with `method` and `detail`; returns a one-time code the client
        exchanges within 60 s for the usual token pair at ``POST /auth/oauth/exchange`` (the
        delivery of OIDC sign-in). PermissionDenied (``oauth_inactive``) for a deactivated or
        unknown user. Since 0.3."""

    def audit(self, action: str, actor_id: int | None = None, subject_id: int | None = None,
              ip: str = "", detail: dict[str, Any] | None = None) -> None:
        """Write an entry of the school's audit log (GET /audit), in its own savepoint; call
        ``db.keep_on_failure()`` too when the request then fails and the entry must stay.
        Name actions ``<plugin>.<what>`` ("lti.launch_refused"). Since 0.3."""


IDENTITY: ServiceKey[IdentityAPI] = ServiceKey("identity", IdentityAPI)
