"""What a sink (the webhooks plugin, the xAPI plugin, later LTI grade passback) and the
delivery engine exchange: the types only. The engine is learnplat.outbound.engine; the HTTP
client that refuses private addresses is learnplat.outbound.safe_http.

A sink owns its destinations (a school's webhook endpoint, its learning record store) and says
how a batch of queued messages becomes one HTTP request (`Sink.request`) and what an answer
means (`Sink.verdict`); the engine owns everything else: the queue of messages per
destination, one delivery at a time per destination, retries with backoff and jitter, the
circuit breaker, the record of every attempt, disabling a destination that fails for days, and
redelivery.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar


class NotReady(Exception):
    """Raised by `Sink.authorize`: the request cannot be sent now (the destination's token
    endpoint refused or did not answer); the message says why, as the attempt records it."""


@dataclass(frozen=True)
class OutboundRequest:
    """One HTTP request to a destination: the engine sends it through safe_http (the address
    checked, no redirects, timeouts, the answer capped). `headers` holds Content-Type."""

    url: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    method: str = "POST"


@dataclass(frozen=True)
class Answer:
    """What came back from one attempt. `status` None: no HTTP answer (`error` says why:
    "timeout", "connection refused", "unsafe address 10.0.0.7 (private)", ...)."""

    status: int | None
    latency_ms: float
    head: bytes = b""  # the first bytes of the answer's body (outbound.answer_bytes_kept)
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Verdict(enum.Enum):
    """What an answer means for the messages sent."""

    DELIVERED = "delivered"  # done; never sent again unless redelivered
    RETRY = "retry"  # try again later (the schedule); failed once the schedule is spent
    GONE = "gone"  # the destination says it no longer exists (410): it is disabled
    REJECTED = "rejected"  # a permanent refusal of these messages (failed now, no retry)
    # The destination refused a batch of several messages for what some of them hold, without
    # saying which (an LRS's 400 or 409 for a list of statements): each is sent again on its
    # own, at once, and judged alone. For a single message it means RETRY.
    SPLIT = "split"


@dataclass(frozen=True)
class DestinationInfo:
    """A destination as the engine keeps it (learnplat_outbound_destination, one per sink,
    school and `ref`, the sink's own id of it: a webhook endpoint's id)."""

    id: int
    tenant_id: int
    sink: str
    ref: str
    consecutive_failures: int
    failing_since: dt.datetime | None  # the first failure since the last success
    open_until: dt.datetime | None  # the circuit breaker: no attempt before this
    last_success_at: dt.datetime | None
    disabled_at: dt.datetime | None  # disabled by the engine (410, failing for days) or a sink
    disabled_reason: str | None


@dataclass(frozen=True)
class MessageInfo:
    """One queued message: one event for one destination (a webhook delivery, an xAPI
    statement). `key` is unique per destination (the sink chooses it: the event id), so a
    repeated enqueue adds nothing; `payload` is fixed when it is queued, so every attempt
    (and a redelivery) sends the same content."""

    id: int
    destination_id: int
    sink: str
    ref: str
    key: str
    event_id: int | None
    event_type: str
    payload: Any  # JSON
    status: str  # pending | delivered | failed | cancelled
    attempts: int
    created_at: dt.datetime
    next_attempt_at: dt.datetime | None  # pending only
    last_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None
    last_status: int | None  # the last answer's HTTP status (None: no answer)
    last_error: str | None


@dataclass(frozen=True)
class AttemptInfo:
    """One attempt to send one message (a batch's attempt is recorded for each message)."""

    id: int
    message_id: int
    at: dt.datetime
    status: int | None
    latency_ms: float
    answer: str  # the first bytes of the answer's body, decoded leniently
    error: str | None


MESSAGE_STATUSES = ("pending", "delivered", "failed", "cancelled")


class Sink:
    """A kind of destination. Registered by a plugin with the ``register_sinks(runtime)``
    hook; its `name` names it in the engine's tables ("webhooks", "xapi").

    Every method runs in a worker, in the destination's school (``current_tenant()``) and
    inside a transaction, and may read the sink's own tables."""

    name: ClassVar[str] = ""
    #: How many due messages of one destination one request may carry (xAPI: a list of
    #: statements); 1 for webhooks.
    batch_size: ClassVar[int] = 1

    def request(self, destination: DestinationInfo, messages: Sequence[MessageInfo]
                ) -> OutboundRequest | None:
        """The request carrying `messages` (at most `batch_size`, oldest first), built at
        each attempt (a signature with a fresh timestamp). None: the destination is gone or
        switched off on the sink's side: the messages are cancelled."""
        raise NotImplementedError

    def authorize(self, destination: DestinationInfo, request: OutboundRequest
                  ) -> Mapping[str, str]:
        """Headers to add to `request` just before it is sent (an OAuth 2 access token the
        sink fetches from the destination's own token endpoint, cached): called for every
        attempt, outside any transaction (open a short one to read the sink's tables), with
        no pooled connection held. Raise `NotReady("why")` when no token could be had: the
        attempt is recorded as failed with that reason and retried on the schedule. By
        default: nothing to add."""
        return {}

    def settled(self, messages: Sequence[MessageInfo], status: str, answer: Answer) -> None:
        """`messages` reached a final `status` with this attempt: "delivered", or "failed"
        (refused for good, or the retry schedule spent). `messages` are as they were before
        the attempt (their `attempts` one lower); `answer` is the attempt's. Called in the
        transaction that records it (in a savepoint): record an event of the outcome here.
        Messages failed because the destination was disabled are told by `disabled`. By
        default: nothing."""

    def verdict(self, answer: Answer, messages: Sequence[MessageInfo]) -> Verdict:
        """What `answer` means. By default: 2xx delivered, 410 gone, anything else (and no
        answer) retry."""
        if answer.ok:
            return Verdict.DELIVERED
        if answer.status == 410:
            return Verdict.GONE
        return Verdict.RETRY

    def disabled(self, destination: DestinationInfo, reason: str) -> None:
        """The engine disabled `destination` (a 410, or no success for
        ``outbound.disable_after_hours`` of failures): mark it so on the sink's side and tell
        the school's admins. Runs in the transaction that disables it."""
