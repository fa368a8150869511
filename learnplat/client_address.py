"""Who is on the other end: the client's address, believed from forwarded headers only as far
as they were written by reverse proxies we were told to trust.

Pure functions, for every transport: the gate (learnplat.gate) calls `client_address()` once
per caller (an HTTP request, a WebSocket handshake) and the HTTP middleware keeps the answer on
``req.context.client_addr``; rate limits, the audit log and the request logs all read that one
value. `rate_limit_key()` turns it into the key a per-address limit counts under.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
ForwardedHeader = Literal["x-forwarded-for", "forwarded"]

# The entry of `server.trusted_proxies` that trusts a peer connected over a UNIX socket (which
# has no IP address; gunicorn reports it as an empty REMOTE_ADDR).
UNIX = "unix"
# Proxies in front of an app are counted on one hand; a chain longer than this is not one we
# can vouch for, so the connection's own address is used instead.
MAX_HOPS = 20
# An IPv6 client usually holds a whole /64 (SLAAC, privacy addresses): a per-address limit on
# single IPv6 addresses would be no limit at all.
IPV6_LIMIT_PREFIX = 64

_PORT = re.compile(r"^[0-9]{1,5}$")


@dataclass(frozen=True)
class TrustedProxies:
    """The networks whose forwarded headers are believed (empty: none are)."""

    networks: tuple[IPNetwork, ...] = ()
    unix: bool = False

    def __bool__(self) -> bool:
        return bool(self.networks) or self.unix

    def trusts(self, addr: IPAddress | None) -> bool:
        """Whether a hop at `addr` is one of our proxies; None is a peer without an IP address
        (a UNIX socket), trusted only with the "unix" entry."""
        if addr is None:
            return self.unix
        return any(addr.version == net.version and addr in net for net in self.networks)


def parse_trusted(entries: Iterable[str]) -> TrustedProxies:
    """`server.trusted_proxies` as networks. Raises ValueError naming a bad entry: an address or
    network with host bits set ("10.0.0.1/8") is refused rather than guessed at."""
    networks: list[IPNetwork] = []
    unix = False
    for raw in entries:
        entry = str(raw).strip()
        if entry.lower() == UNIX:
            unix = True
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=True))
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not an IP address or network ({exc}); "
                             f"write e.g. 10.0.0.5, 10.0.0.0/8, fd00::/8 or {UNIX}") from None
    return TrustedProxies(tuple(dict.fromkeys(networks)), unix)


def parse_address(text: str) -> IPAddress | None:
    """One address as proxies and servers write it, or None when it is not one.

    Accepts ``192.0.2.1``, ``192.0.2.1:4711``, ``2001:db8::1``, ``[2001:db8::1]:4711``,
    ``"[2001:db8::1]"`` (RFC 7239 quoting) and zone ids (``fe80::1%eth0``, ``%25eth0``), which
    are dropped: a zone names the proxy's own interface, not a different client. IPv4-mapped
    IPv6 addresses (``::ffff:192.0.2.1``, from dual-stack sockets) become the IPv4 address.
    """
    s = text.strip()
    if len(s) >= 2 and s[0] == s[-1] == '"':
        s = s[1:-1].strip()
    if not s or len(s) > 100 or not s.isascii():
        return None
    if s.startswith("["):
        end = s.find("]")
        if end < 0:
            return None
        host, rest = s[1:end], s[end + 1:]
        if rest and not (rest[0] == ":" and _PORT.match(rest[1:])):
            return None
    elif s.count(":") == 1:  # IPv4 with a port; an IPv6 address has at least two colons
        host, _, port = s.partition(":")
        if not _PORT.match(port):
            return None
    else:
        host = s
    host = host.partition("%")[0]
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _forwarded_for(element: str) -> IPAddress | None:
    """The `for=` address of one RFC 7239 element (``for=192.0.2.60;proto=https``). Obfuscated
    identifiers (``_hidden``) and ``unknown`` name no address: None."""
    for pair in element.split(";"):
        name, sep, value = pair.partition("=")
        if sep and name.strip().lower() == "for":
            return parse_address(value)
    return None


def client_address(peer: str | None, forwarded: str | None, trusted: TrustedProxies,
                   header: ForwardedHeader = "x-forwarded-for") -> str:
    """The client's address for a request.

    `peer` is the connection's address (REMOTE_ADDR); `forwarded` the value of the one header
    the trusted proxies append to (`header`: X-Forwarded-For or RFC 7239 Forwarded; several
    header lines joined with commas). Walking from the right, each hop is believed while the
    hop that reported it is a trusted proxy: the answer is the right-most untrusted address, or
    the left-most when every hop is trusted. A client can put anything it likes on the left;
    what our own proxies appended on the right is what counts.

    The connection's address is the answer when the peer is not trusted, when there is no
    header, and when a hop that a trusted proxy wrote is not an address or the chain is longer
    than MAX_HOPS: such a header cannot be vouched for.
    """
    peer_addr = parse_address(peer or "")
    # A peer that is not an IP address (a UNIX socket: "") is reported as it is.
    peer_text = str(peer_addr) if peer_addr is not None else (peer or "").strip()[:64]
    if not forwarded or not trusted.trusts(peer_addr):
        return peer_text
    current = peer_addr
    hops = [h for h in forwarded.split(",") if h.strip()]  # empty list elements are ignored
    for n, raw in enumerate(reversed(hops)):
        if n >= MAX_HOPS:
            return peer_text
        addr = _forwarded_for(raw) if header == "forwarded" else parse_address(raw)
        if addr is None:
            return peer_text
        if not trusted.trusts(addr):
            return str(addr)
        current = addr
    return str(current) if current is not None else peer_text


def rate_limit_key(client_addr: str) -> str:
    """The key a per-address limit counts `client_addr` under: an IPv4 address itself, an IPv6
    address's /64 network (one household or school network, like one IPv4 NAT address)."""
    addr = parse_address(client_addr)
    if isinstance(addr, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((addr, IPV6_LIMIT_PREFIX), strict=False))
    return str(addr) if addr is not None else client_addr
