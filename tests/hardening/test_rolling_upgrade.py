"""A rolling upgrade from the previous release to this one, as docs/deployment.md describes it,
by real processes on one database (and Redis, on PostgreSQL + Redis): the previous release's
API and worker serve a school under load; this release's `learnplat migrate` runs beside them;
the previous worker is stopped and this release's worker started; this release's API process
joins, the previous one leaves (drained by SIGTERM). Then the roll back: the previous
release serves again on the migrated database.

Checked: no request failed (every answer the one the operation expects, no connection error),
every enrollment's event delivered exactly once (each student has one "enrolled"
notification), no event left pending or failed, and events recorded by this release's
processes are handled only by this release's worker (a plugin new in this release records and
handles one of its own on each enrollment; the previous release never sees it).

The previous release is the commit named in PREVIOUS_RELEASE, taken from this clone's history
(`git archive`) and installed into a directory of its own (`pip install --no-deps --target`):
its processes run with that directory first on PYTHONPATH, and this release's dependencies.
"""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from learnplat.testing import (
    TestDatabase,
    backend,
    free_port,
    make_postgres_database,
)
from learnplat.testing import test_redis_url as redis_url_of_this_process

REPO = Path(__file__).resolve().parents[2]
# The release this one upgrades from: update it when a release is cut (docs/deployment.md,
# "Upgrades and rollback").
PREVIOUS_RELEASE = "4f7e8be001182ff897288c6d5106d4f55508f5d1"
PASSWORD = "correct horse battery staple"
STUDENTS = 60
ENROLL_EVERY = 0.25  # seconds: the enrollments span the whole upgrade

# A plugin new in this release: it records an event of its own on each enrollment and handles
# it. Installed only for this release's processes.
NEW_PLUGIN = '''
"""New in this release: an event the previous release does not know."""
import os

from learnplat import hookimpl
from learnplat.plugin import Event, EventHandler, db


class Probed(Event):
    name = "upgradeprobe.probed.v1"
    user_id: int


def on_enrolled(runtime, event):
    runtime.events.record(Probed(user_id=event.payload["user_id"]))


def on_probed(runtime, event):
    with open(os.environ["PROBE_OUT"], "a") as fh:
        fh.write(f"{event.id} {event.payload['user_id']}\\n")


@hookimpl
def register_events():
    return [Probed]


@hookimpl
def register_event_handlers():
    return [EventHandler("enrollment.created.v1", "probe", on_enrolled),
            EventHandler("upgradeprobe.probed.v1", "write", on_probed)]
'''


def _git_has(commit: str) -> bool:
    return subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{commit}^{{commit}}"],
                          capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def previous_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The previous release, installed into a directory of its own; its site directory."""
    if not _git_has(PREVIOUS_RELEASE):
        pytest.fail(f"this clone's history lacks the previous release {PREVIOUS_RELEASE[:12]} "
                    "(a shallow clone?): the upgrade test needs it")
    root = tmp_path_factory.mktemp("previous-release")
    src, site = root / "src", root / "site"
    src.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", PREVIOUS_RELEASE],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(site), str(src)],
                   check=True, capture_output=True)
    return site


@dataclass
class Deployment:
    """One school's installation: settings shared by every process of either release."""

    tmp: Path
    tdb: TestDatabase
    previous_site: Path
    probe_site: Path
    env: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        base = {k: v for k, v in os.environ.items()
                if not k.startswith("LEARNPLAT_") and k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
        var = self.tmp / "var"
        # Only settings both releases know: an unknown key stops a release at start.
        base.update({
            "LEARNPLAT_DATABASE_URL": self.tdb.url,
            "LEARNPLAT_REDIS_URL": self.tdb.redis_url,
            "LEARNPLAT_REDIS_PREFIX": f"lpupgrade-{uuid.uuid4().hex[:10]}",
            "LEARNPLAT_APP_SECRET_KEY": "rolling-upgrade-secret-" + "x" * 24,
            "LEARNPLAT_APP_VAR_DIR": str(var),
            "LEARNPLAT_APP_PUBLIC_URL": "http://localhost:8000",
            "LEARNPLAT_STORAGE_URL": f"file://{self.tmp / 'storage'}",
            "LEARNPLAT_QUEUE_SQLITE_PATH": str(var / "huey.db"),
            "LEARNPLAT_QUEUE_EMBEDDED_WORKER": "false",
            "LEARNPLAT_EVENTS_BACKOFF_SECONDS": "0.5",
            "LEARNPLAT_LIMITS_ENABLED": "false",
            "LEARNPLAT_SERVER_THREADS": "4",
            "PROBE_OUT": str(self.tmp / "probed.txt"),
        })
        self.env = base

    def _release_env(self, release: str) -> dict[str, str]:
        env = dict(self.env)
        home = self.tmp / f"home-{release}"
        home.mkdir(exist_ok=True)
        env["LEARNPLAT_HOME"] = str(home)
        if release == "previous":
            env["PYTHONPATH"] = str(self.previous_site)
        else:
            env["PYTHONPATH"] = str(self.probe_site)
        return env

    def command(self, release: str, *args: str) -> list[str]:
        # The previous release's package has no `python -m learnplat.cli`; its entry point
        # function is the same on both.
        return [sys.executable, "-c", "from learnplat.cli.main import main; main()", *args]

    def run(self, release: str, *args: str, timeout: float = 120) -> str:
        r = subprocess.run(self.command(release, *args), env=self._release_env(release),
                           cwd=self.tmp, capture_output=True, text=True, timeout=timeout)
        assert r.returncode == 0, (release, args, r.stdout[-2000:], r.stderr[-3000:])
        return r.stdout

    def start(self, release: str, *args: str, log: str) -> subprocess.Popen[bytes]:
        out = (self.tmp / log).open("ab")
        proc = subprocess.Popen(self.command(release, *args), env=self._release_env(release),
                                cwd=self.tmp, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def serve(self, release: str) -> tuple[str, subprocess.Popen[bytes]]:
        port = free_port()
        proc = self.start(release, "serve", "--no-migrate", "--bind", f"127.0.0.1:{port}",
                          "--workers", "2", log=f"serve-{release}-{port}.log")
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (self.tmp / f"serve-{release}-{port}.log").read_text()
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                    return base, proc
            assert time.monotonic() < deadline, f"{release} serve did not become ready"
            time.sleep(0.2)

    @staticmethod
    def stop(proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
        """A graceful stop, as systemd or an operator sends it: SIGTERM, then wait."""
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


@pytest.fixture
def deployment(tmp_path: Path, previous_release: Path) -> Iterator[Deployment]:
    if backend() == "postgres":
        tdb = make_postgres_database(os.environ["LEARNPLAT_TEST_DATABASE_URL"], "upgrade")
        tdb.redis_url = redis_url_of_this_process()
    else:
        (tmp_path / "db").mkdir()
        tdb = TestDatabase(url=f"sqlite:///{tmp_path / 'db' / 'learnplat.db'}")
    probe = tmp_path / "probe-site"
    probe.mkdir()
    (probe / "learnplat_upgradeprobe.py").write_text(NEW_PLUGIN)
    info = probe / "learnplat_upgradeprobe-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: learnplat-upgradeprobe\n"
                                   "Version: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[learnplat.plugins]\nupgradeprobe = learnplat_upgradeprobe\n")
    dep = Deployment(tmp_path, tdb, previous_release, probe)
    try:
        yield dep
    finally:
        dep.close()
        tdb.drop()


class Rotation:
    """The load balancer's list of API processes: requests go round robin over it."""

    def __init__(self, bases: list[str]):
        self.bases = list(bases)
        self._lock = threading.Lock()
        self._n = 0

    def next(self) -> str:
        with self._lock:
            self._n += 1
            return self.bases[self._n % len(self.bases)]

    def set(self, bases: list[str]) -> None:
        with self._lock:
            self.bases = list(bases)


@dataclass
class School:
    slug: str
    course_id: int
    admin: str
    instructor: str
    students: list[tuple[int, str]]  # (user id, token)


def _login(base: str, slug: str, email: str) -> tuple[int, str]:
    r = requests.post(f"{base}/auth/login", json={"email": email, "password": PASSWORD},
                      headers={"X-Tenant": slug}, timeout=30)
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    me = requests.get(f"{base}/auth/profile", timeout=30,
                      headers={"X-Tenant": slug, "Authorization": f"Bearer {token}"})
    return me.json()["id"], token


def make_school(dep: Deployment, base: str) -> School:
    """A school made with the previous release's CLI and API."""
    slug = f"upgrade-{uuid.uuid4().hex[:6]}"
    dep.run("previous", "tenants", "create", slug, "--name", "Upgrade School",
            "--admin-email", f"admin@{slug}.example", "--admin-password", PASSWORD)
    users = dep.tmp / "users.csv"
    with users.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["email", "name", "role", "password"])
        out.writerow([f"teacher@{slug}.example", "Teacher", "instructor", PASSWORD])
        for i in range(STUDENTS):
            out.writerow([f"s{i}@{slug}.example", f"Student {i}", "student", PASSWORD])
    dep.run("previous", "users", "import", "--tenant", slug, str(users))
    _, admin = _login(base, slug, f"admin@{slug}.example")
    _, teacher = _login(base, slug, f"teacher@{slug}.example")
    h = {"X-Tenant": slug, "Authorization": f"Bearer {teacher}"}
    r = requests.post(f"{base}/courses", json={"title": "Upgrades"}, headers=h, timeout=30)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert requests.post(f"{base}/courses/{cid}/modules", json={"title": "One"}, headers=h,
                         timeout=30).status_code == 201
    assert requests.post(f"{base}/courses/{cid}/submit", headers=h,
                         timeout=30).status_code == 200
    assert requests.post(f"{base}/courses/{cid}/approve", timeout=30,
                         headers={"X-Tenant": slug, "Authorization": f"Bearer {admin}"}
                         ).status_code == 200
    students = [_login(base, slug, f"s{i}@{slug}.example") for i in range(STUDENTS)]
    return School(slug, cid, admin, teacher, students)


@dataclass
class Outcome:
    op: str
    status: int
    base: str
    error: str = ""
    key: Any = None


class Load:
    """Client threads: each enrolls its share of the students one by one (spread over the
    run), and reads the catalogue and the course page between enrollments."""

    def __init__(self, school: School, rotation: Rotation, threads: int = 4):
        self.school, self.rotation = school, rotation
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pending = list(school.students)
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Load:
        self._started = time.monotonic()
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)

    def _take(self) -> tuple[int, str] | None:
        """The next student to enroll, once their turn has come: enrollments are spread
        evenly over the whole upgrade, so each stage records some."""
        with self._lock:
            if not self._pending:
                return None
            turn = STUDENTS - len(self._pending)
            if time.monotonic() < self._started + turn * ENROLL_EVERY:
                return None
            return self._pending.pop()

    def _send(self, http: requests.Session, op: str, method: str, path: str, token: str,
              expect: tuple[int, ...], key: Any = None) -> None:
        base = self.rotation.next()
        headers = {"X-Tenant": self.school.slug, "Authorization": f"Bearer {token}"}
        try:
            r = http.request(method, base + path, headers=headers, timeout=30)
            outcome = Outcome(op, r.status_code, base,
                              "" if r.status_code in expect else r.text[:300], key)
        except requests.RequestException as exc:
            outcome = Outcome(op, 0, base, repr(exc), key)
        with self._lock:
            self.outcomes.append(outcome)

    def _run(self) -> None:
        http = requests.Session()
        cid = self.school.course_id
        reader = self.school.students[0][1]
        while not self._stop.is_set():
            self._send(http, "catalogue", "GET", "/courses?limit=5", reader, (200,))
            self._send(http, "course", "GET", f"/courses/{cid}", reader, (200,))
            student = self._take()
            if student is not None:
                self._send(http, "enroll", "POST", f"/courses/{cid}/enroll", student[1],
                           (201,), key=student[0])
            time.sleep(0.05)

    def failures(self) -> list[Outcome]:
        with self._lock:
            return [o for o in self.outcomes if o.error or o.status == 0]


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.3)


def test_a_rolling_upgrade_loses_no_request_and_no_event(deployment: Deployment) -> None:
    dep = deployment
    dep.run("previous", "migrate")
    old_base, old_serve = dep.serve("previous")
    old_worker = dep.start("previous", "worker", log="worker-previous.log")
    school = make_school(dep, old_base)
    rotation = Rotation([old_base])

    with Load(school, rotation) as load:
        time.sleep(2)
        # 1. This release's migrations, while the previous release serves (they only add).
        dep.run("current", "migrate")
        time.sleep(1)
        # 2. Workers first: the previous worker finishes its task and stops; this release's
        # takes over the queue, so no event this release records meets the previous worker.
        dep.stop(old_worker)
        dep.start("current", "worker", log="worker-current.log")
        # 3. API processes, one at a time: the new one joins, the old one leaves and drains.
        new_base, _ = dep.serve("current")
        rotation.set([old_base, new_base])
        time.sleep(2)
        rotation.set([new_base])
        time.sleep(0.5)
        dep.stop(old_serve)
        time.sleep(2)
        _wait(lambda: not load._pending, 60, "every student enrolled")
    failures = load.failures()
    assert not failures, [(f.op, f.base, f.status, f.error) for f in failures[:5]]
    served = {o.base for o in load.outcomes}
    assert served == {old_base, new_base}, served
    enrolled = [o.key for o in load.outcomes if o.op == "enroll" and o.status == 201]
    assert sorted(enrolled) == sorted(uid for uid, _ in school.students)

    # Every enrollment's event delivered exactly once, by whichever worker ran at the time.
    def notified() -> dict[int, int]:
        counts = {}
        for uid, token in school.students:
            r = requests.get(f"{new_base}/notifications?limit=100", timeout=30,
                             headers={"X-Tenant": school.slug,
                                      "Authorization": f"Bearer {token}"})
            assert r.status_code == 200, r.text
            counts[uid] = sum(1 for n in r.json()["items"] if n["kind"] == "enrolled")
        return counts

    _wait(lambda: all(n >= 1 for n in notified().values()), 60, "every enrollment notified")
    assert set(notified().values()) == {1}
    status = dep.run("current", "events", "deliveries", "--tenant", school.slug,
                     "--status", "pending", "--status", "failed", "--json")
    assert status.strip() in ("[]", ""), status
    # This release's own event: recorded by this release's processes only (its handler runs
    # in this release's worker, for enrollments it dispatched), handled exactly once each.
    probed_path = Path(dep.env["PROBE_OUT"])
    probed = [line.split()[1] for line in probed_path.read_text().splitlines()] \
        if probed_path.exists() else []
    assert probed, "this release's worker handled no enrollment"
    assert len(probed) == len(set(probed))

    # Roll back: the previous release serves again on the migrated database, reads and writes.
    back_base, _ = dep.serve("previous")
    h = {"X-Tenant": school.slug, "Authorization": f"Bearer {school.instructor}"}
    assert requests.get(f"{back_base}/courses/{school.course_id}", headers=h,
                        timeout=30).status_code == 200
    r = requests.post(f"{back_base}/courses", json={"title": "After the roll back"},
                      headers=h, timeout=30)
    assert r.status_code == 201, r.text


def _migrations_since(commit: str) -> list[Path]:
    out = subprocess.run(["git", "-C", str(REPO), "diff", "--name-only", "--diff-filter=AM",
                          commit, "--", "*/migrations/*.py"],
                         capture_output=True, text=True, check=True).stdout
    tracked_new = subprocess.run(["git", "-C", str(REPO), "ls-files", "--others",
                                  "--exclude-standard", "--", "*/migrations/*.py"],
                                 capture_output=True, text=True, check=True).stdout
    return [REPO / p for p in {*out.split(), *tracked_new.split()} if (REPO / p).is_file()]


def test_this_releases_migrations_only_expand_the_schema() -> None:
    """What lets the previous release serve beside this one's migrations (and a roll back):
    no migration added since the previous release removes, renames or retypes anything
    (learnplat.upgrades)."""
    from learnplat.upgrades import contracting_operations

    if not _git_has(PREVIOUS_RELEASE):
        pytest.fail(f"this clone's history lacks the previous release {PREVIOUS_RELEASE[:12]}")
    found = {str(p.relative_to(REPO)): ops for p in _migrations_since(PREVIOUS_RELEASE)
             if (ops := contracting_operations(p.read_text()))}
    assert not found, found


def test_the_expand_only_check_sees_contracting_migrations() -> None:
    from learnplat.upgrades import contracting_operations

    contracting = '''
from playhouse.migrate import migrate

def up(migrator, db):
    migrate(migrator.add_column("t", "c", IntegerField(default=0)),
            migrator.drop_column("t", "old"),
            migrator.rename_column("t", "a", "b"),
            migrator.add_not_null("t", "d"))
    db.execute_sql("ALTER TABLE t ALTER COLUMN x TYPE bigint")
    migrate(migrator.drop_column("t", "gone"))  # learnplat: contracts unused since 0.2
    db.execute_sql("CREATE INDEX t_c ON t (c)")

def down(migrator, db):
    migrate(migrator.drop_column("t", "c"))
'''
    found = contracting_operations(contracting)
    assert [f.split(":")[0] for f in found] == ["line 6", "line 7", "line 8", "line 9"], found
