"""The scale-out drill of docs/deployment.md ("rehearsed once by hand"), repeatable: the image's
installation path without Docker, then two `learnplat serve --no-migrate` and a `learnplat
worker` behind config/docker/nginx.conf, a WebSocket through nginx, and a rolling stop of one
server under load. Prints its figures; removes its database, Redis keys and processes (the
NOSUPERUSER login role `learnplat_rehearsal` stays for the next run).

    bin/rehearse-scale-out [--no-image]   # --no-image: the checkout's .venv instead of a wheel

LEARNPLAT_REHEARSAL_DATABASE_URL (a PostgreSQL admin URL; default postgresql://postgres@
127.0.0.1:5432/postgres), LEARNPLAT_REHEARSAL_REDIS_URL (default redis://127.0.0.1:6379/13; only
keys under this run's prefix are written and deleted), NGINX (the nginx binary; default `nginx`
on PATH: without one the client alternates between the servers itself).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse, urlsplit, urlunparse

import psycopg2
import redis
import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from learnplat.testing import free_port, wait_for_server

ROOT = Path(__file__).resolve().parent.parent
TENANT, EMAIL, PASSWORD = "rehearsal", "admin@rehearsal.example", "change me please"


def sql(url: str, statement: str) -> None:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def wait_http(url: str, timeout: float = 60) -> None:
    parts = urlsplit(url)
    wait_for_server(f"{parts.scheme}://{parts.netloc}", path=parts.path or "/", timeout=timeout)


def install_image(tmp: Path) -> Path:
    """What the Dockerfile does, without Docker: a wheel of the same files, installed with no
    index into a fresh venv. Returns the venv's bin directory."""
    ctx = tmp / "ctx"
    ctx.mkdir()
    for name in ("pyproject.toml", "setup.cfg", "README.md"):
        shutil.copy(ROOT / name, ctx / name)
    for name in ("learnplat", "plugins"):
        shutil.copytree(ROOT / name, ctx / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    venv = tmp / "image"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "-q"]
    subprocess.run([*pip, "wheel", "--wheel-dir", str(tmp / "wheels"), str(ctx)], check=True)
    subprocess.run([*pip, "install", "--no-index", "--find-links", str(tmp / "wheels"),
                    "learnplat"], check=True)
    return venv / "bin"


class Drill:
    def __init__(self, tmp: Path, bindir: Path):
        self.tmp, self.bindir = tmp, bindir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.figures: dict[str, object] = {}
        admin = os.environ.get("LEARNPLAT_REHEARSAL_DATABASE_URL",
                               "postgresql://postgres@127.0.0.1:5432/postgres")
        self.admin_url = admin
        self.db = f"lp_rehearsal_{uuid.uuid4().hex[:8]}"
        self.role = "learnplat_rehearsal"
        self.redis_url = os.environ.get("LEARNPLAT_REHEARSAL_REDIS_URL",
                                        "redis://127.0.0.1:6379/13")
        self.prefix = f"rehearsal-{uuid.uuid4().hex[:8]}"
        (tmp / "home").mkdir()

    # -- processes ---------------------------------------------------------------------------

    def start(self, args: list[str], log: str, env: dict[str, str] | None = None
              ) -> subprocess.Popen[bytes]:
        out = (self.tmp / log).open("wb")
        proc = subprocess.Popen(args, env=env or self.env, cwd=self.tmp / "home", stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def learnplat(self, *args: str) -> str:
        return subprocess.run([str(self.bindir / "learnplat"), *args], env=self.env,
                              cwd=self.tmp / "home", check=True, capture_output=True,
                              text=True).stdout

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)

    # -- the stack ---------------------------------------------------------------------------

    def setup(self) -> None:
        try:
            sql(self.admin_url, f"CREATE ROLE {self.role} LOGIN NOSUPERUSER NOBYPASSRLS")
        except psycopg2.errors.DuplicateObject:
            pass
        sql(self.admin_url, f'CREATE DATABASE "{self.db}" OWNER {self.role}')
        parsed = urlparse(self.admin_url)
        db_url = urlunparse(parsed._replace(
            netloc=f"{self.role}@{parsed.hostname}:{parsed.port or 5432}", path=f"/{self.db}"))
        s3 = free_port()
        self.start([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p",
                    str(s3)], "moto.log", env=dict(os.environ))
        wait_http(f"http://127.0.0.1:{s3}/")
        # The image's environment (config/docker/Dockerfile and compose.yaml), local addresses.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNPLAT_")}
        self.env.update({
            "LEARNPLAT_HOME": str(self.tmp / "home"),
            "LEARNPLAT_APP_SECRET_KEY": uuid.uuid4().hex * 2,
            "LEARNPLAT_DATABASE_URL": db_url,
            "LEARNPLAT_REDIS_URL": self.redis_url,
            "LEARNPLAT_REDIS_PREFIX": self.prefix,
            "LEARNPLAT_STORAGE_URL": f"s3://k:s@127.0.0.1:{s3}/learnplat?secure=false",
            "LEARNPLAT_QUEUE_EMBEDDED_WORKER": "false",
            "LEARNPLAT_SERVER_TRUSTED_PROXIES": "127.0.0.1",
            "LEARNPLAT_SERVER_WORKERS": "1",
            # One client address sends everything here: the API limits would answer 429.
            "LEARNPLAT_LIMITS_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
        })
        out = self.learnplat("migrate")
        self.figures["migrate"] = out.strip().splitlines()[-1]
        self.learnplat("tenants", "create", TENANT, "--name", "Rehearsal", "--admin-email",
                       EMAIL, "--admin-password", PASSWORD)
        self.ports = [free_port(), free_port()]
        self.servers = [self.start(
            [str(self.bindir / "learnplat"), "serve", "--no-migrate", "--bind",
             f"127.0.0.1:{port}"], f"serve{port}.log") for port in self.ports]
        self.start([str(self.bindir / "learnplat"), "worker"], "worker.log")
        for port in self.ports:
            wait_http(f"http://127.0.0.1:{port}/healthz", 90)
        # The image's HEALTHCHECK command, as the container runs it.
        check = subprocess.run([str(self.bindir / "python"), "-c",
                                "import urllib.request as u; u.urlopen("
                                f"'http://127.0.0.1:{self.ports[0]}/healthz', timeout=2)"])
        self.figures["image healthcheck exit code"] = check.returncode
        ready = requests.get(f"http://127.0.0.1:{self.ports[0]}/readyz", timeout=5)
        self.figures["readyz"] = f"{ready.status_code} {ready.json().get('checks')}"

    def nginx(self) -> str:
        """nginx with config/docker/nginx.conf (upstream: the two servers); its base URL, or
        "" without an nginx binary."""
        binary = os.environ.get("NGINX") or shutil.which("nginx")
        if not binary:
            return ""
        port = free_port()
        conf = (ROOT / "config" / "docker" / "nginx.conf").read_text()
        servers = " ".join(f"server 127.0.0.1:{p};" for p in self.ports)
        conf = conf.replace("server api:8000;", servers).replace(
            "listen 80 default_server;", f"listen 127.0.0.1:{port} default_server;")
        # Tell the drill which server holds a socket (nginx logs an upgrade only at its end).
        conf = conf.replace("location /notifications/ws {",
                            "location /notifications/ws {\n        add_header X-Upstream "
                            "$upstream_addr always;")
        prefix = self.tmp / "nginx"
        (prefix / "logs").mkdir(parents=True)
        (prefix / "site.conf").write_text(conf)
        temp = " ".join(f"{kind}_temp_path {prefix}/{kind};"
                        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (prefix / "nginx.conf").write_text(
            f"daemon off; worker_processes 1; pid {prefix}/nginx.pid;\n"
            f"error_log {prefix}/logs/error.log;\nevents {{ worker_connections 512; }}\n"
            f"http {{ {temp}\n log_format up '$status $upstream_addr';\n"
            f" access_log {prefix}/logs/access.log up;\n include {prefix}/site.conf; }}\n")
        self.start([binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf")], "nginx.log",
                   env=dict(os.environ))
        wait_http(f"http://127.0.0.1:{port}/nginx-health")
        self.access_log = prefix / "logs" / "access.log"
        return f"http://127.0.0.1:{port}"

    # -- the client --------------------------------------------------------------------------

    def run(self, front: str) -> None:
        bases = [front] if front else [f"http://127.0.0.1:{p}" for p in self.ports]
        turn = iter(range(10**9))

        def base() -> str:
            return bases[next(turn) % len(bases)]

        headers = {"X-Tenant": TENANT}
        r = requests.post(f"{base()}/auth/login", headers=headers, timeout=10,
                          json={"email": EMAIL, "password": PASSWORD})
        r.raise_for_status()
        token = r.json()["access_token"]
        auth = {**headers, "Authorization": f"Bearer {token}"}
        me = requests.get(f"{base()}/auth/profile", headers=auth, timeout=10).json()["id"]
        ws_base = bases[-1].replace("http://", "ws://")
        url = f"{ws_base}/notifications/ws?token={token}&tenant={TENANT}"
        latencies = []
        with connect(url, open_timeout=10) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "ready"
            for i in range(10):
                start = time.monotonic()
                requests.post(f"{base()}/notifications", headers=auth, timeout=10, json={
                    "title": f"t{i}", "body": "b", "user_id": me}).raise_for_status()
                assert json.loads(ws.recv(timeout=5))["title"] == f"t{i}"
                latencies.append(time.monotonic() - start)
        latencies.sort()
        self.figures["WebSocket push (10)"] = (f"median {latencies[5] * 1000:.0f} ms, "
                                               f"max {latencies[-1] * 1000:.0f} ms")
        if front:
            spread: dict[str, int] = {}
            for line in self.access_log.read_text().splitlines():
                upstream = line.split()[-1]
                spread[upstream] = spread.get(upstream, 0) + 1
            self.figures["requests per server through nginx"] = spread
            self.rolling_stop(front, url, auth)

    def rolling_stop(self, front: str, url: str, auth: dict[str, str]) -> None:
        """SIGTERM to the server holding a socket while 4 threads read and write through
        nginx."""
        stop, lock = threading.Event(), threading.Lock()
        codes: dict[object, int] = {}

        def load(k: int) -> None:
            while not stop.is_set():
                try:
                    if k % 2:
                        code: object = requests.get(f"{front}/notifications", headers=auth,
                                                    timeout=10).status_code
                    else:
                        code = requests.post(f"{front}/notifications/read-all", headers=auth,
                                             timeout=10).status_code
                except requests.RequestException as exc:
                    code = type(exc).__name__
                with lock:
                    codes[code] = codes.get(code, 0) + 1

        threads = [threading.Thread(target=load, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        with connect(url, open_timeout=10) as ws:
            json.loads(ws.recv(timeout=10))
            time.sleep(2)
            port = int(ws.response.headers["X-Upstream"].rsplit(":", 1)[1])
            victim = self.servers[self.ports.index(port)]
            start = time.monotonic()
            victim.send_signal(signal.SIGTERM)
            try:
                while True:
                    ws.recv(timeout=45)
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
                socket_closed = f"code {code} after {time.monotonic() - start:.2f} s"
            except TimeoutError:
                socket_closed = "still open after 45 s"
        victim.wait(60)
        exited = time.monotonic() - start
        time.sleep(2)
        stop.set()
        for t in threads:
            t.join()
        with connect(url, open_timeout=10) as ws:  # nginx sends it to the server that stays
            assert json.loads(ws.recv(timeout=10))["type"] == "ready"
        self.figures["rolling stop: socket"] = socket_closed
        self.figures["rolling stop: server exited after"] = f"{exited:.2f} s"
        self.figures["rolling stop: requests"] = codes

    def cleanup(self) -> None:
        self.stop_all()
        sql(self.admin_url, f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
        client = redis.Redis.from_url(self.redis_url)
        keys = list(client.scan_iter(match=f"*{self.prefix}*", count=1000))
        if keys:
            client.delete(*keys)


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="lp-rehearsal-"))
    started = time.monotonic()
    try:
        bindir = Path(sys.executable).parent if "--no-image" in sys.argv else install_image(tmp)
        drill = Drill(tmp, bindir)
        try:
            drill.setup()
            front = drill.nginx()
            drill.figures["front"] = "nginx (config/docker/nginx.conf)" if front else \
                "none (no nginx: the client alternates)"
            drill.run(front)
        finally:
            drill.cleanup()
        for key, value in drill.figures.items():
            print(f"{key}: {value}")
        print(f"took {time.monotonic() - started:.0f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
