"""The command line (contract §2): --help everywhere, tenants create|list|show|disable|enable|
apply, plugins list, openapi; errors are one line on stderr and a non-zero exit."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner
from corehelpers import REPO, build_runtime, cli_env, run_cli
from testnotes import Note

from learnplat import db, hookimpl
from learnplat.cli import core_commands  # noqa: F401  (registers the core commands)
from learnplat.cli.main import AppContext, cli
from learnplat.testing import use_runtime

COMMANDS = [[], ["migrate"], ["makemigrations"], ["tenants"], ["tenants", "create"],
            ["tenants", "list"], ["tenants", "show"], ["tenants", "disable"],
            ["tenants", "enable"], ["tenants", "apply"], ["plugins"], ["plugins", "list"],
            ["serve"], ["worker"], ["openapi"], ["config"], ["tasks"], ["tasks", "list"],
            ["tasks", "run"], ["permissions"], ["permissions", "list"]]


def invoke(runtime: Any, *args: str):
    ctx = AppContext()
    ctx._runtime = runtime
    return CliRunner().invoke(cli, list(args), obj=ctx)


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def one_error_line(result) -> str:
    assert result.exit_code != 0, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a) or "learnplat")
def test_help_works_without_a_database(args):
    result = CliRunner().invoke(cli, [*args, "--help"], obj=AppContext())
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_the_installed_command_runs(tmp_path, fresh_db):
    env = cli_env(tmp_path, fresh_db)
    r = run_cli(["--help"], env)
    assert r.returncode == 0 and "tenants" in r.stdout and "worker" in r.stdout
    r = run_cli(["tenants", "show", "no-such-school"], env)  # database not migrated yet
    assert r.returncode == 1 and "learnplat migrate" in one_line(r.stderr)
    r = run_cli(["tenants", "frobnicate"], env)
    assert r.returncode == 2 and "No such command" in r.stderr


def test_tenant_lifecycle(core_runtime, tmp_path):
    slug = f"cli-{tmp_path.name[-6:].lower().replace('_', '-')}"
    rt = build_runtime(tmp_path, _db_of(core_runtime),
                       plugins=[("testnotes", _testnotes()), ("fakeid", FakeIdentity())],
                       do_migrate=False)
    with use_runtime(rt):
        r = invoke(rt, "tenants", "create", slug, "--name", "CLI School", "--domain",
                   f"{slug}.example", "--admin-email", "a@x.example", "--admin-password", "pw")
        assert r.exit_code == 0, r.stderr
        assert r.output.startswith(f"created tenant {slug}")
        # provision_tenant_admin ran inside the new tenant and its transaction
        shown = json.loads(invoke(rt, "tenants", "show", slug).output)
        assert shown["name"] == "CLI School" and shown["domains"] == [f"{slug}.example"]
        with db.connection():
            from learnplat.tenancy import tenant_context

            with tenant_context(rt.tenants.require(slug)), db.transaction():
                assert [n.title for n in Note.select()] == ["admin a@x.example"]
        listed = json.loads(invoke(rt, "tenants", "list", "--json").output)
        assert slug in [t["slug"] for t in listed]
        assert slug in invoke(rt, "tenants", "list").output
        assert invoke(rt, "tenants", "disable", slug).exit_code == 0
        assert json.loads(invoke(rt, "tenants", "show", slug).output)["enabled"] is False
        assert invoke(rt, "tenants", "enable", slug).exit_code == 0
        assert json.loads(invoke(rt, "tenants", "show", slug).output)["enabled"] is True
        line = one_error_line(invoke(rt, "tenants", "create", slug, "--name", "Again",
                                     "--admin-email", "b@x.example", "--admin-password", "pw"))
        assert "exists" in line
        assert "no tenant" in one_error_line(invoke(rt, "tenants", "disable", "nope-nope"))
        assert "slug" in one_error_line(invoke(
            rt, "tenants", "create", "Bad Slug!", "--name", "x", "--admin-email", "a@b.example",
            "--admin-password", "pw"))


def test_create_without_an_identity_plugin_fails_and_writes_nothing(core_runtime):
    r = invoke(core_runtime, "tenants", "create", "lonely-school", "--name", "Lonely",
               "--admin-email", "a@x.example", "--admin-password", "pw")
    assert "no identity plugin" in one_error_line(r)
    # The tenant row was rolled back with the failed command.
    assert "no tenant 'lonely-school'" in one_error_line(
        invoke(core_runtime, "tenants", "show", "lonely-school"))


def test_create_with_the_identity_plugin(tmp_path, fresh_db):
    """The real path: the identity plugin's provision_tenant_admin, through entry points."""
    env = cli_env(tmp_path, fresh_db)
    assert run_cli(["migrate"], env).returncode == 0
    r = run_cli(["tenants", "create", "idschool", "--name", "Id School", "--admin-email",
                 "admin@id.example", "--admin-password", "correct horse battery"], env)
    assert r.returncode == 0, r.stderr
    assert "created tenant idschool" in r.stdout


def test_apply_is_idempotent_and_validates_everything_first(core_runtime, tmp_path):
    tag = tmp_path.name[-6:].lower().replace("_", "-")
    d = tmp_path / "tenants"
    d.mkdir()
    (d / f"one-{tag}.toml").write_text(f'name = "One"\ndomains = ["one-{tag}.example"]\n')
    (d / f"two-{tag}.toml").write_text('name = "Two"\ndisabled_plugins = ["testnotes"]\n'
                                       '[settings.cors]\norigins = ["https://two.example"]\n')
    r = invoke(core_runtime, "tenants", "apply", str(d))
    assert r.exit_code == 0, r.stderr
    assert sorted(r.output.split("\n")[:2]) == [f"created one-{tag}", f"created two-{tag}"]
    r = invoke(core_runtime, "tenants", "apply", str(d))
    assert sorted(r.output.strip().split("\n")) == [f"unchanged one-{tag}", f"unchanged two-{tag}"]
    (d / f"one-{tag}.toml").write_text(f'name = "One renamed"\ndomains = ["one-{tag}.example"]\n')
    r = invoke(core_runtime, "tenants", "apply", str(d))
    assert f"updated one-{tag}" in r.output and f"unchanged two-{tag}" in r.output
    shown = json.loads(invoke(core_runtime, "tenants", "show", f"two-{tag}").output)
    assert shown["disabled_plugins"] == ["testnotes"]
    assert shown["settings"] == {"cors": {"origins": ["https://two.example"]}}

    # A bad file anywhere: nothing at all is written, and the error names the file and key.
    (d / f"one-{tag}.toml").write_text('name = "One again"\n')
    (d / f"zzz-{tag}.toml").write_text('name = "Z"\nenabeld = true\n')
    line = one_error_line(invoke(core_runtime, "tenants", "apply", str(d)))
    assert f"zzz-{tag}.toml" in line and "enabeld" in line
    assert json.loads(invoke(core_runtime, "tenants", "show", f"one-{tag}").output)[
        "name"] == "One renamed"
    assert invoke(core_runtime, "tenants", "show", f"zzz-{tag}").exit_code == 1
    (d / f"zzz-{tag}.toml").write_text("name = \n")
    assert "invalid TOML" in one_error_line(invoke(core_runtime, "tenants", "apply", str(d)))


def test_apply_the_repository_examples(tmp_path, fresh_db):
    rt = build_runtime(tmp_path, fresh_db)
    with use_runtime(rt):
        r = invoke(rt, "tenants", "apply", str(REPO / "tenants"))
        assert r.exit_code == 0, r.stderr
        assert sorted(r.output.split()) == sorted(["created", "demo", "created", "northwind"])
        r = invoke(rt, "tenants", "apply", str(REPO / "tenants"))
        assert sorted(r.output.split()) == sorted(["unchanged", "demo", "unchanged",
                                                   "northwind"])
        shown = json.loads(invoke(rt, "tenants", "show", "northwind").output)
        assert shown["domains"] == ["learn.northwind.example", "northwind.localhost"]
        assert shown["disabled_plugins"] == ["progress"]
        r = invoke(rt, "tenants", "show", "no-such-school")
        assert one_error_line(r) == "error: no tenant 'no-such-school'"


def test_plugins_list(core_runtime, tenant_a):
    rows = json.loads(invoke(core_runtime, "plugins", "list", "--json").output)
    assert [r["name"] for r in rows] == ["core", "testnotes"]
    assert {"name", "version", "location", "enabled", "module", "requires"} <= set(rows[0])
    text = invoke(core_runtime, "plugins", "list").output
    assert "testnotes" in text and "enabled" in text


def test_plugins_list_per_tenant(core_runtime):
    from learnplat.testing import make_tenant

    off = make_tenant(core_runtime, disabled_plugins=["testnotes"])
    rows = json.loads(invoke(core_runtime, "plugins", "list", "--json", "--tenant",
                             off.slug).output)
    assert {r["name"]: r["enabled"] for r in rows} == {"core": True, "testnotes": False}


def test_worker_refuses_immediate_mode(core_runtime):
    assert "immediate" in one_error_line(invoke(core_runtime, "worker"))


def test_makemigrations_unknown_plugin(core_runtime):
    assert "no plugin 'nope'" in one_error_line(invoke(core_runtime, "makemigrations", "nope"))


class FakeIdentity:
    @hookimpl
    def provision_tenant_admin(self, runtime: Any, tenant: Any, email: str, password: str):
        return Note.create(title=f"admin {email}").id


def _testnotes():
    import testnotes

    return testnotes


def _db_of(runtime):
    from learnplat.testing import TestDatabase

    return TestDatabase(url=runtime.settings.database.url,
                        redis_url=runtime.settings.redis.url)


def test_apply_sets_a_schools_rate_limits_and_show_lists_those_in_force(core_runtime, tmp_path):
    tag = tmp_path.name[-6:].lower().replace("_", "-")
    d = tmp_path / "tenants"
    d.mkdir()
    (d / f"big-{tag}.toml").write_text(
        'name = "Big"\n[settings.limits]\ntenant_rate = 2000\ntenant_burst = 20000\n')
    r = invoke(core_runtime, "tenants", "apply", str(d))
    assert r.exit_code == 0, r.stderr
    limits = json.loads(invoke(core_runtime, "tenants", "show", f"big-{tag}").output)["limits"]
    defaults = core_runtime.settings.limits
    assert limits["tenant_rate"] == 2000 and limits["tenant_burst"] == 20000
    assert limits["user_burst"] == defaults.user_burst  # the rest: the configuration's
    assert limits["enabled"] is defaults.enabled
    (d / f"big-{tag}.toml").write_text('name = "Big"\n[settings.limits]\ntenant_rate = -5\n')
    line = one_error_line(invoke(core_runtime, "tenants", "apply", str(d)))
    assert "settings.limits.tenant_rate" in line
    (d / f"big-{tag}.toml").write_text('name = "Big"\n[settings.limits]\nper_day = 5\n')
    assert "per_day" in one_error_line(invoke(core_runtime, "tenants", "apply", str(d)))
    shown = json.loads(invoke(core_runtime, "tenants", "show", f"big-{tag}").output)
    assert shown["limits"]["tenant_rate"] == 2000  # nothing written by the refused applies
