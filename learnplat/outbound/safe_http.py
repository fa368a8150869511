"""The HTTP client for URLs a school admin types in (webhook endpoints, a learning record
store): it cannot be pointed at learnplat's own network.

A URL typed by a school is an attacker's tool if the server sends requests wherever it says
(server-side request forgery): to the cloud's metadata service (credentials), to Redis or the
database on a private address, to an admin page on loopback. So:

- the host is resolved once, and every address it resolved to is checked: one forbidden
  address refuses the URL (a name answering a public and a private address is refused);
- the connection goes to an address that was checked, never to the name again: no second
  resolution, so no window for DNS rebinding (a name whose answer changes between the check
  and the connection); Host, SNI and the certificate check still use the name;
- redirects are never followed (a 3xx is an answer like any other): a public server cannot
  bounce the request to a private address;
- connect and read timeouts, and a deadline over the whole exchange: a server trickling one
  byte a second holds a worker for read_timeout, not for ever; the answer's body is read up
  to max_answer_bytes and its first answer_bytes_kept bytes are kept;
- `send` never raises for network or URL trouble: it answers ``Answer(status=None,
  error=...)``, and the engine records and retries.

Forbidden unless inside ``Policy.allowed_networks`` (the operator's
``outbound.allowed_networks``; the tests allow loopback): see `address_class`. Why
http.client and not requests/httpx/urllib3: docs/decisions/0020-outbound-http-client.md.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import logging
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias
from urllib.parse import quote, urlsplit

from ..errors import UnsafeURL
from .sink import Answer, OutboundRequest

log = logging.getLogger(__name__)

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

__all__ = ["Policy", "UnsafeURL", "address_class", "check_url", "resolve_all", "send"]


def resolve_all(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (IPv4 and IPv6, in the resolver's order, without
    repeats): the default `Policy.resolver`. Raises OSError when it does not resolve."""
    out: list[str] = []
    for _family, _type, _proto, _name, sockaddr in socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP):
        addr = str(sockaddr[0])
        if addr not in out:
            out.append(addr)
    return out


@dataclass(frozen=True)
class Policy:
    """Where and how `send` may send. Built from the operator's settings with
    `from_settings` (``[outbound]``); the tests build one directly."""

    #: Networks allowed although not public (an operator's internal receivers; the tests'
    #: loopback). The address connected to is matched, an IPv4-mapped IPv6 address as its
    #: IPv4 address.
    allowed_networks: tuple[IPNetwork, ...] = ()
    require_https: bool = True
    connect_timeout: float = 5  # seconds, TCP connect and the TLS handshake
    read_timeout: float = 15  # seconds, the whole exchange once connected (a deadline)
    max_answer_bytes: int = 65536  # of the answer's body read at most
    answer_bytes_kept: int = 1024  # of those, kept in Answer.head
    user_agent: str = "learnplat"
    #: (host, port) -> addresses; the tests replace it (a name that changes its answer).
    resolver: Callable[[str, int], list[str]] = resolve_all
    #: A CA bundle trusted besides the system's (the tests' self-signed CA; an operator's
    #: internal CA).
    ca_file: str | None = None

    @classmethod
    def from_settings(cls, s: Any) -> Policy:
        """The policy of ``settings.outbound``: `allowed_networks` are CIDR strings
        ("10.20.0.0/16", "127.0.0.1"); an attribute the settings lack keeps its default."""
        d = cls()
        return cls(
            allowed_networks=tuple(ipaddress.ip_network(str(n).strip(), strict=False)
                                   for n in getattr(s, "allowed_networks", None) or ()),
            require_https=bool(getattr(s, "require_https", d.require_https)),
            connect_timeout=float(getattr(s, "connect_timeout", d.connect_timeout)),
            read_timeout=float(getattr(s, "read_timeout", d.read_timeout)),
            max_answer_bytes=int(getattr(s, "max_answer_bytes", d.max_answer_bytes)),
            answer_bytes_kept=int(getattr(s, "answer_bytes_kept", d.answer_bytes_kept)),
            user_agent=str(getattr(s, "user_agent", d.user_agent)),
        )

    def allows(self, ip: IPAddress) -> bool:
        return any(ip.version == n.version and ip in n for n in self.allowed_networks)


# --- which addresses are not public ------------------------------------------------------

def _nets(*spec: tuple[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(n), cls) for n, cls in spec)


# First match wins: the specific ones (metadata, broadcast) before the ranges holding them.
_V4 = _nets(
    ("169.254.169.254/32", "metadata"),  # AWS, GCP, Azure, OpenStack, DigitalOcean...
    ("100.100.100.200/32", "metadata"),  # Alibaba Cloud
    ("255.255.255.255/32", "broadcast"),
    ("0.0.0.0/8", "unspecified"),  # "this network"; Linux connects 0.0.0.0 to loopback
    ("127.0.0.0/8", "loopback"),
    ("10.0.0.0/8", "private"),
    ("172.16.0.0/12", "private"),
    ("192.168.0.0/16", "private"),
    ("169.254.0.0/16", "link-local"),
    ("100.64.0.0/10", "shared"),  # carrier-grade NAT
    ("192.0.0.0/24", "reserved"),  # IETF protocol assignments
    ("192.0.2.0/24", "documentation"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("198.18.0.0/15", "benchmarking"),
    ("192.88.99.0/24", "reserved"),  # the old 6to4 relay anycast
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
)
_V6 = _nets(
    ("fd00:ec2::254/128", "metadata"),  # AWS over IPv6
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "private"),  # the deprecated site-local
    ("fc00::/7", "private"),  # unique-local
    ("ff00::/8", "multicast"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("100::/64", "reserved"),  # discard-only
    ("2001::/23", "reserved"),  # IETF protocol assignments (Teredo, ORCHID, benchmarking)
)
_V4_COMPATIBLE = ipaddress.ip_network("::/96")
_V4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")


def address_class(ip: IPAddress) -> str | None:
    """The class of a non-public address ("loopback", "private", "link-local", "metadata",
    "shared", "multicast", "reserved", "unspecified", "broadcast", "documentation",
    "benchmarking"), None for a public one. An IPv6 address carrying an IPv4 address
    (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo) has the class of the IPv4 address
    when that one is not public. `Policy.allowed_networks` is not consulted here."""
    if isinstance(ip, ipaddress.IPv4Address):
        return next((cls for net, cls in _V4 if ip in net), None)
    ip = ipaddress.IPv6Address(ip.packed)  # without a scope id (fe80::1%eth0)
    if ip.ipv4_mapped is not None:
        return address_class(ip.ipv4_mapped)
    embedded = _embedded_v4(ip)
    if embedded is not None:
        inner = address_class(embedded)
        if inner is not None:
            return inner
        if ip in _NAT64:
            return None  # a NAT64 gateway reaching a public IPv4 address
        if ip.sixtofour is not None:
            return None  # 6to4 of a public IPv4 address is a public address
    found = next((cls for net, cls in _V6 if ip in net), None)
    if found is not None:
        return found
    if ip in _NAT64_LOCAL or ip in _V4_TRANSLATED:
        return "private"  # translation prefixes local to a site
    if ip in _V4_COMPATIBLE:
        return "reserved"  # deprecated, not routed
    if ip not in _GLOBAL_UNICAST:
        return "reserved"  # nothing outside 2000::/3 is assigned for public unicast
    return None


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, if it is of a form that carries one."""
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _NAT64 or ip in _NAT64_LOCAL or ip in _V4_TRANSLATED:
        return low32
    if ip in _V4_COMPATIBLE and int(ip) > 1:
        return low32
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address (the server's is a public relay)
    return None


def _refusal(ip: IPAddress, policy: Policy) -> str | None:
    """Why `ip` may not be connected to under `policy` (its class), or None."""
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    if policy.allows(mapped or ip):
        return None
    return address_class(ip)


# --- URLs ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Target:
    url: str  # normalised
    scheme: str
    host: str  # lower-case ASCII (IDNA); an IPv6 literal without brackets
    port: int
    target: str  # path and query, percent-encoded
    addresses: tuple[str, ...]  # every one checked, in the resolver's order


_HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$")
# A last label that a URL parser or inet_aton reads as a number: 2130706433, 0x7f.1, 127.1,
# 0177.0.0.1. Such a host is an IPv4 address in disguise.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
# Characters left as they are in the path and query; anything else is percent-encoded.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~?"


def _parse(url: str, policy: Policy) -> tuple[str, str, int, str]:
    """(scheme, host, port, target) of `url`, or UnsafeURL. Resolves nothing."""
    url = url.strip() if isinstance(url, str) else ""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as ex:  # a bad port, an unbalanced bracket
        if "port" in str(ex).lower():
            raise UnsafeURL("port", "the URL's port is not a number from 1 to 65535") from None
        raise UnsafeURL("no_host", f"the URL's host cannot be read ({ex})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeURL("scheme", "the URL must start with https:// (or http:// where the "
                                  "operator allows it)")
    if scheme == "http" and policy.require_https:
        raise UnsafeURL("https_required", "the URL must use https://")
    if "@" in parts.netloc:
        raise UnsafeURL("credentials", "the URL must not hold a user name or password "
                                       "(user:password@host)")
    raw_host = parts.hostname or ""
    if not raw_host:
        raise UnsafeURL("no_host", "the URL has no host")
    if port is None:
        port = 443 if scheme == "https" else 80
    if not 0 < port < 65536:
        raise UnsafeURL("port", "the URL's port is not a number from 1 to 65535")
    host = _host(raw_host, bracketed=parts.netloc.startswith("["))
    target = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        target += "?" + quote(parts.query, safe=_PATH_SAFE)
    return scheme, host, port, target


def _host(raw: str, bracketed: bool) -> str:
    if bracketed:
        try:
            return str(ipaddress.IPv6Address(raw))
        except ValueError:
            raise UnsafeURL("no_host", f"{raw!r} is not an IPv6 address") from None
    try:
        host = raw.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise UnsafeURL("no_host", f"{raw!r} is not a valid host name") from None
    bare = host[:-1] if host.endswith(".") else host
    try:
        return str(ipaddress.IPv4Address(bare))
    except ValueError:
        pass
    if not _HOST_NAME.match(bare) or len(bare) > 253:
        raise UnsafeURL("no_host", f"{raw!r} is not a valid host name")
    if _NUMERIC_LABEL.match(bare.rsplit(".", 1)[-1]):
        raise UnsafeURL("address", f"the host {raw!r} is an IPv4 address spelled unusually "
                                   "(write it as four decimal numbers, 192.0.2.10)")
    return host


def _normalised(scheme: str, host: str, port: int, target: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{shown}{'' if port == default else f':{port}'}{target}"


def _prepare(url: str, policy: Policy) -> _Target:
    """Parse, resolve once and check every address; UnsafeURL if anything is wrong."""
    scheme, host, port, target = _parse(url, policy)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host.rstrip("."))
    except ValueError:
        literal = None
    if literal is not None:
        found = [str(literal)]
    else:
        try:
            found = list(policy.resolver(host.rstrip("."), port))
        except (OSError, UnicodeError, ValueError) as ex:
            raise UnsafeURL("unresolvable", f"the host {host} does not resolve "
                                            f"({getattr(ex, 'strerror', None) or ex})") from None
        if not found:
            raise UnsafeURL("unresolvable", f"the host {host} does not resolve")
    for addr in found:
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            raise UnsafeURL("unresolvable",
                            f"the host {host} resolved to {addr!r}, not an address") from None
        why = _refusal(ip, policy)
        if why is not None:
            raise UnsafeURL("address", f"unsafe address {addr} ({why})")
    return _Target(_normalised(scheme, host, port, target), scheme, host, port, target,
                   tuple(found))


def check_url(url: str, policy: Policy) -> str:
    """The normalised `url` (lower-case scheme and host, the default port dropped, the path
    percent-encoded, no fragment) if `send` may send to it now; raises UnsafeURL (field
    "url") otherwise. For checking an endpoint when it is saved: it resolves the name now,
    and `send` checks again at each request (a name may change its answer)."""
    return _prepare(url, policy).url


# --- sending -------------------------------------------------------------------------------

class _Deadline(Exception):
    pass


class _DeadlineReader(io.RawIOBase):
    """A socket's reading side where every read waits at most until the deadline, so that
    http.client's reads of the status line, headers and body together cannot outlast it
    (a socket timeout alone is per read: one byte a second would never trip it)."""

    def __init__(self, sock: socket.socket, deadline: float):
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise _Deadline
        self._sock.settimeout(remaining)
        try:
            return self._sock.recv_into(b)
        except TimeoutError:
            raise _Deadline from None


class _Socket:
    """What http.client needs of a socket (sendall, makefile, close) over a connected one,
    with the exchange's deadline applied to sending and reading. Closing it closes nothing:
    http.client "closes" the connection as soon as it has an answer that ends with the
    connection, before the body is read; `send` closes the real socket when done."""

    def __init__(self, sock: socket.socket, deadline: float):
        self._sock = sock
        self._deadline = deadline

    def sendall(self, data: bytes) -> None:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise _Deadline
        self._sock.settimeout(remaining)
        try:
            self._sock.sendall(data)
        except TimeoutError:
            raise _Deadline from None

    def makefile(self, mode: str, *args: Any, **kw: Any) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))

    def close(self) -> None:
        pass


class _Connection(http.client.HTTPConnection):
    """http.client over a socket already connected to a checked address; `host` is the name
    (the Host header)."""

    def __init__(self, host: str, port: int, default_port: int, sock: _Socket):
        super().__init__(host, port)
        self.default_port = default_port  # so Host has no ":443" for https
        self.sock = sock

    def connect(self) -> None:  # never: the socket is given
        raise http.client.HTTPException("connect() on a given socket")


_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 token: methods, names
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # control characters but tab

# Headers send() sets itself; a sink's own values for them are ignored.
_OWN_HEADERS = {"host", "content-length", "connection", "transfer-encoding", "user-agent",
                "accept-encoding"}


class _ConnectFailed(Exception):
    """No connection: the message is the Answer's error."""


def _connect(target: _Target, policy: Policy) -> socket.socket:
    """A socket connected (for https, with TLS verified for the name) to one of the checked
    addresses, tried in order, within connect_timeout in all; _ConnectFailed otherwise."""
    deadline = time.monotonic() + policy.connect_timeout
    errors: list[OSError] = []
    for addr in target.addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        ip = ipaddress.ip_address(addr)
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        try:
            # An address, never a name: create_connection's own lookup of it is numeric.
            sock = socket.create_connection((str(mapped) if mapped else addr, target.port),
                                            timeout=remaining)
        except OSError as ex:
            errors.append(ex)
            continue
        if target.scheme == "http":
            return sock
        try:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            return _tls_context(policy).wrap_socket(sock, server_hostname=target.host)
        except ssl.SSLCertVerificationError as ex:
            sock.close()
            raise _ConnectFailed(f"TLS certificate not accepted: {ex.verify_message or ex}"
                                 ) from None
        except TimeoutError:
            sock.close()
            raise _ConnectFailed(f"connect timeout after {policy.connect_timeout:g}s "
                                 "(TLS handshake)") from None
        except (ssl.SSLError, OSError) as ex:
            sock.close()
            raise _ConnectFailed(f"TLS handshake failed: {ex}") from None
    if not errors or all(isinstance(ex, TimeoutError) for ex in errors):
        raise _ConnectFailed(f"connect timeout after {policy.connect_timeout:g}s")
    if any(isinstance(ex, ConnectionRefusedError) for ex in errors):
        raise _ConnectFailed("connection refused")
    raise _ConnectFailed(f"connection failed: {errors[-1].strerror or errors[-1]}")


_contexts: dict[str | None, ssl.SSLContext] = {}


def _tls_context(policy: Policy) -> ssl.SSLContext:
    """The system's trust store plus `ca_file`; hostname checked. One per CA file."""
    ctx = _contexts.get(policy.ca_file)
    if ctx is None:
        ctx = ssl.create_default_context()
        if policy.ca_file:
            ctx.load_verify_locations(cafile=policy.ca_file)
        _contexts[policy.ca_file] = ctx
    return ctx


def _answer_headers(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def send(request: OutboundRequest, policy: Policy) -> Answer:
    """Send `request` under `policy` and return the answer; never raises for network or URL
    trouble (``Answer(status=None, error=...)``). The URL is checked and resolved here, once;
    an unsafe one is refused before any connection ("unsafe address 10.0.0.7 (private)")."""
    started = time.monotonic()
    status: int | None = None
    headers: dict[str, str] = {}
    body = bytearray()

    def answer(error: str | None = None) -> Answer:
        return Answer(status=status, latency_ms=(time.monotonic() - started) * 1000,
                      head=bytes(body[:policy.answer_bytes_kept]), headers=headers,
                      error=error)

    try:
        try:
            target = _prepare(request.url, policy)
        except UnsafeURL as ex:
            return answer(ex.message if ex.reason == "address"
                          else f"unsafe URL: {ex.message}")
        # A sink's mistake is refused before connecting (and never splits the request).
        if not _TOKEN.match(request.method):
            return answer(f"invalid request: not an HTTP method: {request.method!r}")
        for name, value in request.headers.items():
            if not _TOKEN.match(name) or _BAD_VALUE.search(value):
                return answer(f"invalid request: the header {name!r} cannot be sent")
        try:
            sock = _connect(target, policy)
        except _ConnectFailed as ex:
            return answer(str(ex))
        try:
            conn = _Connection(target.host, target.port,
                               443 if target.scheme == "https" else 80,
                               _Socket(sock, time.monotonic() + policy.read_timeout))
            conn.putrequest(request.method, target.target)
            conn.putheader("User-Agent", policy.user_agent)
            conn.putheader("Connection", "close")
            for name, value in request.headers.items():
                if name.lower() not in _OWN_HEADERS:
                    conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(request.body)))
            conn.endheaders(request.body)
            resp = conn.getresponse()
            status, headers = resp.status, _answer_headers(resp.getheaders())
            # read1: what has come so far, so that a body cut short keeps its head
            while len(body) < policy.max_answer_bytes:
                chunk = resp.read1(min(65536, policy.max_answer_bytes - len(body)))
                if not chunk:
                    break
                body += chunk
        except _Deadline:
            return answer(f"timeout: no complete answer within {policy.read_timeout:g}s "
                          f"({'reading its body' if status else 'waiting for it'})")
        except (http.client.HTTPException, OSError, ValueError) as ex:
            # ValueError: a header value outside latin-1, a status line http.client refuses.
            if status is not None:
                return answer(f"the answer's body was cut short ({type(ex).__name__})")
            return answer(f"no valid HTTP answer ({type(ex).__name__}: {ex})")
        finally:
            sock.close()
    except Exception as ex:  # a worker must record the attempt, not crash on it
        log.exception("outbound request to %s failed unexpectedly", request.url)
        return answer(f"unexpected error: {type(ex).__name__}: {ex}")
    return answer()
