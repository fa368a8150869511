"""A real learning record store for the xAPI tests: Ralph (ralph-malph, file-system backend)
from PyPI, installed once per requirement into the git-ignored var/ralph/<hash>/ (not into
learnplat's environment: its pins differ), and served on a free loopback port; and the
checks of statements by libraries nobody here wrote (Open edX's tincan models in our
environment, Ralph's own pydantic xAPI models in its)."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
# The LRS extra serves, the CLI extra runs it; Ralph's OIDC module imports requests, which
# neither extra brings.
REQUIREMENTS = ("ralph-malph[cli,lrs]==5.1.0", "requests>=2.31,<3")
USER, PASSWORD = "learnplat", "lrs-s3cret"
SERVE = Path(__file__).with_name("ralph_serve.py")  # Ralph's app under uvicorn (why: there)


def ralph_venv() -> Path:
    """Ralph's environment, installed with pip from the registry once per requirement set and
    Python version (the file lock: several test processes may get here at once; a run killed
    half-way leaves no marker, so the next one starts again from nothing)."""
    key = "\n".join((*REQUIREMENTS, f"py{sys.version_info[0]}.{sys.version_info[1]}"))
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    root = REPO / "var" / "ralph"
    venv = root / digest
    done = venv / ".installed"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(venv, ignore_errors=True)
            run = subprocess.run([sys.executable, "-m", "venv", str(venv)],
                                 capture_output=True, text=True, timeout=300)
            assert run.returncode == 0, run.stdout + run.stderr
            run = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install",
                                  "--quiet", "--disable-pip-version-check", *REQUIREMENTS],
                                 capture_output=True, text=True, timeout=900)
            assert run.returncode == 0, run.stdout + run.stderr
            done.write_text(key)
    return venv


@dataclass
class Ralph:
    base: str  # http://127.0.0.1:PORT/xAPI: what a school configures as its endpoint
    proc: subprocess.Popen[bytes]
    venv: Path
    workdir: Path

    def _request(self, path: str, params: str = "") -> Any:
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        req = urllib.request.Request(f"{self.base}{path}{params}", headers={
            "Authorization": f"Basic {token}", "X-Experience-API-Version": "1.0.3"})
        with urllib.request.urlopen(req, timeout=10) as answer:
            return json.loads(answer.read())

    def statements(self, **params: str) -> list[dict[str, Any]]:
        """Every statement Ralph stored (GET /xAPI/statements, following `more`)."""
        query = "?" + "&".join(f"{k}={v}" for k, v in {"limit": "500", **params}.items())
        page = self._request("/statements", query)
        out = list(page["statements"])
        while page.get("more"):
            more = page["more"]
            page = self._request(more.split("/xAPI", 1)[1] if "/xAPI" in more else more)
            out.extend(page["statements"])
        return out

    def validate_strictly(self, statements: list[dict[str, Any]]) -> list[str]:
        """Ralph's own strict xAPI 1.0.3 models (BaseXapiStatement: extra fields forbidden,
        IRIs, language maps, score bounds), in its environment: the problems, one a line."""
        script = (
            "import json, sys\n"
            "from pydantic import ValidationError\n"
            "from ralph.models.xapi.base.statements import BaseXapiStatement\n"
            "for i, s in enumerate(json.load(sys.stdin)):\n"
            "    try:\n"
            "        BaseXapiStatement(**s)\n"
            "    except ValidationError as e:\n"
            "        print(i, s.get('verb', {}).get('id'), e.errors())\n")
        run = subprocess.run([str(self.venv / "bin" / "python"), "-c", script],
                             input=json.dumps(statements), capture_output=True, text=True,
                             timeout=120)
        assert run.returncode == 0, run.stderr
        return [line for line in run.stdout.splitlines() if line.strip()]


def start_ralph(workdir: Path, port: int) -> Ralph:
    """Ralph's LRS on 127.0.0.1:`port` with the file-system backend writing under `workdir`
    and one Basic-authentication user (USER, PASSWORD) allowed everything."""
    venv = ralph_venv()
    ralph = str(venv / "bin" / "ralph")
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "RALPH_RUNSERVER_BACKEND": "fs",
           "RALPH_AUTH_FILE": str(workdir / "auth.json"), "RALPH_APP_DIR": str(workdir),
           "RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH": str(workdir),
           "RALPH_BACKENDS__DATA__FS__DEFAULT_DIRECTORY_PATH": str(workdir)}
    run = subprocess.run([ralph, "auth", "-u", USER, "-p", PASSWORD, "-s", "all",
                          "-M", "mailto:lrs@example.org", "-w"],
                         cwd=workdir, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    log = open(workdir / "ralph.log", "wb")
    proc = subprocess.Popen([str(venv / "bin" / "python"), str(SERVE), str(port)],
                            cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/xAPI"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/__heartbeat__",
                                        timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("Ralph did not start:\n"
                                 + (workdir / "ralph.log").read_text(errors="replace"))
        time.sleep(0.1)
    return Ralph(base, proc, venv, workdir)


def stop_ralph(ralph: Ralph) -> None:
    ralph.proc.terminate()
    try:
        ralph.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        ralph.proc.kill()
        ralph.proc.wait()


def tincan_check(statement: dict[str, Any]) -> None:
    """Open edX's xAPI models (tincan): every property known, of the right type, the actor an
    Agent with one identifier, the ids UUIDs, the timestamp ISO 8601. Raises otherwise."""
    import tincan

    parsed = tincan.Statement.from_json(json.dumps(statement))
    assert str(parsed.id) == statement["id"]
    assert parsed.verb.id == statement["verb"]["id"]
