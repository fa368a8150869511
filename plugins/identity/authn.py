"""Who is calling: the identity plugin's answer to the core's `authenticate` hook, for every
transport the gate serves (an HTTP request, a WebSocket handshake): a bearer access token of
the school becomes its user's Principal."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from learnplat.plugin import Principal
    from learnplat.plugin.gate import Credentials, RoundTrip

    from .services import IdentityService


def authenticate(service: IdentityService, credentials: Credentials,
                 round_trip: RoundTrip) -> Principal | None:
    """The caller of a bearer token (`IdentityService.principal_for`, its key-value reads in
    the gate's `round_trip`), or None when the credentials hold no bearer token: another
    plugin's scheme, or cookies."""
    token = credentials.bearer
    if token is None:
        return None
    return service.principal_for(token, round_trip)
