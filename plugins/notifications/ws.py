"""GET /notifications/ws: the WebSocket of real-time notifications (served by the ASGI entry,
learnplat.http.asgi; docs/notifications.md).

Protocol: the client authenticates with ``?token=...&tenant=SLUG`` or, when the query string
has no token, with a first message ``{"token": "...", "tenant": "SLUG"}`` within 10 seconds
(the tenant may also come from the Host header, as for REST). The server answers
``{"type": "ready", "user_id": ..., "unread": n}``, then sends each new notification as one
message ``{"type": "notification", "id", "kind", "title", "body", "data", "read",
"created_at", ...}``. A client may send ``{"type": "ping"}`` (answered ``{"type": "pong"}``).
Close codes: 1008 bad or missing token / unknown tenant (policy violation), 1013 the client
fell too far behind (reconnect and GET /notifications) or the handshake's rate limit is spent
(the reason says when to retry), 1001 server going away.

The handshake goes through the core's gate (learnplat.gate) as a REST request does: the same
school, plugin-enabled, credential and rate-limit rules, refused for the same callers; only
the answers differ (a close code for a 404, 401 or 429).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import falcon
import orjson

from learnplat.plugin import LearnplatError, Principal, RateLimited, TenantInfo, Unauthorized
from learnplat.plugin.gate import API, FREE, Arrival, Credentials, Gate, Toll, arrival_of

from .models import Notification
from .realtime import Connection, Hub, dumps

if TYPE_CHECKING:
    from learnplat.plugin import Runtime

    from .services import NotificationsService

log = logging.getLogger(__name__)
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013
AUTH_TIMEOUT = 10.0


class NotificationSocket:
    """An async `on_websocket` responder: the ASGI entry serves it, the WSGI app never does."""

    def __init__(self, runtime: Runtime, service: NotificationsService):
        self.runtime = runtime
        self.service = service
        self.gate = Gate(runtime)
        self.hub: Hub | None = None  # one per process, made in its event loop

    def _hub(self) -> Hub:
        if self.hub is None:
            self.hub = Hub(self.runtime, self.service.settings)
        return self.hub

    # -- authentication (in a thread: the database is synchronous) -------------------------

    def authenticate(self, arrival: Arrival, toll: Toll = FREE
                     ) -> tuple[TenantInfo, Principal, int, int]:
        """(tenant, principal, newest notification id, unread count) of a caller let through
        the gate. The handshake pays the API's `toll` like a request (to the user, or to the
        client address when the token is refused); the periodic re-check passes free.
        Raises what the gate refuses with: `RateLimited` once the budget is spent, another
        `LearnplatError` (unknown school, plugin off, bad or missing token) otherwise."""
        with self.gate.admit(arrival, "notifications", toll=toll) as passage:
            if passage.principal is None:
                raise Unauthorized("a bearer token is required")
            principal, tenant = passage.principal, passage.tenant
            assert tenant is not None
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
        arrival = arrival_of(self.gate, req, credentials=Credentials.bearer_token(token),
                             tenant_slug=slug)
        try:
            auth = await asyncio.to_thread(self.authenticate, arrival, API)
        except RateLimited as limited:
            with contextlib.suppress(Exception):
                await ws.close(TRY_AGAIN_LATER,
                               f"rate limited: retry after {limited.extra['retry_after']} s")
            return
        except LearnplatError:
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
            await self._serve(ws, conn, arrival)
        except falcon.WebSocketDisconnected:
            pass
        finally:
            hub.remove(conn)

    async def _serve(self, ws: Any, conn: Connection, arrival: Arrival) -> None:
        """Send queued notifications, answer pings, and re-check the token now and then;
        whichever ends first ends the connection."""
        overflow = asyncio.create_task(conn.overflowed.wait())
        revalidate = asyncio.create_task(self._revalidate_loop(arrival))
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

    async def _revalidate_loop(self, arrival: Arrival) -> None:
        """Returns (ending the connection with 1008) once the token no longer authenticates:
        logged out, expired, user deactivated, school or plugin switched off."""
        while True:
            await asyncio.sleep(self.service.settings.revalidate_seconds)
            try:
                await asyncio.to_thread(self.authenticate, arrival)
            except LearnplatError:
                return
            except Exception:  # the database is down: keep the socket, try again later
                log.exception("notifications: re-checking a socket's token failed")
