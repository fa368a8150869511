"""Real-time delivery: how a notification created in any process reaches the WebSockets that
its user holds open in any web process.

* With Redis (``redis.url`` set), the process that commits a notification publishes it on the
  tenant's channel; every web process holds one pattern subscription and hands each message to
  its local sockets of that user.
* Without Redis (the embedded default: SQLite, several gunicorn workers on one machine), every
  web process that holds sockets polls the notifications table every ``poll_seconds`` for rows
  above the last id it saw, of the users connected to it (one indexed query per tenant with
  connections). SQLite has one writer, so ids become visible in order and none is skipped.

Delivery never waits for a client: each socket has its own queue and sender task. A client
that stops reading (more than ``socket_queue`` messages waiting, the oldest for over
``socket_max_lag_seconds``) is disconnected (1013, "try again later") and re-syncs with
GET /notifications when it reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict, deque
from typing import TYPE_CHECKING, Any

import orjson

from learnplat.plugin import db, tenant_context

from .api import NotificationInfo
from .schemas import NotificationOut

if TYPE_CHECKING:
    from learnplat.plugin import Runtime

    from .settings import NotificationsSettings

log = logging.getLogger(__name__)


# A message's keys in the order sockets have always received them (NotificationOut declares
# `read` after NotificationInfo's fields); a field NotificationOut adds comes after these.
_MESSAGE_KEYS = ("id", "user_id", "kind", "title", "body", "data", "read", "read_at",
                 "created_at")


def message_of(n: NotificationInfo) -> dict[str, Any]:
    """The WebSocket message of a notification (the API contract: at least id, kind, title,
    created_at)."""
    doc = NotificationOut.of(n).model_dump()  # times stay datetimes: dumps() writes them
    return {**{key: doc[key] for key in _MESSAGE_KEYS}, **doc, "type": "notification"}


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC)


def channel_prefix(runtime: Runtime) -> str:
    return f"{runtime.settings.redis.prefix}:notifications:"


class Publisher:
    """Publishes committed notifications (after commit, in the creating process)."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    def publish(self, tenant_id: int, messages: list[dict[str, Any]]) -> None:
        client = self.runtime.redis
        if client is None or not messages:
            return  # embedded mode: web processes poll the table
        channel = f"{channel_prefix(self.runtime)}{tenant_id}"
        try:
            # One message per batch (up to 500 notifications): a broadcast to 10,000 users is
            # 20 publishes, and each web process filters for the users it holds.
            client.publish(channel, dumps({"tenant_id": tenant_id, "items": messages}))
        except Exception:  # the notification is stored; the client sees it on its next GET
            log.exception("notifications: publishing to Redis failed")


# The most messages one delivery hands a socket at once: a poll reads up to 1000 rows, a
# published batch holds up to 500.
BURST = 1000


class Connection:
    """One open socket of one user, as the hub sees it: the messages waiting for it."""

    def __init__(self, tenant_id: int, user_id: int, since_id: int, maxsize: int,
                 max_lag: float = 5.0):
        self.tenant_id = tenant_id
        self.user_id = user_id
        self.since_id = since_id  # older notifications are not "new" to this socket
        self.maxsize = maxsize
        self.max_lag = max_lag
        self.pending: deque[tuple[float, dict[str, Any]]] = deque()
        self.ready = asyncio.Event()
        self.overflowed = asyncio.Event()
        # Ids offered lately: a catch-up after a lost Redis subscription may repeat some.
        self.seen: set[int] = set()
        self.seen_order: deque[int] = deque()

    def offer(self, message: dict[str, Any]) -> None:
        """Queue a message without ever waiting. A burst (a poll or a published batch delivers
        up to BURST at once) is fine; a socket is dropped when more than `maxsize` messages
        wait and the oldest has waited over `max_lag` seconds (it is not reading), or when
        ten times `maxsize` plus a burst wait (memory stays bounded whatever happens)."""
        nid = message["id"]
        if nid <= self.since_id or nid in self.seen or self.overflowed.is_set():
            return
        self.seen.add(nid)
        self.seen_order.append(nid)
        if len(self.seen_order) > 1000:
            self.seen.discard(self.seen_order.popleft())
        now = time.monotonic()
        if len(self.pending) >= self.maxsize and (
                now - self.pending[0][0] > self.max_lag
                or len(self.pending) >= 10 * self.maxsize + BURST):
            self.pending.clear()
            self.overflowed.set()
            return
        self.pending.append((now, message))
        self.ready.set()

    async def next(self) -> dict[str, Any]:
        while not self.pending:
            self.ready.clear()
            await self.ready.wait()
        return self.pending.popleft()[1]


class Hub:
    """The sockets of one web process, and the one task that feeds them (Redis subscription
    or table polling). Created lazily in the process's event loop."""

    def __init__(self, runtime: Runtime, settings: NotificationsSettings):
        self.runtime = runtime
        self.settings = settings
        self.conns: dict[tuple[int, int], set[Connection]] = defaultdict(set)
        self.cursors: dict[int, int] = {}  # last id delivered per tenant with sockets here
        self.task: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()  # Redis: the subscription is live

    def __len__(self) -> int:
        return sum(len(c) for c in self.conns.values())

    def add(self, conn: Connection) -> None:
        self.conns[(conn.tenant_id, conn.user_id)].add(conn)
        cursor = self.cursors.get(conn.tenant_id)
        self.cursors[conn.tenant_id] = conn.since_id if cursor is None else min(
            cursor, conn.since_id)
        if self.task is None or self.task.done():
            run = self._subscribe if self.runtime.redis is not None else self._poll
            self.task = asyncio.get_running_loop().create_task(run())

    def remove(self, conn: Connection) -> None:
        key = (conn.tenant_id, conn.user_id)
        self.conns[key].discard(conn)
        if not self.conns[key]:
            del self.conns[key]
            if not any(t == conn.tenant_id for t, _ in self.conns):
                self.cursors.pop(conn.tenant_id, None)

    async def wait_ready(self, timeout: float = 5.0) -> None:
        """With Redis, wait until the subscription is live, so that nothing published after
        the client is told "ready" is missed. Polling misses nothing: it starts from each
        socket's newest id."""
        if self.runtime.redis is None:
            return
        try:
            await asyncio.wait_for(self.subscribed.wait(), timeout)
        except TimeoutError:
            log.warning("notifications: Redis subscription not ready after %ss", timeout)

    def deliver(self, tenant_id: int, items: list[dict[str, Any]]) -> None:
        if tenant_id in self.cursors and items:
            self.cursors[tenant_id] = max(self.cursors[tenant_id], max(i["id"] for i in items))
        for item in items:
            for conn in self.conns.get((tenant_id, item["user_id"]), ()):
                conn.offer(item)

    # -- feeding ---------------------------------------------------------------------------

    async def _subscribe(self) -> None:
        import redis.asyncio as aredis

        prefix = channel_prefix(self.runtime)
        first = True
        while True:
            client = aredis.Redis.from_url(self.runtime.settings.redis.url)
            try:
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                await pubsub.psubscribe(f"{prefix}*")
                self.subscribed.set()
                if not first:  # what was published while we were not listening
                    await self._poll_once()
                first = False
                async for message in pubsub.listen():
                    if message.get("type") != "pmessage":
                        continue
                    doc = orjson.loads(message["data"])
                    self.deliver(int(doc["tenant_id"]), doc["items"])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notifications: Redis subscription lost; resubscribing")
                self.subscribed.clear()
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_seconds)
            await self._poll_once()

    async def _poll_once(self) -> None:
        """Look in the table for notifications of the connected users above each tenant's
        cursor (the embedded mechanism; with Redis, the catch-up after a lost subscription)."""
        for tenant_id in list(self.cursors):
            users = sorted({u for t, u in self.conns if t == tenant_id})
            if not users:
                continue
            try:
                items = await asyncio.to_thread(self._fetch, tenant_id, users,
                                                self.cursors[tenant_id])
            except Exception:
                log.exception("notifications: polling tenant %s failed", tenant_id)
                continue
            if items and tenant_id in self.cursors:
                self.deliver(tenant_id, items)

    def _fetch(self, tenant_id: int, users: list[int], after: int) -> list[dict[str, Any]]:
        from .models import Notification, info

        tenant = self.runtime.tenants.get_by_id(tenant_id)
        if tenant is None:
            return []
        with db.connection(), tenant_context(tenant), db.transaction(write=False):
            rows = (Notification.select()
                    .where(Notification.id > after, Notification.user_id.in_(users))
                    .order_by(Notification.id).limit(BURST))
            return [message_of(info(n)) for n in rows]

