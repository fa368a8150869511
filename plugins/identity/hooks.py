"""Hook implementations of the identity plugin (the module its entry point registers)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
import falcon

from learnplat.plugin import (
    Action,
    EncryptedAtRest,
    Permission,
    Principal,
    Route,
    ServiceKey,
    hookimpl,
)

from . import events as ev
from . import resources as r
from .api import IDENTITY
from .models import MODELS
from .oauth import OAuthFlow
from .services import IdentityService, IdentitySettings
from .social_storage import SOCIAL_MODELS

if TYPE_CHECKING:
    from learnplat.runtime import Runtime
    from learnplat.tenancy import TenantInfo


@hookimpl
def register_models() -> list[type]:
    return [*MODELS, *SOCIAL_MODELS]


@hookimpl
def register_permissions() -> list[Permission]:
    return [
        Permission("user.read", "See a user's profile",
                   {"admin": "any", "instructor": "own", "student": "own"}),
        Permission("user.update", "Edit a user's profile",
                   {"admin": "any", "instructor": "own", "student": "own"}),
        Permission("user.manage", "List users, change roles, deactivate, unlock",
                   {"admin": "any"}),
        Permission("audit.read", "Read the school's audit log", {"admin": "any"}),
    ]


@hookimpl
def register_actions() -> list[Action]:
    return ev.ACTIONS


@hookimpl
def register_services(runtime: Runtime) -> dict[ServiceKey[Any], Any]:
    return {IDENTITY: IdentityService(runtime)}


def service(runtime: Runtime) -> IdentityService:
    svc = runtime.service(IDENTITY)
    assert isinstance(svc, IdentityService)
    return svc


@hookimpl
def register_routes(runtime: Runtime) -> list[Route]:
    svc = service(runtime)
    flow = OAuthFlow(svc)
    return [
        Route("/auth/register", r.RegisterResource(svc)),
        Route("/auth/login", r.LoginResource(svc)),
        Route("/auth/refresh", r.RefreshResource(svc)),
        Route("/auth/logout", r.LogoutResource(svc)),
        Route("/auth/profile", r.ProfileResource(svc)),
        Route("/auth/roles", r.RolesResource(svc)),
        Route("/.well-known/jwks.json", r.JWKSResource(svc)),
        Route("/users", r.UserCollection(svc)),
        Route(f"/users/{r.USER_ID}", r.UserItem(svc)),
        Route(f"/users/{r.USER_ID}/role", r.UserRole(svc)),
        Route(f"/users/{r.USER_ID}/unlock", r.UserUnlock(svc)),
        Route("/audit", r.AuditCollection(svc)),
        Route("/auth/oauth/{provider}/login", r.OAuthLogin(flow)),
        Route("/auth/oauth/{provider}/callback", r.OAuthCallback(flow)),
        Route("/auth/oauth/exchange", r.OAuthExchange(flow)),
    ]


@hookimpl
def register_encrypted_at_rest() -> list[EncryptedAtRest]:
    # The private halves of the schools' token-signing keys (keys.token_keys): a secret
    # that cannot decrypt them makes every login of the school fail.
    return [EncryptedAtRest("token-signing keys", lambda rt: service(rt).keys.scan(),
                            lambda rt: service(rt).keys.reencrypt())]


@hookimpl
def register_settings() -> dict[str, type]:
    return {"identity": IdentitySettings}


@hookimpl
def register_commands(cli: click.Group) -> None:
    from .cli import register

    register(cli)


@hookimpl
def authenticate(runtime: Runtime, req: falcon.Request, tenant: TenantInfo) -> Principal | None:
    scheme, _, token = (req.auth or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    svc = service(runtime)
    # The core's request offers one round trip for our reads and its rate limits; callers
    # outside the HTTP pipeline (the WebSocket handshake) pass a bare request without it.
    context = getattr(req, "context", None)
    return svc.principal_for(token.strip(), getattr(context, "round_trip", None))


@hookimpl
def provision_tenant_admin(runtime: Runtime, tenant: TenantInfo, email: str,
                           password: str) -> Any:
    svc = service(runtime)
    return svc.create_user(email, password, name="Administrator", role="admin").id
