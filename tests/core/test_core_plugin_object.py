"""A plugin's one object (learnplat.plugin.Plugin): made per runtime from the class an entry
point names, bound before register_services, found typed with runtime.plugin(Cls) and by its
commands and tasks with runtime.plugin_of(__name__); and the boundary check's two rules that
keep plugins on the public face and free of import circles."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from corehelpers import build_runtime

from learnplat import boundaries
from learnplat.cli.main import AppContext
from learnplat.plugin import Plugin, Route, ServiceKey, TaskSpec, hookimpl
from learnplat.plugin.cli import tenant_command
from learnplat.registry import StartupError
from learnplat.testing import make_tenant, use_runtime


class Counter:
    def __init__(self, runtime: Any):
        self.runtime = runtime
        self.calls = 0


COUNTER: ServiceKey[Counter] = ServiceKey("counter", Counter)
seen_at_register: list[Any] = []


class CounterPlugin(Plugin):
    requires = ()
    counter: Counter

    @hookimpl
    def register_services(self, runtime: Any) -> dict[ServiceKey[Any], Any]:
        seen_at_register.append(self.runtime)
        self.counter = Counter(runtime)
        return {COUNTER: self.counter}

    @hookimpl
    def register_routes(self, runtime: Any) -> list[Route]:
        return []

    @hookimpl
    def register_tasks(self) -> list[TaskSpec]:
        return [TaskSpec("counter.bump", bump, tenant_scoped=False)]

    @hookimpl
    def register_commands(self, cli: click.Group) -> None:
        cli.add_command(counter_group)


def bump(runtime: Any) -> int:
    plugin: CounterPlugin = runtime.plugin_of(__name__)
    plugin.counter.calls += 1
    return plugin.counter.calls


@click.group("counter")
def counter_group() -> None:
    """A plugin's group."""


@tenant_command(counter_group, "show", write=False, plugin=True)
def show(plugin: CounterPlugin, tenant: Any) -> None:
    click.echo(f"{type(plugin).__name__} {plugin.counter.calls} {tenant.slug}")


def test_each_runtime_has_its_own_object_bound_before_its_services(tmp_path, core_database):
    seen_at_register.clear()
    one = build_runtime(tmp_path / "a", core_database, plugins=[("counter", CounterPlugin)])
    two = build_runtime(tmp_path / "b", core_database, plugins=[("counter", CounterPlugin)])
    first, second = one.plugin(CounterPlugin), two.plugin(CounterPlugin)
    assert isinstance(first, CounterPlugin) and first is not second
    assert first.name == "counter" and first.runtime is one and second.runtime is two
    assert seen_at_register == [one, two]
    # The service other plugins get by key is the object's attribute.
    assert one.service(COUNTER) is first.counter
    assert one.plugin("counter") is first
    assert one.plugin_of(__name__) is first
    with pytest.raises(KeyError, match="no loaded plugin is a"):
        one.plugin(type("Other", (Plugin,), {}))
    with pytest.raises(KeyError, match="no plugin named 'nope'"):
        one.plugin("nope")


def test_an_object_without_a_runtime_says_so():
    # The CLI loads plugins (for their commands) before, and without, any runtime.
    from learnplat.plugins import build_plugin_manager

    pm, infos = build_plugin_manager([("counter", CounterPlugin)], entry_points=False)
    obj = pm.get_plugin("counter")
    assert isinstance(obj, CounterPlugin) and infos["counter"].module == __name__
    with pytest.raises(AttributeError, match="plugin 'counter' has no runtime yet"):
        _ = obj.runtime
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        _ = obj.nothing  # type: ignore[attr-defined]  # the missing attribute under test


def test_tasks_and_commands_are_handed_their_plugin_object(tmp_path, core_database):
    rt = build_runtime(tmp_path, core_database, plugins=[("counter", CounterPlugin)])
    with use_runtime(rt):
        assert rt.registry.tasks["counter.bump"].fn(rt) == 1
        assert rt.plugin(CounterPlugin).counter.calls == 1
        tenant = make_tenant(rt, "counted")
        group = click.Group()
        rt.pm.hook.register_commands(cli=group)
        ctx = AppContext()
        ctx._runtime = rt
        result = CliRunner().invoke(group, ["counter", "show", "--tenant", tenant.slug],
                                    obj=ctx, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"CounterPlugin 1 {tenant.slug}"


def test_a_plugin_class_that_fails_to_build_stops_start_up_naming_it(tmp_path, core_database):
    class Broken(Plugin):
        def __init__(self) -> None:
            super().__init__()
            raise ValueError("no")

    with pytest.raises(StartupError, match=r"plugin 'broken': Broken\(\) failed"):
        build_runtime(tmp_path, core_database, plugins=[("broken", Broken)])


# -- the boundary check: the public face only, and no import circle inside a plugin ------------


def _project(tmp_path: Path) -> Path:
    (tmp_path / "setup.cfg").write_text(
        "[options]\npackage_dir =\n    learnplat_notes = plugins/notes\n"
        "packages =\n    learnplat_notes\n")
    pkg = tmp_path / "plugins" / "notes"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""notes"""\n')
    return pkg


def test_a_plugin_importing_a_core_internal_is_a_violation(tmp_path: Path):
    pkg = _project(tmp_path)
    (pkg / "ok.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import learnplat.plugin as lp\nfrom learnplat.plugin import Plugin, db\n"
        "from learnplat.plugin.cli import tenant_command\nfrom learnplat import plugin\n"
        "if TYPE_CHECKING:\n    from learnplat.plugin import Runtime\n")
    (pkg / "bad.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from learnplat.models import TenantModel\nfrom learnplat import db\n"
        "import learnplat.runtime\nfrom learnplat.pluginx import thing\n"
        "if TYPE_CHECKING:\n    from learnplat.tenancy import TenantInfo\n"
        "def f():\n    from learnplat.cli.helpers import echo_json\n")
    found = sorted((v.path.name, v.line, v.imported) for v in boundaries.check([tmp_path]))
    assert found == [
        ("bad.py", 2, "learnplat.models"),
        ("bad.py", 3, "learnplat.db"),
        ("bad.py", 4, "learnplat.runtime"),
        ("bad.py", 5, "learnplat.pluginx"),
        ("bad.py", 7, "learnplat.tenancy"),
        ("bad.py", 9, "learnplat.cli.helpers"),
    ]


def test_an_import_circle_inside_a_plugin_is_a_violation_even_inside_a_function(
        tmp_path: Path):
    pkg = _project(tmp_path)
    (pkg / "plugin.py").write_text("from . import tasks\nfrom .services import Service\n")
    (pkg / "tasks.py").write_text("def run():\n    from .plugin import NotesPlugin\n")
    (pkg / "services.py").write_text("class Service: ...\n")
    # Imports for annotations only never run: no circle.
    (pkg / "cli.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .plugin import X\n")
    (pkg / "commands.py").write_text("import learnplat_notes.cli\n")
    violations = boundaries.check([tmp_path])
    assert [(v.imported, v.rule.split(" (")[0]) for v in violations] == [
        ("learnplat_notes.plugin <-> learnplat_notes.tasks",
         "an import circle inside the plugin")]
    r = subprocess.run([sys.executable, "-m", "learnplat.boundaries", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "learnplat_notes.plugin <-> learnplat_notes.tasks" in r.stderr


def test_the_circle_check_resolves_relative_imports_of_a_subpackage(tmp_path: Path):
    pkg = _project(tmp_path)
    sub = pkg / "parts"
    sub.mkdir()
    (sub / "__init__.py").write_text("from .a import A\n")
    (sub / "a.py").write_text("from .. import top\nclass A: ...\n")
    (pkg / "top.py").write_text("from .parts import A\n")
    assert [v.imported for v in boundaries.check([tmp_path])] == [
        "learnplat_notes.parts <-> learnplat_notes.parts.a <-> learnplat_notes.top"]

