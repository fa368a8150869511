"""A rolling restart loses no request (issue 34, item 5): two real `learnplat serve` processes
(gunicorn, two workers each) behind a real nginx running config/nginx/learnplat.conf, client
threads creating courses (POST) and reading them (GET) through nginx the whole time, while
each process in turn gets SIGTERM (what `systemctl restart learnplat@PORT` sends), is waited
for, started again and waited ready, and then the next one at once, as docs/deployment.md
("Rolling restart") says. Every request must succeed and every POST be applied exactly once.

As with config/systemd/learnplat@.socket, the listening socket is not the process's: the test
holds it (systemd's part) and hands it to each start (LISTEN_FDS). gunicorn stops accepting on
SIGTERM and finishes what it has; connections that arrive meanwhile wait in the socket's queue
for the next process. Without that, the socket closes with the process: nginx's connections
are then refused and retried on the other process (safe for any method, the request never
left nginx), but one that the kernel had queued at the instant the socket closed is reset
after nginx sent its request, and a POST cannot be retried: a 502 seen once in about six runs
here. With nginx's default max_fails/fail_timeout (the example the docs had before), a
restart within 10 s of the other one's made nginx give up on both: 502s in one of two runs.

PostgreSQL + Redis only: two processes on one machine is that shape (docs/deployment.md); the
SQLite shape is one `learnplat serve`, whose restart has nowhere to send requests meanwhile."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests
from deployhelpers import Nginx, client, nginx_binary, running_nginx, servers, write_nginx

from learnplat import db
from learnplat.tenancy import tenant_context
from learnplat.testing import backend

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(nginx_binary() is None, reason="no nginx binary (.ci/run installs it)"),
    pytest.mark.skipif(backend() != "postgres", reason="two processes behind nginx is the "
                       "PostgreSQL + Redis shape; on SQLite one `learnplat serve` serves"),
]

CLIENTS = 6


class Load:
    """Client threads through nginx until stopped: each creates a course (a unique title),
    reads it back and reads the catalogue, recording every outcome."""

    def __init__(self, nginx: Nginx, tenant: str, token: str):
        self.nginx, self.tenant, self.token = nginx, tenant, token
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.outcomes: Counter[str] = Counter()
        self.failures: list[str] = []
        self.created: list[str] = []  # titles answered 201
        self.threads = [threading.Thread(target=self.run, args=(n,)) for n in range(CLIENTS)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)

    def record(self, method: str, path: str, outcome: int | str, started: float) -> None:
        with self.lock:
            self.outcomes[f"{method} {outcome}"] += 1
            if not isinstance(outcome, int) or outcome >= 400:
                self.failures.append(f"{method} {path}: {outcome} at "
                                     f"{time.monotonic() - started:.1f} s")

    def call(self, session: requests.Session, method: str, path: str, started: float,
             **kw: Any) -> requests.Response | None:
        try:
            r = session.request(method, f"{self.nginx.https}{path}", timeout=60, **kw)
        except requests.RequestException as exc:
            self.record(method, path, type(exc).__name__, started)
            return None
        self.record(method, path, r.status_code, started)
        return r

    def run(self, n: int) -> None:
        session = client(self.nginx, self.tenant)
        session.headers["Authorization"] = f"Bearer {self.token}"
        started, i = time.monotonic(), 0
        while not self.stop.is_set():
            i += 1
            title = f"Rolling {n}-{i}"
            r = self.call(session, "POST", "/courses", started, json={"title": title})
            if r is not None and r.status_code == 201:
                with self.lock:
                    self.created.append(title)
                self.call(session, "GET", f"/courses/{r.json()['id']}", started)
            self.call(session, "GET", "/courses?limit=5", started)


def test_a_rolling_restart_behind_nginx_loses_no_request(lp_runtime: Any, lp_database: Any,
                                                         lp_users: Any, lp_tenant: Any,
                                                         tmp_path: Path) -> None:
    from learnplat_courses.models import Course

    teacher = lp_users.make("instructor")
    with servers(lp_runtime, lp_database, tmp_path, {}, workers=2) as pair:
        nginx = write_nginx(tmp_path, (pair[0].port, pair[1].port))
        with running_nginx(nginx), Load(nginx, lp_tenant.slug, teacher.token) as load:
            time.sleep(1.5)  # steady traffic on both processes first
            before = sum(load.outcomes.values())
            restart_started = time.monotonic()
            for server in pair:
                assert server.stop() == 0, server.log_tail()  # a clean exit, not a kill
                server.start()
                server.wait_healthy()
            restart_seconds = time.monotonic() - restart_started
            time.sleep(1.5)  # both serve again
        during = sum(load.outcomes.values()) - before
        upstreams = nginx.upstreams()

    retried = [u for u in upstreams if "," in u]  # "A, B": A refused, B answered
    print(f"\nrolling restart: {sum(load.outcomes.values())} requests "
          f"({during} while restarting, {restart_seconds:.1f} s), {dict(load.outcomes)}; "
          f"retried on the other process: {len(retried)}; stop (SIGTERM to exit): "
          f"{[f'{s:.1f}' for srv in pair for s in srv.stop_seconds]} s; start to ready: "
          f"{[f'{s:.1f}' for srv in pair for s in srv.start_seconds[1:]]} s")
    assert load.failures == [], load.failures[:20]
    assert during > 100, load.outcomes  # the load really ran through both restarts
    # nginx sent requests to both ports and had to go round a stopped one.
    ports = {u.rsplit(":", 1)[1] for u in upstreams if u != "-" and "," not in u}
    assert ports == {str(pair[0].port), str(pair[1].port)}
    # Every POST answered 201 was applied once, and none that was not answered was applied.
    with db.connection(), tenant_context(lp_tenant), db.transaction():  # RLS: per transaction
        titles = Counter(c.title for c in Course.select(Course.title)
                         if c.title.startswith("Rolling "))
    assert [t for t, count in titles.items() if count > 1] == []
    assert sorted(titles) == sorted(load.created)
