"""GET /notifications/ws: the WebSocket of real-time notifications (served by the ASGI entry,
learnplat.http.asgi; docs/notifications.md).

Protocol: the client authenticates with ``?token=...&tenant=SLUG`` or, when the query string
has no token, with a first message ``{"token": "...", "tenant": "SLUG"}`` within 10 seconds
(the tenant may also come from the Host header, as for REST). The server answers
``{"type": "ready", "user_id": ..., "unread": n}``, then sends each new notification as one
message ``{"type": "notification", "id", "kind", "title", "body", "data", "read",
"created_at", ...}``. A client may send ``{"type": "ping"}`` (answered ``{"type": "pong"}``).
Close codes: 1008 bad or missing token / unknown tenant (policy violation), 1013 the client
fell too far behind (reconnect and GET /notifications), 1001 server going away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import falcon
import orjson

from learnplat.http.client_address import client_address, parse_trusted
from learnplat.plugin import LearnplatError, Principal, TenantInfo, db, tenant_context

from .models import Notification
from .realtime import Connection, Hub, dumps

if TYPE_CHECKING:
    from learnplat.plugin import Runtime

    from .services import NotificationsService

log = logging.getLogger(__name__)
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013
AUTH_TIMEOUT = 10.0


@dataclass(frozen=True)
class _BearerRequest:
    """What the `authenticate` hook reads of a request: its Authorization header."""

    auth: str

    def get_header(self, name: str, default: Any = None) -> Any:
        return self.auth if name.lower() == "authorization" else default


class _Limited(Exception):
    """The handshake's rate-limit budget is spent."""

    def __init__(self, retry_after: float):
        super().__init__(retry_after)
        self.retry_after = retry_after


class NotificationSocket:
    """An async `on_websocket` responder: the ASGI entry serves it, the WSGI app never does."""

    def __init__(self, runtime: Runtime, service: NotificationsService):
        self.runtime = runtime
        self.service = service
        self.hub: Hub | None = None  # one per process, made in its event loop
        server = runtime.settings.server
        self.proxies = parse_trusted(server.trusted_proxies)
        self.forwarded_header = server.forwarded_header

    def _hub(self) -> Hub:
        if self.hub is None:
            self.hub = Hub(self.runtime, self.service.settings)
        return self.hub

    # -- authentication (in a thread: the database is synchronous) -------------------------

    def _tenant(self, slug: str | None, host: str | None) -> TenantInfo | None:
        host_only = self.runtime.settings.tenancy.select_by == "host"
        tenant = self.runtime.tenants.select(slug, host, host_only)
        if tenant is None or not tenant.enabled:
            return None
        if not self.runtime.plugin_enabled("notifications", tenant):
            return None
        return tenant

    def authenticate(self, token: str, slug: str | None, host: str | None,
                     address: str | None = None, charge: bool = False
                     ) -> tuple[TenantInfo, Principal, int, int] | None:
        """(tenant, principal, newest notification id, unread count), or None. With `charge`
        (the handshake, not the periodic re-check) the API rate limits count it like a
        request: to the user, or to `address` when the token is refused; `_Limited` when
        that budget is spent."""
        limits = self.runtime.limits

        def pay(tenant: TenantInfo | None, user_id: Any) -> None:
            if charge and (spent := limits.charge(tenant, user_id, address)) is not None:
                raise _Limited(spent.retry_after)

        with db.connection():
            tenant = self._tenant(slug, host)
            if tenant is None or not token:
                pay(tenant, None)
                return None
            with tenant_context(tenant), db.transaction(write=False):
                try:
                    principal = self.runtime.hook.authenticate(
                        runtime=self.runtime, req=_BearerRequest(f"Bearer {token}"),
                        tenant=tenant)
                except LearnplatError:
                    principal = None
                if principal is None or principal.tenant_id != tenant.id:
                    pay(tenant, None)
                    return None
                pay(tenant, principal.user_id)
                newest = (Notification.select(Notification.id)
                          .order_by(Notification.id.desc()).limit(1).scalar()) or 0
                unread = self.service.unread_count(principal.user_id)
        return tenant, principal, newest, unread

    # -- the socket ------------------------------------------------------------------------

    async def on_websocket(self, req: falcon.asgi.Request, ws: falcon.asgi.WebSocket) -> None:
        await ws.accept()
        token, slug = req.get_param("token"), req.get_param("tenant")
        if not token:
            try:
                first = orjson.loads(await asyncio.wait_for(ws.receive_text(), AUTH_TIMEOUT))
            except (TimeoutError, orjson.JSONDecodeError, falcon.WebSocketDisconnected,
                    falcon.errors.PayloadTypeError):  # binary frames are not a token
                first = None
            if isinstance(first, dict):
                token = first.get("token") if isinstance(first.get("token"), str) else None
                slug = first.get("tenant") if isinstance(first.get("tenant"), str) else slug
        slug = slug or req.get_header("X-Tenant")
        host = req.host
        # The client's address as the HTTP middleware resolves it (trusted proxies only).
        address = client_address(
            req.remote_addr,
            req.get_header(self.forwarded_header) if self.proxies else None,
            self.proxies, self.forwarded_header)
        try:
            auth = await asyncio.to_thread(self.authenticate, token or "", slug, host,
                                           address, True)
        except _Limited as limited:
            with contextlib.suppress(Exception):
                await ws.close(TRY_AGAIN_LATER,
                               f"rate limited: retry after {math.ceil(limited.retry_after)} s")
            return
        if auth is None:
            with contextlib.suppress(Exception):
                await ws.close(POLICY_VIOLATION, "a valid token of the tenant is required")
            return
        tenant, principal, newest, unread = auth
        settings = self.service.settings
        conn = Connection(tenant.id, int(principal.user_id), newest, settings.socket_queue,
                          settings.socket_max_lag_seconds)
        hub = self._hub()
        hub.add(conn)
        try:
            await hub.wait_ready()
            await ws.send_text(dumps({"type": "ready", "user_id": principal.user_id,
                                      "unread": unread}).decode())
            await self._serve(ws, conn, token or "", slug, host)
        except falcon.WebSocketDisconnected:
            pass
        finally:
            hub.remove(conn)

    async def _serve(self, ws: Any, conn: Connection, token: str, slug: str | None,
                     host: str | None) -> None:
        """Send queued notifications, answer pings, and re-check the token now and then;
        whichever ends first ends the connection."""
        overflow = asyncio.create_task(conn.overflowed.wait())
        revalidate = asyncio.create_task(self._revalidate_loop(token, slug, host))
        tasks = {asyncio.create_task(self._send_loop(ws, conn)),
                 asyncio.create_task(self._receive_loop(ws)), overflow, revalidate}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        code = None
        if overflow in done:
            code = TRY_AGAIN_LATER
        elif revalidate in done:
            code = POLICY_VIOLATION
        if code is not None:
            with contextlib.suppress(Exception):
                # A slow client may not read the close frame either: do not wait for it.
                await asyncio.wait_for(ws.close(code), 2)

    async def _send_loop(self, ws: Any, conn: Connection) -> None:
        while True:
            message = await conn.next()
            await ws.send_text(dumps(message).decode())

    async def _receive_loop(self, ws: Any) -> None:
        while True:
            try:
                doc = orjson.loads(await ws.receive_text())
            except (orjson.JSONDecodeError, falcon.errors.PayloadTypeError):
                continue  # not ours to understand: ignored
            if isinstance(doc, dict) and doc.get("type") == "ping":
                await ws.send_text('{"type":"pong"}')

    async def _revalidate_loop(self, token: str, slug: str | None, host: str | None) -> None:
        """Returns (ending the connection with 1008) once the token no longer authenticates:
        logged out, expired, user deactivated."""
        while True:
            await asyncio.sleep(self.service.settings.revalidate_seconds)
            try:
                ok = await asyncio.to_thread(self.authenticate, token, slug, host)
            except Exception:  # the database is down: keep the socket, try again later
                log.exception("notifications: re-checking a socket's token failed")
                continue
            if ok is None:
                return
