"""@endpoint: one declaration per responder that checks the permission, validates the input and
documents both in the OpenAPI document.

    class CourseCollection:
        @endpoint(permission="course.create", body=CourseIn, response=CourseOut, status=201)
        def on_post(self, req, resp, *, body: CourseIn): ...

The responder returns what to send (a pydantic model, dict or list) or sets resp itself.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import json
import math
import tempfile
import typing
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any

import falcon
import orjson
import pydantic
import pydantic_core

from .. import idempotency
from ..auth import AUTHENTICATED, PUBLIC, Principal
from ..errors import (
    BadRequest,
    PayloadTooLarge,
    PermissionDenied,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)
from ..ratelimit import BUDGETS
from ..timestamps import JSON_OPTIONS
from .conditional import if_match_checked, tag_answer
from .problems import pydantic_errors

if TYPE_CHECKING:
    from ..tenancy import TenantInfo

JSON = "application/json"
MULTIPART = "multipart/form-data"
# An HTML form's body (a browser's POST from another site: an LTI launch, an OAuth 2 token
# request): the fields are read into the `body` model as strings, a field sent twice is a 400.
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class EndpointSpec:
    permission: str
    body: type[pydantic.BaseModel] | None = None
    query: type[pydantic.BaseModel] | None = None
    response: Any = None
    status: int = 200
    summary: str = ""
    description: str = ""
    errors: tuple[int, ...] = ()
    also: tuple[int, ...] = ()  # other success statuses the responder may set (200 vs 201...)
    # The body of a success status in `also` when it is not `response` (OpenAPI only).
    response_for: dict[int, Any] = field(default_factory=dict)
    content_type: str = JSON  # of the request body: JSON, FORM or MULTIPART
    max_body: int | None = None
    # The route reads the Authorization header itself: a credential learnplat's sign-in did
    # not issue (an LTI tool's access token). The gate never checks it: the caller is a
    # visitor to it (charged by address); the responder authenticates. Only with PUBLIC.
    # A function of (resource, req) instead of True checks them before the body and query
    # are read (raising Unauthorized), so a caller without them gets 401, not a 422.
    own_credentials: bool | Callable[[Any, falcon.Request], None] = False
    # A page a browser lands on from another site (an LTI launch, a sign-in's return): an
    # error is answered as an HTML page (learnplat.http.problems) when the client prefers
    # text/html, as problem+json otherwise.
    browser: bool = False
    multipart_fields: dict[str, str] = field(default_factory=dict)
    response_content_type: str = JSON
    tags: tuple[str, ...] = ()
    # Callers without a token may use the route too (when this says so for the request); a
    # caller with a token still needs `permission`. See `endpoint`.
    anonymous: bool | Callable[[falcon.Request], bool] = False
    # False: the request runs no transaction around the responder (only a short one to
    # authenticate); the responder opens its own. For long uploads and downloads, which must
    # not hold the SQLite write lock or a PostgreSQL transaction while bytes move.
    transaction: bool = True
    # Rate limits (learnplat.ratelimit): units charged to the caller's budget and the tenant's
    # per request; `budget` "heartbeat" for video playback, which has its own.
    cost: int = 1
    budget: str = "api"
    # False only for health probes: load balancers and orchestrators call them from a few
    # addresses many times a minute, and a refused probe would take a healthy process out.
    rate_limited: bool = True
    # A route whose URL is its own credential (a signed media URL: no token, no tenant
    # header): a function of (resource, req, path params) that returns the tenant and user id
    # a valid, unexpired signature was issued to, else None. Rate limits then charge that user
    # and tenant, as the user's token would be charged, instead of the client address: a
    # class behind one NAT address watching videos does not share one visitor's budget.
    signed_caller: Callable[[Any, falcon.Request, dict[str, Any]],
                            tuple[TenantInfo, Any] | None] | None = None
    # A per-tenant data generation the answer depends on (learnplat.answers): read in the
    # request's key-value round trip as req.context.generation.
    generation: str | None = None
    # The same per (tenant, caller): req.context.caller_generation (None when anonymous).
    caller_generation: str | None = None
    # Conditional requests (learnplat.http.conditional): a GET's 200 carries an ETag and
    # answers If-None-Match with 304; an update or delete takes If-Match (412 when stale).
    etag: bool = False
    # Deprecation (see `endpoint`): the headers every answer of the route carries, built once.
    deprecated: dt.datetime | None = None
    sunset: dt.datetime | None = None
    deprecation_headers: tuple[tuple[str, str], ...] = ()


def endpoint(
    *,
    permission: str,
    body: type[pydantic.BaseModel] | None = None,
    query: type[pydantic.BaseModel] | None = None,
    response: Any = None,
    status: int = 200,
    summary: str = "",
    errors: tuple[int, ...] = (),
    also: tuple[int, ...] = (),
    response_for: dict[int, Any] | None = None,
    content_type: str = JSON,
    max_body: int | None = None,
    multipart_fields: dict[str, str] | None = None,
    response_content_type: str = JSON,
    tags: tuple[str, ...] = (),
    anonymous: bool | Callable[[falcon.Request], bool] = False,
    transaction: bool = True,
    cost: int = 1,
    budget: str = "api",
    generation: str | None = None,
    caller_generation: str | None = None,
    rate_limited: bool = True,
    signed_caller: Callable[[Any, falcon.Request, dict[str, Any]],
                            tuple[TenantInfo, Any] | None] | None = None,
    deprecated: str | dt.date | None = None,
    sunset: str | dt.date | None = None,
    deprecation_link: str | None = None,
    etag: bool = False,
    browser: bool = False,
    own_credentials: bool | Callable[[Any, falcon.Request], None] = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a responder. `permission` is a registered permission name, PUBLIC or
    AUTHENTICATED. `body`/`query` are pydantic models; invalid input answers 422 naming each
    field. For `content_type=MULTIPART` the body is not parsed: the responder streams
    `req.get_media()` parts itself, within `max_body` bytes. `transaction=False`: no request
    transaction around the responder (it opens short ones itself with ``db.transaction()``),
    so streaming a large body holds no database lock.

    `cost` (default 1) is what one request takes from the caller's and the tenant's rate-limit
    budgets: declare more for expensive work (analytics, search, bulk operations, exports).
    `budget="heartbeat"` counts a route against the separate playback budget.
    `signed_caller`: for a route whose URL carries a signature issued to a user (see
    EndpointSpec.signed_caller), the user its requests are charged to.

    `generation="plugin.name"`: the answer depends on that per-tenant data generation, which
    the request reads with the caller's authentication (``req.context.generation``, None when
    unknown) so the responder can serve a cached answer (learnplat.answers).
    `caller_generation="plugin.name"`: the same per signed-in caller
    (``req.context.caller_generation``; None for a visitor or when unknown), for an answer that
    also depends on who asks; writers bump it with ``bump_generation(..., user_id=...)``.

    `anonymous` opens a route that needs `permission` to callers without a token as well: True,
    or a function of the request (a tenant setting) that says whether it is open this time;
    when it says no, no token is a 401 as usual. The responder then runs with
    ``req.context.principal`` None and must show such a caller only what is public. Signed-in
    callers are checked against `permission` as always.

    `deprecated="2027-01-01"` (an ISO date or date-time, or a datetime.date; a time without a
    zone is UTC) marks the operation deprecated from that moment: `deprecated: true` in the
    OpenAPI document, and every answer of it, errors raised once the route is reached
    included, carries `Deprecation: @<unix seconds>` (RFC 9745); `sunset` the moment it may
    stop answering, as `Sunset: <IMF-fixdate>` (RFC 8594); `deprecation_link` a page that
    explains what to use instead, as `Link: <url>; rel="deprecation"`.

    `etag=True` on a GET whose answer is JSON: its 200 carries an `ETag` (the hash of the
    body, or the tag a responder set with `conditional.send_cached`) and `Cache-Control:
    private, no-cache`, and a request whose If-None-Match names it gets 304 with no body.
    On an update or delete: it takes If-Match (the responder passes
    ``conditional.precondition(req, current)`` to its service), shown in the document with
    its 412.

    `own_credentials=True` (with PUBLIC): the Authorization header is the route's own (an
    LTI tool's access token): the gate leaves it to the responder; or a function
    ``check(resource, req)`` that verifies them (raising Unauthorized) before the query and
    body are read, as the gate does for its own tokens.

    `browser=True`: a browser may land here from another site (a form posted by an LTI
    platform); its errors are HTML pages when it prefers text/html (see EndpointSpec)."""

    deprecation = _deprecation(deprecated, sunset, deprecation_link)

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        spec = EndpointSpec(
            permission=permission, body=body, query=query, response=response, status=status,
            summary=summary or (fn.__doc__ or "").strip().split("\n")[0],
            description=(fn.__doc__ or "").strip(), errors=errors, also=also,
            response_for=response_for or {},
            content_type=content_type,
            max_body=max_body, multipart_fields=multipart_fields or {},
            response_content_type=response_content_type, tags=tags, anonymous=anonymous,
            transaction=transaction, cost=cost, budget=budget, generation=generation,
            caller_generation=caller_generation, rate_limited=rate_limited, etag=etag,
            signed_caller=signed_caller, browser=browser, own_credentials=own_credentials,
            **deprecation,
        )
        if own_credentials and permission != PUBLIC:
            raise ValueError(f"{fn.__qualname__}: own_credentials needs permission=PUBLIC")
        if cost < 1 or budget not in BUDGETS:
            raise ValueError(f"{fn.__qualname__}: cost must be >= 1 and budget one of {BUDGETS}")

        @functools.wraps(fn)
        def responder(self: Any, req: falcon.Request, resp: falcon.Response, **params: Any) -> None:
            # First, so that a refusal below (401, 403, 422...) still tells the client the
            # operation is going away: the error handlers keep the headers already set.
            if spec.deprecation_headers:
                announce_deprecation(spec, req, resp)
            if spec.anonymous:
                # The answer depends on who asks (and on X-Tenant): a shared cache must not
                # give one caller's or one school's answer to another.
                resp.append_header("Vary", "Authorization, X-Tenant")
            if not (req.context.principal is None and anonymous_allowed(spec, req)):
                check_permission(spec.permission, req.context.principal)
            if callable(spec.own_credentials):
                spec.own_credentials(self, req)
            kwargs: dict[str, Any] = {}
            if spec.query is not None:
                kwargs["query"] = parse_query(spec.query, req)
            if spec.body is not None:
                kwargs["body"] = parse_body(spec.body, req, spec, req.context.max_body)
            elif spec.content_type == MULTIPART:
                check_upload(req, spec, req.context.max_body)
            # Idempotency-Key on a POST: a retry is answered here from the stored first answer
            # (no responder runs), or holds the key until its transaction ends.
            claim = idempotency.claim(req, resp, spec, getattr(req.context, "raw_body", None))
            if claim is not None and claim.replayed:
                return
            resp.status = spec.status
            result = fn(self, req, resp, **params, **kwargs)
            checking = checking_responses(req)
            if checking:
                check_returned(spec, resp.status_code, result, fn.__qualname__)
            if result is not None:
                resp.data = dump(result)
                resp.content_type = JSON
            if checking:
                check_response(spec, resp, fn.__qualname__)
            if spec.etag and req.method in ("GET", "HEAD"):
                tag_answer(req, resp)  # after the check: it sees the 200's bytes
            elif checking and spec.etag and not if_match_checked(req):
                raise ResponseMismatch(f"{fn.__qualname__}: If-Match was sent and never "
                                       "checked (pass conditional.precondition to the service)")
            if claim is not None:
                claim.record(req, resp)  # in the request's transaction: last, all headers set

        vars(responder)[_SPEC_ATTR] = spec  # a function's attribute: what spec_of reads
        return responder

    return decorate


_SPEC_ATTR = "__learnplat_endpoint__"


def _moment(value: str | dt.date, what: str) -> dt.datetime:
    """An aware UTC datetime from `value` (an ISO 8601 date or date-time, a date, a datetime);
    ValueError naming `what` otherwise, at import time rather than on a request."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{what}={value!r} is not an ISO 8601 date") from None
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _deprecation(deprecated: str | dt.date | None, sunset: str | dt.date | None,
                 link: str | None) -> dict[str, Any]:
    """EndpointSpec's deprecation fields: the moments and the headers that announce them."""
    if deprecated is None:
        if sunset is not None or link is not None:
            raise ValueError("sunset and deprecation_link need deprecated=<date>")
        return {}
    since = _moment(deprecated, "deprecated")
    # RFC 9745 §2.1: a Structured Field Date, seconds since the epoch (RFC 9651 §3.3.7).
    headers = [("Deprecation", f"@{int(since.timestamp())}")]
    until = None
    if sunset is not None:
        until = _moment(sunset, "sunset")
        if until < since:  # RFC 9745: the sunset must not come before the deprecation
            raise ValueError(f"sunset {until:%Y-%m-%d} is before deprecated {since:%Y-%m-%d}")
        headers.append(("Sunset", email.utils.format_datetime(until, usegmt=True)))
    if link is not None:
        if any(c in link for c in '<>" \r\n'):
            raise ValueError(f"deprecation_link {link!r} is not a URL")
        headers.append(("Link", f'<{link}>; rel="deprecation"'))
    return {"deprecated": since, "sunset": until, "deprecation_headers": tuple(headers)}


def announce_deprecation(spec: EndpointSpec, req: falcon.Request, resp: falcon.Response
                         ) -> None:
    """Add the route's Deprecation, Sunset and Link headers to the answer, once: the request
    middleware does it before the gate (whose refusals must carry them too), the responder
    for a request that did not pass through it."""
    if getattr(req.context, "deprecation_announced", False):
        return
    req.context.deprecation_announced = True
    for name, value in spec.deprecation_headers:
        resp.append_header(name, value)


def spec_of(responder: Any) -> EndpointSpec | None:
    return getattr(responder, _SPEC_ATTR, None)


class ResponseMismatch(RuntimeError):
    """A responder answered with a body that is not the shape its `@endpoint` declares
    (`server.check_responses`): a defect, answered as a 500 and logged, never a 422."""


def checking_responses(req: falcon.Request) -> bool:
    """Whether this request's app checks answers (`server.check_responses`: on in
    learnplat.testing's settings, off in production, where this lookup is all it costs)."""
    passage = getattr(req.context, "passage", None)
    return passage is not None and passage.gate.runtime.settings.server.check_responses


def declared_model(spec: EndpointSpec, status: int) -> type[pydantic.BaseModel] | None:
    """The pydantic model the OpenAPI document gives the body of a success `status`."""
    if status != spec.status and status not in spec.also:
        return None
    model = spec.response_for.get(status, spec.response)
    if isinstance(model, type) and issubclass(model, pydantic.BaseModel):
        return model
    return None


def returnable(model: type[pydantic.BaseModel]) -> tuple[type, ...]:
    """What a responder may return for `model`: the model, or for a RootModel of a union
    (``QuizView(RootModel[QuizOut | QuizStudentOut])``) any member."""
    root = model.model_fields.get("root") if issubclass(model, pydantic.RootModel) else None
    if root is None:
        return (model,)
    members = typing.get_args(root.annotation) or (root.annotation,)
    return (model, *(m for m in members if isinstance(m, type)))


def check_returned(spec: EndpointSpec, status: int, result: Any, where: str = "") -> None:
    """Raise ResponseMismatch when a responder returns something other than the model its
    `@endpoint` declares for `status` (a dict of the right keys included): the declared
    model is the one shape of the answer, the one the OpenAPI document shows and the one the
    code builds, so a field added to the answer is added to the model. A responder that
    writes ``resp.data`` itself (a cached answer) returns None; its bytes are checked by
    check_response."""
    model = declared_model(spec, status)
    if model is None or result is None:
        return
    allowed = returnable(model)
    if not isinstance(result, allowed):
        names = " or ".join(m.__name__ for m in allowed)
        raise ResponseMismatch(f"{where or 'a responder'}: returned a {type(result).__name__} "
                               f"for its {status} answer, not the declared {names}")


def check_response(spec: EndpointSpec, resp: falcon.Response, where: str = "") -> None:
    """Raise ResponseMismatch unless the JSON body `resp` sends is the declared model of its
    status: strictly valid (no field missing, no value of another type: a "3" for an integer,
    a float for an integer) and with no key the model does not know (documentation drift),
    at any depth. What is checked is the bytes on the wire, whoever wrote them (a returned
    value, or `resp.data` set by the responder, a cached answer included)."""
    model = declared_model(spec, resp.status_code)
    if model is None or not (resp.content_type or JSON).startswith(JSON):
        return
    if resp.data is not None:
        raw = resp.data
    elif resp.media is not None:
        raw = dump(resp.media)
    else:
        return
    if isinstance(raw, str):
        raw = raw.encode()
    try:
        validated = model.model_validate_json(raw, strict=True)
    except pydantic.ValidationError as exc:
        raise ResponseMismatch(f"{where or 'a responder'}: the {resp.status_code} answer is "
                               f"not a {model.__name__}: {exc}") from None
    known = validated.model_dump(mode="json", by_alias=True, exclude_unset=True)
    extra = _extra_keys(orjson.loads(raw), known, "")
    if extra:
        raise ResponseMismatch(f"{where or 'a responder'}: the {resp.status_code} answer has "
                               f"keys {model.__name__} does not declare: {', '.join(extra[:20])}")


def _extra_keys(wire: Any, known: Any, path: str) -> list[str]:
    """Paths of the object keys in `wire` that the validated dump `known` lacks."""
    out: list[str] = []
    if isinstance(wire, dict) and isinstance(known, dict):
        for key, value in wire.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in known:
                out.append(where)
            else:
                out.extend(_extra_keys(value, known[key], where))
    elif isinstance(wire, list) and isinstance(known, list):
        for i, (w, k) in enumerate(zip(wire, known, strict=False)):
            out.extend(_extra_keys(w, k, f"{path}[{i}]"))
    return out


def anonymous_allowed(spec: EndpointSpec, req: falcon.Request) -> bool:
    """Whether a caller without a token may use this route for this request."""
    if callable(spec.anonymous):
        return bool(spec.anonymous(req))
    return bool(spec.anonymous)


def check_permission(permission: str, principal: Principal | None) -> None:
    if permission == PUBLIC:
        return
    if principal is None:
        raise Unauthorized("a bearer token is required")
    if permission != AUTHENTICATED and not principal.has(permission):
        raise PermissionDenied(f"role {principal.role!r} may not {permission}")


def dump(value: Any) -> bytes:
    """A response body's JSON. Every body goes through orjson with JSON_OPTIONS (the timestamp
    format learnplat.plugin.api_timestamp also writes), a pydantic model too: pydantic's own
    JSON would write a naive datetime without its zone, so the same time would read
    differently in a body built from a model and one built from a dict."""
    if isinstance(value, pydantic.BaseModel):
        # by alias, as the OpenAPI document shows a field ("50", "@context")
        value = value.__pydantic_serializer__.to_python(value, by_alias=True)
    return orjson.dumps(value, default=_default, option=JSON_OPTIONS)


def _default(value: Any) -> Any:
    """What orjson does not know: a model in a list or a dict as Python values (whose times
    orjson then writes with JSON_OPTIONS, as at the top); a set, a Decimal, a URL... as
    pydantic writes it in JSON."""
    if isinstance(value, pydantic.BaseModel):
        return value.__pydantic_serializer__.to_python(value, by_alias=True)
    return pydantic_core.to_jsonable_python(value, by_alias=True)


def parse_query(model: type[pydantic.BaseModel], req: falcon.Request) -> pydantic.BaseModel:
    data: dict[str, Any] = {}
    for name, value in req.params.items():
        info = model.model_fields.get(name)
        wants_list = info is not None and getattr(info.annotation, "__origin__", None) is list
        data[name] = value if (wants_list or not isinstance(value, list)) else value[-1]
        if wants_list and not isinstance(value, list):
            data[name] = [value]
    try:
        parsed = model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationFailed(pydantic_errors(exc)) from None
    refuse_unstorable(parsed, "query")
    return parsed


def _limit(req: falcon.Request, spec: EndpointSpec, default: int) -> int:
    return spec.max_body or default


def check_upload(req: falcon.Request, spec: EndpointSpec, default_limit: int) -> None:
    if not (req.content_type or "").startswith(MULTIPART):
        raise UnsupportedMediaType(f"expected {MULTIPART}")
    limit = _limit(req, spec, default_limit)
    req.context.body_limit = limit  # for multipart_parts / multipart_file
    if req.content_length is not None and req.content_length > limit:
        raise PayloadTooLarge(f"request body over {limit} bytes", limit=limit)


def multipart_parts(req: falcon.Request, limit: int | None = None
                    ) -> tuple[Iterator[Any], Callable[[], None]]:
    """The parts of a multipart body, and a function that reads on to its closing boundary.

    Parsed from `body_stream` (at most `limit` bytes, by default the route's `max_body`: 413
    beyond), so a chunked body or one without Content-Length works too (falcon's
    ``req.get_media()`` fails on those). Call the function once the part you wanted is read and
    before recording anything: a body cut before its closing boundary (a client gone, a proxy
    timeout) then answers 400 instead of storing what came before the cut."""
    limit = limit or getattr(req.context, "body_limit", None) or req.context.max_body
    handler = req.options.media_handlers[falcon.MEDIA_MULTIPART]
    assert isinstance(handler, falcon.media.MultipartFormHandler)  # falcon's, never replaced
    length = req.content_length if req.content_length is not None else limit + 1
    parts = iter(handler.deserialize(body_stream(req, limit), req.content_type, length))

    def finish() -> None:
        for _ in parts:  # each step skips the rest of a part; a truncated body raises 400
            pass

    return parts, finish


def multipart_file(req: falcon.Request, name: str = "file", missing: str = "",
                   limit: int | None = None) -> IO[bytes]:
    """The multipart part `name` of the request as a temporary file (in memory while small),
    once the whole body has arrived (see `multipart_parts`): for uploads small enough to hold
    (images). 422 when there is no such part."""
    parts, finish = multipart_parts(req, limit)
    for part in parts:
        if part.name == name:
            out = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)
            try:
                while chunk := part.stream.read(65536):
                    out.write(chunk)
                finish()
            except BaseException:
                out.close()
                raise
            out.seek(0)
            return out
    raise ValidationFailed.field(
        name, missing or f"send the file in a multipart part named {name!r}", "missing")


def _unbounded_body(req: falcon.Request) -> bool:
    """A body with no Content-Length that the server terminates for us (chunked encoding under
    gunicorn sets wsgi.input_terminated). Falcon's bounded_stream would read it as empty."""
    return (req.content_length is None and bool(req.env.get("wsgi.input_terminated"))
            and "chunked" in (req.get_header("Transfer-Encoding") or "").lower())


def body_stream(req: falcon.Request, limit: int) -> Any:
    """The request body as a stream that raises 413 once more than `limit` bytes are read,
    whether or not the client sent Content-Length (chunked uploads included)."""
    if req.content_length is not None and req.content_length > limit:
        raise PayloadTooLarge(f"request body over {limit} bytes", limit=limit)
    raw = req.stream if _unbounded_body(req) else req.bounded_stream
    # An Idempotency-Key's fingerprint of a streamed (multipart) body, fed as it is read.
    return _LimitedStream(raw, limit, getattr(req.context, "body_hash", None))


class _LimitedStream:
    def __init__(self, stream: Any, limit: int, body_hash: Any = None):
        self._stream, self._limit, self._read = stream, limit, 0
        self._hash = body_hash

    def read(self, size: int = -1) -> bytes:
        want = self._limit + 1 - self._read if size is None or size < 0 else size
        chunk = self._stream.read(max(0, min(want, self._limit + 1 - self._read)))
        self._read += len(chunk)
        if self._read > self._limit:
            raise PayloadTooLarge(f"request body over {self._limit} bytes", limit=self._limit)
        if self._hash is not None:
            self._hash.update(chunk)
        return chunk


def read_body(req: falcon.Request, limit: int) -> bytes:
    """Read at most `limit` bytes of the body; 413 beyond, whatever Content-Length says."""
    stream = body_stream(req, limit)
    out = bytearray()
    while True:
        chunk = stream.read(65536)
        if not chunk:
            return bytes(out)
        out += chunk


def parse_body(model: type[pydantic.BaseModel], req: falcon.Request, spec: EndpointSpec,
               default_limit: int) -> pydantic.BaseModel:
    media_type = (req.content_type or "").split(";")[0].strip().lower()
    if spec.content_type == FORM:
        return _parse_form(model, req, spec, default_limit, media_type)
    if media_type != JSON and not (media_type.startswith("application/")
                                   and media_type.endswith("+json")):
        raise UnsupportedMediaType(f"expected {JSON}, got {media_type or 'no content type'}")
    raw = read_body(req, _limit(req, spec, default_limit))
    req.context.raw_body = raw  # the bytes an Idempotency-Key's fingerprint covers
    if not raw.strip():
        raise BadRequest("the request body is empty; expected a JSON object")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None
    if isinstance(data, dict | list):
        _refuse_duplicate_keys(raw)
    if b"\\u0000" in raw:
        refuse_unstorable(data)  # a NUL anywhere, in keys the schema ignores too
    try:
        parsed = model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationFailed(pydantic_errors(exc)) from None
    refuse_unstorable(parsed)
    return parsed


def _parse_form(model: type[pydantic.BaseModel], req: falcon.Request, spec: EndpointSpec,
                default_limit: int, media_type: str) -> pydantic.BaseModel:
    """A FORM body (application/x-www-form-urlencoded, UTF-8) into `model`."""
    if media_type != FORM:
        raise UnsupportedMediaType(f"expected {FORM}, got {media_type or 'no content type'}")
    raw = read_body(req, _limit(req, spec, default_limit))
    req.context.raw_body = raw
    try:
        pairs = urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True,
                                       strict_parsing=bool(raw.strip()), errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("malformed form body: expected UTF-8 name=value pairs joined by &"
                         ) from None
    declared = {f.alias or n for n, f in model.model_fields.items()} | set(model.model_fields)
    data: dict[str, str] = {}
    for name, value in pairs:
        if name in data:
            if name in declared:  # which one counts would be a guess: refused
                raise BadRequest(f"malformed form body: the field {name[:100]!r} appears "
                                 "twice")
            continue  # a field the model ignores (an OIDC request's extras): the first
        data[name] = value
    refuse_unstorable(data)
    try:
        parsed = model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationFailed(pydantic_errors(exc)) from None
    return parsed


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise BadRequest(
                    f"malformed JSON: the key {key[:100]!r} appears twice in one object")
            seen.add(key)
    return out


_PAIRS = json.JSONDecoder(object_pairs_hook=_unique_pairs)


def _refuse_duplicate_keys(raw: bytes) -> None:
    """400 for an object with a key twice. orjson keeps the last one silently, and a proxy, a
    firewall or an audit log that read the first would disagree with what was applied
    (I-JSON, RFC 7493: names MUST be unique). `raw` is valid JSON already (orjson said so)."""
    try:
        _PAIRS.decode(raw.decode())
    except RecursionError:  # nested deeper than this parser goes (orjson allows 1024)
        raise BadRequest("malformed JSON: nested too deeply") from None


_INT64 = (-(1 << 63), (1 << 63) - 1)


def refuse_unstorable(value: Any, where: str = "body") -> None:
    """422 for validated input that no column can hold, whatever the schema said: a NUL
    character in a string (PostgreSQL refuses it in text and jsonb: a 500 if it reached the
    database), an integer beyond 64 bits (SQLite and bigint overflow) or a float or decimal
    that is not finite (NaN, Infinity: from a lax "1e400" string). Keys of free-form objects
    included."""
    errors: list[dict[str, Any]] = []

    def bad(loc: list[str], message: str, kind: str) -> None:
        errors.append({"field": ".".join(loc) or where, "message": message, "type": kind})

    def walk(v: Any, loc: list[str]) -> None:
        if len(errors) >= 10:
            return
        if isinstance(v, str):
            if "\x00" in v:
                bad(loc, "must not contain a NUL character (\\u0000)", "string_nul")
        elif isinstance(v, bool):
            return
        elif isinstance(v, int):
            if not _INT64[0] <= v <= _INT64[1]:
                bad(loc, "integer out of range (64-bit signed)", "int_range")
        elif isinstance(v, float | Decimal):
            if not (math.isfinite(v) if isinstance(v, float) else v.is_finite()):
                bad(loc, "must be a finite number", "finite_number")
        elif isinstance(v, pydantic.BaseModel):
            for name, item in (*v.__dict__.items(), *(v.__pydantic_extra__ or {}).items()):
                walk(item, [*loc, name])
        elif isinstance(v, dict):
            for key, item in v.items():
                walk(key, loc)
                walk(item, [*loc, str(key)])
        elif isinstance(v, list | tuple | set | frozenset):
            for i, item in enumerate(v):
                walk(item, [*loc, str(i)])

    walk(value, [])
    if errors:
        raise ValidationFailed(errors)
