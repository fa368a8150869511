"""Request pipeline: request id and client address, then the gate (learnplat.gate: tenant,
connection and transaction, caller, rate limits), CORS.

Order matters: the tenant is resolved before anything else touches data, the transaction is
opened in the tenant's context (PostgreSQL RLS sees it), and the caller is authenticated inside
that tenant, so a token from another tenant never matches. The gate decides all of it, as it
does for a WebSocket handshake; this middleware only carries a Falcon request through it and
puts what it found on ``req.context`` (``tenant``, ``principal``, ``generation``,
``caller_generation``) and the rate-limit decisions in the response's headers.
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from typing import TYPE_CHECKING, Any

import falcon

from .. import db, idempotency
from ..errors import BadRequest
from ..gate import API, NO_CREDENTIALS, Gate, Passage, Toll
from ..ratelimit import headers as limit_headers
from ..tenancy import TenantInfo
from .arrival import arrival_of
from .endpoint import announce_deprecation, spec_of

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
        self.gate = Gate(runtime)
        self.max_body = runtime.settings.app.max_body_bytes
        self._tolls: dict[tuple[str, int, bool], Toll] = {}  # one per budget, cost, exemption

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
        addr = self.gate.client_address(req.env.get("REMOTE_ADDR"), req.get_header)
        ctx.client_addr = addr
        ctx.client_addr_token = client_addr_var.set(addr or "-")
        req.env[CLIENT_ADDR_ENV] = addr or "-"
        ctx.tenant = None
        ctx.principal = None
        ctx.passage = None
        ctx.problem_page = False
        ctx.max_body = self.max_body
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
        ctx.problem_page = spec is not None and spec.browser
        # A school named in the path (Route.tenant_param) counts as its X-Tenant.
        path_slug = params.pop(route.tenant_param, None) if route.tenant_param else None
        signed_caller = None
        if spec is None:
            toll = API
        else:
            # Health probes are never limited (see EndpointSpec.rate_limited): nothing to charge.
            key = (spec.budget, spec.cost, spec.rate_limited)
            toll = self._tolls.get(key) or self._tolls.setdefault(
                key, Toll(spec.budget, spec.cost, not spec.rate_limited))
            if spec.signed_caller is not None:
                signed = spec.signed_caller
                signed_caller = lambda: signed(resource, req, params)  # noqa: E731
        if spec is not None and spec.deprecation_headers:
            # Before the gate, so that its refusals (an unknown school, a bad token, a 429)
            # still tell the client the operation is going away; the responder does not
            # repeat them (endpoint.announce_deprecation).
            announce_deprecation(spec, req, resp)
        ctx.generation = ctx.caller_generation = None
        passage = ctx.passage = self.gate.passage(
            arrival_of(self.gate, req, client_addr=ctx.client_addr, tenant_slug=path_slug,
                       credentials=NO_CREDENTIALS if spec is not None and spec.own_credentials
                       else None),
            toll,
            generation=spec.generation if spec is not None else None,
            caller_generation=spec.caller_generation if spec is not None else None,
            signed_caller=signed_caller)
        if route.tenant_scoped or req.get_header("X-Tenant") or path_slug:
            passage.hold_connection()
            tenant = passage.find_tenant(route.plugin, required=route.tenant_scoped)
            if tenant is not None:
                ctx.tenant = tenant
                req.env[TENANT_ENV] = tenant.slug
                passage.enter()
                if spec is not None and not spec.transaction:
                    # The responder runs its own short transactions (long uploads and
                    # downloads): only authentication runs in one here.
                    with passage.unit(write=False):
                        ctx.principal = passage.authenticate()
                    passage.enforce()
                    self._found(ctx, passage)
                    return
                passage.open_unit(write=req.method not in _READ_METHODS)
                ctx.principal = passage.authenticate()
        if passage.decisions is None:
            passage.charge_visitor()
        passage.enforce()
        self._found(ctx, passage)

    @staticmethod
    def _found(ctx: Any, passage: Passage) -> None:
        """What the responder reads of the gate's work besides tenant and principal."""
        ctx.generation = passage.generation
        ctx.caller_generation = passage.caller_generation

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         req_succeeded: bool) -> None:
        ctx = req.context
        ok = req_succeeded and resp.status_code < 400
        cors(req, resp, getattr(ctx, "tenant", None))
        passage: Passage | None = getattr(ctx, "passage", None)
        if passage is not None and passage.decisions:
            for name, value in limit_headers(passage.decisions).items():
                resp.set_header(name, value)
        error: Exception | None = None
        if passage is not None:
            try:
                passage.close(ok)  # every step runs, even when one fails
            except Exception as exc:
                error = exc
        # After the transaction ended (committed with its stored answer, or rolled back): a
        # retry now finds the answer or runs afresh, never neither (learnplat.idempotency).
        idempotency.release(req)
        if hasattr(ctx, "request_id_token"):
            request_id_var.reset(ctx.request_id_token)
        if hasattr(ctx, "client_addr_token"):
            client_addr_var.reset(ctx.client_addr_token)
        if error is not None:
            raise error


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
                    "X-Request-Id, Retry-After, RateLimit, RateLimit-Policy, "
                    "Idempotent-Replayed")
    if req.method == "OPTIONS" and req.get_header("Access-Control-Request-Method"):
        resp.set_header("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
        resp.set_header("Access-Control-Allow-Headers",
                        "Authorization, Content-Type, X-Tenant, X-Request-Id, "
                        "Idempotency-Key")
        resp.set_header("Access-Control-Max-Age", "600")
