"""Unsafe settings (issue 34, item 3), with real `learnplat` processes: in production `serve`
and `worker` refuse to start with each unsafe value and say what to set; `learnplat config`
flags each one (text and --json); in development they are warnings only. bin/serve with zero
configuration (development: SQLite and a loopback bind) is tests/core/test_core_serve.py's.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from corehelpers import CLI, cli_env, free_port, run_cli

from learnplat.safety import environment, unsafe_settings
from learnplat.settings import load_settings
from learnplat.testing import backend

GOOD_SECRET = "a-good-secret-of-at-least-32-characters"


def serve_exits(env: dict[str, str], bind: str | None = None) -> subprocess.CompletedProcess[str]:
    """`learnplat serve`, which must refuse by itself; one that comes up fails the test."""
    bind = bind or f"127.0.0.1:{free_port()}"
    try:
        return subprocess.run([*CLI, "serve", "--bind", bind, "--workers", "1"],
                              env={**env, "LEARNPLAT_QUEUE_EMBEDDED_WORKER": "false"},
                              capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        settings = {k: v for k, v in env.items() if k.startswith("LEARNPLAT_")}
        pytest.fail(f"learnplat serve started with an unsafe configuration: {settings}")


def production(env: dict[str, str], **settings: str) -> dict[str, str]:
    out = {**env, "LEARNPLAT_APP_ENVIRONMENT": "production"}
    out.update({f"LEARNPLAT_{k.upper()}": v for k, v in settings.items()})
    return out


def config_json(env: dict[str, str]) -> dict[str, Any]:
    r = run_cli(["config", "--json"], env)
    assert r.returncode == 0, r.stderr
    shown: dict[str, Any] = json.loads(r.stdout)
    return shown


# (settings, the setting named, how its value is shown, what the message says to set)
UNSAFE = [
    ({"app_secret_key": ""}, "app.secret_key", "empty", "at least 32 characters"),
    ({"app_secret_key": "only-20-characters.."}, "app.secret_key", "20 characters",
     "at least 32 characters"),
    ({"server_trusted_proxies": "10.0.0.5,0.0.0.0/0"}, "server.trusted_proxies", "0.0.0.0/0",
     "list only the reverse proxies"),
    ({"outbound_allowed_networks": "192.168.10.0/24,169.254.0.0/16"},
     "outbound.allowed_networks", "169.254.0.0/16", "allow only the networks"),
]


@pytest.mark.one_backend  # see tests/conftest.py
def test_outbound_findings_warn_of_clear_text_and_loopback_and_refuse_metadata() -> None:
    """Webhook and LRS URLs are typed by school admins: clear text and this machine's own
    services are warnings; a network holding a cloud metadata address is refused."""
    def found(**outbound: Any) -> list[tuple[str, str, bool]]:
        s = load_settings(overrides={"outbound": outbound}, environ={})
        return [(f.setting, f.shown, f.refuse) for f in unsafe_settings(s, check_database=False)
                if f.setting.startswith("outbound.")]

    assert found() == []
    assert found(allowed_networks=["10.20.0.0/16"]) == []
    assert found(require_https=False) == [("outbound.require_https", "false", False)]
    assert found(allowed_networks=["127.0.0.0/8", "0.0.0.0/0", "::/0"]) == [
        ("outbound.allowed_networks", "127.0.0.0/8", False),
        ("outbound.allowed_networks", "0.0.0.0/0", True),  # holds 169.254.169.254
        ("outbound.allowed_networks", "::/0", True)]
    assert found(allowed_networks=["fd00:ec2::/32"]) == [
        ("outbound.allowed_networks", "fd00:ec2::/32", True)]


@pytest.mark.one_backend  # see tests/conftest.py
@pytest.mark.parametrize(("settings", "setting", "shown", "fix"), UNSAFE,
                         ids=[u[1] + ":" + u[2] for u in UNSAFE])
def test_serve_and_worker_refuse_each_unsafe_value_in_production(
        tmp_path: Path, fresh_db: Any, settings: dict[str, str], setting: str, shown: str,
        fix: str) -> None:
    env = production(cli_env(tmp_path, fresh_db), **settings)
    r = serve_exits(env)
    assert r.returncode == 1, (r.stdout, r.stderr)
    line = r.stderr.strip()
    assert line.startswith("error: refusing to serve in production (app.environment): "), line
    assert f"{setting} ({shown}): " in line and fix in line, line
    assert 'app.environment = "development" (LEARNPLAT_APP_ENVIRONMENT)' in line
    # Refused before anything changed: no migration ran.
    assert "applied" not in r.stdout
    w = run_cli(["worker"], env, timeout=30)
    assert w.returncode == 1 and "refusing to run a worker in production" in w.stderr, w.stderr

    # `learnplat config` flags it, saying it is refused in production, and exits 0.
    c = run_cli(["config"], env)
    assert c.returncode == 0, c.stderr
    assert f"unsafe: {setting} ({shown}): " in c.stdout and "(refused in production)" in \
        c.stdout, c.stdout
    assert "mode: production (app.environment)" in c.stdout
    found = config_json(env)["unsafe"]
    assert [(f["setting"], f["shown"], f["refuse"]) for f in found] == [(setting, shown, True)]
    assert found[0]["env"] == "LEARNPLAT_" + setting.replace(".", "_").upper()


@pytest.mark.skipif(backend() != "postgres", reason="a PostgreSQL role")
def test_a_superuser_database_role_is_refused(tmp_path: Path, fresh_db: Any) -> None:
    """The test admin `postgres` is a superuser (and so BYPASSRLS): row-level security does
    not apply to it. The fixtures' application role (NOSUPERUSER NOBYPASSRLS) is accepted."""
    assert fresh_db.admin_url
    env = cli_env(tmp_path, fresh_db, APP_SECRET_KEY=GOOD_SECRET)
    assert config_json(env)["unsafe"] == []
    admin = {**env, "LEARNPLAT_DATABASE_URL": fresh_db.admin_url}
    r = serve_exits(admin)  # app.environment empty: PostgreSQL counts as production
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stderr.startswith("error: refusing to serve in production (app.environment is "
                               "empty and the database is PostgreSQL): database.url (role "
                               "'postgres' has SUPERUSER and BYPASSRLS): row-level security "
                               "does not apply to it"), r.stderr
    assert "NOSUPERUSER NOBYPASSRLS" in r.stderr
    found = config_json(admin)["unsafe"]
    assert [(f["setting"], f["refuse"]) for f in found] == [("database.url", True)]
    assert "SUPERUSER" in found[0]["shown"]


def test_production_is_assumed_outside_the_embedded_loopback_setup(tmp_path: Path,
                                                                   fresh_db: Any) -> None:
    """app.environment empty: PostgreSQL, or a bind others reach, is production, so the
    empty secret (a per-machine generated one) is refused there."""
    env = cli_env(tmp_path, fresh_db, APP_SECRET_KEY="")
    r = serve_exits(env, bind=f"0.0.0.0:{free_port()}")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "refusing to serve in production (app.environment is empty and " in r.stderr
    assert "app.secret_key (empty)" in r.stderr, r.stderr
    mode = config_json({**env, "LEARNPLAT_SERVER_BIND": "0.0.0.0:8000"})["mode"]
    assert mode["name"] == "production"
    # The advisory finding for that bind: no public URL to sign into certificates.
    shown = config_json({**env, "LEARNPLAT_SERVER_BIND": "0.0.0.0:8000",
                         "LEARNPLAT_APP_SECRET_KEY": GOOD_SECRET})
    assert [(f["setting"], f["refuse"]) for f in shown["unsafe"]] == [("app.public_url", False)]


def test_development_only_warns(tmp_path: Path, fresh_db: Any) -> None:
    """app.environment = development: a short secret and a trust-everyone proxy list are
    warnings, and the server serves."""
    env = cli_env(tmp_path, fresh_db, APP_ENVIRONMENT="development",
                  APP_SECRET_KEY="only-20-characters..", SERVER_TRUSTED_PROXIES="0.0.0.0/0",
                  QUEUE_EMBEDDED_WORKER="false")
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([*CLI, "serve", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
                                env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).ok:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = log.read_text()
    assert "warning: app.secret_key (20 characters): " in text, text
    assert "warning: server.trusted_proxies (0.0.0.0/0): " in text, text
    assert "(refused in production)" in text
    c = run_cli(["config"], env)
    assert "mode: development (app.environment)" in c.stdout, c.stdout


@pytest.mark.one_backend  # see tests/conftest.py
def test_environment_is_recognised(tmp_path: Path) -> None:
    def env_of(**environ: str) -> str:
        s = load_settings(environ={f"LEARNPLAT_{k.upper()}": v for k, v in environ.items()},
                          home=tmp_path)
        return environment(s).name

    assert env_of() == "development"  # the README's bin/serve: SQLite, 127.0.0.1:8000
    assert env_of(server_bind="localhost:9000") == "development"
    assert env_of(server_bind="0.0.0.0:9000") == "production"
    assert env_of(server_bind="unix:/run/learnplat.sock") == "production"
    assert env_of(database_url="postgresql://lp@db.invalid/lp") == "production"
    assert env_of(database_url="postgresql://lp@db.invalid/lp",
                  app_environment="development") == "development"
    assert env_of(app_environment="production") == "production"
    # The checkout's defaults are development and have one finding: the empty secret.
    found = unsafe_settings(load_settings(environ={}, home=tmp_path))
    assert [f.setting for f in found] == ["app.secret_key"]
