"""Passwords given to `learnplat tenants create` and `learnplat users create` without the
command line, where `ps` and shell history keep them (issue 34, item 9): from a file, from
standard input, and at a terminal (a real pseudo-terminal: hidden input, typed twice). Then
each account signs in over HTTP with the password it was given, on a `learnplat serve` of the
same fresh home.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from learnplat.testing import free_port, fresh_home_env, wait_until_serving

LEARNPLAT = Path(sys.executable).with_name("learnplat")  # the console script


def learnplat(env: dict[str, str], *args: str, stdin: str | None = None
              ) -> subprocess.CompletedProcess[str]:
    """A command without a terminal: its standard input a pipe (or /dev/null)."""
    return subprocess.run([str(LEARNPLAT), *args], env=env, input=stdin, text=True,
                          capture_output=True, timeout=120,
                          stdin=subprocess.DEVNULL if stdin is None else None)


def at_terminal(env: dict[str, str], args: list[str], answers: list[tuple[str, str]]
                ) -> tuple[int, str]:
    """Run a command on a pseudo-terminal, typing each answer once its prompt has appeared;
    its exit status and everything the terminal showed."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal is its stdin, stdout, stderr and /dev/tty
        try:
            os.execve(str(LEARNPLAT), [str(LEARNPLAT), *args], env)
        finally:
            os._exit(127)
    shown, seen, pending = b"", 0, list(answers)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the command ended and closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
            while pending and (at := shown.find(pending[0][0].encode(), seen)) >= 0:
                seen = at + len(pending[0][0])
                os.write(fd, pending.pop(0)[1].encode() + b"\n")
        else:
            os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"no end at the terminal: {shown.decode()!r}")
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    assert not pending, f"never asked {pending[0][0]!r}: {shown.decode()!r}"
    return os.waitstatus_to_exitcode(status), shown.decode().replace("\r\n", "\n")


def signs_in(base: str, email: str, password: str) -> int:
    return requests.post(f"{base}/auth/login", headers={"X-Tenant": "demo"}, timeout=10,
                         json={"email": email, "password": password}).status_code


@pytest.mark.e2e
def test_passwords_from_a_file_stdin_or_the_terminal_sign_in(tmp_path: Path) -> None:
    env = fresh_home_env(tmp_path)
    assert learnplat(env, "migrate").returncode == 0
    admin_pw, file_pw, stdin_pw, typed_pw = (
        "admin typed at the terminal", "from a file of its own", "piped by a script",
        "a teacher typed this")

    # The admin at a terminal: hidden, typed twice; a mismatch asks again.
    code, shown = at_terminal(env, [
        "tenants", "create", "demo", "--name", "Demo School", "--domain", "demo.localhost",
        "--admin-email", "boss@demo.example"], [
        ("password for boss@demo.example: ", admin_pw),
        ("Repeat for confirmation: ", "not the same"),
        ("password for boss@demo.example: ", admin_pw),
        ("Repeat for confirmation: ", admin_pw)])
    assert code == 0, shown
    assert "do not match" in shown and "created tenant demo" in shown, shown
    assert admin_pw not in shown and "not the same" not in shown, shown  # never echoed

    # A file (its final newline is not part of the password) and standard input ("-").
    password_file = tmp_path / "password"
    password_file.write_text(file_pw + "\n")
    r = learnplat(env, "users", "create", "--tenant", "demo", "--email", "rhea@demo.example",
                  "--password-file", str(password_file))
    assert r.returncode == 0 and "created student rhea@demo.example" in r.stdout, r.stderr
    r = learnplat(env, "users", "create", "--tenant", "demo", "--email", "ian@demo.example",
                  "--role", "instructor", "--password-file", "-", stdin=stdin_pw + "\n")
    assert r.returncode == 0 and "created instructor ian@demo.example" in r.stdout, r.stderr
    code, shown = at_terminal(env, ["users", "create", "--tenant", "demo", "--email",
                                    "tess@demo.example"],
                              [("password for tess@demo.example: ", typed_pw),
                               ("Repeat for confirmation: ", typed_pw)])
    assert code == 0 and "created student tess@demo.example" in shown, shown

    # No terminal and no password: one clear error line, nothing waits, nothing is created.
    r = learnplat(env, "users", "create", "--tenant", "demo", "--email", "none@demo.example")
    assert r.returncode == 1, r
    assert r.stderr.splitlines()[-1] == ("error: no password: give --password-file FILE (- for "
                                         "standard input), or run the command at a terminal "
                                         "to be asked for it"), r.stderr
    r = learnplat(env, "tenants", "create", "other", "--name", "Other", "--admin-email",
                  "a@other.example")
    assert r.returncode == 1 and "--admin-password-file FILE" in r.stderr, r.stderr
    r = learnplat(env, "users", "create", "--tenant", "demo", "--email", "both@demo.example",
                  "--password", "x" * 20, "--password-file", str(password_file))
    assert r.returncode == 1 and "not both" in r.stderr, r.stderr
    empty = tmp_path / "empty"
    empty.write_text("\n")
    r = learnplat(env, "users", "create", "--tenant", "demo", "--email", "empty@demo.example",
                  "--password-file", str(empty))
    assert r.returncode == 1 and "empty password" in r.stderr, r.stderr
    # The old option still works (scripts written for it); --help says why not to use it.
    r = learnplat(env, "users", "create", "--tenant", "demo", "--email", "olga@demo.example",
                  "--password", "on the command line")
    assert r.returncode == 0, r.stderr
    r = learnplat(env, "users", "create", "--help")
    assert "Discouraged: visible in `ps`" in " ".join(r.stdout.split()), r.stdout

    # Each signs in with exactly what it was given.
    port = free_port()
    env["LEARNPLAT_QUEUE_EMBEDDED_WORKER"] = "false"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(LEARNPLAT), "serve", "--bind", f"127.0.0.1:{port}",
                                 "--workers", "1"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, proc, log.read_text)
        for email, password in (("boss@demo.example", admin_pw),
                                ("rhea@demo.example", file_pw),
                                ("ian@demo.example", stdin_pw),
                                ("tess@demo.example", typed_pw),
                                ("olga@demo.example", "on the command line")):
            assert signs_in(base, email, password) == 200, email
        assert signs_in(base, "rhea@demo.example", stdin_pw) == 401
        assert signs_in(base, "none@demo.example", file_pw) == 401  # never created
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
