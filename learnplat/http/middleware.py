"""Request pipeline: request id and client address, tenant (first), connection and
transaction, caller, CORS.

Order matters: the tenant is resolved before anything else touches data, the transaction is
opened in the tenant's context (PostgreSQL RLS sees it), and the caller is authenticated inside
that tenant, so a token from another tenant never matches.
"""

from __future__ import annotations

import contextvars
import logging
import math
import re
import uuid
from typing import TYPE_CHECKING, Any

import falcon

from .. import db
from ..answers import GENERATION_TTL, generation_key, new_token
from ..errors import BadRequest, NotFound, RateLimited, Unauthorized
from ..kv import StoreUnavailable
from ..ratelimit import headers as limit_headers
from ..ratelimit import refused
from ..tenancy import TenantInfo, _current
from .client_address import client_address, parse_trusted
from .endpoint import spec_of

if TYPE_CHECKING:
    from ..runtime import Runtime

log = logging.getLogger(__name__)
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
client_addr_var: contextvars.ContextVar[str] = contextvars.ContextVar("client_addr", default="-")
# Where gunicorn's access log finds the resolved address: %({learnplat.client_addr}e)s.
CLIENT_ADDR_ENV = "learnplat.client_addr"
# And the school's slug, once the request has one: %({learnplat.tenant}e)s.
TENANT_ENV = "learnplat.tenant"
_READ_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))


class RequestContextMiddleware:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.max_body = runtime.settings.app.max_body_bytes
        server = runtime.settings.server
        self.proxies = parse_trusted(server.trusted_proxies)
        self.forwarded_header = server.forwarded_header
        self.host_only = runtime.settings.tenancy.select_by == "host"

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if leftovers := db.reset_thread():
            # A defect elsewhere (an earlier request ended its unit of work out of step):
            # say so loudly, but never let it change what this request gets.
            log.error("the thread still held %s from an earlier request; rolled back",
                      ", ".join(leftovers))
        incoming = req.get_header("X-Request-Id") or ""
        rid = incoming if _REQUEST_ID_OK.match(incoming) else uuid.uuid4().hex
        ctx = req.context
        ctx.request_id = rid
        ctx.request_id_token = request_id_var.set(rid)
        # The one place a client address comes from (rate limits, audit, logs): computed once.
        addr = client_address(
            req.env.get("REMOTE_ADDR"),
            req.get_header(self.forwarded_header) if self.proxies else None,
            self.proxies, self.forwarded_header)
        ctx.client_addr = addr
        ctx.client_addr_token = client_addr_var.set(addr or "-")
        req.env[CLIENT_ADDR_ENV] = addr or "-"
        ctx.tenant = None
        ctx.principal = None
        ctx.max_body = self.max_body
        ctx.cleanup = []
        resp.set_header("X-Request-Id", rid)
        if "%00" in req.query_string:
            # No filter holds a NUL, and PostgreSQL refuses one in any text parameter (a 500 if
            # it got that far). Bodies: endpoint.refuse_unstorable. Path fields are the
            # routes' own (an id with a NUL names nothing: 404).
            raise BadRequest("the query string contains a NUL character (%00)")

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         params: dict[str, Any]) -> None:
        route = getattr(resource, "__learnplat_route__", None)
        if route is None:
            return
        ctx = req.context
        spec = spec_of(getattr(resource, f"on_{req.method.lower()}", None))
        ctx.limit_cost = (spec.budget, spec.cost) if spec is not None else ("api", 1)
        ctx.limit_decisions = None
        # Health probes are never limited (see EndpointSpec.rate_limited): nothing to charge.
        ctx.limit_exempt = spec is not None and not spec.rate_limited
        ctx.generation = ctx.caller_generation = None
        ctx.signed_caller = None
        if spec is not None and spec.signed_caller is not None:
            signed_caller = spec.signed_caller
            ctx.signed_caller = lambda: signed_caller(resource, req, params)
        ctx.generation_name = spec.generation if spec is not None else None
        ctx.caller_generation_name = spec.caller_generation if spec is not None else None
        if route.tenant_scoped or req.get_header("X-Tenant"):
            # No connection yet: the first statement takes one from the pool (a request served
            # from Redis or a cache never does), and the BEGIN below goes with that statement.
            ctx.cleanup.append(_close_connection)
            try:
                tenant = self.resolve_tenant(req, required=route.tenant_scoped)
                if tenant is not None and not tenant.plugin_enabled(route.plugin):
                    raise NotFound("this feature is not enabled for this school")
            except NotFound:
                # Guessing school names is limited too: the address pays for each 404.
                self.charge(req, None, None)
                self.enforce_limits(ctx)
                raise
            if tenant is not None:
                ctx.tenant = tenant
                req.env[TENANT_ENV] = tenant.slug
                token = _current.set(tenant)
                ctx.cleanup.append(lambda _ok: _current.reset(token))
                if spec is not None and not spec.transaction:
                    # The responder runs its own short transactions (long uploads and
                    # downloads): only authentication runs in one here.
                    with db.transaction(write=False):
                        ctx.principal = self.authenticate(req, tenant)
                    self.enforce_limits(ctx)
                    return
                txn = db.transaction(write=req.method not in _READ_METHODS)
                uow = txn.__enter__()
                ctx.cleanup.append(lambda ok: _end_transaction(txn, ok or uow.commit_on_failure))
                ctx.principal = self.authenticate(req, tenant)
        if ctx.limit_decisions is None:
            self.charge_visitor(req, ctx.tenant)
        self.enforce_limits(ctx)

    def charge_visitor(self, req: falcon.Request, tenant: TenantInfo | None) -> None:
        """Charge a request without credentials. A URL signed for a user (a video's range
        requests) is charged to that user and school, as the user's token would be
        (EndpointSpec.signed_caller), whether or not the request also names a school; a
        forged, altered or expired one, like any visitor, to the client address."""
        ctx = req.context
        signed = None
        if ctx.signed_caller is not None and self.runtime.limits.settings.enabled:
            signed = ctx.signed_caller()
        self.charge(req, *(signed or (tenant, None)))

    def resolve_tenant(self, req: falcon.Request, required: bool) -> TenantInfo | None:
        slug = req.get_header("X-Tenant")
        tenant = self.runtime.tenants.select(slug, req.host, self.host_only)
        if tenant is None or not tenant.enabled:
            if required or slug:
                raise NotFound("no such school at this address: name it with its domain"
                               if self.host_only else
                               "no such school: name one with X-Tenant or its domain")
            return None
        return tenant

    def authenticate(self, req: falcon.Request, tenant: TenantInfo) -> Any:
        """The caller, by the `authenticate` hook. An authentication plugin that reads the
        key-value store calls ``req.context.round_trip(reads, user_id)``, which charges the
        rate limits in the same round trip; otherwise they are charged here, once."""
        ctx = req.context
        if not req.auth:
            self.charge_visitor(req, tenant)
            return None
        ctx.round_trip = lambda reads, user_id: self.round_trip(req, tenant, reads, user_id)
        try:
            principal = self.runtime.hook.authenticate(runtime=self.runtime, req=req,
                                                       tenant=tenant)
            if principal is None:
                raise Unauthorized("unsupported or invalid credentials")
            if principal.tenant_id != tenant.id:
                raise Unauthorized("the token belongs to another school")
        except Unauthorized:
            if ctx.limit_decisions is None:
                # A bad token is an anonymous caller: its address pays (so guessing tokens is
                # limited too). A refused token of a known user (revoked, deactivated) was
                # charged to that user in the round trip. Either way 429 wins over 401 once
                # the budget is spent.
                self.charge(req, tenant, None)
            self.enforce_limits(ctx)
            raise
        if ctx.limit_decisions is None:
            self.charge(req, tenant, principal.user_id)
        elif ctx.caller_generation is not None and \
                ctx.caller_generation_user != principal.user_id:
            ctx.caller_generation = None  # read for another id than the caller's: not theirs
        return principal

    def round_trip(self, req: falcon.Request, tenant: TenantInfo | None, reads: list[str],
                   user_id: Any) -> list[str | None]:
        """Read `reads` from the key-value store and charge this request's rate limits, as
        `user_id` (None: anonymous, by client address), in one round trip."""
        ctx = req.context
        limits = self.runtime.limits
        budget, cost = ctx.limit_cost
        checks = [] if ctx.limit_exempt else limits.checks(tenant, user_id, ctx.client_addr,
                                                             budget, cost)
        # The answer's generations ride along: the tenant's, and the caller's own.
        gens = []
        if tenant is not None and ctx.generation_name:
            gens.append(("generation", generation_key(tenant.id, ctx.generation_name)))
        if tenant is not None and ctx.caller_generation_name and user_id is not None:
            gens.append(("caller_generation",
                         generation_key(tenant.id, ctx.caller_generation_name, user_id)))
        if not checks and not reads and not gens:
            ctx.limit_decisions = []
            return []
        try:
            values, ctx.limit_decisions = limits.round_trip(
                [*reads, *(key for _, key in gens)], checks)
        except StoreUnavailable as exc:
            ctx.limit_decisions = limits.fail_open(exc)
            raise
        if gens:
            tokens = values[len(reads):]
            del values[len(reads):]
            ctx.caller_generation_user = user_id
            for (attr, key), token in zip(gens, tokens, strict=True):
                setattr(ctx, attr, token)
                if token is None:  # unknown: start one; this request computes afresh
                    try:
                        self.runtime.kv.add(key, new_token(), GENERATION_TTL)
                    except Exception:  # only an optimisation: the next request tries again
                        log.debug("could not start generation %s", key, exc_info=True)
        return values

    def charge(self, req: falcon.Request, tenant: TenantInfo | None, user_id: Any) -> None:
        try:
            self.round_trip(req, tenant, [], user_id)
        except StoreUnavailable:
            pass  # limits fail open (logged by the limiter)

    @staticmethod
    def enforce_limits(ctx: Any) -> None:
        worst = refused(ctx.limit_decisions or ())
        if worst is not None:
            raise RateLimited(math.ceil(worst.retry_after),
                              f"the {worst.policy} rate limit is spent; retry after "
                              f"{math.ceil(worst.retry_after)} s", policy=worst.policy)

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         req_succeeded: bool) -> None:
        ctx = req.context
        ok = req_succeeded and resp.status_code < 400
        cors(req, resp, getattr(ctx, "tenant", None))
        if decisions := getattr(ctx, "limit_decisions", None):
            for name, value in limit_headers(decisions).items():
                resp.set_header(name, value)
        error: Exception | None = None
        # Every step runs even when one fails (a failed commit must still free the connection).
        for step in reversed(getattr(ctx, "cleanup", [])):
            try:
                step(ok)
            except Exception as exc:
                error, ok = error or exc, False
        ctx.cleanup = []
        if hasattr(ctx, "request_id_token"):
            request_id_var.reset(ctx.request_id_token)
        if hasattr(ctx, "client_addr_token"):
            client_addr_var.reset(ctx.client_addr_token)
        if error is not None:
            raise error


class _Rollback(Exception):
    """Thrown into the unit of work to roll back a request that did not succeed."""


def _end_transaction(txn: Any, ok: bool) -> None:
    if ok:
        txn.__exit__(None, None, None)
    else:
        txn.__exit__(_Rollback, _Rollback(), None)


def _close_connection(_ok: bool) -> None:
    if not db.database.is_closed():
        db.database.close()


def cors(req: falcon.Request, resp: falcon.Response, tenant: TenantInfo | None) -> None:
    """Per-tenant CORS: tenant setting cors.origins lists the allowed origins ("*" for any)."""
    origin = req.get_header("Origin")
    if not origin or tenant is None:
        return
    allowed = tenant.setting("cors.origins", [])
    if origin not in allowed and "*" not in allowed:
        return
    resp.set_header("Access-Control-Allow-Origin", origin)
    resp.append_header("Vary", "Origin")
    resp.set_header("Access-Control-Expose-Headers",
                    "X-Request-Id, Retry-After, RateLimit, RateLimit-Policy")
    if req.method == "OPTIONS" and req.get_header("Access-Control-Request-Method"):
        resp.set_header("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
        resp.set_header("Access-Control-Allow-Headers",
                        "Authorization, Content-Type, X-Tenant, X-Request-Id")
        resp.set_header("Access-Control-Max-Age", "600")
