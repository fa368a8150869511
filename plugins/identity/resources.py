"""Falcon resources of the identity plugin: /auth/*, /.well-known/jwks.json."""

from __future__ import annotations

from typing import Any

import falcon

from learnplat.auth import AUTHENTICATED, PUBLIC
from learnplat.http.endpoint import endpoint
from learnplat.registry import ROLES

from .schemas import (
    JWKS,
    LoginIn,
    ProfileOut,
    RefreshIn,
    RegisterIn,
    RolesOut,
    TokenPair,
    UserOut,
)
from .services import IdentityService, user_dict


def client_ip(req: falcon.Request) -> str:
    return req.remote_addr or ""


class RegisterResource:
    def __init__(self, service: IdentityService):
        self.service = service

    @endpoint(permission=PUBLIC, body=RegisterIn, response=UserOut, status=201,
              errors=(409, 429), summary="Register as a student of this school")
    def on_post(self, req: falcon.Request, resp: falcon.Response, *, body: RegisterIn) -> Any:
        svc = self.service
        svc._limit(f"register-ip:{client_ip(req)}", 30)
        svc.runtime.before("user.register", req.context.tenant, None, email=body.email)
        user = svc.create_user(body.email, body.password, body.name, role="student")
        return user_dict(user)


class LoginResource:
    def __init__(self, service: IdentityService):
        self.service = service

    @endpoint(permission=PUBLIC, body=LoginIn, response=TokenPair, errors=(401, 429),
              summary="Log in with email and password")
    def on_post(self, req: falcon.Request, resp: falcon.Response, *, body: LoginIn) -> Any:
        return self.service.login(body.email, body.password, ip=client_ip(req))


class RefreshResource:
    def __init__(self, service: IdentityService):
        self.service = service

    @endpoint(permission=PUBLIC, body=RefreshIn, response=TokenPair, errors=(401, 429),
              summary="Exchange a refresh token for a new pair (the old one stops working)")
    def on_post(self, req: falcon.Request, resp: falcon.Response, *, body: RefreshIn) -> Any:
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

    @endpoint(permission=AUTHENTICATED, response=ProfileOut, summary="The caller's profile")
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> Any:
        user = self.service.get_user(req.context.principal.user_id)
        return {"id": user.id, "email": user.email, "name": user.name, "role": user.role,
                "tenant": req.context.tenant.slug, "bio": user.bio,
                "avatar_url": user.avatar_url}


class RolesResource:
    def __init__(self, service: IdentityService):
        self.service = service

    @endpoint(permission=AUTHENTICATED, response=RolesOut,
              summary="Roles and the permissions each holds")
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> Any:
        registry = self.service.runtime.registry
        return {"items": [{"name": role, "permissions": registry.grants_for(role)}
                          for role in ROLES]}


class JWKSResource:
    def __init__(self, service: IdentityService):
        self.service = service

    @endpoint(permission=PUBLIC, response=JWKS,
              summary="The school's public token-signing keys (JWKS)")
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> Any:
        resp.cache_control = ["public", "max-age=300"]
        return self.service.keys.jwks()
