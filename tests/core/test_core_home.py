"""Where home (config/ and var/) is, and `learnplat config`: LEARNPLAT_HOME, else the nearest
directory at or above the current one holding config/learnplat.toml (the checkout, when run
from it), else a per-user directory; never the directory the package is installed in."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import requests
from corehelpers import CLI, REPO, free_port

from learnplat.cli.config_command import MASK, mask_secrets, mask_url
from learnplat.logs import DEFAULT_LOGGING
from learnplat.settings import load_settings, resolve_home, user_home_dir
from learnplat.testing import CliInvoker


def site(root: Path, toml: str = "") -> Path:
    (root / "config").mkdir(parents=True, exist_ok=True)
    (root / "config" / "learnplat.toml").write_text(toml)
    return root


# -- the rule ----------------------------------------------------------------------------------


def test_learnplat_home_wins(tmp_path: Path):
    home, why = resolve_home({"LEARNPLAT_HOME": str(tmp_path / "h")}, cwd=site(tmp_path / "s"))
    assert home == (tmp_path / "h").resolve() and why == "LEARNPLAT_HOME"


def test_nearest_directory_with_a_config_at_or_above_the_current_one(tmp_path: Path):
    root = site(tmp_path / "site")
    assert resolve_home({}, cwd=root)[0] == root.resolve()
    deep = root / "tenants" / "more"
    deep.mkdir(parents=True)
    assert resolve_home({}, cwd=deep)[0] == root.resolve()
    # The checkout is such a directory: bin/serve and bin/test run from it.
    assert resolve_home({}, cwd=REPO / "plugins")[0] == REPO


def test_elsewhere_the_per_user_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    home, why = resolve_home({"XDG_DATA_HOME": str(tmp_path / "xdg")}, cwd=tmp_path)
    assert home == tmp_path / "xdg" / "learnplat" and why == "per-user directory"
    assert user_home_dir({}) == tmp_path / "me" / ".local" / "share" / "learnplat"
    assert user_home_dir({"XDG_DATA_HOME": "relative/ignored"}) == user_home_dir({})


def test_the_packaged_defaults_are_the_checkouts_config(tmp_path: Path):
    """An installed learnplat has no config/learnplat.toml: the same values must come from
    the Settings defaults, and the same logging from the packaged dictConfig."""
    bare = load_settings(environ={}, home=tmp_path)
    checkout = load_settings(environ={}, home=REPO)
    assert bare.config_files == () and checkout.config_files == (
        str(REPO / "config" / "learnplat.toml"),)
    skip = {"home", "home_source", "config_files"}
    assert bare.model_dump(exclude=skip) == checkout.model_dump(exclude=skip)
    with (REPO / "config" / "logging.toml").open("rb") as fh:
        assert tomllib.load(fh) == DEFAULT_LOGGING


def test_config_files_are_read_in_order(tmp_path: Path):
    root = site(tmp_path / "site", "[server]\nworkers = 3\nthreads = 5\n")
    extra = tmp_path / "extra.toml"
    extra.write_text("[server]\nworkers = 4\n")
    s = load_settings(environ={"LEARNPLAT_HOME": str(root), "LEARNPLAT_CONFIG": str(extra)})
    assert s.home == str(root.resolve()) and s.home_source == "LEARNPLAT_HOME"
    assert s.config_files == (str(root.resolve() / "config" / "learnplat.toml"), str(extra))
    assert (s.server.workers, s.server.threads) == (4, 5)


# -- secrets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://lp:p%40ss@db:5432/lp?sslmode=require",
     f"postgresql://lp:{MASK}@db:5432/lp?sslmode=require"),
    ("redis://:hunter2@cache:6379/0", f"redis://:{MASK}@cache:6379/0"),
    ("s3://AKID:wJalrXUt@minio:9000/media?secure=false",
     f"s3://AKID:{MASK}@minio:9000/media?secure=false"),
    ("s3://AKID:wJalrXUt@/media?region=eu-west-1", f"s3://AKID:{MASK}@/media?region=eu-west-1"),
    ("https://hooks.example/x?token=abc&team=1", f"https://hooks.example/x?token={MASK}&team=1"),
    ("sqlite:///var/learnplat.db", "sqlite:///var/learnplat.db"),
    ("postgresql://postgres@127.0.0.1:5432/postgres",
     "postgresql://postgres@127.0.0.1:5432/postgres"),
    ("file:var/storage", "file:var/storage"),
])
def test_urls_lose_their_passwords_only(url: str, shown: str):
    assert mask_url(url) == shown


def test_secret_named_values_are_masked_at_any_depth():
    masked = mask_secrets({
        "app": {"secret_key": "k" * 32, "debug": True},
        "auth": {"access_token_ttl": 900, "issuer": "learnplat"},
        "redis": {"prefix": "learnplat", "url": "redis://:pw@r:6379/0"},
        "mail": {"smtp_password": "pw", "api_key": "ak", "user": "bob", "empty_secret": ""},
        "oauth": {"client_secret": ["a", "b"], "credentials": {"x": "y", "n": 3}},
    })
    assert masked == {
        "app": {"secret_key": MASK, "debug": True},
        "auth": {"access_token_ttl": 900, "issuer": "learnplat"},
        "redis": {"prefix": "learnplat", "url": f"redis://:{MASK}@r:6379/0"},
        "mail": {"smtp_password": MASK, "api_key": MASK, "user": "bob", "empty_secret": ""},
        "oauth": {"client_secret": [MASK, MASK], "credentials": {"x": MASK, "n": 3}},
    }


# -- the command, as a self-hoster runs it --------------------------------------------------------


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No LEARNPLAT_* and a fresh HOME: what a new user's shell looks like."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LEARNPLAT_", "XDG_"))}
    env["HOME"] = str(tmp_path / "user")
    env.update(extra)
    return env


def learnplat(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def test_from_any_directory_home_is_the_per_user_directory(tmp_path: Path):
    elsewhere = tmp_path / "anywhere"
    elsewhere.mkdir()
    env = clean_env(tmp_path, LEARNPLAT_APP_SECRET_KEY="a secret of at least 16 chars",
                    LEARNPLAT_DATABASE_URL="postgresql://lp:topsecret@db.invalid/lp")
    r = learnplat(["config", "--json"], env, elsewhere)
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    user_home = tmp_path / "user" / ".local" / "share" / "learnplat"
    assert shown["home"] == str(user_home) and shown["home_source"] == "per-user directory"
    assert shown["config_files"] == []
    assert shown["environment"] == ["LEARNPLAT_APP_SECRET_KEY", "LEARNPLAT_DATABASE_URL"]
    app, database = shown["settings"]["app"], shown["settings"]["database"]
    assert app["secret_key"] == MASK and database["url"] == f"postgresql://lp:{MASK}@db.invalid/lp"
    assert "topsecret" not in r.stdout
    # Plugin sections, with their defaults, next to the core's.
    assert shown["settings"]["identity"]["lock_after_failures"] == 5
    assert list(shown["settings"])[:2] == ["app", "database"]
    assert not (elsewhere / "var").exists()


def test_migrate_writes_into_the_home_and_says_which(tmp_path: Path):
    elsewhere = tmp_path / "anywhere"
    elsewhere.mkdir()
    env = clean_env(tmp_path)
    r = learnplat(["migrate"], env, elsewhere)
    assert r.returncode == 0, r.stderr
    user_home = tmp_path / "user" / ".local" / "share" / "learnplat"
    assert r.stdout.splitlines()[0] == (f"home: {user_home} (per-user directory); config "
                                        "files: none (defaults and environment only)")
    assert (user_home / "var" / "learnplat.db").exists()
    assert not (elsewhere / "var").exists()


def test_a_site_directory_is_found_from_below_and_its_file_is_read(tmp_path: Path):
    root = site(tmp_path / "school", '[app]\nsecret_key = "file secret, 16+ chars"\n'
                '[identity]\nlock_after_failures = 9\n')
    (root / "tenants").mkdir()
    r = learnplat(["config"], clean_env(tmp_path), root / "tenants")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"home: {root.resolve()} (holds config/learnplat.toml")
    assert lines[1] == f"config files: {root.resolve() / 'config' / 'learnplat.toml'}"
    assert f'secret_key = "{MASK}"' in lines and "lock_after_failures = 9" in lines
    assert "file secret" not in r.stdout


def test_a_bad_setting_still_shows_where_it_was_read(tmp_path: Path):
    root = site(tmp_path / "school", "[identity]\nlock_after_failurez = 9\n")
    r = learnplat(["config"], clean_env(tmp_path), root)
    assert r.returncode == 1
    home_line, error_line = r.stderr.strip().splitlines()
    assert home_line.startswith(f"home: {root.resolve()} ") and "learnplat.toml" in home_line
    assert error_line == ("error: unknown setting identity.lock_after_failurez "
                          "(env LEARNPLAT_IDENTITY_LOCK_AFTER_FAILUREZ)")


def test_config_in_process_shows_the_runtime_settings(core_runtime):
    shown = json.loads(CliInvoker(core_runtime)("config", "--json").stdout)
    assert shown["home"] == core_runtime.settings.home
    assert shown["settings"]["app"]["secret_key"] == MASK
    assert shown["settings"]["queue"]["immediate"] is True


# -- an installed (not editable) learnplat -------------------------------------------------------


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """learnplat installed with pip into a directory of its own, as from PyPI: no checkout."""
    src = tmp_path_factory.mktemp("src")
    for name in ("learnplat", "plugins"):
        shutil.copytree(REPO / name, src / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    target = tmp_path_factory.mktemp("site-packages")
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "install",
                    "--no-deps", "--no-build-isolation", "--target", str(target), str(src)],
                   check=True, capture_output=True, text=True, timeout=300)
    return target


@pytest.mark.e2e
def test_an_installed_learnplat_migrates_and_serves_from_any_directory(installed, tmp_path):
    elsewhere = tmp_path / "anywhere"
    elsewhere.mkdir()
    env = clean_env(tmp_path, PYTHONPATH=str(installed),
                    LEARNPLAT_QUEUE_EMBEDDED_WORKER="false", LEARNPLAT_SERVER_WORKERS="1")
    r = subprocess.run([sys.executable, "-c", "import learnplat; print(learnplat.__file__)"],
                       env=env, cwd=elsewhere, capture_output=True, text=True, check=True)
    assert r.stdout.startswith(str(installed))  # not the checkout
    user_home = tmp_path / "user" / ".local" / "share" / "learnplat"
    r = learnplat(["migrate"], env, elsewhere)
    assert r.returncode == 0, r.stderr
    assert "identity:0001_initial" in r.stdout
    assert (user_home / "var" / "learnplat.db").exists()

    port = free_port()
    proc = subprocess.Popen([*CLI, "serve", "--bind", f"127.0.0.1:{port}"], env=env,
                            cwd=elsewhere, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                r = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
                if r.status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.2)
        assert set(r.json()["checks"].values()) == {"ok"}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert f"home: {user_home} (per-user directory)" in out
    assert not (elsewhere / "var").exists()
