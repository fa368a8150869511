"""The plugin manager: clashes name both plugins, missing requirements and broken plugins are
clear start-up errors, check_pending catches stray hookimpls, every responder is declared, and a
tenant can disable a plugin."""

from __future__ import annotations

from typing import Any

import pytest
from corehelpers import build_runtime, cli_env, fake_distribution, run_cli

from learnplat import hookimpl
from learnplat.auth import PUBLIC
from learnplat.http.app import create_app
from learnplat.http.endpoint import endpoint
from learnplat.registry import Permission, Route, StartupError, TaskSpec
from learnplat.testing import Client, make_tenant


class Ok:
    @endpoint(permission=PUBLIC)
    def on_get(self, req: Any, resp: Any) -> Any:
        return {"ok": True}


class RoutePlugin:
    def __init__(self, path: str):
        self.path = path

    @hookimpl
    def register_routes(self, runtime: Any) -> list[Route]:
        return [Route(self.path, Ok())]


class PermPlugin:
    @hookimpl
    def register_permissions(self) -> list[Permission]:
        return [Permission("shared.perm", "x", grants={"admin": "any"})]


class TaskPlugin:
    @hookimpl
    def register_tasks(self) -> list[TaskSpec]:
        return [TaskSpec("shared.task", lambda rt: None)]


def start(tmp_path, core_database, plugins):
    return build_runtime(tmp_path, core_database, plugins=plugins, do_migrate=False)


@pytest.mark.parametrize(("one", "two", "what"), [
    (RoutePlugin("/dup/{id:int}"), RoutePlugin("/dup/{other}"), "route"),
    (PermPlugin(), PermPlugin(), "permission"),
    (TaskPlugin(), TaskPlugin(), "task"),
])
def test_duplicate_names_name_both_plugins(tmp_path, core_database, one, two, what):
    with pytest.raises(StartupError) as exc:
        start(tmp_path, core_database, [("alpha", one), ("beta", two)])
    msg = str(exc.value)
    assert f"duplicate {what}" in msg and "'alpha'" in msg and "'beta'" in msg


def test_a_route_clashing_with_the_core_names_core(tmp_path, core_database):
    with pytest.raises(StartupError, match=r"'core'.*'rogue'"):
        start(tmp_path, core_database, [("rogue", RoutePlugin("/healthz"))])


def test_missing_requirement_is_a_clear_error(tmp_path, core_database):
    class Needy:
        requires = ("courses_v9",)

    with pytest.raises(StartupError, match=r"plugin 'needy' requires 'courses_v9', not installed"):
        start(tmp_path, core_database, [("needy", Needy())])


def test_plugin_raising_in_a_hook_is_named(tmp_path, core_database):
    class Broken:
        @hookimpl
        def register_routes(self, runtime: Any) -> list[Route]:
            raise ValueError("kaput")

    with pytest.raises(StartupError, match=r"plugin 'broken' failed in register_routes.*kaput"):
        start(tmp_path, core_database, [("broken", Broken())])


def test_check_pending_catches_a_hookimpl_without_spec(tmp_path, core_database):
    class Typo:
        @hookimpl
        def register_rootes(self, runtime: Any) -> list[Route]:
            return []

    with pytest.raises(StartupError, match=r"'typo'.*register_rootes"):
        start(tmp_path, core_database, [("typo", Typo())])


def test_a_hookimpl_with_a_wrong_argument_is_refused(tmp_path, core_database):
    class BadArgs:
        @hookimpl
        def register_routes(self, runtime: Any, app: Any) -> list[Route]:
            return []

    with pytest.raises(StartupError, match="'badargs'"):
        start(tmp_path, core_database, [("badargs", BadArgs())])


def test_undeclared_responder_is_a_startup_error(tmp_path, core_database):
    class Naked:
        def on_get(self, req: Any, resp: Any) -> None:
            resp.media = {}

    class Plain:
        @hookimpl
        def register_routes(self, runtime: Any) -> list[Route]:
            return [Route("/naked", Naked())]

    rt = start(tmp_path, core_database, [("plain", Plain())])
    with pytest.raises(StartupError, match=r"plugin 'plain': GET /naked has no @endpoint"):
        create_app(rt)


def test_unknown_permission_on_an_endpoint_is_a_startup_error(tmp_path, core_database):
    class Res:
        @endpoint(permission="nobody.declared.this")
        def on_get(self, req: Any, resp: Any) -> None: ...

    class P:
        @hookimpl
        def register_routes(self, runtime: Any) -> list[Route]:
            return [Route("/res", Res())]

    rt = start(tmp_path, core_database, [("p", P())])
    with pytest.raises(StartupError, match=r"unknown permission 'nobody\.declared\.this'"):
        create_app(rt)


def test_disabled_plugin_routes_404_in_that_tenant_only(core_app, core_runtime):
    off = make_tenant(core_runtime, disabled_plugins=["testnotes"])
    on = make_tenant(core_runtime)
    r = Client(core_app, off).get("/notes")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert Client(core_app, on).get("/notes").status_code == 200
    assert Client(core_app, off).get("/healthz").status_code == 200  # the core stays


def test_plugin_failing_to_load_through_its_entry_point(tmp_path, fresh_db):
    root = fake_distribution(tmp_path / "site", "learnplat-broken", {"broken": "learnplat_broken"},
                             {"learnplat_broken.py": "raise ImportError('no module named zzz')\n"})
    env = cli_env(tmp_path, fresh_db, pythonpath=[root])
    for args in (["plugins", "list"],):
        r = run_cli(args, env)
        assert r.returncode != 0
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, r.stderr
        assert "plugin 'broken'" in lines[0] and "no module named zzz" in lines[0]


def test_plugin_names_and_order(core_runtime):
    assert list(core_runtime.plugins) == ["core", "testnotes"]
    info = core_runtime.plugins["testnotes"]
    assert info.migrations_dir.name == "migrations" and info.migrations_dir.is_dir()
