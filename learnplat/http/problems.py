"""Every error leaves as application/problem+json (RFC 9457), unexpected ones included."""

from __future__ import annotations

import logging
from typing import Any

import falcon
import orjson
import peewee
import pydantic
import redis
from playhouse.pool import MaxConnectionsExceeded

from ..errors import (
    PROBLEM_TYPE,
    Conflict,
    LearnplatError,
    ServiceUnavailable,
    ValidationFailed,
)
from ..kv import StoreUnavailable

log = logging.getLogger("learnplat.http")

PROBLEM_JSON = "application/problem+json"


def _write(req: falcon.Request, resp: falcon.Response, problem: dict[str, Any],
           headers: dict[str, str] | None = None) -> None:
    request_id = getattr(req.context, "request_id", None)
    if request_id:
        problem.setdefault("request_id", request_id)
    resp.status = problem["status"]
    resp.content_type = PROBLEM_JSON
    resp.data = orjson.dumps(problem)
    resp.media = None
    for name, value in (headers or {}).items():
        resp.set_header(name, value)


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


def serialize_http_error(req: falcon.Request, resp: falcon.Response,
                         ex: falcon.HTTPError) -> None:
    status = ex.status_code
    code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
            413: "payload_too_large", 415: "unsupported_media_type"}.get(status, f"http_{status}")
    detail = ex.description or ex.title or ""
    _write(req, resp, {
        "type": PROBLEM_TYPE.format(code=code),
        "title": ex.title or "Error",
        "status": status,
        "detail": detail,
        "code": code,
    }, dict(ex.headers or {}))


def install(app: falcon.App) -> None:
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(LearnplatError, handle_domain_error)
    app.add_error_handler(pydantic.ValidationError, handle_validation_error)
    app.add_error_handler(peewee.IntegrityError, handle_integrity_error)
    app.add_error_handler(peewee.DataError, handle_data_error)
    app.add_error_handler(peewee.OperationalError, handle_unavailable)
    # "connection already closed": the server went away under a pooled connection (a COMMIT
    # on it fails so); the pool drops that connection at check-in.
    app.add_error_handler(peewee.InterfaceError, handle_unavailable)
    app.add_error_handler(MaxConnectionsExceeded, handle_unavailable)
    # Redis down or not answering within redis.socket_timeout: a write that needs it (a logout
    # recording its revocation, a login counting guesses) answers 503, never 500.
    app.add_error_handler(StoreUnavailable, handle_unavailable)
    app.add_error_handler(redis.ConnectionError, handle_unavailable)
    app.add_error_handler(redis.TimeoutError, handle_unavailable)
    app.add_error_handler(falcon.HTTPError, lambda req, resp, ex, params:
                          serialize_http_error(req, resp, ex))
