"""`learnplat plugins new [--model CLASS]`: the scaffolded package installs like a third
party's, its own tests pass on the current backend, its migration matches its model whatever
the model is named; bad names are one clear error."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from corehelpers import cli_env, run_cli

from learnplat import boundaries
from learnplat.scaffold import ScaffoldError, render


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
    assert "class ShelfBox(lp.TenantModel):" in files["learnplat_shelf/hooks.py"]
    assert "table_name = 'shelf_shelf_box'" in files["learnplat_shelf/migrations/0001_initial.py"]
    assert 'name: ClassVar[str] = "shelf.shelf_box_created.v1"' in files[
        "learnplat_shelf/events.py"]
    assert "Add an item." in render("shelf")["learnplat_shelf/hooks.py"]


@pytest.mark.parametrize("bad", ["item", "Shelf Box", "Any", "Model", "ShelfService", "1X"])
def test_bad_model_names_are_refused(bad):
    with pytest.raises(ScaffoldError, match="model name"):
        render("shelf", bad)


@pytest.mark.parametrize("bad", ["Shelf", "1x", "a", "class", "shelf-x", "x" * 40])
def test_bad_plugin_names_are_refused(bad):
    with pytest.raises(ScaffoldError, match="use 2-31 lower-case letters"):
        render(bad)


def test_an_existing_directory_is_not_overwritten(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    r = run_cli(["plugins", "new", "shelf", "--dir", str(tmp_path)], dict(os.environ))
    assert r.returncode == 1 and r.stderr.startswith("error:") and "not empty" in r.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
