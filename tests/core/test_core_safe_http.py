"""learnplat.outbound.safe_http against real servers on loopback: what it sends, what it does
not follow, its timeouts and caps, and every way a URL could reach a non-public address
(each address class, names, IPv6 forms, odd IPv4 spellings, a name that changes its answer).
No database: both backends run it unchanged."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from learnplat.errors import UnsafeURL, ValidationFailed
from learnplat.outbound import safe_http
from learnplat.outbound.safe_http import Policy, address_class, check_url, send
from learnplat.outbound.sink import OutboundRequest

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def loopback_policy(**kw: Any) -> Policy:
    """The tests' policy: loopback allowed (as an operator would allow an internal network),
    http allowed, short timeouts so waiting tests stay short."""
    kw.setdefault("allowed_networks", LOOPBACK)
    kw.setdefault("require_https", False)
    kw.setdefault("connect_timeout", 2)
    kw.setdefault("read_timeout", 2)
    return Policy(**kw)


STRICT = Policy(require_https=False)  # the defaults, with http allowed: nothing private


def post(url: str, headers: dict[str, str] | None = None) -> OutboundRequest:
    return OutboundRequest(url=url, body=b'{"type": "enrollment.created"}',
                           headers={"Content-Type": "application/json", **(headers or {})})


# --- receivers on loopback ----------------------------------------------------------------

@dataclass
class Received:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A TCP server on a loopback address that records every connection and request and
    lets `handler` answer (raw bytes: the tests need answers no HTTP server library would
    send: trickled, endless, never)."""

    handler: Callable[[socket.socket, Receiver], None]
    host: str = "127.0.0.1"
    port: int = 0
    tls: ssl.SSLContext | None = None
    connections: int = 0
    requests: list[Received] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Receiver:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self.sock = socket.create_server((self.host, self.port), family=family)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def url(self, path: str = "/hook", scheme: str = "http", host: str | None = None) -> str:
        shown = host or (f"[{self.host}]" if ":" in self.host else self.host)
        return f"{scheme}://{shown}:{self.port}{path}"

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            self.requests.append(_read_request(conn))
            self.handler(conn, self)
        except (OSError, ValueError):
            pass  # the client went away (a capped answer, a timeout): that is the test
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def _read_request(conn: socket.socket) -> Received:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ValueError("no request")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, value = line.split(":", 1)
        headers[name.strip().lower()] = value.strip()
    while len(body) < int(headers.get("content-length", 0)):
        body += conn.recv(65536)
    return Received(method, target, headers, body)


def answer(raw: bytes) -> Callable[[socket.socket, Receiver], None]:
    def handler(conn: socket.socket, rx: Receiver) -> None:
        conn.sendall(raw)
    return handler


def silent(conn: socket.socket, rx: Receiver) -> None:
    rx.stop.wait(10)  # never answers (until the test ends)


def trickle(raw: bytes) -> Callable[[socket.socket, Receiver], None]:
    """Sends `raw` one byte every 50 ms: each read waits far less than read_timeout."""
    def handler(conn: socket.socket, rx: Receiver) -> None:
        for i in range(len(raw)):
            if rx.stop.wait(0.05):
                return
            conn.sendall(raw[i:i + 1])
    return handler


def endless(conn: socket.socket, rx: Receiver) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
    block = b"x" * 65536
    while not rx.stop.is_set():
        conn.sendall(block)


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(handler: Callable[[socket.socket, Receiver], None] = answer(
            b"HTTP/1.1 204 No Content\r\n\r\n"), **kw: Any) -> Receiver:
        rx = Receiver(handler, **kw).start()
        made.append(rx)
        return rx

    yield make
    for rx in made:
        rx.close()


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Every connection safe_http opens (the real socket.create_connection, observed)."""
    seen: list[tuple[Any, ...]] = []
    real = socket.create_connection

    def observed(address: Any, *args: Any, **kw: Any) -> socket.socket:
        seen.append(address)
        return real(address, *args, **kw)

    monkeypatch.setattr(safe_http.socket, "create_connection", observed)
    return seen


def same_port(receiver: Callable[..., Receiver], first: str, second: str
              ) -> tuple[Receiver, Receiver]:
    """Two receivers on two loopback addresses with one port (retried: the port free on the
    first address may be taken on the second)."""
    for _ in range(20):
        a = receiver(host=first)
        try:
            return a, receiver(host=second, port=a.port)
        except OSError:
            a.close()
    raise AssertionError("no port free on both addresses")


def _has_ipv6_loopback() -> bool:
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
        return True
    except OSError:
        return False


# --- answers with loopback allowed ----------------------------------------------------------

def test_a_200_answer_with_its_status_head_headers_and_latency(receiver):
    rx = receiver(answer(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Receiver: a\r\n"
                         b"X-Receiver: b\r\nContent-Length: 20\r\n\r\nthanks, got it: 1001"))
    got = send(post(rx.url("/hooks/lms?school=northfield"), {"webhook-id": "msg_1",
                                                             "Host": "evil.example"}),
               loopback_policy(answer_bytes_kept=6, user_agent="learnplat/test"))
    assert got.status == 200 and got.ok and got.error is None
    assert got.head == b"thanks"
    assert got.headers["content-type"] == "text/plain"
    assert got.headers["x-receiver"] == "a, b"
    assert got.latency_ms > 0
    [req] = rx.requests
    assert (req.method, req.target) == ("POST", "/hooks/lms?school=northfield")
    assert req.body == b'{"type": "enrollment.created"}'
    assert req.headers["host"] == f"127.0.0.1:{rx.port}"  # a sink cannot set Host
    assert req.headers["webhook-id"] == "msg_1"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["content-length"] == str(len(req.body))
    assert req.headers["user-agent"] == "learnplat/test"
    assert req.headers["connection"] == "close"
    assert req.headers["accept-encoding"] == "identity"  # no compressed answers to unpack


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")
def test_an_ipv6_literal_is_sent_to_with_a_bracketed_host(receiver):
    rx = receiver(host="::1")
    got = send(post(rx.url()), loopback_policy())
    assert got.status == 204, got
    assert rx.requests[0].headers["host"] == f"[::1]:{rx.port}"


def test_a_redirect_is_an_answer_and_is_not_followed(receiver):
    other = receiver()
    rx = receiver(answer(b"HTTP/1.1 302 Found\r\nLocation: " + other.url().encode() +
                         b"\r\nContent-Length: 0\r\n\r\n"))
    got = send(post(rx.url()), loopback_policy())
    assert got.status == 302 and not got.ok
    assert got.headers["location"] == other.url()
    time.sleep(0.05)
    assert other.connections == 0


def test_a_server_that_never_answers_times_out_within_the_read_timeout(receiver):
    rx = receiver(silent)
    got = send(post(rx.url()), loopback_policy(read_timeout=0.3))
    assert got.status is None and got.error is not None
    assert got.error.startswith("timeout")
    assert got.latency_ms < (0.3 + 2) * 1000  # bounded by the deadline, not hanging
    assert rx.connections == 1


def test_a_trickling_server_cannot_hold_the_worker_past_the_deadline(receiver):
    # Each byte comes well within any per-read timeout; only a deadline over the whole
    # exchange stops it.
    rx = receiver(trickle(b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"y" * 500 + b"\r\n\r\n"))
    got = send(post(rx.url()), loopback_policy(read_timeout=0.4))
    assert got.status is None
    assert got.error is not None and got.error.startswith("timeout")
    assert got.latency_ms < (0.4 + 2) * 1000


def test_a_body_trickled_after_the_status_keeps_the_status_and_says_timeout(receiver):
    def handler(conn: socket.socket, rx: Receiver) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nok")
        trickle(b"." * 998)(conn, rx)

    rx = receiver(handler)
    got = send(post(rx.url()), loopback_policy(read_timeout=0.3))
    assert got.status == 200  # the receiver said 200: that is the verdict's to judge
    assert got.head.startswith(b"ok")
    assert got.error is not None and "timeout" in got.error


def test_a_huge_answer_is_read_only_up_to_the_cap(receiver):
    rx = receiver(endless)
    got = send(post(rx.url()), loopback_policy(max_answer_bytes=100_000, answer_bytes_kept=10))
    assert got.status == 200 and got.error is None
    assert got.head == b"x" * 10


def test_a_chunked_answer_is_read(receiver):
    rx = receiver(answer(b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"))
    got = send(post(rx.url()), loopback_policy())
    assert (got.status, got.head, got.error) == (202, b"hello world", None)


def test_a_closed_port_is_connection_refused():
    s = socket.create_server(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    got = send(post(f"http://127.0.0.1:{port}/"), loopback_policy())
    assert (got.status, got.error) == (None, "connection refused")


def test_what_is_not_http_is_an_error_not_an_exception(receiver):
    rx = receiver(answer(b"SSH-2.0-OpenSSH_9.6\r\n"))
    got = send(post(rx.url()), loopback_policy())
    assert got.status is None and got.error is not None
    assert got.error.startswith("no valid HTTP answer")
    rx = receiver(answer(b""))  # closes at once
    got = send(post(rx.url()), loopback_policy())
    assert got.status is None and got.error is not None


def test_a_bad_request_from_a_sink_is_an_error_not_an_exception(receiver):
    rx = receiver()
    for bad in [post(rx.url(), {"X-Injected": "a\r\nX-Evil: 1"}),
                post(rx.url(), {"X-Bad Name": "1"}),
                OutboundRequest(url=rx.url(), body=b"", method="PO ST")]:
        got = send(bad, loopback_policy())
        assert got.status is None and got.error is not None
        assert got.error.startswith("invalid request")
    assert rx.connections == 0


# --- refusals with loopback NOT allowed -----------------------------------------------------

ADDRESSES = [
    ("127.0.0.1", "loopback"), ("127.45.6.7", "loopback"), ("10.0.0.7", "private"),
    ("172.16.5.4", "private"), ("192.168.1.1", "private"), ("169.254.169.254", "metadata"),
    ("100.100.100.200", "metadata"), ("169.254.1.1", "link-local"), ("100.64.0.1", "shared"),
    ("0.0.0.0", "unspecified"), ("0.1.2.3", "unspecified"), ("255.255.255.255", "broadcast"),
    ("224.0.0.251", "multicast"), ("240.0.0.1", "reserved"), ("192.0.0.8", "reserved"),
    ("192.0.2.10", "documentation"), ("198.51.100.1", "documentation"),
    ("203.0.113.9", "documentation"), ("198.18.0.1", "benchmarking"),
    ("::1", "loopback"), ("::", "unspecified"), ("fe80::1", "link-local"),
    ("fc00::1", "private"), ("fd12:3456::1", "private"), ("fd00:ec2::254", "metadata"),
    ("ff02::1", "multicast"), ("2001:db8::1", "documentation"), ("100::1", "reserved"),
    # IPv6 forms carrying an IPv4 address
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:a00:7", "private"),
    ("::ffff:169.254.169.254", "metadata"), ("::127.0.0.1", "loopback"),
    ("64:ff9b::7f00:1", "loopback"), ("64:ff9b::a9fe:a9fe", "metadata"),
    ("64:ff9b:1::a00:7", "private"), ("2002:7f00:1::1", "loopback"),
    ("2002:c0a8:101::1", "private"), ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "private"),
]


@pytest.mark.parametrize("address,cls", ADDRESSES)
def test_every_non_public_address_is_refused_before_connecting(address, cls, connects):
    assert address_class(ipaddress.ip_address(address)) == cls
    shown = f"[{address}]" if ":" in address else address
    with pytest.raises(UnsafeURL) as refused:
        check_url(f"http://{shown}:8080/hook", STRICT)
    assert refused.value.reason == "address"
    assert f"({cls})" in refused.value.message
    got = send(post(f"http://{shown}:8080/hook"), STRICT)
    assert got.status is None
    assert got.error == f"unsafe address {ipaddress.ip_address(address)} ({cls})"
    # and the same through a name resolving to it
    named = Policy(require_https=False, resolver=lambda host, port: [address])
    got = send(post("http://receiver.example.com:8080/hook"), named)
    assert got.error == f"unsafe address {address} ({cls})"
    assert connects == []


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808",
                                     "2002:808:808::1", "::ffff:8.8.8.8"])
def test_public_addresses_have_no_class(address):
    assert address_class(ipaddress.ip_address(address)) is None


def test_loopback_forms_reach_no_listening_server(receiver, connects):
    rx = receiver()
    forms = ["127.0.0.1", "localhost", "LOCALHOST.", "127.0.0.1.", "[::ffff:127.0.0.1]",
             "[::ffff:7f00:1]", "0.0.0.0", "[::]"]
    if _has_ipv6_loopback():
        forms.append("[::1]")
    for host in forms:
        got = send(post(rx.url(host=host)), STRICT)
        assert got.status is None and got.error is not None, host
        assert got.error.startswith("unsafe address"), (host, got.error)
        with pytest.raises(UnsafeURL):
            check_url(rx.url(host=host), STRICT)
    time.sleep(0.05)
    assert rx.connections == 0 and connects == []
    # the same server is reachable once loopback is allowed: the refusals were the policy's
    assert send(post(rx.url(host="localhost")), loopback_policy()).status == 204


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "0x7f000001", "017700000001",
                                  "127.1", "0177.0.0.1", "0x7f.0x0.0x0.0x1", "10.1",
                                  "1.2.3.4.5", "127.0.0.01"])
def test_odd_ipv4_spellings_are_refused(host, connects):
    with pytest.raises(UnsafeURL) as refused:
        check_url(f"http://{host}/", STRICT)
    assert refused.value.reason == "address"
    got = send(post(f"http://{host}/"), loopback_policy())  # even with loopback allowed
    assert got.status is None and got.error is not None and "spelled unusually" in got.error
    assert connects == []


def test_a_name_is_resolved_once_and_the_checked_address_is_connected(receiver):
    # A rebinding name: public-looking (allowed) at the first lookup, loopback after. The
    # allowed receiver is on 127.0.0.2, the forbidden one on 127.0.0.1, same port.
    allowed, forbidden = same_port(receiver, "127.0.0.2", "127.0.0.1")
    lookups: list[tuple[str, int]] = []

    def rebinding(host: str, port: int) -> list[str]:
        lookups.append((host, port))
        return ["127.0.0.2"] if len(lookups) == 1 else ["127.0.0.1"]

    policy = Policy(allowed_networks=(ipaddress.ip_network("127.0.0.2/32"),),
                    require_https=False, resolver=rebinding, read_timeout=2)
    got = send(post(f"http://hooks.northfield.example:{allowed.port}/lms"), policy)
    assert got.status == 204, got
    assert lookups == [("hooks.northfield.example", allowed.port)]
    assert allowed.requests[0].headers["host"] == f"hooks.northfield.example:{allowed.port}"
    time.sleep(0.05)
    assert forbidden.connections == 0
    # The next send resolves again and, now that the name says loopback, refuses.
    got = send(post(f"http://hooks.northfield.example:{allowed.port}/lms"), policy)
    assert got.error == "unsafe address 127.0.0.1 (loopback)"
    assert forbidden.connections == 0 and allowed.connections == 1


def test_one_forbidden_address_among_those_resolved_refuses_the_url(receiver, connects):
    allowed = receiver(host="127.0.0.2")
    policy = Policy(allowed_networks=(ipaddress.ip_network("127.0.0.2/32"),),
                    require_https=False, resolver=lambda h, p: ["127.0.0.2", "10.0.0.7"])
    got = send(post(f"http://mixed.example:{allowed.port}/"), policy)
    assert got.error == "unsafe address 10.0.0.7 (private)"
    with pytest.raises(UnsafeURL, match=r"10\.0\.0\.7"):
        check_url(f"http://mixed.example:{allowed.port}/", policy)
    assert allowed.connections == 0 and connects == []


def test_the_next_checked_address_is_tried_when_the_first_refuses(receiver):
    closed, rx = same_port(receiver, "127.0.0.2", "127.0.0.3")
    closed.close()  # nothing listens there any more: it refuses
    policy = loopback_policy(resolver=lambda h, p: ["127.0.0.2", "127.0.0.3"])
    assert send(post(f"http://two.example:{rx.port}/"), policy).status == 204


# --- URLs refused for what they say ---------------------------------------------------------

@pytest.mark.parametrize("url,reason", [
    ("ftp://example.com/", "scheme"), ("file:///etc/passwd", "scheme"),
    ("gopher://127.0.0.1:6379/_INFO", "scheme"), ("example.com/hook", "scheme"),
    ("", "scheme"), ("http://user:secret@example.com/", "credentials"),
    ("http://@127.0.0.1/", "credentials"), ("http://example.com\\@127.0.0.1/", "credentials"),
    ("http:///hook", "no_host"), ("http://exa mple.com/", "no_host"),
    ("http://%31%32%37.0.0.1/", "no_host"), ("http://[::1/", "no_host"),
    ("http://example.com:0/", "port"), ("http://example.com:65536/", "port"),
    ("http://example.com:http/", "port"),
])
def test_urls_refused_for_their_form(url, reason):
    with pytest.raises(UnsafeURL) as refused:
        check_url(url, loopback_policy())
    assert refused.value.reason == reason
    got = send(post(url), loopback_policy())
    assert got.status is None and got.error is not None and got.error.startswith("unsafe URL")


def test_http_is_refused_when_https_is_required():
    with pytest.raises(UnsafeURL) as refused:
        check_url("http://127.0.0.1/", Policy(allowed_networks=LOOPBACK))
    assert refused.value.reason == "https_required"


def test_a_name_that_does_not_resolve():
    def nothing(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(UnsafeURL) as refused:
        check_url("https://nowhere.example/", Policy(resolver=nothing))
    assert refused.value.reason == "unresolvable"
    with pytest.raises(UnsafeURL) as refused:
        check_url("https://nowhere.example/", Policy(resolver=lambda h, p: []))
    assert refused.value.reason == "unresolvable"
    got = send(post("https://nowhere.example/"), Policy(resolver=nothing))
    assert got.status is None and got.error is not None and "does not resolve" in got.error


def test_check_url_normalises():
    policy = loopback_policy(resolver=lambda h, p: ["127.0.0.1"])
    assert check_url("  HTTP://Hooks.Example.COM:80/a b/ü?x=1 2#frag ", policy) == \
        "http://hooks.example.com/a%20b/%C3%BC?x=1%202"
    assert check_url("http://hooks.example.com:8080", policy) == \
        "http://hooks.example.com:8080/"
    assert check_url("http://[::FFFF:127.0.0.1]:81/x", policy) == "http://[::ffff:7f00:1]:81/x"
    assert check_url("http://bücher.example/", policy) == "http://xn--bcher-kva.example/"


def test_unsafe_url_is_a_422_problem_on_the_url_field():
    err = UnsafeURL("address", "unsafe address 10.0.0.7 (private)")
    assert isinstance(err, ValidationFailed)
    doc = err.to_problem()
    assert (doc["status"], doc["code"], doc["reason"]) == (422, "unsafe_url", "address")
    assert doc["errors"] == [{"field": "url", "message": "unsafe address 10.0.0.7 (private)",
                              "type": "unsafe_url"}]
    assert UnsafeURL.__doc__


def test_policy_from_settings():
    s = SimpleNamespace(allowed_networks=["10.20.0.0/16", "127.0.0.1", "::1"],
                        require_https=False, connect_timeout=1.5, read_timeout=7,
                        max_answer_bytes=2048, answer_bytes_kept=64, user_agent="lp/1")
    p = Policy.from_settings(s)
    assert p.allowed_networks == (ipaddress.ip_network("10.20.0.0/16"),
                                  ipaddress.ip_network("127.0.0.1/32"),
                                  ipaddress.ip_network("::1/128"))
    assert (p.require_https, p.connect_timeout, p.read_timeout, p.max_answer_bytes,
            p.answer_bytes_kept, p.user_agent) == (False, 1.5, 7.0, 2048, 64, "lp/1")
    assert p.allows(ipaddress.ip_address("10.20.3.4"))
    assert not p.allows(ipaddress.ip_address("10.21.3.4"))
    assert Policy.from_settings(SimpleNamespace()) == Policy()


def test_an_allowed_network_allows_only_itself():
    p = Policy(allowed_networks=(ipaddress.ip_network("10.20.0.0/16"),),
               resolver=lambda h, port: ["10.20.1.1"])
    assert check_url("https://lrs.internal/xapi", p) == "https://lrs.internal/xapi"
    with pytest.raises(UnsafeURL, match=r"10\.21\.1\.1"):
        check_url("https://lrs.internal/xapi",
                  Policy(allowed_networks=p.allowed_networks,
                         resolver=lambda h, port: ["10.21.1.1"]))
    with pytest.raises(UnsafeURL, match="metadata"):
        check_url("https://169.254.169.254/latest/meta-data/", p)


# --- HTTPS ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Certs:
    ca_file: str
    cert_file: str
    key_file: str


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Certs:
    """A test CA and a certificate it signed for "localhost"."""
    d = tmp_path_factory.mktemp("tls")
    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("learnplat test CA"))
          .issuer_name(name("learnplat test CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False,
                                       decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(name("localhost"))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (d / "ca.pem").write_bytes(ca.public_bytes(pem))
    (d / "cert.pem").write_bytes(leaf.public_bytes(pem))
    (d / "key.pem").write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return Certs(str(d / "ca.pem"), str(d / "cert.pem"), str(d / "key.pem"))


@pytest.fixture
def https_receiver(receiver, certs) -> Receiver:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs.cert_file, certs.key_file)
    names: list[str | None] = []

    def remember(sock: ssl.SSLObject, server_name: str | None, _ctx: Any) -> None:
        names.append(server_name)

    ctx.sni_callback = remember
    rx = receiver(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), tls=ctx)
    rx.server_names = names
    return rx


def test_https_is_verified_for_the_name_with_the_extra_ca(https_receiver, certs):
    rx = https_receiver
    got = send(post(rx.url(scheme="https", host="localhost")),
               loopback_policy(ca_file=certs.ca_file, require_https=True))
    assert (got.status, got.head, got.error) == (200, b"ok", None)
    assert rx.server_names == ["localhost"]  # SNI: the name, not the address
    assert rx.requests[0].headers["host"] == f"localhost:{rx.port}"


def test_https_on_the_default_port_sends_host_without_the_port():
    # the Host header for port 443 (no server there: the request is inspected, not sent)
    conn = safe_http._Connection("hooks.example.com", 443, 443, None)  # type: ignore[arg-type]
    conn.putrequest("POST", "/")
    assert b"Host: hooks.example.com" in conn._buffer  # type: ignore[attr-defined]


def test_https_with_the_wrong_name_is_refused(https_receiver, certs):
    rx = https_receiver
    policy = loopback_policy(ca_file=certs.ca_file,
                             resolver=lambda host, port: ["127.0.0.1"])
    got = send(post(rx.url(scheme="https", host="hooks.northfield.example")), policy)
    assert got.status is None and got.error is not None
    assert got.error.startswith("TLS certificate not accepted"), got.error
    assert rx.requests == []
    # an address in the URL is checked as the name too: the certificate names localhost only
    got = send(post(rx.url(scheme="https", host="127.0.0.1")), policy)
    assert got.error is not None and got.error.startswith("TLS certificate not accepted")


def test_https_without_the_ca_is_refused(https_receiver):
    got = send(post(https_receiver.url(scheme="https", host="localhost")), loopback_policy())
    assert got.status is None and got.error is not None
    assert got.error.startswith("TLS certificate not accepted")
    assert https_receiver.requests == []
