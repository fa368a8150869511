"""Every command, as an operator runs it: a real `learnplat` process from a fresh home.

The commands are found by walking the click group the way `learnplat --help` shows it (the
core's and every installed plugin's, each group's subcommands) and checked against the
contract's list (shared/API.md section 2). Each must have its arguments in RUNS below, so a new
command without an entry fails `test_every_command_has_a_run`. The session runs them in
order on the current backend (SQLite by default, with nothing configured but the home;
PostgreSQL + Redis with LEARNPLAT_TEST_BACKEND=postgres), from a working directory holding a
folder named `learnplat/` that would shadow the package if anything put the current directory
on sys.path (a checkout seen from its parent). `serve` and `worker` are started, asked
(/healthz, a course made over HTTP; a task executed) and stopped.

What used to slip through: tests that invoked commands in-process with a runtime already built
never saw `learnplat tenants list` fail on a fresh home with "'NoneType' object has no
attribute 'connect'" (issue 24).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
import requests
from click.testing import CliRunner
from corehelpers import REPO, fresh_database

from learnplat.testing import backend, forget_redis_keys, free_port

LEARNPLAT = Path(sys.executable).with_name("learnplat")  # the console script pip installed
API_MD = REPO.parent / "shared" / "API.md"
PASSWORD = "correct horse battery"

# shared/API.md section 2, as of this writing (compared with the file when it is there).
CONTRACT = {"migrate", "tenants create", "tenants list", "tenants show", "tenants disable",
            "tenants enable", "users create", "users import", "users set-role", "plugins list",
            "serve", "worker", "openapi"}

# The phases of a session, in order; the runs of one phase may go in parallel.
PHASES = ("fresh", "migrate", "setup", "served", "main", "after", "last")
SEQUENTIAL = ("fresh", "migrate", "setup")


@dataclass(frozen=True)
class Run:
    """One invocation: arguments after the command's path ({name} fields are filled from the
    session: {tmp}, {course}, {certificate}...), the exit status, and regexes that stdout and
    stderr must match (re.M: ^ and $ are lines)."""
    phase: str
    args: tuple[str, ...] = ()
    code: int = 0
    out: str = ""
    err: str = ""
    keep: dict[str, str] = field(default_factory=dict)  # fact name -> regex group on stdout


def run(phase: str, *args: str, code: int = 0, out: str = "", err: str = "",
        keep: dict[str, str] | None = None) -> Run:
    return Run(phase, args, code, out, err, keep or {})


T = ("--tenant", "demo")
# Command path -> its runs. serve and worker are long-running: started and stopped by
# `served` and `worker_runs` below (their entries say in which phase).
RUNS: dict[str, list[Run]] = {
    "config": [run("fresh", out=r"^home: {home} \(LEARNPLAT_HOME\)$")],
    # The reported bug: before any migration, one clear line, not an AttributeError.
    "tenants list": [run("fresh", code=1, err=r"^error: database: .*run `learnplat migrate`"),
                     run("main", out=r"^demo\tDemo School\tenabled\tdemo\.localhost$"),
                     run("main", "--json", out=r'"slug": "second"')],
    "permissions list": [run("fresh", "--json", out=r'"name": "quiz\.take"')],
    "events list": [run("fresh", out=r"^course\.\S+\.v1 ")],
    "openapi": [run("fresh", out=r'"openapi": "3\.1')],
    "plugins new": [run("fresh", "shelf", "--dir", "{tmp}/learnplat-shelf", "--model", "Book",
                        out=r"^wrote \d+ files in ")],
    "migrate": [run("migrate", out=r"^applied shelf:0001_initial$")],
    "tenants create": [run("setup", "demo", "--name", "Demo School", "--domain",
                           "demo.localhost", "--admin-email", "boss@demo.example",
                           # Not --admin-password: ps and shell history would show it (issue
                           # 34); tests/core/test_core_passwords_cli.py has the prompt, stdin.
                           "--admin-password-file", "{tmp}/password.txt",
                           out=r"^created tenant demo ")],
    "tenants apply": [run("setup", "{tmp}/tenants", out=r"^created second$")],
    "users create": [run("setup", *T, "--email", "kid@demo.example", "--password", PASSWORD,
                         "--role", "student", out=r"^created student kid@demo\.example")],
    "users import": [run("setup", *T, "{tmp}/users.csv", out=r"^imported 2 user\(s\); 0 row")],
    # A webhook endpoint on loopback (the session's settings allow it), used by the runs after.
    "webhooks endpoints create": [run("setup", *T, "--url", "http://127.0.0.1:9/hook",
                                      "--event-type", "enrollment.*", "--json",
                                      out=r'"secret": "whsec_[A-Za-z0-9+/=]{32,}"',
                                      keep={"endpoint": r'"id": (\d+)'})],
    "webhooks endpoints list": [run("main", *T,
                                    out=r"^{endpoint}\tenabled\thttp://127\.0\.0\.1:9/hook\t")],
    "webhooks endpoints show": [run("main", *T, "{endpoint}", "--json",
                                    out=r'"event_types": \[\s*"enrollment\.\*"')],
    "webhooks endpoints rotate-secret": [run("main", *T, "{endpoint}", "--overlap-hours", "1",
                                             out=r"^secret\twhsec_")],
    "webhooks deliveries list": [run("main", *T, "--endpoint", "{endpoint}", "--json",
                                     out=r"^\[")],
    "webhooks deliveries show": [run("main", *T, "999999", code=1,
                                     err=r"^error: .*no such delivery")],
    # Events are delivered by the worker (phase "last"): nothing to send again before.
    "webhooks redeliver": [run("main", *T, "--endpoint", "{endpoint}", "--since",
                               "2020-01-01T00:00:00Z", "--status", "any",
                               out=r"^0 deliveries queued again$")],
    "webhooks endpoints update": [run("after", *T, "{endpoint}", "--disable",
                                      out=r"^{endpoint}\tdisabled \(disabled by an admin\)")],
    "webhooks endpoints delete": [run("last", *T, "{endpoint}",
                                      out=r"^endpoint {endpoint} deleted$")],
    # A learning record store on loopback (nothing listens on port 9: statements wait).
    "xapi configure": [run("setup", *T, "--endpoint", "http://127.0.0.1:9/xapi", "--key",
                           "lrs-key", "--secret", "lrs-secret", "--actor", "mbox_sha1sum",
                           out=r"^endpoint\thttp://127\.0\.0\.1:9/xapi$")],
    "xapi show": [run("main", *T, "--json", out=r'"actor": "mbox_sha1sum"')],
    "xapi statements": [run("main", *T, "--json", out=r"^\[")],
    "xapi redeliver": [run("main", *T, "--since", "2020-01-01T00:00:00", "--until",
                           "2030-01-01T00:00:00", out=r"^0 statements queued again$")],
    "xapi disable": [run("after", *T, out=r"^disabled$")],
    # LTI: the school's addresses; an LMS registered (its URLs on loopback: nothing is
    # fetched by these commands) and shown, listed, switched off, removed.
    "lti urls": [run("main", *T, out=r"^  login_url +http://\S+/lti/schools/demo/tool/login$")],
    "lti rotate-key": [run("after", *T, out=r"^demo-lti-[0-9a-f]{12}$")],
    "lti platforms add": [run("setup", *T, "--name", "Demo LMS", "--issuer",
                              "https://lms.demo.example", "--client-id", "lms-client",
                              "--deployment-id", "dep-1", "--auth-login-url",
                              "http://127.0.0.1:9/auth", "--token-url", "http://127.0.0.1:9/token",
                              "--jwks-url", "http://127.0.0.1:9/jwks", "--json",
                              out=r'"launch_url": "http://\S+/lti/schools/demo/tool/launch"',
                              keep={"platform": r'"id": (\d+)'})],
    "lti platforms list": [run("main", *T, out=r"^{platform}\tenabled\tDemo LMS\t"
                                               r"https://lms\.demo\.example\tlms-client\tdep-1$")],
    "lti platforms show": [run("main", *T, "{platform}", "--json",
                               out=r'"client_id": "lms-client"')],
    "lti platforms update": [run("after", *T, "{platform}", "--disabled", "--deployment-id",
                                 "dep-1", "--deployment-id", "dep-2", "--json",
                                 out=r'"enabled": false')],
    "lti platforms remove": [run("last", *T, "{platform}", out=r"^platform {platform} removed$")],
    "lti tools add": [run("setup", *T, "--name", "Demo lab", "--login-url",
                          "http://127.0.0.1:9/login", "--launch-url", "http://127.0.0.1:9/launch",
                          "--jwks-url", "http://127.0.0.1:9/jwks", "--custom", "lab=$Context.id",
                          "--no-send-email", "--json",
                          out=r'"authorization_url": "http://\S+/lti/schools/demo/platform/auth"',
                          keep={"tool": r'"id": (\d+)'})],
    "lti tools list": [run("main", *T, out=r"^{tool}\tenabled\tDemo lab\t\S+\t"
                                           r"http://127\.0\.0\.1:9/launch$")],
    "lti tools show": [run("main", *T, "{tool}", "--json", out=r'"send_email": false')],
    "lti tools update": [run("after", *T, "{tool}", "--disabled", "--json",
                             out=r'"enabled": false')],
    "lti tools remove": [run("last", *T, "{tool}", out=r"^tool {tool} removed$")],
    "lti scores": [run("main", *T, "--course", "{course}", "--json", out=r"^\[")],
    "lti passbacks list": [run("main", *T, "--json", out=r"^\[")],
    "lti passbacks show": [run("main", *T, "999999", code=1, err=r"^error: ")],
    "lti passbacks redeliver": [run("main", *T, "999999", code=1, err=r"^error: ")],
    "serve": [run("served")],
    "users list": [run("main", *T, "--json", out=r'"email": "kid@demo\.example"')],
    "users set-role": [run("main", *T, "learner@demo.example", "instructor",
                           out=r"^learner@demo\.example is now instructor$")],
    "users unlock": [run("main", *T, "kid@demo.example", out=r"^unlocked kid@demo\.example$")],
    "audit list": [run("main", *T, out=r"login\.succeeded")],
    "keys rotate": [run("main", *T, out=r"^new signing key ")],
    "tenants show": [run("main", "demo", out=r'"limits": \{')],
    # A demo data set, every plugin's part (tests/core/test_core_seeding.py reads one back).
    "tenants seed": [run("main", "second", "--size", "users=12", "--size", "courses=2",
                         "--size", "enrollments=6", "--size", "colour=red",
                         "--login-password-file", "{tmp}/password.txt", "--json",
                         out=r'^  "rows": \{(.|\n)*"courses": 2,(.|\n)*"users": 12',
                         err=r"^warning: no plugin reads the size colour$"),
                     run("main", "second", "--size", "users", code=1, err=r"NAME=VALUE"),
                     run("main", "second", "--size", "login_password=hunter2", code=1,
                         err=r"--login-password-file")],
    "plugins list": [run("main", "--tenant", "second", out=r"^progress\t.*\tdisabled$")],
    "tasks list": [run("main", "--json", out=r'"name": "shelf\.count_books"')],
    # The task's own log line (issue 24, item 12) on stderr, its result on stdout.
    "tasks run": [run("main", "shelf.count_books", *T, out=r"^ran shelf\.count_books in demo: 0$",
                      err=r"^\S+ \S+ INFO learnplat_shelf\.tasks \[- - demo\] 0 books in this "
                          r"school$")],
    "makemigrations": [run("main", "shelf",
                           out=r"^models match the database; nothing to write$")],
    "media check": [run("main", *T, out=r"^0 stored objects, 0 media rows$")],
    "enrollments import": [run("main", *T, "--course", "{course}", "{tmp}/enroll.csv",
                               out=r"^1 created, 0 reactivated, 0 existing, 0 rejected$")],
    "certificates issue": [run("main", *T, "--course", "{course}", "--user", "kid@demo.example",
                               "--force", "--json", out=r'"status": "issued"',
                               keep={"certificate": r'"id": "([^"]+)"'})],
    "certificates rotate-key": [run("main", *T, out=r"\S")],
    "secrets check": [run("main", out=r"key\(s\) at rest, all encrypted with app\.secret_key$")],
    "secrets reencrypt": [run("after", out=r"^0 of \d+ key\(s\) re-encrypted with app\.secret")],
    "events deliveries": [run("main", "--tenant", "demo", "--json", out=r"^\[")],
    "enrollments list": [run("after", *T, "--course", "{course}",
                             out=r"\tkid@demo\.example\tactive\t")],
    "certificates list": [run("after", *T, "--json", out=r'"status": "issued"')],
    "certificates regenerate": [run("after", *T, "--course", "{course}",
                                    out=r"^job \d+: 1 certificates queued")],
    "tenants disable": [run("after", "second", out=r"^disabled second$")],
    "events redeliver": [run("after", "--failed", out=r"^no failed deliveries$")],
    "certificates revoke": [run("last", *T, "{certificate}", "--reason", "issued in a test",
                                out=r"\trevoked$")],
    "users deactivate": [run("last", *T, "learner@demo.example",
                             out=r"^deactivated learner@demo\.example$")],
    "tenants enable": [run("last", "second", out=r"^enabled second$")],
    # On PostgreSQL the session has no backup role: `create` must be refused as the RLS-bound
    # application role (issue 34), leaving no archive to verify. A real restore into a fresh
    # database is tests/core/test_core_backup.py's.
    "backup setup-role": [run("fresh", "--role", "lp_backup", "--no-password",
                              out=r"^CREATE ROLE lp_backup LOGIN BYPASSRLS ")],
    "backup create": [run("after", "--output", "{tmp}/nightly.tar", code=1,
                          err=r"would hold none of the schools' rows")
                      if backend() == "postgres" else
                      run("after", "--output", "{tmp}/nightly.tar",
                          out=r"^wrote \S+nightly\.tar: .*every table's rows match")],
    "backup verify": [run("last", "{tmp}/users.csv", code=1, err=r"cannot read the archive")
                      if backend() == "postgres" else
                      run("last", "{tmp}/nightly.tar", out=r"^ok \S+nightly\.tar: \d+ tables")],
    "backup restore": [run("last", "{tmp}/users.csv", "--into", "sqlite:///{tmp}/restored.db",
                           code=1, err=r"^error: \S+users\.csv: cannot read the archive")],
    "worker": [run("last")],
}


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[str]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from command_paths(command, (*prefix, name))
        else:
            yield " ".join((*prefix, name))


@pytest.fixture(scope="module")
def cli() -> click.Group:
    """The `learnplat` group as its console script builds it: core and installed plugins."""
    from learnplat.cli import core_commands  # noqa: F401  (registers the core's commands)
    from learnplat.cli.main import _load_plugin_commands, cli

    _load_plugin_commands(cli)
    return cli


def contract_commands(text: str) -> set[str]:
    """The commands section 2 of API.md lists (`tenants list | show SLUG | ...` is four)."""
    section = text.split("## 2.", 1)[1].split("\n## ", 1)[0]
    found = set()
    for line in section.splitlines():
        if not line.startswith("    learnplat "):
            continue
        words = line.split("#")[0].split()[1:]
        group = words[0]
        for i, alternative in enumerate(" ".join(words).split(" | ")):
            parts = alternative.split()
            if i:
                parts = [group, *parts]
            path = [w for w in parts[:2] if re.fullmatch(r"[a-z][a-z-]*", w)]
            found.add(" ".join(path))
    return found


def test_every_command_has_a_run(cli: click.Group) -> None:
    commands = set(command_paths(cli))
    missing = sorted(commands - set(RUNS))
    assert not missing, f"add the arguments of {missing} to RUNS in {Path(__file__).name}"
    assert not set(RUNS) - commands, "RUNS names commands that no longer exist"
    assert CONTRACT <= commands
    if API_MD.exists():  # beside the checkout in the project's workspace, not in a clone
        assert contract_commands(API_MD.read_text()) == CONTRACT


def test_every_command_has_help(cli: click.Group) -> None:
    for path in ["", *sorted({p.rsplit(" ", 1)[0] for p in RUNS if " " in p}), *RUNS]:
        result = CliRunner().invoke(cli, [*path.split(), "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, (path, result.output)


# -- the session --------------------------------------------------------------------------------


class Session:
    """A fresh home, its environment, and what earlier commands made (ids)."""

    def __init__(self, tmp: Path, database_url: str | None, redis_url: str):
        self.tmp = tmp
        self.home = tmp / "home"
        self.home.mkdir()
        # The working directory: a folder named learnplat/ that is not the package.
        self.cwd = tmp / "work"
        (self.cwd / "learnplat").mkdir(parents=True)
        (self.cwd / "learnplat" / "__init__.py").write_text(
            'raise ImportError("the current directory was put on sys.path")\n')
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("LEARNPLAT_", "XDG_", "PYTHON"))}
        self.env.update(HOME=str(tmp / "user"), LEARNPLAT_HOME=str(self.home),
                        # A host name for the credentials certificates issue.
                        LEARNPLAT_APP_PUBLIC_URL="http://learnplat.test",
                        # Webhook endpoints on loopback over http (docs/webhooks.md, "SSRF").
                        LEARNPLAT_OUTBOUND_ALLOWED_NETWORKS="127.0.0.0/8",
                        LEARNPLAT_OUTBOUND_REQUIRE_HTTPS="false")
        self.prefix = f"lptest-cli-{os.getpid()}-{int(time.time() * 1000) % 10**8}"
        if database_url:  # SQLite: nothing set, the home's var/learnplat.db
            # PostgreSQL counts as production, where `serve` refuses an empty secret.
            self.env.update(LEARNPLAT_DATABASE_URL=database_url, LEARNPLAT_REDIS_URL=redis_url,
                            LEARNPLAT_REDIS_PREFIX=self.prefix,
                            LEARNPLAT_APP_SECRET_KEY="cli-session-secret-of-32-characters!")
        self.facts: dict[str, str] = {"tmp": str(tmp), "home": re.escape(str(self.home))}
        self.ran: set[str] = set()
        self.failures: list[str] = []

    def fill(self, text: str) -> str:
        """{name} replaced by the fact of that name; any other brace (a regex's) left alone."""
        return re.sub(r"\{(\w+)\}", lambda m: self.facts.get(m.group(1), m.group(0)), text)

    def learnplat(self, args: list[str], timeout: float = 120
                  ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(LEARNPLAT), *args], env=self.env, cwd=self.cwd,
                              capture_output=True, text=True, timeout=timeout)

    def check(self, path: str, spec: Run) -> None:
        args = [*path.split(), *(self.fill(a) for a in spec.args)]
        r = self.learnplat(args)
        shown = f"learnplat {' '.join(args)} -> {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr}"
        problems = []
        if r.returncode != spec.code:
            problems.append(f"exit {r.returncode}, expected {spec.code}")
        for name, pattern, text in (("stdout", spec.out, r.stdout),
                                    ("stderr", spec.err, r.stderr)):
            if pattern and not re.search(self.fill(pattern), text, re.M):
                problems.append(f"{name} does not match {pattern!r}")
        if "unexpected" in r.stderr or "Traceback" in r.stderr:
            problems.append("an unexpected error")
        if r.returncode and len(re.findall(r"^error: ", r.stderr, re.M)) != 1:
            problems.append("not one error line")
        for name, pattern in spec.keep.items():
            if found := re.search(pattern, r.stdout):
                self.facts[name] = found.group(1)
        if problems:
            self.failures.append(f"{'; '.join(problems)}: {shown}")
        self.ran.add(path)


def install_scaffold(session: Session) -> None:
    """Make the plugin `learnplat plugins new` wrote importable with its entry point, as
    `pip install` would (a .dist-info beside it, on PYTHONPATH), for the commands after."""
    src = session.tmp / "learnplat-shelf"
    info = src / "learnplat_shelf-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: learnplat-shelf\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[learnplat.plugins]\nshelf = learnplat_shelf.plugin:ShelfPlugin\n")
    session.env["PYTHONPATH"] = str(src)


def write_inputs(tmp: Path) -> None:
    (tmp / "tenants").mkdir()
    (tmp / "tenants" / "second.toml").write_text(
        'name = "Second School"\ndomains = ["second.localhost"]\n'
        'disabled_plugins = ["progress"]\n')
    (tmp / "users.csv").write_text(f"email,name,role,password\n"
                                   f"teacher@demo.example,Teacher,instructor,{PASSWORD}\n"
                                   f"learner@demo.example,Learner,student,{PASSWORD}\n")
    (tmp / "enroll.csv").write_text("email\nkid@demo.example\n")
    (tmp / "password.txt").write_text(f"{PASSWORD}\n")


def wait_for(url: str, proc: subprocess.Popen[str], seconds: float = 60) -> requests.Response:
    deadline = time.monotonic() + seconds
    while True:
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        try:
            r = requests.get(url, timeout=5)
            if r.status_code == 200:
                return r
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer"
        time.sleep(0.2)


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> str:
    """Stop a process group we started; its output."""
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    return out


def served(session: Session) -> None:
    """`learnplat serve` from the shadowing directory: it answers, and an admin makes and
    publishes a course over HTTP (the course the later commands use)."""
    port = free_port()
    env = {**session.env, "LEARNPLAT_QUEUE_EMBEDDED_WORKER": "false"}  # `worker` is tested
    proc = subprocess.Popen([str(LEARNPLAT), "serve", "--bind", f"127.0.0.1:{port}",
                             "--workers", "1"], env=env, cwd=session.cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(f"{base}/healthz", proc).json() == {"status": "ok"}
        ready = requests.get(f"{base}/readyz", timeout=10)
        assert ready.status_code == 200 and set(ready.json()["checks"].values()) == {"ok"}
        def signed_in(email: str) -> dict[str, str]:
            r = requests.post(f"{base}/auth/login", headers={"X-Tenant": "demo"}, timeout=10,
                              json={"email": email, "password": PASSWORD})
            assert r.status_code == 200, r.text
            return {"X-Tenant": "demo", "Authorization": f"Bearer {r.json()['access_token']}"}

        # An instructor (imported by `users import`) writes it, the admin approves it.
        teacher, admin = signed_in("teacher@demo.example"), signed_in("boss@demo.example")
        r = requests.post(f"{base}/courses", headers=teacher, json={"title": "Algebra"},
                          timeout=10)
        assert r.status_code == 201, r.text
        course = r.json()["id"]
        for step, who in (("submit", teacher), ("approve", admin)):
            r = requests.post(f"{base}/courses/{course}/{step}", headers=who, json={},
                              timeout=10)
            assert r.status_code == 200, r.text
        session.facts["course"] = str(course)
    finally:
        out = stop(proc)
    assert proc.returncode == 0, out[-3000:]
    session.ran.add("serve")


def worker_runs(session: Session) -> None:
    """`learnplat worker` from the shadowing directory executes tasks (those it queues at
    start), then stops on SIGINT."""
    proc = subprocess.Popen([str(LEARNPLAT), "worker", "--workers", "1"], env=session.env,
                            cwd=session.cwd, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        for line in proc.stdout:  # the worker logs on stderr (merged here)
            lines.append(line)
            if re.search(r"learnplat\.dispatch_events: \S+ executed in", line):
                break
            assert time.monotonic() < deadline, "".join(lines)[-3000:]
    finally:
        out = stop(proc, signal.SIGINT)
    assert any("executed in" in line for line in lines), "".join(lines)[-3000:] + out
    session.ran.add("worker")


@pytest.mark.e2e
def test_every_command_as_a_process_from_a_fresh_home(tmp_path: Path, cli: click.Group
                                                      ) -> None:
    if backend() == "postgres":
        tdb = fresh_database(tmp_path / "db", "cli")
        database_url, redis_url = tdb.url, tdb.redis_url
    else:
        tdb, database_url, redis_url = None, None, ""
    session = Session(tmp_path, database_url, redis_url)
    write_inputs(tmp_path)
    try:
        # `learnplat --help` lists what the walk found (before the scaffold adds its command).
        r = session.learnplat(["--help"])
        listed = set(re.findall(r"^  ([a-z][a-z-]*)  ", r.stdout.split("Commands:")[1], re.M))
        assert r.returncode == 0 and listed == set(cli.commands), r.stdout
        for phase in PHASES:
            runs = [(path, spec) for path, specs in RUNS.items() for spec in specs
                    if spec.phase == phase and path not in ("serve", "worker")]
            if phase in SEQUENTIAL:
                for path, spec in runs:  # in order: each may need the one before
                    session.check(path, spec)
                if phase == "fresh":
                    install_scaffold(session)
            else:
                with ThreadPoolExecutor(max_workers=2) as pool:
                    list(pool.map(lambda item: session.check(*item), runs))
            if phase == "served":
                served(session)
            if phase == "last":
                worker_runs(session)
            if session.failures:
                pytest.fail("\n\n".join(session.failures), pytrace=False)
        assert session.ran == set(command_paths(cli))
    finally:
        if tdb is not None:
            tdb.drop()
            forget_redis_keys(redis_url, session.prefix)


def test_contract_commands_are_parsed_from_api_md() -> None:
    text = ("## 2. Command line\n\n    learnplat migrate   # x\n"
            "    learnplat tenants list | show SLUG | enable SLUG\n"
            "    learnplat users set-role --tenant SLUG EMAIL ROLE\n\n## 3. HTTP\n"
            "    learnplat nothing\n")
    assert contract_commands(text) == {"migrate", "tenants list", "tenants show",
                                       "tenants enable", "users set-role"}
