"""Request pipeline: request id and client address, tenant (first), connection and
transaction, caller, CORS.

Order matters: the tenant is resolved before anything else touches data, the transaction is
opened in the tenant's context (PostgreSQL RLS sees it), and the caller is authenticated inside
that tenant, so a token from another tenant never matches.
"""

from __future__ import annotations

import contextvars
import re
import uuid
from typing import TYPE_CHECKING, Any

import falcon

from .. import db
from ..errors import NotFound, Unauthorized
from ..tenancy import TenantInfo, _current
from .client_address import client_address, parse_trusted
from .endpoint import spec_of

if TYPE_CHECKING:
    from ..runtime import Runtime

_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
client_addr_var: contextvars.ContextVar[str] = contextvars.ContextVar("client_addr", default="-")
# Where gunicorn's access log finds the resolved address: %({learnplat.client_addr}e)s.
CLIENT_ADDR_ENV = "learnplat.client_addr"
_READ_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))


class RequestContextMiddleware:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.max_body = runtime.settings.app.max_body_bytes
        server = runtime.settings.server
        self.proxies = parse_trusted(server.trusted_proxies)
        self.forwarded_header = server.forwarded_header

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
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

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         params: dict[str, Any]) -> None:
        route = getattr(resource, "__learnplat_route__", None)
        if route is None:
            return
        ctx = req.context
        if route.tenant_scoped or req.get_header("X-Tenant"):
            db.database.connect(reuse_if_open=True)
            ctx.cleanup.append(_close_connection)
            tenant = self.resolve_tenant(req, required=route.tenant_scoped)
            if tenant is not None:
                if not tenant.plugin_enabled(route.plugin):
                    raise NotFound("this feature is not enabled for this school")
                ctx.tenant = tenant
                token = _current.set(tenant)
                ctx.cleanup.append(lambda _ok: _current.reset(token))
                spec = spec_of(getattr(resource, f"on_{req.method.lower()}", None))
                if spec is not None and not spec.transaction:
                    # The responder runs its own short transactions (long uploads and
                    # downloads): only authentication runs in one here.
                    with db.transaction(write=False):
                        ctx.principal = self.authenticate(req, tenant)
                    return
                txn = db.transaction(write=req.method not in _READ_METHODS)
                uow = txn.__enter__()
                ctx.cleanup.append(lambda ok: _end_transaction(txn, ok or uow.commit_on_failure))
                ctx.principal = self.authenticate(req, tenant)

    def resolve_tenant(self, req: falcon.Request, required: bool) -> TenantInfo | None:
        tenants = self.runtime.tenants
        slug = req.get_header("X-Tenant")
        if slug:
            tenant = tenants.get_by_slug(slug.strip().lower())
        else:
            tenant = tenants.get_by_domain(req.host) if req.host else None
        if tenant is None or not tenant.enabled:
            if required or slug:
                raise NotFound("no such school: name one with X-Tenant or its domain")
            return None
        return tenant

    def authenticate(self, req: falcon.Request, tenant: TenantInfo) -> Any:
        if not req.auth:
            return None
        principal = self.runtime.hook.authenticate(runtime=self.runtime, req=req, tenant=tenant)
        if principal is None:
            raise Unauthorized("unsupported or invalid credentials")
        if principal.tenant_id != tenant.id:
            raise Unauthorized("the token belongs to another school")
        return principal

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         req_succeeded: bool) -> None:
        ctx = req.context
        ok = req_succeeded and resp.status_code < 400
        cors(req, resp, ctx.tenant)
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
    resp.set_header("Access-Control-Expose-Headers", "X-Request-Id, Retry-After")
    if req.method == "OPTIONS" and req.get_header("Access-Control-Request-Method"):
        resp.set_header("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
        resp.set_header("Access-Control-Allow-Headers",
                        "Authorization, Content-Type, X-Tenant, X-Request-Id")
        resp.set_header("Access-Control-Max-Age", "600")
