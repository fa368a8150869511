"""A third-party plugin (tests/sample_plugin) installed with pip into a separate directory and
loaded only through its `learnplat.plugins` entry point: every hook kind works, and nothing with
a generic top-level name is installed by it or by learnplat itself."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from corehelpers import REPO, cli_env, run_cli

from learnplat.testing import forget_redis_keys

SAMPLE = REPO / "tests" / "sample_plugin"
GENERIC = {"plugins", "tenants", "config", "tests", "docs", "bin"}


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
                   check=True, capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src") / "sample_plugin"
    # Build from a copy: pip builds in the source tree and would leave build/ behind.
    shutil.copytree(SAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = tmp_path_factory.mktemp("site")
    pip("install", "--no-deps", "--no-build-isolation", "--target", str(target), str(src))
    return target


def top_level_names(record_lines: list[str]) -> set[str]:
    return {line.split(",", 1)[0].split("/", 1)[0] for line in record_lines if line.strip()}


@pytest.mark.e2e
def test_sample_plugin_installs_only_its_own_package(installed: Path):
    records = list(installed.glob("learnplat_sample-*.dist-info/RECORD"))
    assert len(records) == 1
    names = top_level_names(records[0].read_text().splitlines())
    assert names == {"learnplat_sample", records[0].parent.name}
    eps = (records[0].parent / "entry_points.txt").read_text()
    assert "[learnplat.plugins]" in eps and "sample = learnplat_sample.plugin:SamplePlugin" in eps
    assert (installed / "learnplat_sample" / "migrations" / "0001_initial.py").exists()


@pytest.mark.e2e
def test_learnplat_wheel_has_no_generic_top_level_names(tmp_path: Path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("learnplat", "plugins"):
        shutil.copytree(REPO / name, src / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src))
    wheel = next((tmp_path / "dist").glob("learnplat-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = top_level_names(zf.namelist())
        top_level = next(n for n in zf.namelist() if n.endswith(".dist-info/top_level.txt"))
        declared = set(zf.read(top_level).decode().split())
    assert not names & GENERIC, names
    assert not declared & GENERIC, declared
    assert {"learnplat", "learnplat_identity", "learnplat_courses"} <= names
    assert all(n == "learnplat" or n.startswith(("learnplat_", "learnplat-")) for n in names)


@pytest.mark.e2e
def test_every_hook_of_the_sample_plugin_works_through_its_entry_point(installed, tmp_path,
                                                                       fresh_db):
    env = cli_env(tmp_path, fresh_db, pythonpath=[installed], QUEUE_IMMEDIATE="true",
                  SAMPLE_GREETING="bonjour")

    r = run_cli(["plugins", "list", "--json"], env)
    assert r.returncode == 0, r.stderr
    plugins = {p["name"]: p for p in json.loads(r.stdout)}
    assert plugins["sample"]["version"] == "0.3.0"
    assert plugins["sample"]["location"].startswith(str(installed))
    assert plugins["sample"]["requires"] == ["core"]
    # The built-in plugins are found the same way, from the learnplat distribution.
    assert {"identity", "courses", "enrollment", "progress"} <= set(plugins)
    assert all(plugins[n]["module"].startswith("learnplat_") for n in
               ("identity", "courses", "enrollment", "progress"))

    r = run_cli(["migrate"], env)  # the plugin's migration, found through the entry point
    assert r.returncode == 0, r.stderr
    assert "applied sample:0001_initial" in r.stdout

    r = run_cli(["sample", "hello", "--name", "ada"], env)  # register_commands
    assert r.returncode == 0 and r.stdout.strip() == "hello ada from learnplat-sample"
    assert run_cli(["sample", "--help"], env).returncode == 0

    r = run_cli(["openapi"], env)
    assert "/sample/bookmarks" in json.loads(r.stdout)["paths"]

    r = subprocess.run([sys.executable, str(Path(__file__).parent / "sample_check.py")],
                       env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    facts = json.loads(r.stdout.strip().splitlines()[-1])
    forget_redis_keys(fresh_db.redis_url, env["LEARNPLAT_REDIS_PREFIX"])

    assert facts["plugin"]["module"] == "learnplat_sample.plugin"
    status, body = facts["create"]  # register_routes, register_models, register_permissions
    assert status == 201 and body["url"] == "https://ok.example/a"
    assert facts["veto"][:2] == [409, "vetoed"] and "blocked.example" in facts["veto"][2]
    assert [b["url"] for b in facts["list"]["items"]] == ["https://ok.example/a"]
    assert facts["other_tenant_list"]["items"] == []
    assert facts["disabled_tenant_status"] == 404
    assert facts["events"] == [f"sample.bookmark.created.v1 {body['id']}"]  # event handler
    assert facts["task_count"] == "1"  # register_tasks: the tenant-scoped task ran
    assert facts["periodic"] is True and facts["heartbeat"] == "1"  # periodic task
    assert facts["startup_called"] is True  # startup
    # register_services + register_settings (from LEARNPLAT_SAMPLE_GREETING) + own hookspec
    assert facts["hello"] == {"greeting": "bonjour from the sample hookspec"}
    assert facts["settings_greeting"] == "bonjour"
    assert facts["readyz"][1]["sample"] == "ok"  # register_health_checks
    assert facts["openapi_paths"] == ["/sample/bookmarks", "/sample/hello"]
    # seed_tenant: its part of a generated school, after the core's plugins it does not need
    assert [b["url"] for b in facts["seeded"]] == ["https://example.org/seeded/0",
                                                    "https://example.org/seeded/1"]
    assert "sample" in facts["seeded_order"] and "identity" in facts["seeded_order"]
    assert {"name": "sample", "description": "Bookmarks (learnplat-sample)"} in facts[
        "openapi_tags"]  # extend_openapi
    assert facts["permission"] == "sample"


@pytest.mark.e2e
def test_bad_plugin_setting_names_the_key(installed, tmp_path, fresh_db):
    env = cli_env(tmp_path, fresh_db, pythonpath=[installed], SAMPLE_GREETINGS="typo")
    r = run_cli(["migrate"], env)
    assert r.returncode != 0
    assert r.stderr.strip().splitlines() == [
        "error: unknown setting sample.greetings (env LEARNPLAT_SAMPLE_GREETINGS)"]
