"""Cached answers: a process keeps serialized answers of read routes, keyed by a per-tenant
*generation* of the data they show.

A route declares ``@endpoint(generation="courses.catalogue")``; the request middleware reads
that tenant's generation token in the request's single key-value round trip (with the
revocation keys and the rate limits), as ``req.context.generation``. The responder looks its
answer up under (tenant, generation, its own key) in `AnswerCache`; a writer calls
`bump_generation(runtime, name)`, which replaces the token after its transaction commits, so
every process stops using what it cached from the next request on.

An answer that also depends on who asks (their enrollment, their progress...) declares a
*caller generation* as well, ``@endpoint(caller_generation="courses.learner")``: one token per
(tenant, user), read in the same round trip as ``req.context.caller_generation``, which
writers bump with ``bump_generation(runtime, name, user_id=...)``.

What no writer can bump (the clock: a window that opens, a module released at noon; other
callers' writes) the computation declares while it runs: ``valid_until(deadline)`` lowers the
lifetime of the answer being computed inside ``computing()``, and ``valid_until(0)`` says
"do not keep this one at all".

A cached JSON body is kept with its ETag (``conditional.Tagged.of(body)``, served with
``conditional.send_cached``): a request whose If-None-Match names it is answered 304 without
building, hashing or copying the body (learnplat.http.conditional).

A missing token (first use, expiry, a Redis restart) is never a hit: the middleware stores a
fresh random token and the request computes its answer. Entries also expire after
`max_age` seconds, which bounds the staleness if a bump is ever lost (Redis unreachable at
that moment).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from . import db
from .tenancy import current_tenant

if TYPE_CHECKING:
    from .kv import KeyValueStore

GENERATION_TTL = 86_400.0

log = logging.getLogger(__name__)


def generation_key(tenant_id: int, name: str, user_id: Any = None) -> str:
    """The key of a tenant's generation `name`, or of one user's (a caller generation)."""
    return f"gen:{tenant_id}:{name}" if user_id is None else f"gen:{tenant_id}:{name}:u:{user_id}"


def new_token() -> str:
    return uuid.uuid4().hex[:16]


class HasGenerations(Protocol):
    """What bump_generation needs of the runtime: its writer of generation bumps."""

    @property
    def generations(self) -> GenerationWriter: ...


def bump_generation(runtime: HasGenerations, name: str, *, user_id: Any = None,
                    tenant_id: int | None = None) -> None:
    """Mark the tenant's `name` data as changed (with `user_id`: that user's caller
    generation `name`), once the transaction commits: bumped before, a request could read the
    new token with the old rows and keep them under it. `tenant_id` defaults to the current
    tenant's."""
    key = generation_key(current_tenant().id if tenant_id is None else tenant_id, name,
                         user_id)
    uow = db.current_unit()
    if uow is None:
        runtime.generations.write({key: new_token()})
        return
    if uow.generation_bumps is None:
        pending = uow.generation_bumps = set()

        def bump() -> None:
            token = new_token()  # one new token serves every key: each key's token changes
            runtime.generations.write(dict.fromkeys(sorted(pending), token))

        db.on_commit(bump)
    uow.generation_bumps.add(key)


class GenerationWriter:
    """Writes generation bumps to the key-value store: at once when it answers; when it is
    down or hung, later, by a thread of this process that tries again every `retry_seconds`
    until the store takes them (so a bump outlives an outage, and the answers cached before
    it stop being served once the store is back). A request whose store call just failed does
    not wait out the store's timeout again for its bump."""

    def __init__(self, store: KeyValueStore, retry_seconds: float = 1.0):
        self.store = store
        self.retry_seconds = retry_seconds
        self._pending: dict[str, str] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def write(self, values: dict[str, str]) -> None:
        if self.store.failing():
            self._defer(values)
            return
        with self._lock:
            batch = {**self._pending, **values}  # what waits goes first, with these
        try:
            self.store.set_many(batch, GENERATION_TTL)
        except Exception as exc:
            log.warning("generation bumps deferred, the key-value store failed: %s", exc)
            self._defer(values)
            return
        self._written(batch)

    def _written(self, batch: dict[str, str]) -> None:
        with self._lock:
            for key, token in batch.items():
                if self._pending.get(key) == token:
                    del self._pending[key]

    def _defer(self, values: dict[str, str]) -> None:
        with self._lock:
            self._pending.update(values)
            if self._thread is None or not self._thread.is_alive():  # none, or lost in a fork
                self._thread = threading.Thread(target=self._retry, daemon=True,
                                                name="learnplat-generation-bumps")
                self._thread.start()

    def _retry(self) -> None:
        while True:
            time.sleep(self.retry_seconds)
            with self._lock:
                batch = dict(self._pending)
                if not batch:
                    self._thread = None
                    return
            try:
                self.store.set_many(batch, GENERATION_TTL)
            except Exception:
                continue  # still down: try again
            self._written(batch)
            log.info("%d deferred generation bumps written", len(batch))


class Validity:
    """How long the answer being computed stays true (`until`, time.time() seconds)."""

    __slots__ = ("until",)

    def __init__(self) -> None:
        self.until = math.inf

    def seconds(self, max_age: float) -> float:
        """How long to keep the answer: at most `max_age`; 0 or less: do not keep it."""
        return min(max_age, self.until - time.time())


_validity: contextvars.ContextVar[Validity | None] = contextvars.ContextVar(
    "learnplat_answer_validity", default=None)


@contextlib.contextmanager
def computing() -> Iterator[Validity]:
    """Collect the `valid_until` calls of the code that computes one answer."""
    validity = Validity()
    token = _validity.set(validity)
    try:
        yield validity
    finally:
        _validity.reset(token)


def valid_until(deadline: float) -> None:
    """The answer being computed (if any, see `computing`) stops being true at `deadline`
    (time.time() seconds): the clock will change it (an enrollment window opens), or a write
    that bumps no generation of it will (another learner takes a seat). 0: never keep it."""
    validity = _validity.get()
    if validity is not None and deadline < validity.until:
        validity.until = deadline


class AnswerCache:
    """A bounded, thread-safe LRU of answers in this process: serialized bodies, or the
    read-only objects an answer is built from (never mutate what `get` returns)."""

    def __init__(self, max_entries: int = 2048, max_age: float = 300.0):
        self.max_entries = max_entries
        self.max_age = max_age
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        with self._lock:
            hit = self._entries.get(key)
            if hit is None:
                return None
            if hit[0] < time.monotonic():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return hit[1]

    def put(self, key: Hashable, value: Any, max_age: float | None = None) -> None:
        """Keep `value` for `max_age` seconds (at most the cache's own max_age; 0 or less:
        not at all)."""
        age = self.max_age if max_age is None else min(max_age, self.max_age)
        if age <= 0:
            return
        with self._lock:
            self._entries[key] = (time.monotonic() + age, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
