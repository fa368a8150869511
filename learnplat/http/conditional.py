"""Conditional requests (RFC 9110 §8.8.3, §13): the ETag of a JSON answer, `If-None-Match`
answered 304 without a body, `If-Match` on updates and deletes answered 412 when the client's
copy is stale.

An ETag is a strong validator of the answer's bytes (a short hash, quoted): the same bytes give
the same tag in every process, and a change of one byte gives another. GETs declare
``@endpoint(etag=True)``; the endpoint wrapper tags the body it sends and answers 304 when the
request's If-None-Match names that tag (a responder serving a cached answer sets the tag it
stored with the bytes, `send_cached`, so a 304 then costs no hashing and no copy).

Updates and deletes declare ``@endpoint(etag=True)`` too (the OpenAPI document then shows
If-Match and 412), and pass `precondition(req, current)` to their service, which calls it once
the row is locked, in the transaction that writes: `current()` builds the body a GET of the
resource by the same caller would send (the same function the GET uses), so the tag compared is
the one that caller holds. See docs/decisions/1603-conditional-requests.md.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import falcon

from ..errors import BadRequest, LearnplatError

# RFC 9110 §8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, etagc = %x21 / %x23-7E / obs-text
_TAG = re.compile(r'\s*(W/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*')

# What an ETag'd answer carries unless its responder said otherwise: any cache may keep it but
# must ask again before using it (no-cache: the client's poll becomes a cheap 304), and only
# the caller's own cache (private): an answer for one caller or school never sits in a shared
# cache for another.
CACHE_CONTROL = "private, no-cache"


class PreconditionFailed(LearnplatError):
    """412 `precondition_failed`: the request's `If-Match` names a version of the resource
    that is no longer the current one: someone (another instructor, another tab) changed it
    since you read it, and nothing was written. The answer's `ETag` header and its `etag` field
    carry the current version: GET the resource again, re-apply your change to what you get,
    and send it with `If-Match: <that ETag>`."""

    status, code, title = 412, "precondition_failed", "The resource has changed"

    def __init__(self, current: str, detail: str | None = None):
        super().__init__(detail or "the resource changed since you read it (If-Match names an "
                         "older version); nothing was written: GET it again and retry with "
                         "its ETag", etag=current)
        self.headers["ETag"] = current


def etag_of(body: bytes) -> str:
    """The strong ETag of an answer's bytes: 128 bits of BLAKE2b in base64url, quoted (24
    characters on the wire). A collision would need 2^64 versions of one resource."""
    digest = hashlib.blake2b(body, digest_size=16).digest()
    return '"' + base64.urlsafe_b64encode(digest).rstrip(b"=").decode() + '"'


Tags = list[tuple[bool, str]]  # (weak, opaque-tag with its quotes)


def parse_tags(header: str) -> Tags | Literal["*"] | None:
    """An If-Match / If-None-Match value: "*", or its entity tags as (weak, '"opaque"')
    pairs in order; None when it is not valid (RFC 9110 §13.1.1: `"*" / #entity-tag`; empty
    list elements are allowed, as in every #rule list)."""
    if header.strip() == "*":
        return "*"
    tags: Tags = []
    pos, end = 0, len(header)
    while pos < end:
        if header[pos] in " \t,":
            pos += 1
            continue
        match = _TAG.match(header, pos)
        if match is None:
            return None
        tags.append((match.group(1) is not None, f'"{match.group(2)}"'))
        pos = match.end()
        if pos < end and header[pos] != ",":
            return None
    return tags


def none_match(header: str | None, current: str) -> bool:
    """Whether If-None-Match `header` is *false* for a resource whose ETag is `current`, that
    is, whether a GET answers 304: "*" (the resource exists) or any tag equal to it by the weak
    comparison (RFC 9110 §13.1.2: W/"x" matches "x"). An invalid value is ignored (the full
    answer is sent), as a header the server does not understand would be."""
    if header is None:
        return False
    tags = parse_tags(header)
    if tags is None:
        return False
    if tags == "*":
        return True
    opaque = current[2:] if current.startswith("W/") else current
    return any(tag == opaque for _weak, tag in tags)


def _if_match_tags(header: str) -> Tags | Literal["*"]:
    tags = parse_tags(header)
    if tags is None:
        raise BadRequest('If-Match must be "*" or a list of entity tags, each in double quotes '
                         'as the ETag header sent them (e.g. If-Match: "3q2-7w")')
    return tags


def if_match(header: str, current: Callable[[], str]) -> str | None:
    """Evaluate If-Match `header` against the resource as it is now (`current()`, its ETag,
    only computed when needed): None when it holds, else the current ETag. Strong comparison
    (RFC 9110 §13.1.1): a weak tag never matches. A malformed value is a 400 rather than a 412:
    the client has a bug to fix (an unquoted tag, typically), not a stale copy."""
    tags = _if_match_tags(header)
    if tags == "*":
        return None  # any current representation: the resource exists (the caller found it)
    now = current()
    if any(not weak and tag == now for weak, tag in tags):
        return None
    return now


def precondition(req: falcon.Request, current: Callable[[], bytes]
                 ) -> Callable[[], None] | None:
    """The If-Match check of an update or delete, for its service to call right after it
    locked the row, in the transaction that writes (so two writers holding the same ETag
    cannot both pass); None when the request has no If-Match (the update proceeds as
    always). `current()` builds the body a GET of the resource by this caller would send;
    PreconditionFailed (412, with the current ETag) when the request's tag is not its tag.
    The header is parsed now, so a malformed one is a 400 before any work."""
    header = req.get_header("If-Match")
    if header is None:
        return None
    _if_match_tags(header)  # a malformed value: 400 now

    def check() -> None:
        req.context.if_match_checked = True
        stale = if_match(header, lambda: etag_of(current()))
        if stale is not None:
            raise PreconditionFailed(stale)

    return check


def if_match_checked(req: falcon.Request) -> bool:
    """Whether the request's If-Match, if it has one, was evaluated (a `precondition` check
    ran): an `etag=True` update that answers success without it ignored the client's
    condition, which the endpoint wrapper reports as a defect under check_responses."""
    return req.get_header("If-Match") is None or getattr(req.context, "if_match_checked",
                                                          False)


class Tagged(NamedTuple):
    """An answer's bytes with their ETag, hashed once when the answer is cached (in
    `runtime.answers`): serving it again, or answering 304 for it, costs no hashing."""

    body: bytes
    etag: str

    @classmethod
    def of(cls, body: bytes) -> Tagged:
        return cls(body, etag_of(body))


def send_cached(resp: falcon.Response, answer: Tagged) -> None:
    """Answer a cached JSON body with the ETag stored beside it: the endpoint wrapper then
    answers a matching If-None-Match with 304 without hashing (or copying) the body."""
    resp.data, resp.content_type = answer.body, "application/json"
    resp.set_header("ETag", answer.etag)


def tag_answer(req: falcon.Request, resp: falcon.Response) -> None:
    """For an `etag=True` GET, after its 200 body is final: the ETag (the one the responder set
    from a cache, or the hash of the bytes), Cache-Control unless the responder chose one, and
    304 with no body when If-None-Match matches. The 304 keeps every header the 200 would have
    had (ETag, Cache-Control, Vary: RFC 9110 §15.4.5)."""
    if resp.status_code != 200 or resp.data is None:
        return
    etag = resp.get_header("ETag")
    if etag is None:
        etag = etag_of(resp.data)
        resp.set_header("ETag", etag)
    if resp.get_header("Cache-Control") is None:
        resp.set_header("Cache-Control", CACHE_CONTROL)
    if none_match(req.get_header("If-None-Match"), etag):
        resp.status = 304
        resp.data = None
        resp.delete_header("Content-Type")  # a 304 has no content (RFC 9110 §15.4.5)


def send_etag(resp: falcon.Response, body: bytes) -> None:
    """The ETag header of a successful update: the tag of `body`, what a GET of the resource
    by the same caller now answers, for the client's next If-Match."""
    resp.set_header("ETag", etag_of(body))


# -- the OpenAPI document ------------------------------------------------------------------------

_ETAG_HEADER = {"description": "The version of the resource as this caller sees it (a strong "
                               "validator): send it back in If-None-Match to poll, in If-Match "
                               "to update only that version.",
                "schema": {"type": "string"}}


def document(method: str, params: list[dict[str, Any]], responses: dict[str, Any],
             problem: dict[str, Any]) -> None:
    """Add an `etag=True` operation's conditional parts to its OpenAPI entry: for a GET the
    If-None-Match parameter, the ETag header of its 200 and the 304; for an update or delete
    If-Match and the 412 (`problem`: the problem+json content), and an update's success its
    ETag header."""
    if method in ("GET", "HEAD"):
        params.append({"name": "If-None-Match", "in": "header", "required": False,
                       "schema": {"type": "string"},
                       "description": "ETags of copies the client holds: 304 with no body "
                                      "when the answer would be one of them."})
        if "200" in responses:
            responses["200"].setdefault("headers", {})["ETag"] = _ETAG_HEADER
        responses["304"] = {"description": "Not modified: the copy named in If-None-Match is "
                                           "current", "headers": {"ETag": _ETAG_HEADER}}
        return
    params.append({"name": "If-Match", "in": "header", "required": False,
                   "schema": {"type": "string"},
                   "description": "Apply the change only if the resource is still at this "
                                  "version (the ETag of your GET), else 412; `*`: any version. "
                                  "Without it the change applies as always."})
    for status in ("200", "201") if method != "DELETE" else ():  # a delete answers no tag
        if status in responses:
            responses[status].setdefault("headers", {})["ETag"] = _ETAG_HEADER
    responses.setdefault("400", {"description": "Malformed request (an If-Match that is not "
                                                "a list of quoted entity tags)",
                                 "content": problem})
    responses["412"] = {"description": "Precondition failed: the resource changed since the "
                                       "version in If-Match; nothing was written. The ETag "
                                       "header is the current version.",
                        "headers": {"ETag": _ETAG_HEADER}, "content": problem}
