"""The systemd units shipped in config/systemd/ (issue 34, items 5 and 8): `systemd-analyze
verify` accepts them without a warning (with ExecStart pointed at this venv's learnplat,
since verify checks that the binary exists), and what they say agrees with learnplat and
gunicorn: the commands and options exist, the stop timeout outlasts gunicorn's graceful
drain, the worker is stopped with the queue consumer's graceful signal, the API's socket is
systemd's, and the instances are the ports the nginx example sends to."""

from __future__ import annotations

import configparser
import inspect
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from deployhelpers import EXAMPLE, EXAMPLE_PORTS, REPO
from gunicorn.config import Config
from huey.consumer import Consumer

UNITS = REPO / "config" / "systemd"
INSTALLED = "/opt/learnplat/bin/learnplat"  # where the units expect learnplat (docs/deployment.md)
LEARNPLAT = str(Path(sys.executable).parent / "learnplat")


def section(name: str, which: str = "Service") -> configparser.SectionProxy:
    # systemd allows repeated keys (the last one is kept here); none read here is repeated.
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(UNITS / name)
    return parser[which]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    names = {"learnplat@.service": f"learnplat@{EXAMPLE_PORTS[0]}.service",
             "learnplat@.socket": f"learnplat@{EXAMPLE_PORTS[0]}.socket",
             "learnplat-worker.service": "learnplat-worker.service"}
    for shipped, instance in names.items():
        text = (UNITS / shipped).read_text()
        assert INSTALLED in text or shipped.endswith(".socket")
        (tmp_path / instance).write_text(text.replace(INSTALLED, LEARNPLAT))
    r = subprocess.run(["systemd-analyze", "verify", *(f"./{n}" for n in names.values())],
                       cwd=tmp_path, capture_output=True, text=True, timeout=60)
    # verify exits 0 on an unknown or misspelt key and only says so: no output at all.
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_the_units_agree_with_learnplat_and_gunicorn() -> None:
    import learnplat.gunicorn_conf as packaged

    api, worker = section("learnplat@.service"), section("learnplat-worker.service")
    assert api["ExecStart"] == f"{INSTALLED} serve --no-migrate --bind 127.0.0.1:%i"
    assert worker["ExecStart"] == f"{INSTALLED} worker"
    for unit in (api, worker):
        assert unit["User"] == unit["Group"] == "learnplat"
        assert unit["EnvironmentFile"] == "/etc/learnplat/learnplat.env"
        assert unit["Environment"] == "LEARNPLAT_HOME=/var/lib/learnplat"
        assert unit["WorkingDirectory"] == "/var/lib/learnplat"
        assert unit["Restart"] == "on-failure"
        assert unit["ProtectSystem"] == "strict" and unit["NoNewPrivileges"] == "yes"
        assert unit["PrivateTmp"] == "yes" and unit["ReadWritePaths"] == "/var/lib/learnplat"
    # systemd must not SIGKILL gunicorn before its own graceful drain is over.
    graceful = getattr(packaged, "graceful_timeout", Config().graceful_timeout)
    assert int(api["TimeoutStopSec"]) > graceful
    assert api["KillSignal"] == "SIGTERM" and api["KillMode"] == "mixed"
    # Huey's consumer finishes running tasks on its graceful signal (SIGINT unless told
    # otherwise; `learnplat worker` does not); SIGTERM would stop it at once.
    graceful_signal = inspect.signature(Consumer).parameters["graceful_signal"].default
    assert worker["KillSignal"] == f"SIG{graceful_signal}" == "SIGINT"
    # The API's socket is systemd's (it outlives a restart: docs/deployment.md, "Rolling
    # restart"), on the address the service names, with gunicorn's backlog.
    assert section("learnplat@.socket", "Socket")["ListenStream"] == "127.0.0.1:%i"
    assert int(section("learnplat@.socket", "Socket")["Backlog"]) == Config().backlog
    assert "Requires=learnplat@%i.socket" in (UNITS / "learnplat@.service").read_text()
    # The instances nginx sends to are the ports learnplat@PORT binds.
    for port in EXAMPLE_PORTS:
        assert f"server 127.0.0.1:{port} " in EXAMPLE.read_text()
    # The commands and options exist.
    for command, options in (("serve", ("--no-migrate", "--bind")), ("worker", ())):
        r = subprocess.run([LEARNPLAT, command, "--help"], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        assert all(option in r.stdout for option in options)
