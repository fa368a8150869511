"""`learnplat plugins new [--model CLASS]`: the scaffolded package installs like a third
party's, its own tests pass on the current backend, its migration matches its model whatever
the model is named, and it has the shape of a plugin (one Plugin object the entry point names,
the core imported only through learnplat.plugin, no import circle); bad names are one clear
error."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from corehelpers import cli_env, run_cli

from learnplat import boundaries
from learnplat.scaffold import ScaffoldError, render, write


@pytest.mark.e2e
@pytest.mark.parametrize(("model", "route", "task"), [
    (None, "/shelf/items", "shelf.count_items"),
    ("ShelfBox", "/shelf/shelf-boxes", "shelf.count_shelf_boxes"),
], ids=["default-model", "named-model"])
def test_a_scaffolded_plugin_installs_and_its_tests_pass(tmp_path, fresh_db, model, route, task):
    src = tmp_path / "learnplat-shelf"
    extra = ["--model", model] if model else []
    r = run_cli(["plugins", "new", "shelf", "--dir", str(src), *extra], dict(os.environ))
    assert r.returncode == 0, r.stderr
    assert boundaries.check([src]) == []
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "install",
                    "--no-deps", "--no-build-isolation", "--target", str(site), str(src)],
                   check=True, capture_output=True, text=True, timeout=240)
    assert (site / "learnplat_shelf" / "migrations" / "0001_initial.py").exists()
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(src / "tests")], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "3 passed" in run.stdout

    # Installed beside the built-in plugins: its migration creates the model's table, and
    # makemigrations finds nothing to add (the migration and the model agree).
    env = cli_env(tmp_path, fresh_db, pythonpath=[site])
    r = run_cli(["migrate"], env)
    assert r.returncode == 0 and "applied shelf:0001_initial" in r.stdout, r.stdout + r.stderr
    r = run_cli(["makemigrations", "shelf"], env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "models match the database; nothing to write"
    r = run_cli(["openapi"], env)
    assert r.returncode == 0 and route in json.loads(r.stdout)["paths"], r.stderr
    r = run_cli(["tasks", "list"], env)
    assert task in r.stdout.split(), r.stdout


def test_the_model_name_runs_through_every_file():
    files = render("shelf", "ShelfBox")
    text = "\n".join(files.values())
    assert "Item" not in text.replace('["items"]', "")
    assert "class ShelfBox(lp.TenantModel):" in files["learnplat_shelf/models.py"]
    assert "table_name = 'shelf_shelf_box'" in files["learnplat_shelf/migrations/0001_initial.py"]
    assert 'name: ClassVar[str] = "shelf.shelf_box_created.v1"' in files[
        "learnplat_shelf/events.py"]
    assert 'lp.TaskSpec("shelf.count_shelf_boxes", count_shelf_boxes)' in files[
        "learnplat_shelf/plugin.py"]
    assert "Add an item." in render("shelf")["learnplat_shelf/resources.py"]


def test_the_scaffold_has_the_shape_of_a_plugin(tmp_path):
    """One object, named by the entry point, holding the service; commands and tasks get it
    from the core (no import of the class at run time); the core only through its face."""
    files = render("shelf")
    assert "hooks.py" not in " ".join(files)
    assert "    shelf = learnplat_shelf.plugin:ShelfPlugin\n" in files["setup.cfg"]
    plugin = files["learnplat_shelf/plugin.py"]
    assert "class ShelfPlugin(lp.Plugin):" in plugin
    assert "        self.shelf = ShelfService(runtime)\n" in plugin
    assert "@with_tenant(write=False, plugin=True)" in files["learnplat_shelf/cli.py"]
    assert "runtime.plugin_of(__name__)" in files["learnplat_shelf/tasks.py"]
    for module in ("cli", "tasks"):  # the class only under TYPE_CHECKING: no circle
        text = files[f"learnplat_shelf/{module}.py"]
        assert text.index("    from .plugin import ShelfPlugin") > text.index(
            "if TYPE_CHECKING:")
    for path, text in files.items():  # the migration too: `learnplat.models` is internal
        if path.endswith(".py"):
            assert "learnplat.models" not in text, path

    # `python -m learnplat.boundaries` on the written package, as its author would run it:
    # imports of the core and of other plugins, and import circles inside the plugin.
    src = tmp_path / "learnplat-shelf"
    write("shelf", src, "ShelfBox")
    r = subprocess.run([sys.executable, "-m", "learnplat.boundaries", str(src)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    modules = [p for p in files if p.startswith("learnplat_shelf/") and p.endswith(".py")]
    assert r.stdout == f"boundaries: {len(modules)} files in 1 package checked, 0 violations\n"
    # And it would see a circle, were a task to import the plugin's class at run time.
    tasks = src / "learnplat_shelf" / "tasks.py"
    tasks.write_text(tasks.read_text() + "\nfrom .plugin import ShelfPlugin  # noqa\n")
    r = subprocess.run([sys.executable, "-m", "learnplat.boundaries", str(src)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "import circle" in r.stderr, r.stdout + r.stderr


@pytest.mark.parametrize("bad", ["item", "Shelf Box", "Any", "Model", "ShelfService", "1X"])
def test_bad_model_names_are_refused(bad):
    with pytest.raises(ScaffoldError, match="model name"):
        render("shelf", bad)


@pytest.mark.parametrize("bad", ["Shelf", "1x", "a", "class", "shelf-x", "x" * 40])
def test_bad_plugin_names_are_refused(bad):
    with pytest.raises(ScaffoldError, match="use 2-31 lower-case letters"):
        render(bad)


@pytest.mark.parametrize("taken", ["name", "runtime", "requires", "bind", "startup",
                                   "register_models", "on_course_published"])
def test_a_plugin_name_the_plugin_object_already_uses_is_refused(taken):
    # The object keeps its service under the plugin's name (`self.shelf`).
    with pytest.raises(ScaffoldError, match="which its class already uses"):
        render(taken)


def test_a_model_named_like_the_plugin_class_is_refused():
    with pytest.raises(ScaffoldError, match="taken by the plugin's own classes"):
        render("shelf", "ShelfPlugin")


def test_an_existing_directory_is_not_overwritten(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    r = run_cli(["plugins", "new", "shelf", "--dir", str(tmp_path)], dict(os.environ))
    assert r.returncode == 1 and r.stderr.startswith("error:") and "not empty" in r.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
