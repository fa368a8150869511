"""OAuth / OpenID Connect sign-in through social-auth-core, configured per school.

A school lists its providers in its tenant settings::

    [settings.oauth]
    redirect_url = "https://app.school.example/oauth-done"   # optional, see below
    [settings.oauth.providers.campus]
    backend = "oidc"            # "oidc" | "google" | "github"
    key = "client id"
    secret = "client secret"
    issuer = "https://idp.school.example"   # oidc only

and users start at ``GET /auth/oauth/{provider}/login``. The callback ends with learnplat tokens:
as JSON (a TokenPair) when no ``redirect_url`` is set, or as a 302 to ``redirect_url`` with a
one-time ``code`` that the client exchanges at ``POST /auth/oauth/exchange`` within 60 seconds.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from functools import cache
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode, urlsplit, urlunsplit

import falcon
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError
from social_core.exceptions import (
    AuthAssociationError,
    AuthConfigurationError,
    AuthPolicyError,
    AuthProviderError,
    SocialAuthBaseException,
)

from learnplat.plugin import (
    BadRequest,
    Conflict,
    LearnplatError,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
    TenantInfo,
    Unauthorized,
    current_tenant,
    db,
    rate_limit_key,
)

from .emails import email_problem, normalize_email
from .models import User
from .social_storage import Nonce, PeeweeStorage

# social_core's actions, backends and strategy (and requests under them) are imported at the
# first OAuth request, not here: every process imports this module (each CLI command, each
# gunicorn worker, through the identity plugin) and few ever see an OAuth sign-in; importing
# them costs ~0.2 s of start-up CPU each time.
if TYPE_CHECKING:
    from .schemas import TokenPair
    from .services import IdentityService
    from .social_strategy import CookieSession, FalconStrategy

PROVIDER_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
CODE_TTL = 60  # seconds a one-time exchange code lives
SESSION_SECONDS = 1800

PIPELINE = (
    "social_core.pipeline.social_auth.social_details",
    "social_core.pipeline.social_auth.social_uid",
    "social_core.pipeline.social_auth.auth_allowed",
    "social_core.pipeline.social_auth.social_user",
    "learnplat_identity.oauth.link_or_create_user",
    "social_core.pipeline.social_auth.associate_user",
    "social_core.pipeline.social_auth.load_extra_data",
    "learnplat_identity.oauth.audit_link",
)


class ProviderError(LearnplatError):
    status, code, title = 502, "oauth_provider_error", "The sign-in provider failed"


class ProviderConfig(BaseModel):
    """One provider of a school (tenant setting oauth.providers.<name>)."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["oidc", "google", "github"]
    key: str = Field(min_length=1)
    secret: str = Field(min_length=1)
    issuer: HttpUrl | None = None
    scope: list[str] | None = None


# -- backends ---------------------------------------------------------------------------------


@cache
def backends() -> dict[str, type[Any]]:
    """The backend classes by kind ("oidc", "google", "github"), built on first use."""
    from social_core.backends.github import GithubOAuth2
    from social_core.backends.open_id_connect import OpenIdConnectAuth

    class LearnplatOIDC(OpenIdConnectAuth):
        """OpenID Connect with PKCE (S256) on, and the issuer only from the school's settings."""

        name = "oidc"
        DEFAULT_USE_PKCE = True
        PKCE_DEFAULT_CODE_CHALLENGE_METHOD = "S256"
        EXTRA_DATA = [*OpenIdConnectAuth.EXTRA_DATA, "email_verified"]

        def oidc_endpoint(self) -> str:
            endpoint = self.setting("OIDC_ENDPOINT")
            if not endpoint:
                # No class default: a school never falls back to another school's provider.
                raise AuthConfigurationError(self, parameter="OIDC_ENDPOINT", stage="begin")
            return str(endpoint).rstrip("/")

        def get_user_details(self, response: dict[str, Any]) -> dict[str, Any]:
            details = super().get_user_details(response)
            claims = self.id_token or {}
            verified = claims.get("email_verified", response.get("email_verified"))
            details["email_verified"] = verified is True or verified == "true"
            return details


    class LearnplatGoogle(LearnplatOIDC):
        """Google is a standard OIDC provider at a fixed issuer."""

        name = "google"
        ISSUER = "https://accounts.google.com"

        def oidc_endpoint(self) -> str:
            return self.ISSUER


    class LearnplatGitHub(GithubOAuth2):
        """GitHub is OAuth2 without id_token: the email counts as verified only when GitHub's
        /user/emails says that the primary address is verified."""

        name = "github"

        def get_scope(self) -> list[str]:
            scope = super().get_scope()
            return scope if "user:email" in scope else [*scope, "user:email"]

        def get_user_details(self, response: dict[str, Any]) -> dict[str, Any]:
            details = super().get_user_details(response)
            email = (details.get("email") or "").lower()
            details["email_verified"] = any(
                isinstance(e, dict) and e.get("verified") and e.get("primary")
                and str(e.get("email", "")).lower() == email
                for e in response.get("emails") or [])
            return details

    return {"oidc": LearnplatOIDC, "google": LearnplatGoogle, "github": LearnplatGitHub}


_classes: dict[tuple[str, str], type[Any]] = {}


def backend_class(kind: str, provider: str) -> type[Any]:
    """A subclass named like the school's provider, so links store that name and settings are
    looked up under it. Cached: discovery documents are cached per class and URL."""
    key = (kind, provider)
    if key not in _classes:
        base = backends()[kind]
        _classes[key] = type(f"{base.__name__}_{provider.replace('-', '_')}", (base,),
                             {"name": provider})
    return _classes[key]


# -- pipeline steps ---------------------------------------------------------------------------


def link_or_create_user(strategy: FalconStrategy, backend: Any, details: dict[str, Any],
                        user: User | None = None, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Find the learnplat account for this identity: the one already linked, else the one
    holding the same *verified* email (linked, not duplicated), else a new student."""
    if user is not None:
        if not user.active:
            raise AuthPolicyError(backend, code="authentication_disallowed", stage="pipeline")
        return {"user": user, "is_new": False}
    email = normalize_email(details.get("email") or "")
    if not email or not details.get("email_verified"):
        # social_core never checks email_verified; without this anyone with an IdP account
        # showing someone's unverified address could take over their learnplat account.
        raise AuthPolicyError(backend, code="authentication_disallowed", stage="pipeline")
    svc: IdentityService = strategy.context["service"]
    existing = User.get_or_none(User.email == email)
    if existing is not None:
        if not existing.active:
            raise AuthPolicyError(backend, code="authentication_disallowed", stage="pipeline")
        if not existing.email_verified:
            User.update(email_verified=True).where(User.id == existing.id).execute()
        return {"user": existing, "is_new": False}
    if email_problem(email):
        # The same address rule as every other way in: an address registration or the CLI
        # would refuse does not become an account because a provider vouches for it.
        raise AuthPolicyError(backend, code="authentication_disallowed", stage="pipeline")
    name = details.get("fullname") or details.get("first_name") or email.split("@")[0]
    created = svc.create_user(email, None, name=name[:200], role="student", email_verified=True)
    return {"user": created, "is_new": True}


def audit_link(strategy: FalconStrategy, backend: Any, user: User, social: Any = None,
               new_association: bool = False, is_new: bool = False, *args: Any,
               **kwargs: Any) -> None:
    if new_association:
        svc: IdentityService = strategy.context["service"]
        svc.audit("oauth.linked", actor_id=user.id, subject_id=user.id, ip=strategy.context["ip"],
                  detail={"provider": backend.name, "uid": str(social.uid) if social else "",
                          "new_account": is_new})


# -- the flow ------------------------------------------------------------------------------------


def _problem_for(exc: SocialAuthBaseException) -> LearnplatError:
    code = f"oauth_{exc.code}"
    if isinstance(exc, AuthConfigurationError):
        return ServiceUnavailable("this sign-in provider is not configured correctly")
    if isinstance(exc, AuthProviderError):
        return ProviderError("the sign-in provider did not answer as expected", code=code)
    if isinstance(exc, AuthPolicyError):
        return PermissionDenied("this account cannot sign in here (a verified email is needed, "
                                "and the account must be active)", code=code)
    if isinstance(exc, AuthAssociationError):
        return Conflict("this identity is linked to another account", code=code)
    return BadRequest(f"the sign-in could not be completed ({exc.code}); start again",
                      code=code)


class OAuthFlow:
    """Login and callback of the authorization-code flow, for the school of the request."""

    def __init__(self, service: IdentityService):
        self.service = service
        runtime = service.runtime
        # One key per secret in force, the current one first: a sign-in begun just before
        # app.secret_key was rotated (its cookie made under the old one) still completes.
        keys = [base64.urlsafe_b64encode(
            HKDF(algorithm=hashes.SHA256(), length=32, salt=b"learnplat-oauth",
                 info=b"identity-oauth-session").derive(secret))
            for secret in runtime.secret_keys]
        self._cookie_keys = keys
        self._cookie: CookieSession | None = None
        self.public_url = getattr(runtime.settings.app, "public_url", "") or ""

    @property
    def cookie(self) -> CookieSession:
        if self._cookie is None:
            from .social_strategy import CookieSession

            self._cookie = CookieSession(self._cookie_keys, max_age=SESSION_SECONDS)
        return self._cookie

    def provider(self, tenant: TenantInfo, name: str) -> ProviderConfig:
        raw = tenant.setting(f"oauth.providers.{name}") if PROVIDER_NAME.match(name) else None
        if not isinstance(raw, dict):
            raise NotFound(f"no sign-in provider {name!r} in this school")
        try:
            return ProviderConfig.model_validate(raw)
        except ValidationError:
            raise ServiceUnavailable(f"sign-in provider {name!r} is not configured correctly"
                                     ) from None

    def _backend(self, req: falcon.Request, resp: falcon.Response, name: str, ip: str) -> Any:
        tenant = req.context.tenant
        config = self.provider(tenant, name)
        prefix = "SOCIAL_AUTH_" + name.upper().replace("-", "_")
        settings: dict[str, Any] = {
            f"{prefix}_KEY": config.key,
            f"{prefix}_SECRET": config.secret,
            "SOCIAL_AUTH_PIPELINE": PIPELINE,
            # do_complete insists on a URL; the resource replaces the response anyway.
            "SOCIAL_AUTH_LOGIN_REDIRECT_URL": "/auth/profile",
            "SOCIAL_AUTH_LOGIN_ERROR_URL": "/auth/profile",
            "SOCIAL_AUTH_ALLOWED_REDIRECT_HOSTS": [],
        }
        if config.issuer is not None:
            settings[f"{prefix}_OIDC_ENDPOINT"] = str(config.issuer)
        elif config.backend == "oidc":
            raise ServiceUnavailable(f"sign-in provider {name!r} needs an issuer")
        if config.scope:
            settings[f"{prefix}_SCOPE"] = config.scope
        from .social_strategy import FalconStrategy

        strategy = FalconStrategy(PeeweeStorage, req, resp, settings, self.cookie,
                                  public_url=self.public_url)
        strategy.context.update(service=self.service, ip=ip)
        return backend_class(config.backend, name)(strategy,
                                                   f"/auth/oauth/{name}/callback")

    def login(self, req: falcon.Request, resp: falcon.Response, name: str, ip: str) -> None:
        svc = self.service
        svc._limit(f"oauth-ip:{rate_limit_key(ip)}", svc.limits.login_per_ip)
        from social_core.actions import do_auth

        backend = self._backend(req, resp, name, ip)
        try:
            do_auth(backend)
        except SocialAuthBaseException as exc:
            raise _problem_for(exc) from None
        finally:
            backend.strategy.commit()
        resp.cache_control = ["no-store"]

    def callback(self, req: falcon.Request, resp: falcon.Response, name: str,
                 ip: str) -> TokenPair | None:
        svc = self.service
        svc._limit(f"oauth-ip:{rate_limit_key(ip)}", svc.limits.login_per_ip)
        from social_core.actions import do_complete

        backend = self._backend(req, resp, name, ip)
        signed_in: list[User] = []

        def login(_backend: Any, user: User, _social: Any) -> None:
            signed_in.append(user)

        try:
            with db.transaction():  # a savepoint: a failed pipeline leaves no user or link
                do_complete(backend, login, user=None)
        except SocialAuthBaseException as exc:
            self._fail(req, name, ip, exc)
            raise _problem_for(exc) from None
        finally:
            backend.strategy.commit()
        resp.status = falcon.HTTP_200
        resp.location = None
        resp.cache_control = ["no-store"]
        if not signed_in:
            raise PermissionDenied("this account cannot sign in here", code="oauth_inactive")
        user = signed_in[0]
        self.service.audit("login.succeeded", actor_id=user.id, subject_id=user.id, ip=ip,
                           detail={"method": "oauth", "provider": name})
        redirect_url = req.context.tenant.setting("oauth.redirect_url")
        if redirect_url:
            code = self._one_time_code(user.id)
            resp.status = falcon.HTTP_302
            resp.location = _with_query(redirect_url, code=code)
            return None
        return self.service.issue_tokens(user)

    def _fail(self, req: falcon.Request, name: str, ip: str, exc: SocialAuthBaseException
              ) -> None:
        # The savepoint rolled back the state's consume(); burn it again so that this exact
        # callback can never be replayed, and keep that (and the audit entry) although the
        # request fails.
        state = req.get_param("state")
        if state and len(state) <= 128:
            Nonce.burn(state)
        self.service.audit("login.failed", ip=ip, detail={
            "method": "oauth", "provider": name, "reason": exc.code})
        db.keep_on_failure()

    # -- one-time codes ----------------------------------------------------------------------

    def _code_key(self, code: str) -> str:
        return code_key(code)

    def _one_time_code(self, user_id: int) -> str:
        return one_time_code(self.service.kv, user_id)

    def exchange(self, code: str, ip: str) -> TokenPair:
        svc = self.service
        svc._limit(f"oauth-exchange-ip:{rate_limit_key(ip)}", svc.limits.login_per_ip)
        key = self._code_key(code)
        value = svc.kv.get(key)
        # incr is atomic on both stores: of two racing exchanges of one code, one gets 1.
        if value is None or svc.kv.incr(key + ":claimed", CODE_TTL) != 1:
            raise Unauthorized("unknown, used or expired sign-in code", code="bad_oauth_code")
        svc.kv.delete(key)
        user = User.get_or_none(User.id == int(value.split(":")[0]))
        if user is None or not user.active:
            raise Unauthorized("account deactivated", code="bad_oauth_code")
        return svc.issue_tokens(user)


def code_key(code: str) -> str:
    digest = hashlib.sha256(code.encode()).hexdigest()
    return f"oauthcode:{current_tenant().id}:{digest}"


def one_time_code(kv: Any, user_id: int) -> str:
    """A code the client exchanges once, within CODE_TTL seconds, for the user's token pair
    at POST /auth/oauth/exchange (kept in the key-value store: any process redeems it)."""
    code = secrets.token_urlsafe(32)
    kv.set(code_key(code), f"{user_id}:{int(time.time())}", CODE_TTL)
    return code


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = "&".join(p for p in (parts.query, urlencode(params)) if p)
    return urlunsplit(parts._replace(query=query))
