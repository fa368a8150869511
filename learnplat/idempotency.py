"""Safe retries: the ``Idempotency-Key`` header on every POST (issue 26; the IETF httpapi
draft's header with Stripe's semantics; docs/decisions/1602-idempotency-keys.md).

A client that sends a POST with ``Idempotency-Key: <a random key>`` and loses the answer (a
timeout, a dropped connection, a worker killed) sends it again with the same key:

- the same key, caller, school and request (method, path, query, body) replays the first
  answer (status, body, Content-Type, Location, ETag, Link...) with ``Idempotent-Replayed:
  true``, for `server.idempotency_retention_hours` (at least 24 h); nothing runs again;
- the same key with another request: 422 ``idempotency_key_reused``;
- while the first is still running: 409 ``idempotency_key_in_use`` (``Retry-After: 1``);
- a first request that failed (4xx, 5xx) left nothing: its transaction rolled back, so its
  retry runs afresh.

How, in three parts that are each the last word on something:

1. A lease in the key-value store (Redis or the embedded store, shared by every process of
   the installation), taken before the responder runs and released by the HTTP middleware
   only after the request's transaction has committed or rolled back: a retry therefore finds
   the lease (409) or the outcome, never neither.
2. The answer, stored by the @endpoint wrapper in the request's OWN transaction once its body
   is built (`Claim.record`): it commits with the writes it describes or not at all, so a
   worker killed between the commit and the answer's bytes leaves an answer to replay.
3. A unique index on (school, caller, key): should the lease be lost (the store unreachable,
   a request outliving the lease), the second of two concurrent requests cannot commit (409,
   and its writes roll back).

Routes with ``transaction=False`` (uploads) commit their own short transactions; their answer
is stored in one more right after the responder, so a worker killed between the upload's
commit and that one leaves no answer and the retry uploads again (a narrower guarantee,
documented in docs/api-clients.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import peewee
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import db
from .errors import BadRequest, Conflict, LearnplatError
from .kv import RedisStore
from .models import IdempotentAnswer, utcnow

if TYPE_CHECKING:
    import falcon

    from .http.endpoint import EndpointSpec
    from .registry import TaskSpec
    from .runtime import Runtime

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
PURGE_TASK = "learnplat.purge_idempotency_keys"
# Visible ASCII (RFC 9110 VCHAR), 1 to 255 of them: a UUID, a ULID, a hash all fit.
_KEY_OK = re.compile(r"[\x21-\x7e]{1,255}")
# What of the first answer a replay repeats besides status and body. Deprecation and Sunset
# are not stored: the route announces its state of today on every answer, replays included.
REPLAYED_HEADERS = ("content-type", "location", "content-location", "etag", "last-modified",
                    "link", "cache-control")
# The lease outlives the longest a request may run (gunicorn's server.timeout) by this much.
LEASE_MARGIN_SECONDS = 15.0

# Compare-and-delete: only the request that took the lease gives it back (one whose lease
# expired must not free another request's).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class IdempotencyKeyMalformed(BadRequest):
    """The `Idempotency-Key` header is empty, longer than 255 characters, or holds something
    other than visible ASCII (spaces and control characters included). Send a fresh random
    key per operation, such as a UUID (`Idempotency-Key: 5f0c1d9e-...`); the IETF draft's
    quoted form (`"5f0c..."`) is accepted too. Nothing was done."""

    status, code, title = 400, "idempotency_key_malformed", "Malformed Idempotency-Key"


class IdempotencyKeyInUse(Conflict):
    """Another request with the same `Idempotency-Key` (from the same caller, in the same
    school) is still running: this one was not run. Retry after `Retry-After` seconds with
    the same key and body: you then get the first request's answer, replayed."""

    status, code, title = 409, "idempotency_key_in_use", "Idempotency-Key in use"

    def __init__(self, detail: str | None = None, **extra: Any):
        super().__init__(detail or "a request with this Idempotency-Key is still running; "
                                   "retry after Retry-After seconds with the same key",
                         **extra)
        self.headers["Retry-After"] = "1"


class IdempotencyKeyReused(LearnplatError):
    """This `Idempotency-Key` was already used (by the same caller, in the same school, within
    the retention of at least 24 hours) for a different request: another method, path, query
    string or body. Nothing was done. Use a new key for a new operation; a retry must send
    the same body byte for byte (for an upload, the same multipart parts)."""

    status, code, title = 422, "idempotency_key_reused", "Idempotency-Key reused"


# -- the key, the caller, the request ----------------------------------------------------------


def parse_key(raw: str) -> str:
    """The key a client sent: visible ASCII, 1 to 255 characters. The IETF draft writes it as a
    Structured Field string (``"abc"``): that form is the same key as its content."""
    key = raw.strip()
    if len(key) >= 3 and key[0] == key[-1] == '"' and _KEY_OK.fullmatch(key[1:-1]):
        return key[1:-1]
    if not _KEY_OK.fullmatch(key):
        raise IdempotencyKeyMalformed(
            f"{HEADER} must be 1 to 255 visible ASCII characters (a UUID, say)")
    return key


def caller_of(req: falcon.Request) -> str:
    """Whose keys these are within the school: the signed-in user, or for a caller without a
    token (register, login, a password reset) its client address."""
    principal = req.context.principal
    if principal is not None:
        return f"user:{principal.user_id}"
    return f"addr:{req.context.client_addr or '-'}"


def key_hash(caller: str, key: str) -> str:
    """What the table stores of a key (never the key itself), per caller."""
    return hashlib.sha256(f"learnplat-idempotency\0{caller}\0{key}".encode()).hexdigest()


def lease_key(tenant_id: int, key_hash: str) -> str:
    """The key-value store's key of a lease: per school, caller and Idempotency-Key."""
    return f"idempotency:{tenant_id}:{key_hash}"


def _cipher(key: str) -> AESGCM:
    """The answer's encryption, keyed by the client's own key (which is never stored)."""
    return AESGCM(hashlib.sha256(f"learnplat-idempotency-body\0{key}".encode()).digest())


class BodyHash:
    """A running hash of the request: method, path with its parameters, query string, then
    the body as it is read. For a multipart body the boundary is left out: HTTP libraries
    pick a new random one each time they encode, so a retry of the same upload would never
    match otherwise."""

    def __init__(self, req: falcon.Request, boundary: bytes = b""):
        self._hash = hashlib.sha256(
            f"{req.method}\0{req.path}\0{req.query_string}\0".encode())
        self._boundary = boundary
        self._tail = b""

    def update(self, chunk: bytes) -> None:
        if not self._boundary:
            self._hash.update(chunk)
            return
        # Hold back what could be the start of a boundary split across two reads.
        buf = (self._tail + chunk).replace(self._boundary, b"")
        keep = min(len(buf), len(self._boundary) - 1)
        self._hash.update(buf[:len(buf) - keep])
        self._tail = buf[len(buf) - keep:]

    def hexdigest(self) -> str:
        self._hash.update(self._tail)
        self._tail = b""
        return self._hash.hexdigest()


def _multipart_boundary(req: falcon.Request) -> bytes:
    found = re.search(r'boundary="?([^";]+)"?', req.content_type or "")
    return f"--{found.group(1)}".encode() if found else b""


# -- one request's claim on its key ------------------------------------------------------------


@dataclass
class Claim:
    """A POST's use of its Idempotency-Key, from admission to the release of its lease."""

    runtime: Runtime
    spec: EndpointSpec
    tenant_id: int
    key: str
    caller: str
    key_hash: str
    body_hash: BodyHash
    replayed: bool = False
    _fingerprint: str | None = None
    _lease: tuple[str, str] | None = None  # (store key, token) while held

    @property
    def retention(self) -> dt.timedelta:
        return dt.timedelta(hours=self.runtime.settings.server.idempotency_retention_hours)

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = self.body_hash.hexdigest()
        return self._fingerprint

    # -- before the responder --------------------------------------------------------------

    def stored(self) -> IdempotentAnswer | None:
        """The answer stored for this key and caller within the retention, if any."""
        def find() -> IdempotentAnswer | None:
            return (IdempotentAnswer.select()
                    .where(IdempotentAnswer.caller == self.caller,
                           IdempotentAnswer.key_hash == self.key_hash,
                           IdempotentAnswer.created_at > utcnow() - self.retention)
                    .first())
        if db.current_unit() is not None:
            return find()
        with db.transaction(write=False):  # a route that runs its own transactions
            return find()

    def take_lease(self) -> None:
        """Hold the key while the request runs; IdempotencyKeyInUse when another holds it.
        An unreachable store does not refuse the request: the unique index still stops a
        second commit (see the module doc)."""
        store_key = lease_key(self.tenant_id, self.key_hash)
        token = secrets.token_hex(8)
        ttl = self.runtime.settings.server.timeout + LEASE_MARGIN_SECONDS
        try:
            taken = self.runtime.kv.add(store_key, token, ttl)
        except Exception:  # Redis down or hung: fail open, logged (see above)
            log.warning("idempotency: could not take the lease of a key; running without it",
                        exc_info=True)
            return
        if not taken:
            raise IdempotencyKeyInUse()
        self._lease = (store_key, token)

    def release(self) -> None:
        """Give the lease back (the middleware calls this once the transaction has ended)."""
        if self._lease is None:
            return
        store_key, token = self._lease
        self._lease = None
        kv = self.runtime.kv
        try:
            if isinstance(kv, RedisStore):
                kv.client.eval(_RELEASE, 1, kv.prefix + store_key, token)
            elif kv.get(store_key) == token:
                # A read, then a delete: only a lease that expired in between (a request that
                # outlived it) could be freed by mistake, and the unique index still holds.
                kv.delete(store_key)
        except Exception:  # it expires on its own; until then retries get 409
            log.warning("idempotency: could not release a lease; it expires in time",
                        exc_info=True)

    def replay(self, row: IdempotentAnswer, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer with the stored answer, or IdempotencyKeyReused for another request."""
        if self.spec.content_type.startswith("multipart/"):
            _drain(req)  # the retry's bytes, hashed as they are read
        if row.fingerprint != self.fingerprint():
            raise IdempotencyKeyReused(
                f"this {HEADER} was used for a different request (method, path, query or "
                "body); use a new key for a new operation",
                errors=[{"field": HEADER, "type": IdempotencyKeyReused.code,
                         "message": "already used for another request"}])
        sealed = bytes(row.body)
        try:
            body = _cipher(self.key).decrypt(sealed[:12], sealed[12:], row.fingerprint.encode())
        except InvalidTag:  # cannot be, short of a tampered row: refuse rather than guess
            raise IdempotencyKeyReused(f"the stored answer of this {HEADER} is unreadable; "
                                       "use a new key") from None
        resp.status = row.status
        for name, value in row.headers:
            resp.set_header(name, value)
        resp.set_header(REPLAYED, "true")
        resp.data = body
        self.replayed = True

    # -- after the responder ---------------------------------------------------------------

    def record(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Store the answer, in the request's own transaction (a savepoint of it), or for a
        route without one in a short transaction of its own. Only successes (< 400): a
        refused request rolled back whatever it did, so its retry must run again."""
        if resp.status_code >= 400:
            return
        body = _body_bytes(resp)
        if body is None:
            log.warning("idempotency: %s %s answered with a stream; not stored",
                        req.method, req.path)
            return
        if self.spec.content_type.startswith("multipart/"):
            _drain(req)  # an epilogue the parser left: part of the request all the same
        fingerprint = self.fingerprint()
        nonce = os.urandom(12)
        sealed = nonce + _cipher(self.key).encrypt(nonce, body, fingerprint.encode())
        headers = [[name, value] for name, value in resp.headers.items()
                   if name in REPLAYED_HEADERS]
        in_unit = self.spec.transaction and db.current_unit() is not None
        try:
            with db.transaction():  # a savepoint inside the request's unit of work
                # An expired answer (not purged yet) gives way to the new one.
                IdempotentAnswer.delete().where(
                    IdempotentAnswer.caller == self.caller,
                    IdempotentAnswer.key_hash == self.key_hash,
                    IdempotentAnswer.created_at <= utcnow() - self.retention).execute()
                IdempotentAnswer.insert(
                    caller=self.caller, key_hash=self.key_hash, fingerprint=fingerprint,
                    status=resp.status_code, headers=headers, body=sealed).execute()
        except peewee.IntegrityError:
            if in_unit:
                # Another request with this key committed first (its lease was lost): this
                # one's writes roll back with the 409, so the operation happened once.
                raise IdempotencyKeyInUse() from None
            # The upload is committed already; its answer stands, the first one is kept.
            log.warning("idempotency: a concurrent request stored this key's answer first")


def _body_bytes(resp: falcon.Response) -> bytes | None:
    if resp.stream is not None:
        return None
    if resp.data is not None:
        return bytes(resp.data)
    if resp.text is not None:
        return resp.text.encode()
    if resp.media is not None:
        from .http.endpoint import dump

        # Written here once, so the first answer and its replays are the same bytes.
        resp.data = dump(resp.media)
        resp.media = None
        return bytes(resp.data)
    return b""


def _drain(req: falcon.Request) -> None:
    """Read the rest of the request body (through the route's size limit and the hash)."""
    from .http.endpoint import body_stream

    limit = getattr(req.context, "body_limit", None) or req.context.max_body
    stream = body_stream(req, limit)
    while stream.read(65536):
        pass


def claim(req: falcon.Request, resp: falcon.Response, spec: EndpointSpec,
          raw_body: bytes | None) -> Claim | None:
    """The @endpoint wrapper's step before the responder: None for a request without the
    header (or not a POST, or on a route of no school); else its Claim, holding the lease, or
    having replayed the stored answer into `resp` (``claim.replayed``). `raw_body` is the
    JSON body already read (None for a multipart route: hashed while the responder reads it).
    Raises IdempotencyKeyMalformed, IdempotencyKeyInUse, IdempotencyKeyReused."""
    if req.method != "POST":
        return None  # PUT and DELETE are idempotent by definition; GET is safe
    raw = req.get_header(HEADER)
    if raw is None or req.context.tenant is None:
        return None
    key = parse_key(raw)
    passage = req.context.passage
    caller = caller_of(req)
    multipart = spec.content_type.startswith("multipart/")
    body_hash = BodyHash(req, _multipart_boundary(req) if multipart else b"")
    if multipart:
        req.context.body_hash = body_hash  # endpoint.body_stream feeds it
    else:
        body_hash.update(raw_body or b"")
    c = Claim(runtime=passage.gate.runtime, spec=spec, tenant_id=req.context.tenant.id,
              key=key, caller=caller,
              key_hash=key_hash(caller, key), body_hash=body_hash)
    row = c.stored()
    if row is None:
        # Lease first, then look again: the first request may have committed and let go
        # between the two (then its answer is found now).
        c.take_lease()
        req.context.idempotency = c  # released by the middleware after the transaction
        row = c.stored()
    if row is not None:
        c.replay(row, req, resp)
    return c


def release(req: falcon.Request) -> None:
    """The middleware's last step: give back the request's lease, if it took one."""
    c: Claim | None = getattr(req.context, "idempotency", None)
    if c is not None:
        c.release()


# -- housekeeping ------------------------------------------------------------------------------


def purge_expired(runtime: Runtime) -> int:
    """Delete the current school's answers older than the retention; how many."""
    cutoff = utcnow() - dt.timedelta(hours=runtime.settings.server.idempotency_retention_hours)
    return IdempotentAnswer.delete().where(IdempotentAnswer.created_at <= cutoff).execute()


def _purge_everywhere(runtime: Runtime) -> int:
    """Delete the stored Idempotency-Key answers older than the retention, in every school."""
    from .each_tenant import each_tenant

    outcome = each_tenant(runtime, purge_expired)
    removed = sum(outcome.results.values())
    if removed:
        log.info("idempotency: purged %d expired answer(s)", removed)
    return removed


def idempotency_tasks() -> list[TaskSpec]:
    """The hourly purge of expired answers (a periodic task of the core)."""
    from huey import crontab

    from .registry import TaskSpec

    return [TaskSpec(PURGE_TASK, _purge_everywhere, tenant_scoped=False, retries=0,
                     periodic=crontab(minute="23"))]


# -- the OpenAPI document ----------------------------------------------------------------------

PARAMETER = {
    "name": HEADER, "in": "header", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
    "description": (
        "Makes a retry safe: send a fresh random key (a UUID) with each new operation and the "
        "same key with its retries. The same key with the same request replays the first "
        "answer (status, body, Location, ETag...; `Idempotent-Replayed: true`) for at least "
        "24 hours; with another request it is a 422 `idempotency_key_reused`; while the first "
        "is still running a 409 `idempotency_key_in_use`. Keys belong to the caller (the "
        "signed-in user, else the client address) within the school. A request that failed "
        "is not stored: its retry runs again."),
}
_REPLAYED_HEADER = {"description": "`true` on an answer replayed for an Idempotency-Key.",
                    "schema": {"type": "string", "enum": ["true"]}}
_MEANINGS = {
    400: ("Malformed request", f"idempotency_key_malformed: the {HEADER} is not 1 to 255 "
                               "visible ASCII characters"),
    409: ("Conflict", f"idempotency_key_in_use: a request with this {HEADER} is still "
                      "running; retry after Retry-After with the same key"),
    422: ("Invalid input", f"idempotency_key_reused: this {HEADER} was used for a different "
                           "request"),
}


def document(params: list[dict[str, Any]], responses: dict[str, Any],
             problem: dict[str, Any]) -> None:
    """Add the header and its answers to a POST operation of the OpenAPI document."""
    params.append(dict(PARAMETER))
    for status_key, response in responses.items():
        if status_key.startswith(("2", "3")):
            response["headers"] = {**response.get("headers", {}), REPLAYED: _REPLAYED_HEADER}
    for status, (title, meaning) in _MEANINGS.items():
        response = responses.setdefault(str(status), {"description": title,
                                                      "content": problem})
        response["description"] = f"{response['description']}; or {meaning}"
        if status == 409:
            response["headers"] = {**response.get("headers", {}),
                                   "Retry-After": {"$ref": "#/components/headers/Retry-After"}}
