"""One error shape for every answer: Falcon's own refusals (no route, a path id that is not a
number, 405, a malformed header or multipart body, a request refused before the middleware
ran) answer the same problem+json as the project's own errors, validated against the OpenAPI
document's Problem schema: `type` urn:learnplat:problem:{code}, the project's `title` for the
status, a `detail`, `code`, `request_id` (also in X-Request-Id)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import falcon.testing
import jsonschema
import pytest

from learnplat.errors import BadRequest, NotFound, PayloadTooLarge, UnsupportedMediaType
from learnplat.http import asgi
from learnplat.http.bridge import BufferedBridge
from learnplat.http.openapi import build_document
from learnplat.testing import Client

BOUNDARY = "lperrshape"


@pytest.fixture(scope="module")
def problem_schema(lp_runtime: Any) -> dict[str, Any]:
    return build_document(lp_runtime)["components"]["schemas"]["Problem"]


def check_shape(r: falcon.testing.Result, status: int, schema: dict[str, Any],
                title: str, sent_id: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json
    jsonschema.validate(body, schema)
    assert body["status"] == status
    assert body["type"] == f"urn:learnplat:problem:{body['code']}"
    assert body["title"] == title
    assert not re.match(r"^\d{3} ", body["title"])  # not Falcon's status line
    assert body["detail"] and body["detail"] != body["title"]
    assert r.headers["x-request-id"] == body["request_id"]
    if sent_id is not None:
        assert body["request_id"] == sent_id
    return body


def _multipart_broken() -> bytes:
    # A part that never ends: Falcon's multipart parser refuses it (MultipartParseError).
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\nabc").encode()


# (name, method, path, what the request carries, status, the title, extra check)
CASES: list[tuple[str, str, str, dict[str, Any], int, str, Callable[[Any], None] | None]] = [
    ("unknown route", "GET", "/no-such-thing", {}, 404, NotFound.title, None),
    ("unknown route, unknown school", "GET", "/no-such-thing", {"tenant": "no-such-school"},
     404, NotFound.title, None),
    ("id that is not a number", "GET", "/courses/abc", {}, 404, NotFound.title, None),
    ("id beyond the converter's range", "GET", "/users/0/photo", {}, 404, NotFound.title, None),
    ("method not allowed", "DELETE", "/courses", {}, 405, "Method not allowed",
     lambda r: r.headers["allow"] == "GET, POST, OPTIONS"),
    ("method not allowed on an item", "PUT", "/openapi.json", {}, 405,
     "Method not allowed", lambda r: "GET" in r.headers["allow"]),
    ("malformed JSON (the project's own)", "POST", "/courses",
     {"auth": True, "body": b'{"title": ', "type": "application/json"}, 400, BadRequest.title,
     None),
    ("unsupported content type (the project's own)", "POST", "/courses",
     {"auth": True, "body": b"title=x", "type": "application/x-www-form-urlencoded"}, 415,
     UnsupportedMediaType.title, None),
    ("malformed Content-Type header (no multipart boundary)", "POST", "/users/{me}/photo",
     {"auth": True, "body": _multipart_broken(), "type": "multipart/form-data"}, 400,
     BadRequest.title, None),
    ("malformed multipart body", "POST", "/users/{me}/photo",
     {"auth": True, "body": _multipart_broken(),
      "type": f"multipart/form-data; boundary={BOUNDARY}"}, 400, BadRequest.title, None),
    ("body too large (the project's own)", "POST", "/courses",
     {"auth": True, "body": b'{"title": "' + b"x" * 3_000_000 + b'"}',
      "type": "application/json"}, 413, PayloadTooLarge.title, None),
]


@pytest.mark.parametrize(("name", "method", "path", "what", "status", "title", "extra"), CASES,
                         ids=[c[0] for c in CASES])
def test_every_error_has_one_shape(lp_app, lp_tenant, lp_users, problem_schema, name, method,
                                   path, what, status, title, extra):
    user = lp_users.make("instructor")
    headers = {"X-Request-Id": f"shape-{status}-{abs(hash(name)) % 10_000}"}
    headers["X-Tenant"] = what.get("tenant", lp_tenant.slug)
    if what.get("auth"):
        headers["Authorization"] = f"Bearer {user.token}"
    if "type" in what:
        headers["Content-Type"] = what["type"]
    headers.update(what.get("headers", {}))
    r = Client(lp_app).request(method, path.format(me=user.id), headers=headers,
                               body=what.get("body"))
    check_shape(r, status, problem_schema, title, sent_id=headers["X-Request-Id"])
    if extra is not None:
        extra(r)


def test_a_request_refused_before_the_middleware_still_has_an_id(lp_app, problem_schema):
    """Falcon refuses some requests before any middleware runs (a WSGI request with the
    WEBSOCKET method): the answer still carries a request id, in the body and the header."""
    r = Client(lp_app).request("WEBSOCKET", "/courses")
    body = check_shape(r, 400, problem_schema, BadRequest.title)
    assert re.fullmatch(r"[0-9a-f]{32}", body["request_id"])
    r = Client(lp_app).request("WEBSOCKET", "/courses", headers={"X-Request-Id": "mine-1"})
    check_shape(r, 400, problem_schema, BadRequest.title, sent_id="mine-1")


def test_the_problem_schema_requires_code_and_request_id(problem_schema):
    assert {"type", "title", "status", "detail", "code", "request_id"} <= set(
        problem_schema["required"])


# -- answers the ASGI entry gives without the Falcon app -------------------------------------

SCOPE = {"type": "http", "method": "POST", "path": "/courses", "query_string": b"",
         "http_version": "1.1", "headers": [(b"content-type", b"application/json"),
                                             (b"content-length", b"7"),
                                             (b"x-request-id", b"asgi-shape-1")]}


def _sent_problem(sent: list[dict[str, Any]], status: int, schema: dict[str, Any],
                  title: str) -> dict[str, Any]:
    start, body = sent
    assert start["status"] == status
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"application/problem+json"
    doc = json.loads(body["body"])
    jsonschema.validate(doc, schema)
    assert doc["type"] == f"urn:learnplat:problem:{doc['code']}" and doc["title"] == title
    assert doc["detail"] and doc["detail"] != doc["title"]
    assert headers[b"x-request-id"].decode() == doc["request_id"] == "asgi-shape-1"
    assert int(headers[b"content-length"]) == len(body["body"])
    return doc


def test_the_asgi_entrys_own_answers_have_the_shape(problem_schema):
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    # The body did not come in time (slow clients, docs/security.md): 408.
    asyncio.run(asgi._request_timeout(dict(SCOPE), send))
    _sent_problem(sent, 408, problem_schema, "Request timeout")

    # The WSGI app let an error out of the buffered bridge: 500.
    def broken(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise RuntimeError("boom")

    sent.clear()
    with ThreadPoolExecutor(1) as pool:
        asyncio.run(BufferedBridge(broken, pool)(dict(SCOPE), b'{"a":1}', send))
    doc = _sent_problem(sent, 500, problem_schema, "Internal server error")
    assert doc["code"] == "internal_error"
