"""What the gate (learnplat.gate) needs of a Falcon request, WSGI or ASGI (a WebSocket
handshake): the caller's credentials, address, Host and the school it names."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon.asgi

from ..gate import NO_CREDENTIALS, Arrival, Credentials

if TYPE_CHECKING:
    import falcon

    from ..gate import Gate


def credentials_of(req: falcon.Request) -> Credentials:
    """The request's ``Authorization`` header and, when it sends any, its cookies."""
    cookies = req.cookies if req.get_header("Cookie") else None
    if cookies:
        return Credentials(req.auth or "", cookies)
    auth = req.auth
    return Credentials(auth) if auth else NO_CREDENTIALS


def peer_of(req: falcon.Request) -> str | None:
    """The connection's own address (the server's REMOTE_ADDR; an ASGI scope's client)."""
    if isinstance(req, falcon.asgi.Request):
        return req.remote_addr
    return req.env.get("REMOTE_ADDR")


def arrival_of(gate: Gate, req: falcon.Request, *, credentials: Credentials | None = None,
               tenant_slug: str | None = None, client_addr: str | None = None) -> Arrival:
    """The caller of `req` at `gate`: `credentials` (else the request's), `tenant_slug` (else
    its ``X-Tenant``), `client_addr` (else resolved here through the trusted proxies)."""
    if client_addr is None:
        client_addr = gate.client_address(peer_of(req), req.get_header)
    return Arrival(credentials if credentials is not None else credentials_of(req),
                   client_addr, req.host, tenant_slug or req.get_header("X-Tenant"))
