"""Who is calling, and what their role lets them do (RBAC with "own" scopes).

Routes declare a permission with @endpoint; the route layer checks that the caller's role holds
it at some scope. Services then check ownership once, with the object at hand:
``principal.require("course.update", owner_id=course.owner_id)``. That one method is the only
place where "an instructor manages only their own courses" is decided.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import NotFound, PermissionDenied, Unauthorized

PUBLIC = "public"  # anyone, no token needed
AUTHENTICATED = "authenticated"  # any signed-in user of the tenant


@dataclass(frozen=True)
class Principal:
    """An authenticated user of one tenant. `grants` maps permission -> "any" | "own"."""

    user_id: Any
    tenant_id: int
    role: str
    grants: dict[str, str] = field(default_factory=dict)
    token_id: str | None = None
    claims: dict[str, Any] = field(default_factory=dict)

    def has(self, permission: str) -> bool:
        return permission in (PUBLIC, AUTHENTICATED) or permission in self.grants

    def can(self, permission: str, owner_id: Any = None) -> bool:
        scope = self.grants.get(permission)
        if scope == "any":
            return True
        if scope == "own":
            return owner_id is not None and owner_id == self.user_id
        return permission in (PUBLIC, AUTHENTICATED)

    def require(self, permission: str, owner_id: Any = None, *, hide: bool = True) -> None:
        """Raise unless allowed. With `hide`, a refusal on someone else's object is a 404:
        the caller may not even know it exists (the contract's 404 rule)."""
        if self.can(permission, owner_id):
            return
        if hide and self.grants.get(permission) == "own":
            raise NotFound()
        raise PermissionDenied(f"role {self.role!r} may not {permission}")


def require_principal(principal: Principal | None) -> Principal:
    if principal is None:
        raise Unauthorized("a bearer token is required")
    return principal
