"""The identity plugin's object: its hooks, and its service once the runtime is built
(the class its entry point names)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from social_core.exceptions import REASONS as SOCIAL_REASONS

from learnplat.plugin import (
    Action,
    EncryptedAtRest,
    Permission,
    Plugin,
    Principal,
    ProblemCode,
    Route,
    ServiceKey,
    hookimpl,
)

from . import authn, passwords
from . import events as ev
from . import resources as r
from . import seed as generated
from .api import IDENTITY
from .cli import audit, keys, users
from .models import MODELS
from .oauth import OAuthFlow
from .services import IdentityService, IdentitySettings
from .settings import OAuthTenantSettings
from .social_storage import SOCIAL_MODELS

if TYPE_CHECKING:
    from learnplat.plugin import Runtime, Seed, TenantInfo
    from learnplat.plugin.gate import Credentials, RoundTrip


class IdentityPlugin(Plugin):
    """Accounts, tokens, roles and permissions, OAuth sign-in and the audit log: the plugin
    that answers the core's `authenticate` hook."""

    tenant_settings = OAuthTenantSettings  # [settings.oauth] of a school
    tenant_settings_section = "oauth"  # read by oauth.py as oauth.providers.<name>
    # The problem codes of its answers (the reference page's catalogue, /docs#problem-<code>):
    # its own, then single sign-on's, one per python-social-auth reason (`oauth_<reason>`).
    problems = {
        "email_taken": ProblemCode(
            409, "An account with this email exists in this school: sign in with it, or use "
            "another address."),
        "bad_credentials": ProblemCode(
            401, "Wrong email or password (deliberately not saying which). Repeated failures "
            "lock the account for a while, and are rate limited."),
        "bad_refresh_token": ProblemCode(
            401, "The refresh token is unknown, expired, or its account is deactivated: sign "
            "in again."),
        "refresh_token_reused": ProblemCode(
            401, "A refresh token was used a second time: as a stolen copy might be, so the "
            "whole session was ended. Sign in again; use each refresh token once."),
        "token_revoked": ProblemCode(
            401, "The access token was revoked: the session was ended (logout, a password or "
            "role change, an administrator). Sign in again."),
        "role_change_forbidden": ProblemCode(
            403, "Only an administrator can change a user's role."),
        "last_admin": ProblemCode(
            409, "The change would leave the school without an active administrator."),
        "oauth_inactive": ProblemCode(
            403, "Single sign-on succeeded at the provider, but this account may not sign in "
            "here (deactivated)."),
        "bad_oauth_code": ProblemCode(
            401, "The one-time sign-in code (from single sign-on's redirect) is unknown, used "
            "or expired, or its account is deactivated: sign in again."),
        **{f"oauth_{reason}": ProblemCode(
            (400, 403, 409, 502),
            f"Single sign-on with the school's provider failed: {text} Recovery: "
            f"{action.replace('_', ' ')}. The status says who failed: 502 the provider, 403 "
            "the school's policy, 409 an identity linked to another account, 400 the "
            "request.", title="Malformed request / Not allowed / Conflict / The sign-in provider "
            "failed") for reason, (text, _, action) in SOCIAL_REASONS.items()},
    }

    identity: IdentityService  # built by register_services

    @hookimpl
    def register_models(self) -> list[type]:
        return [*MODELS, *SOCIAL_MODELS]

    @hookimpl
    def register_permissions(self) -> list[Permission]:
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
    def register_actions(self) -> list[Action]:
        return ev.ACTIONS

    @hookimpl
    def register_services(self, runtime: Runtime) -> dict[ServiceKey[Any], Any]:
        self.identity = IdentityService(runtime)
        return {IDENTITY: self.identity}

    @hookimpl
    def register_routes(self, runtime: Runtime) -> list[Route]:
        svc = self.identity
        flow = OAuthFlow(svc)
        passwords.dummy_hash()  # made now if the parameters changed: no first login pays it
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
    def register_encrypted_at_rest(self) -> list[EncryptedAtRest]:
        # The private halves of the schools' token-signing keys (keys.token_keys): a secret
        # that cannot decrypt them makes every login of the school fail.
        return [EncryptedAtRest("token-signing keys", lambda rt: self.identity.keys.scan(),
                                lambda rt: self.identity.keys.reencrypt())]

    @hookimpl
    def register_settings(self) -> dict[str, type]:
        return {"identity": IdentitySettings}

    @hookimpl
    def register_commands(self, cli: click.Group) -> None:
        cli.add_command(users)
        cli.add_command(audit)
        cli.add_command(keys)

    @hookimpl
    def authenticate(self, runtime: Runtime, credentials: Credentials,
                     round_trip: RoundTrip) -> Principal | None:
        return authn.authenticate(self.identity, credentials, round_trip)

    @hookimpl
    def provision_tenant_admin(self, runtime: Runtime, tenant: TenantInfo, email: str,
                               password: str) -> Any:
        return self.identity.create_user(email, password, name="Administrator",
                                         role="admin").id

    @hookimpl
    def seed_tenant(self, seed: Seed) -> None:
        """This plugin's part of a generated data set (seed.py)."""
        generated.seed_tenant(self.identity, seed)
