"""`learnplat plugins new`: the scaffolded package installs like a third party's and its own
tests pass on the current backend; bad names are one clear error."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from corehelpers import run_cli

from learnplat import boundaries
from learnplat.scaffold import ScaffoldError, render


@pytest.mark.e2e
def test_a_scaffolded_plugin_installs_and_its_tests_pass(tmp_path):
    src = tmp_path / "learnplat-shelf"
    r = run_cli(["plugins", "new", "shelf", "--dir", str(src)], dict(os.environ))
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


@pytest.mark.parametrize("bad", ["Shelf", "1x", "a", "class", "shelf-x", "x" * 40])
def test_bad_plugin_names_are_refused(bad):
    with pytest.raises(ScaffoldError, match="use 2-31 lower-case letters"):
        render(bad)


def test_an_existing_directory_is_not_overwritten(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    r = run_cli(["plugins", "new", "shelf", "--dir", str(tmp_path)], dict(os.environ))
    assert r.returncode == 1 and r.stderr.startswith("error:") and "not empty" in r.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
