"""Cached answers: a process keeps serialized answers of read routes, keyed by a per-tenant
*generation* of the data they show.

A route declares ``@endpoint(generation="courses.catalogue")``; the request middleware reads
that tenant's generation token in the request's single key-value round trip (with the
revocation keys and the rate limits), as ``req.context.generation``. The responder looks its
answer up under (tenant, generation, its own key) in `AnswerCache`; a writer calls
`bump_generation(runtime, name)`, which replaces the token after its transaction commits, so
every process stops using what it cached from the next request on.

A missing token (first use, expiry, a Redis restart) is never a hit: the middleware stores a
fresh random token and the request computes its answer. Entries also expire after
`max_age` seconds, which bounds the staleness if a bump is ever lost (Redis unreachable at
that moment).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from . import db
from .tenancy import current_tenant

if TYPE_CHECKING:
    from .runtime import Runtime

GENERATION_TTL = 86_400.0


def generation_key(tenant_id: int, name: str) -> str:
    return f"gen:{tenant_id}:{name}"


def new_token() -> str:
    return uuid.uuid4().hex[:16]


def bump_generation(runtime: Runtime, name: str) -> None:
    """Mark the current tenant's `name` data as changed, once the transaction commits."""
    key = generation_key(current_tenant().id, name)

    def bump() -> None:
        runtime.kv.set(key, new_token(), GENERATION_TTL)

    db.on_commit(bump)


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

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic() + self.max_age, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
