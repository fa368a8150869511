"""Every error leaves as application/problem+json (RFC 9457), unexpected ones included; the
catalogue of the problem codes those answers carry, and the check that keeps it complete."""

from __future__ import annotations

import html
import http
import logging
import uuid
from typing import Any

import falcon
import orjson
import peewee
import pydantic
import redis
from playhouse.pool import MaxConnectionsExceeded

from ..errors import (
    CORE_PROBLEMS,
    PROBLEM_TYPE,
    BadRequest,
    Conflict,
    LearnplatError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ProblemCode,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)
from ..kv import StoreUnavailable
from ..registry import ProblemType, Registry, problem_type
from ..timestamps import JSON_OPTIONS

log = logging.getLogger("learnplat.http")

PROBLEM_JSON = "application/problem+json"


def request_id_for(incoming: str | None) -> str:
    """The request id of an answer given where the middleware did not run: the client's
    X-Request-Id when well-formed (the middleware's rule), else a new one."""
    # Imported here: the middleware imports endpoint, which imports this module.
    from .middleware import _REQUEST_ID_OK

    return incoming if incoming and _REQUEST_ID_OK.match(incoming) else uuid.uuid4().hex


def _write(req: falcon.Request, resp: falcon.Response, problem: dict[str, Any],
           headers: dict[str, str] | None = None) -> None:
    request_id = getattr(req.context, "request_id", None)
    if not request_id:
        # Refused before the middleware gave the request its id (Falcon checks the method
        # first): one now, so that this answer can be quoted like every other.
        request_id = req.context.request_id = request_id_for(req.get_header("X-Request-Id"))
        resp.set_header("X-Request-Id", request_id)
    problem.setdefault("request_id", request_id)
    resp.status = problem["status"]
    resp.context.problem = problem  # what the answer says, whichever form it takes
    if getattr(req.context, "problem_page", False) and req.client_prefers(
            (PROBLEM_JSON, JSON_TYPE, HTML)) == HTML:
        resp.content_type = "text/html; charset=utf-8"
        resp.data = problem_page(problem).encode()
        # The page's own style only; nothing of it runs.
        resp.set_header("Content-Security-Policy",
                        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors *")
    else:
        resp.content_type = PROBLEM_JSON
        resp.data = orjson.dumps(problem, option=JSON_OPTIONS)  # times as in every answer
    resp.media = None
    for name, value in (headers or {}).items():
        resp.set_header(name, value)


JSON_TYPE = "application/json"
HTML = "text/html"


def problem_page(problem: dict[str, Any]) -> str:
    """A problem as a page a person reads (a browser that landed on a `browser` route): the
    title, what failed, the fields at fault, the code and what to quote when asking for help.
    Everything shown is escaped."""
    esc = html.escape
    rows = "".join(f"<li><code>{esc(str(e.get('field', '')))}</code>: "
                   f"{esc(str(e.get('message', '')))}</li>"
                   for e in problem.get("errors") or [] if isinstance(e, dict))
    fix = problem.get("fix")
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{esc(str(problem.get('title', 'Error')))}</title>"
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:3em auto;"
        "padding:0 1em;color:#222}code{background:#f3f3f3;padding:0 .2em}"
        ".meta{color:#666;font-size:.9em}</style></head><body>"
        f"<h1>{esc(str(problem.get('title', 'Error')))}</h1>"
        f"<p>{esc(str(problem.get('detail', '')))}</p>"
        + (f"<ul>{rows}</ul>" if rows else "")
        + (f"<p><strong>How to fix it:</strong> {esc(str(fix))}</p>" if fix else "")
        + f"<p class=\"meta\">Status {esc(str(problem.get('status', '')))} · code "
        f"<code>{esc(str(problem.get('code', '')))}</code> · request "
        f"<code>{esc(str(problem.get('request_id', '')))}</code></p></body></html>")


def pydantic_errors(exc: pydantic.ValidationError, prefix: str = "") -> list[dict[str, Any]]:
    out = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        out.append({
            "field": ".".join([prefix, *loc] if prefix else loc) or prefix or "body",
            "message": err["msg"],
            "type": err["type"],
        })
    return out


def handle_domain_error(req: falcon.Request, resp: falcon.Response, ex: LearnplatError,
                        params: dict[str, Any]) -> None:
    _write(req, resp, ex.to_problem(), ex.headers)


def handle_validation_error(req: falcon.Request, resp: falcon.Response,
                            ex: pydantic.ValidationError, params: dict[str, Any]) -> None:
    err = ValidationFailed(pydantic_errors(ex))
    _write(req, resp, err.to_problem())


def handle_integrity_error(req: falcon.Request, resp: falcon.Response, ex: Exception,
                           params: dict[str, Any]) -> None:
    # A unique or foreign-key constraint caught what a service did not check first.
    log.info("integrity error on %s %s: %s", req.method, req.path, ex)
    _write(req, resp, Conflict("the change conflicts with existing data").to_problem())


def handle_data_error(req: falcon.Request, resp: falcon.Response, ex: Exception,
                      params: dict[str, Any]) -> None:
    # The database refused a value (too long for its column, out of its column's range): the
    # request's input, which a schema should have bounded first; the log says where.
    log.warning("data error on %s %s: %s", req.method, req.path, ex)
    err = ValidationFailed([{"field": "body", "message": "a value is too long or out of range "
                             "for where it is stored", "type": "data_error"}])
    _write(req, resp, err.to_problem())


def handle_unavailable(req: falcon.Request, resp: falcon.Response, ex: Exception,
                       params: dict[str, Any]) -> None:
    log.error("dependency unavailable on %s %s: %r", req.method, req.path, ex)
    err = ServiceUnavailable("a backing service is unavailable; try again shortly")
    _write(req, resp, err.to_problem(), err.headers)


def handle_unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception,
                      params: dict[str, Any]) -> None:
    if isinstance(ex, falcon.HTTPError):  # raised through a middleware path
        serialize_http_error(req, resp, ex)
        return
    log.exception("unhandled error on %s %s", req.method, req.path)
    _write(req, resp, {
        "type": PROBLEM_TYPE.format(code="internal_error"),
        "title": "Internal server error",
        "status": 500,
        "detail": "an unexpected error occurred; quote the request id when reporting it",
        "code": "internal_error",
    })


# Falcon's own refusals (no route, a path id its converter refuses, 405, a malformed header
# or body its parsers refuse) take the code and title of the project's error of that status,
# so that a client sees one shape whoever refused the request. Codes are published: the
# earlier ones (bad_request, not_found, method_not_allowed...) are kept.
_FALCON_STATUS: dict[int, tuple[str, str]] = {
    err.status: (err.code, err.title)
    for err in (BadRequest, Unauthorized, PermissionDenied, NotFound, Conflict, PayloadTooLarge,
                UnsupportedMediaType, RateLimited, ServiceUnavailable)
}
_FALCON_STATUS.update({
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    408: ("request_timeout", "Request timeout"),
    411: ("length_required", "Length required"),
    414: ("uri_too_long", "URI too long"),
    416: ("range_not_satisfiable", "Range not satisfiable"),
    431: ("header_fields_too_large", "Request header fields too large"),
    500: ("internal_error", "Internal server error"),
    501: ("not_implemented", "Not implemented"),
})
# A detail for the Falcon errors that come without a description.
_FALCON_DETAIL = {
    400: "the request is malformed: a method, header or body this API cannot read",
    404: "nothing here: no route matches this path (ids in a path are whole numbers)",
    405: "this path does not answer {method}; the Allow header lists the methods it does",
    416: "the requested range lies beyond the end of the object",
}


def falcon_code_and_title(status: int) -> tuple[str, str]:
    """The code and title a Falcon error of `status` answers with."""
    if status in _FALCON_STATUS:
        return _FALCON_STATUS[status]
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return f"http_{status}", phrase[:1] + phrase[1:].lower()


def serialize_http_error(req: falcon.Request, resp: falcon.Response,
                         ex: falcon.HTTPError) -> None:
    status = ex.status_code
    code, title = falcon_code_and_title(status)
    # Falcon's default title is the status line ("404 Not Found"); a title of its own (e.g.
    # "Malformed multipart/form-data request media") says more, as the detail when there is
    # no description.
    own_title = ex.title if ex.title and ex.title != falcon.code_to_http_status(status) else None
    detail = (ex.description or own_title
              or _FALCON_DETAIL.get(status, f"refused: {title.lower()}").format(
                  method=req.method))
    _write(req, resp, {
        "type": PROBLEM_TYPE.format(code=code),
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }, dict(ex.headers or {}))


def outside_the_app(status: int, detail: str, scope: dict[str, Any]
                    ) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Headers and body of an answer the ASGI entry gives without the Falcon app (a body that
    did not arrive in time, an error the app let out): the same problem document, with a
    request id (the client's when well-formed) in the body and in X-Request-Id."""
    incoming = next((value.decode("latin-1") for name, value in scope.get("headers", ())
                     if name == b"x-request-id"), None)
    request_id = request_id_for(incoming)
    code, title = falcon_code_and_title(status)
    body = orjson.dumps({"type": PROBLEM_TYPE.format(code=code), "title": title,
                         "status": status, "detail": detail, "code": code,
                         "request_id": request_id})
    return [(b"content-type", PROBLEM_JSON.encode()),
            (b"x-request-id", request_id.encode()),
            (b"content-length", str(len(body)).encode())], body


# -- the catalogue of problem types --------------------------------------------------------------

# What the codes of Falcon's refusals (above) and internal_error mean to a client.
_FALCON_EXPLAINED = {
    "method_not_allowed": "The path exists but does not answer this method; the Allow header "
                          "lists those it does.",
    "not_acceptable": "The Accept header asks for a media type the operation cannot answer in "
                      "(learnplat answers JSON, problem+json, or the operation's own type).",
    "request_timeout": "The request's body did not arrive in time; send it again.",
    "length_required": "The operation needs a Content-Length header (or a chunked body).",
    "uri_too_long": "The request line is longer than the server reads: send the data in a "
                    "body, or fewer query parameters.",
    "range_not_satisfiable": "A download's Range lies beyond the end of the object.",
    "header_fields_too_large": "The request's headers are larger than the server reads.",
    "internal_error": "An unexpected error in learnplat: a defect, logged with the request id. "
                      "Quote the request_id when reporting it; the request may be retried.",
    "not_implemented": "The server does not implement what the request needs.",
}


def title_of(status: int) -> str:
    """The title of an answer of `status` raised on a core class (``Conflict("...",
    code="x")`` has the title "Conflict")."""
    return falcon_code_and_title(status)[1]


def _error_classes() -> list[type[LearnplatError]]:
    """LearnplatError and every subclass defined so far, depth first."""
    out: list[type[LearnplatError]] = []
    todo: list[type[LearnplatError]] = [LearnplatError]
    while todo:
        cls = todo.pop()
        if cls not in out:
            out.append(cls)
            todo.extend(reversed(cls.__subclasses__()))
    return out


def core_problems() -> dict[str, ProblemType]:
    """The core's problem codes: every LearnplatError subclass defined in learnplat (so a new
    error class joins by being defined; its docstring is the explanation), Falcon's refusals,
    internal_error and `CORE_PROBLEMS` (codes raised on a core class with ``code=``). Plugins'
    own classes are declared by their plugins (``Plugin.problems``)."""
    found: dict[str, ProblemType] = {}

    def add(entry: ProblemType) -> None:
        known = found.get(entry.code)
        found[entry.code] = known.merged(entry) if known else entry

    for cls in _error_classes():
        if (cls is LearnplatError or not cls.__module__.startswith("learnplat.")
                or "code" not in vars(cls)):
            continue  # the base, a plugin's class, or one with no code of its own
        explanation = vars(cls).get("__doc__") or f"{cls.title}."
        add(problem_type(cls.code, ProblemCode(cls.status, explanation, cls.title), "core"))
    for status, (code, title) in sorted(_FALCON_STATUS.items()):
        if code in _FALCON_EXPLAINED:
            add(problem_type(code, ProblemCode(status, _FALCON_EXPLAINED[code], title),
                             "core"))
    for code, decl in CORE_PROBLEMS.items():
        add(problem_type(code, decl, "core", title_of))
    return found


def catalogue(registry: Registry) -> dict[str, ProblemType]:
    """Every problem code an answer can carry, the core's first, then the plugins' (gathered
    at start-up from ``Plugin.problems``), by code."""
    out = core_problems()
    for code, entry in registry.problems.items():
        out[code] = out[code].merged(entry) if code in out else entry
    return out


class UndeclaredProblem(RuntimeError):
    """An answer carried a problem code (or a status for it) that the catalogue does not
    declare: a defect under ``server.check_responses``, answered as a 500 and logged."""


def check_declared(registry: Registry, code: str, status: int) -> None:
    """Raise UndeclaredProblem unless `code` is in the catalogue with `status`."""
    entry = catalogue(registry).get(code)
    if entry is None:
        raise UndeclaredProblem(
            f"the problem code {code!r} (status {status}) is in no catalogue: declare it in "
            "the raising plugin's Plugin.problems (or, in the core, learnplat.errors."
            "CORE_PROBLEMS or a LearnplatError subclass with a docstring)")
    if status not in entry.statuses:
        raise UndeclaredProblem(
            f"the problem code {code!r} answered {status}, but its declaration "
            f"({', '.join(entry.declared_by)}) says {entry.statuses}: add the status")


def _checked(app: falcon.App, handler: Any) -> Any:
    """`handler`, then (under ``server.check_responses``) the check that the answer's code is
    declared: an undeclared one replaces the answer by a logged 500, so a test that meets it
    fails and the catalogue on the reference page cannot drift from the code."""

    def handle(req: falcon.Request, resp: falcon.Response, ex: Exception,
               params: dict[str, Any]) -> None:
        handler(req, resp, ex, params)
        runtime = getattr(app, "runtime", None)
        if runtime is None or not runtime.settings.server.check_responses:
            return
        try:
            problem = getattr(resp.context, "problem", None) or orjson.loads(
                resp.data or b"{}")
            check_declared(runtime.registry, str(problem.get("code")), resp.status_code)
        except UndeclaredProblem as defect:
            log.error("defect on %s %s: %s", req.method, req.path, defect)
            _write(req, resp, {
                "type": PROBLEM_TYPE.format(code="internal_error"),
                "title": "Internal server error", "status": 500, "code": "internal_error",
                "detail": f"undeclared problem: {defect}",
            })

    return handle


def install(app: falcon.App) -> None:
    def add(kind: Any, handler: Any) -> None:
        app.add_error_handler(kind, _checked(app, handler))

    add(Exception, handle_unexpected)
    add(LearnplatError, handle_domain_error)
    add(pydantic.ValidationError, handle_validation_error)
    add(peewee.IntegrityError, handle_integrity_error)
    add(peewee.DataError, handle_data_error)
    add(peewee.OperationalError, handle_unavailable)
    # "connection already closed": the server went away under a pooled connection (a COMMIT
    # on it fails so); the pool drops that connection at check-in.
    add(peewee.InterfaceError, handle_unavailable)
    add(MaxConnectionsExceeded, handle_unavailable)
    # Redis down or not answering within redis.socket_timeout: a write that needs it (a logout
    # recording its revocation, a login counting guesses) answers 503, never 500.
    add(StoreUnavailable, handle_unavailable)
    add(redis.ConnectionError, handle_unavailable)
    add(redis.TimeoutError, handle_unavailable)
    add(falcon.HTTPError, lambda req, resp, ex, params: serialize_http_error(req, resp, ex))
