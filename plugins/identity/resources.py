"""Falcon resources of the identity plugin: /auth/*, /.well-known/jwks.json."""

from __future__ import annotations

from typing import Any, cast

import falcon

from learnplat.plugin import AUTHENTICATED, PUBLIC, ROLES, conditional, dump, endpoint

from .api import Role
from .events import REGISTER
from .oauth import OAuthFlow
from .schemas import (
    JWKS,
    AuditPage,
    AuditQuery,
    LoginIn,
    OAuthExchangeIn,
    ProfileOut,
    RefreshIn,
    RegisterIn,
    RoleIn,
    RoleOut,
    RolesOut,
    Scope,
    TokenPair,
    UserListQuery,
    UserOut,
    UserPage,
    UserUpdateIn,
)
from .services import IdentityService

USER_ID = "{user_id:int(min=1, max=2147483647)}"  # beyond an INTEGER column: 404, not 500


def client_ip(req: falcon.Request) -> str:
    """The client's address as the core resolved it (through server.trusted_proxies)."""
    return req.context.client_addr or ""


class RegisterResource:
    def __init__(self, service: IdentityService):
        self.service = service

    @endpoint(permission=PUBLIC, body=RegisterIn, response=UserOut, status=201,
              errors=(409, 429), summary="Register as a student of this school")
    def on_post(self, req: falcon.Request, resp: falcon.Response, *,
                body: RegisterIn) -> UserOut:
        svc = self.service
        svc.runtime.before(REGISTER, req.context.tenant, None, email=body.email)
        user = svc.register(body.email, body.password, body.name, ip=client_ip(req))
        return UserOut.of(user)


class LoginResource:
    def __init__(self, service: IdentityService):
        self.service = service

    @endpoint(permission=PUBLIC, body=LoginIn, response=TokenPair, errors=(401, 429),
              summary="Log in with email and password")
    def on_post(self, req: falcon.Request, resp: falcon.Response, *, body: LoginIn
                ) -> TokenPair:
        return self.service.login(body.email, body.password, ip=client_ip(req))


class RefreshResource:
    def __init__(self, service: IdentityService):
        self.service = service

    @endpoint(permission=PUBLIC, body=RefreshIn, response=TokenPair, errors=(401, 429),
              summary="Exchange a refresh token for a new pair (the old one stops working)")
    def on_post(self, req: falcon.Request, resp: falcon.Response, *, body: RefreshIn
                ) -> TokenPair:
        return self.service.refresh(body.refresh_token, ip=client_ip(req))


class LogoutResource:
    def __init__(self, service: IdentityService):
        self.service = service

    @endpoint(permission=AUTHENTICATED, status=204,
              summary="Log out: this access token and its refresh token stop working")
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.service.logout(req.context.principal)


class ProfileResource:
    def __init__(self, service: IdentityService):
        self.service = service

    @endpoint(permission=AUTHENTICATED, response=ProfileOut, etag=True,
              summary="The caller's profile")
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> ProfileOut:
        user = self.service.get_user(req.context.principal.user_id)
        return ProfileOut.of(user, req.context.tenant.slug)


class RolesResource:
    def __init__(self, service: IdentityService):
        self.service = service

    @endpoint(permission=AUTHENTICATED, response=RolesOut,
              summary="Roles and the permissions each holds")
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> RolesOut:
        registry = self.service.runtime.registry
        return RolesOut(items=[
            RoleOut(name=cast(Role, role),
                    permissions=cast(dict[str, Scope], registry.grants_for(role)))
            for role in ROLES])


class JWKSResource:
    def __init__(self, service: IdentityService):
        self.service = service

    @endpoint(permission=PUBLIC, response=JWKS,
              summary="The school's public token-signing keys (JWKS)")
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> JWKS:
        resp.cache_control = ["public", "max-age=300"]
        return JWKS(**self.service.keys.jwks())


class UserCollection:
    def __init__(self, service: IdentityService):
        self.service = service

    @endpoint(permission="user.manage", query=UserListQuery, response=UserPage,
              summary="List the school's users (filter by role and text)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, *,
               query: UserListQuery) -> UserPage:
        return self.service.list_users(query, role=query.role, q=query.q)


class UserItem:
    def __init__(self, service: IdentityService):
        self.service = service

    @endpoint(permission="user.read", response=UserOut, etag=True,
              summary="A user's account (yourself, or anyone for an admin)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> UserOut:
        return self._user(req, user_id)

    def _user(self, req: falcon.Request, user_id: int) -> UserOut:
        """What GET answers this caller: also what If-Match compares (one function)."""
        return UserOut.of(self.service.visible_user(req.context.principal, user_id,
                                                    "user.read"))

    def _precondition(self, req: falcon.Request, user_id: int) -> Any:
        return conditional.precondition(req, lambda: dump(self._user(req, user_id)))

    @endpoint(permission="user.update", body=UserUpdateIn, response=UserOut, errors=(409,),
              etag=True,
              summary="Edit a profile (yourself, or anyone for an admin); role: admins only")
    def on_put(self, req: falcon.Request, resp: falcon.Response, user_id: int, *,
               body: UserUpdateIn) -> UserOut:
        """With `If-Match: <ETag of your GET /users/{id}>`: 412 when the account changed
        since (nothing written)."""
        changes = body.model_dump(exclude_unset=True, exclude_none=True)
        user = self.service.update_profile(req.context.principal, user_id, changes,
                                           precondition=self._precondition(req, user_id))
        out = UserOut.of(user)
        conditional.send_etag(resp, dump(out))  # what GET /users/{id} now answers
        return out

    @endpoint(permission="user.manage", status=204, errors=(409,), etag=True,
              summary="Deactivate a user: no more logins, tokens stop at once, records stay")
    def on_delete(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        self.service.deactivate(user_id, actor_id=req.context.principal.user_id,
                                precondition=self._precondition(req, user_id))


class UserRole:
    def __init__(self, service: IdentityService):
        self.service = service

    @endpoint(permission="user.manage", body=RoleIn, response=UserOut, errors=(409,),
              summary="Change a user's role: their access tokens stop at once")
    def on_put(self, req: falcon.Request, resp: falcon.Response, user_id: int, *,
               body: RoleIn) -> UserOut:
        """The user's current access tokens are refused from the next request on (401
        `token_revoked`); the next token they get, from POST /auth/refresh or a new login,
        carries the new role. Nothing else of the session ends."""
        user = self.service.set_role(user_id, body.role, actor_id=req.context.principal.user_id)
        return UserOut.of(user)


class UserUnlock:
    def __init__(self, service: IdentityService):
        self.service = service

    @endpoint(permission="user.manage", response=UserOut,
              summary="Lift a lockout after repeated failed logins")
    def on_post(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> UserOut:
        return UserOut.of(self.service.unlock(user_id, actor_id=req.context.principal.user_id))


class AuditCollection:
    def __init__(self, service: IdentityService):
        self.service = service

    @endpoint(permission="audit.read", query=AuditQuery, response=AuditPage,
              summary="The school's audit log, newest first (filter by action or user)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, *,
               query: AuditQuery) -> AuditPage:
        return self.service.list_audit(query, action=query.action, subject_id=query.subject_id)


class OAuthLogin:
    def __init__(self, flow: OAuthFlow):
        self.flow = flow

    @endpoint(permission=PUBLIC, status=302, errors=(404, 429, 502, 503),
              summary="Start signing in with one of the school's OAuth/OIDC providers")
    def on_get(self, req: falcon.Request, resp: falcon.Response, provider: str) -> None:
        """Redirects to the provider (authorization code with PKCE and state); the pending
        sign-in is kept in an encrypted, HttpOnly, SameSite=Lax cookie for 30 minutes."""
        self.flow.login(req, resp, provider, client_ip(req))


class OAuthCallback:
    def __init__(self, flow: OAuthFlow):
        self.flow = flow

    @endpoint(permission=PUBLIC, response=TokenPair, also=(302,),
              errors=(400, 403, 404, 409, 429, 502, 503),
              summary="Finish an OAuth sign-in: learnplat tokens, or a redirect with a code")
    def on_get(self, req: falcon.Request, resp: falcon.Response, provider: str
               ) -> TokenPair | None:
        """The provider sends the browser here. A new identity with a verified email becomes a
        student, or is linked to the account that already has that email. Without the school
        setting oauth.redirect_url the answer is a token pair (JSON); with it, a 302 to that
        URL with ?code=..., a one-time code for POST /auth/oauth/exchange (60 seconds)."""
        return self.flow.callback(req, resp, provider, client_ip(req))


class OAuthExchange:
    def __init__(self, flow: OAuthFlow):
        self.flow = flow

    @endpoint(permission=PUBLIC, body=OAuthExchangeIn, response=TokenPair, errors=(401, 429),
              summary="Exchange the one-time code of an OAuth sign-in for tokens")
    def on_post(self, req: falcon.Request, resp: falcon.Response, *,
                body: OAuthExchangeIn) -> TokenPair:
        resp.cache_control = ["no-store"]
        return self.flow.exchange(body.code, client_ip(req))
