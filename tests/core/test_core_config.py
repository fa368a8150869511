"""Configuration layers: defaults < LEARNPLAT_CONFIG file < env vars, validated at start."""

from __future__ import annotations

from pathlib import Path

import pytest
from corehelpers import cli_env, run_cli

from learnplat.settings import ConfigError, load_settings

REPO = Path(__file__).resolve().parents[2]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_come_from_config_learnplat_toml():
    s = load_settings(environ={}, home=REPO)
    assert s.database.url == "sqlite:///var/learnplat.db"
    assert s.server.bind == "127.0.0.1:8000"
    assert s.storage.url.startswith("file:")
    assert s.redis.url == ""


def test_file_overrides_defaults_and_env_overrides_file(tmp_path: Path):
    cfg = write(tmp_path / "site.toml", '[database]\nurl = "sqlite:////tmp/site.db"\n'
                '[server]\nworkers = 7\nthreads = 3\n')
    env = {"LEARNPLAT_CONFIG": str(cfg), "LEARNPLAT_SERVER_WORKERS": "9"}
    s = load_settings(environ=env, home=REPO)
    assert s.database.url == "sqlite:////tmp/site.db"  # file beats defaults
    assert s.server.workers == 9  # env beats file
    assert s.server.threads == 3  # file value kept where env is silent
    assert s.server.timeout == 30  # default kept where both are silent


def test_env_values_are_coerced_and_json_tables_accepted():
    s = load_settings(environ={"LEARNPLAT_APP_DEBUG": "true",
                               "LEARNPLAT_EVENTS_BACKOFF_SECONDS": "0.5"}, home=REPO)
    assert s.app.debug is True and s.events.backoff_seconds == 0.5


@pytest.mark.parametrize(("environ", "named"), [
    ({"LEARNPLAT_SERVER_WORKERS": "many"}, "server.workers"),
    ({"LEARNPLAT_SERVER_WORKERS": "0"}, "server.workers"),
    ({"LEARNPLAT_DATABASE_URLL": "x"}, "database.urll"),
    ({"LEARNPLAT_APP_MAX_BODY_BYTES": "-1"}, "app.max_body_bytes"),
    ({"LEARNPLAT_NOSECTION": "1"}, "LEARNPLAT_NOSECTION"),
])
def test_bad_value_or_unknown_key_names_the_key(environ, named):
    with pytest.raises(ConfigError) as exc:
        load_settings(environ=environ, home=REPO)
    assert named in str(exc.value)


def test_bad_key_in_file_is_named(tmp_path: Path):
    cfg = write(tmp_path / "bad.toml", "[queue]\nworkerz = 3\n")
    with pytest.raises(ConfigError, match=r"queue\.workerz"):
        load_settings(environ={"LEARNPLAT_CONFIG": str(cfg)}, home=REPO)


def test_missing_or_broken_config_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(environ={"LEARNPLAT_CONFIG": str(tmp_path / "nope.toml")}, home=REPO)
    cfg = write(tmp_path / "broken.toml", "[app\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(environ={"LEARNPLAT_CONFIG": str(cfg)}, home=REPO)


def test_unknown_plugin_section_fails_at_runtime_start(tmp_path, fresh_db):
    from corehelpers import build_runtime

    with pytest.raises(ConfigError, match=r"\[nosuchplugin\]"):
        build_runtime(tmp_path, fresh_db, do_migrate=False, nosuchplugin={"x": 1})


def test_migrate_with_a_bad_setting_exits_nonzero_with_one_line(tmp_path, fresh_db):
    env = cli_env(tmp_path, fresh_db, SERVER_WORKERS="lots")
    r = run_cli(["migrate"], env)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "server.workers" in lines[0] and "LEARNPLAT_SERVER_WORKERS" in lines[0]
