"""The documented one-machine deployment, for real: `learnplat serve` processes on fixed ports
(as the systemd units run them, config/systemd/) behind a real nginx running the shipped
example config/nginx/learnplat.conf, with its ports, certificate and paths substituted, in a
temporary directory on loopback."""

from __future__ import annotations

import datetime
import grp
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from learnplat.testing import TestDatabase, free_port

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "nginx" / "learnplat.conf"
# The example's upstream: learnplat@8001 and learnplat@8002 (config/systemd/learnplat@.service).
EXAMPLE_PORTS = (8001, 8002)
DOMAIN = "learn.example.org"  # the first of the example's server_name


def nginx_binary() -> str | None:
    """Debian installs nginx in /usr/sbin, which is not on every user's PATH."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for the example's domain and 127.0.0.1: (cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DOMAIN)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName(DOMAIN), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            # What a strict verifier (Python 3.13's default context) wants of a CA.
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                key.public_key()), critical=False)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _replace(text: str, old: str, new: str) -> str:
    # The example changing under the test must fail loudly, not leave port 80 or the real
    # certificate paths in the generated file.
    assert old in text, f"config/nginx/learnplat.conf no longer contains {old!r}"
    return text.replace(old, new)


def render_site(example: str, upstream: tuple[int, int], http_port: int, https_port: int,
                cert: Path, key: Path, acme_root: Path) -> str:
    """The example with this machine's ports and files; nothing else changes."""
    text = example
    for documented, port in zip(EXAMPLE_PORTS, upstream, strict=True):
        text = _replace(text, f"server 127.0.0.1:{documented}", f"server 127.0.0.1:{port}")
    text = _replace(text, "listen 80;", f"listen 127.0.0.1:{http_port};")
    text = _replace(text, "listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    # Only loopback: the IPv6 wildcard listeners would bind every interface.
    text = _replace(text, "    listen [::]:80;\n", "")
    text = _replace(text, "    listen [::]:443 ssl http2;\n", "")
    text = _replace(text, f"/etc/letsencrypt/live/{DOMAIN}/fullchain.pem", str(cert))
    text = _replace(text, f"/etc/letsencrypt/live/{DOMAIN}/privkey.pem", str(key))
    text = _replace(text, "root /var/www/letsencrypt;", f"root {acme_root};")
    return text


@dataclass
class Nginx:
    """A real nginx serving the example from its own prefix directory."""

    prefix: Path
    http_port: int
    https_port: int
    cert: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def https(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def wss(self) -> str:
        return f"wss://127.0.0.1:{self.https_port}"

    @property
    def access_log(self) -> Path:
        return self.prefix / "access.log"

    def command(self, *extra: str) -> list[str]:
        binary = nginx_binary()
        assert binary, "no nginx binary"
        # -e: the log nginx writes before it has read the configuration (Debian's build would
        # use /var/log/nginx/error.log, which a user other than root may not open).
        return [binary, "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf"),
                "-e", str(self.prefix / "error.log"), *extra]

    def check(self) -> subprocess.CompletedProcess[str]:
        """`nginx -t` on the generated configuration."""
        return subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=30)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def upstreams(self) -> list[str]:
        """$upstream_addr of every logged request ("A" or, when retried, "A, B")."""
        return [line.split(" | ")[1] for line in self.access_log.read_text().splitlines()]


def write_nginx(tmp: Path, upstream: tuple[int, int], example: str | None = None) -> Nginx:
    """The example as a site in a minimal main configuration (Debian's nginx.conf includes
    sites-enabled/ inside its http block the same way), every path under `tmp`."""
    prefix = tmp / "nginx"
    (prefix / "acme" / ".well-known" / "acme-challenge").mkdir(parents=True)
    cert, key = make_certificate(prefix)
    http_port, https_port = free_port(), free_port()
    site = render_site(example if example is not None else EXAMPLE.read_text(), upstream,
                       http_port, https_port, cert, key, prefix / "acme")
    (prefix / "learnplat.conf").write_text(site)
    temp = "\n".join(f"    {kind}_temp_path {prefix}/{kind}_temp;"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    # Started as root, nginx would run its workers as `nobody`, who may not enter the test's
    # temporary directory; the `user` directive is only valid (and needed) for root.
    user = ""
    if os.geteuid() == 0:
        user = f"user {pwd.getpwuid(0).pw_name} {grp.getgrgid(0).gr_name};\n"
    (prefix / "nginx.conf").write_text(
        f"{user}worker_processes 1;\npid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/error.log info;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        f"{temp}\n"
        "    log_format upstreams '$status $request_method $request_uri"
        " | $upstream_addr | $upstream_status | $request_id';\n"
        f"    access_log {prefix}/access.log upstreams;\n"
        f"    include {prefix}/learnplat.conf;\n"
        "}\n")
    return Nginx(prefix, http_port, https_port, cert)


@contextmanager
def running_nginx(nginx: Nginx) -> Iterator[Nginx]:
    """nginx in the foreground (never the system service), stopped at the end."""
    log = (nginx.prefix / "stderr.log").open("wb")
    nginx.proc = subprocess.Popen(nginx.command("-g", "daemon off;"), stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        while not _accepts(nginx.https_port):
            assert nginx.proc.poll() is None, (nginx.prefix / "stderr.log").read_text()
            assert time.monotonic() < deadline, "nginx did not listen within 15 s"
            time.sleep(0.05)
        yield nginx
    finally:
        nginx.proc.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight
        try:
            nginx.proc.wait(10)
        except subprocess.TimeoutExpired:
            nginx.proc.kill()
            nginx.proc.wait(5)
        log.close()


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def server_env(runtime: Any, database: TestDatabase, home: Path, extra: dict[str, str]
               ) -> dict[str, str]:
    """The test runtime's settings as a service's environment file would give them."""
    settings = runtime.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNPLAT_")}
    env.update({
        "LEARNPLAT_HOME": str(home),
        "LEARNPLAT_DATABASE_URL": database.url,
        "LEARNPLAT_REDIS_URL": database.redis_url,
        "LEARNPLAT_REDIS_PREFIX": settings.redis.prefix,
        "LEARNPLAT_APP_SECRET_KEY": settings.app.secret_key,
        "LEARNPLAT_APP_VAR_DIR": str(settings.var_path),
        "LEARNPLAT_STORAGE_URL": settings.storage.url,
        # Tasks inline: no `learnplat worker` is part of what these tests look at.
        "LEARNPLAT_QUEUE_IMMEDIATE": "true",
        "LEARNPLAT_QUEUE_EMBEDDED_WORKER": "false",
        "LEARNPLAT_TENANCY_CACHE_SECONDS": "0",
        "LEARNPLAT_LIMITS_ENABLED": "false",
        "LEARNPLAT_SERVER_TRUSTED_PROXIES": "127.0.0.1",  # nginx, as the example says
        "PYTHONUNBUFFERED": "1",
        **extra,
    })
    return env


# What systemd does for a socket-activated service: the listening socket as fd 3, LISTEN_FDS=1
# and LISTEN_PID naming the process that is to use it (gunicorn checks it), then the command.
_SOCKET_ACTIVATE = """import os, sys
fd = int(sys.argv[1])
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
os.execv(sys.argv[2], sys.argv[2:])
"""


@dataclass
class Server:
    """One `learnplat serve --no-migrate --bind 127.0.0.1:PORT` (the command of
    config/systemd/learnplat@.service), stopped with SIGTERM and started again, as a rolling
    restart does. The test holds the listening socket and hands it to each start, as systemd
    does with learnplat@.socket: it stays open while the process restarts."""

    listener: socket.socket
    env: dict[str, str]
    logs: Path
    workers: int = 2
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    stop_seconds: list[float] = field(default_factory=list)
    start_seconds: list[float] = field(default_factory=list)
    port: int = field(init=False)

    def __post_init__(self) -> None:
        self.port = int(self.listener.getsockname()[1])

    def start(self) -> None:
        self.starts += 1
        log = (self.logs / f"serve-{self.port}-{self.starts}.log").open("wb")
        cli = str(Path(sys.executable).parent / "learnplat")
        fd = self.listener.fileno()
        # No preexec_fn to put the socket on fd 3: the load's threads are running (a fork
        # with threads must exec at once); a small Python does it before exec'ing learnplat.
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SOCKET_ACTIVATE, str(fd), cli, "serve", "--no-migrate",
             "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers)],
            env=self.env, cwd=self.env["LEARNPLAT_HOME"], stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True, pass_fds=(fd,))
        log.close()  # the child holds its own copy
        self._started = time.monotonic()

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None and self.proc.poll() is None, self.log_tail()
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, f"not ready in {timeout} s: {self.log_tail()}"
            time.sleep(0.1)
        self.start_seconds.append(time.monotonic() - self._started)

    def stop(self, timeout: float = 45) -> int:
        """SIGTERM to the gunicorn master (`learnplat serve` execs it), as systemd sends it;
        waits for the exit and returns the exit code."""
        assert self.proc is not None
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.stop_seconds.append(time.monotonic() - start)
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def log_tail(self) -> str:
        return (self.logs / f"serve-{self.port}-{self.starts}.log").read_text()[-3000:]


@contextmanager
def servers(runtime: Any, database: TestDatabase, tmp: Path, extra: dict[str, str],
            workers: int = 2) -> Iterator[tuple[Server, Server]]:
    """Two `learnplat serve` processes on free ports, started together, killed at the end."""
    home = tmp / "home"
    home.mkdir()
    env = server_env(runtime, database, home, extra)
    pair = (Server(listen(), env, tmp, workers), Server(listen(), env, tmp, workers))
    try:
        for server in pair:
            server.start()
        for server in pair:
            server.wait_healthy()
        yield pair
    finally:
        for server in pair:
            server.kill()
            server.listener.close()


def listen() -> socket.socket:
    """A listening socket on a free loopback port, as learnplat@.socket makes one (bound by
    the test itself, so no other test run can take the port in between)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)  # gunicorn's backlog; systemd's Backlog= in learnplat@.socket
    return sock


class SourceAddressAdapter(HTTPAdapter):
    """requests from one loopback address (127.0.0.2...): a client nginx tells apart."""

    def __init__(self, source: str, **kw: Any):
        self.source = source
        super().__init__(**kw)

    def init_poolmanager(self, *args: Any, **kw: Any) -> None:
        kw["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kw)


def client(nginx: Nginx, tenant: str, source: str = "127.0.0.1") -> requests.Session:
    """A session to nginx over TLS, checking the test certificate, from `source`."""
    session = requests.Session()
    session.mount("https://", SourceAddressAdapter(source))
    session.mount("http://", SourceAddressAdapter(source))
    session.trust_env = False  # REQUESTS_CA_BUNDLE (CI sets it) would win over verify
    session.verify = str(nginx.cert)
    session.headers["X-Tenant"] = tenant
    return session
