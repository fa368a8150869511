"""The example plugin of docs/plugins.md (examples/learnplat-notes): installed with pip like a
third party's, its own tests pass on the current backend, it stays within 50 lines of plugin
code, and the docs show its files exactly as they are."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
from corehelpers import REPO

from learnplat import boundaries

EXAMPLE = REPO / "examples" / "learnplat-notes"
DOC = REPO / "docs" / "plugins.md"


def code_lines(text: str) -> int:
    """Lines of code: not blank, not comments (the measure docs/plugins.md reports)."""
    return sum(1 for line in text.splitlines()
               if line.strip() and not line.strip().startswith("#"))


def plugin_code_lines() -> int:
    package = EXAMPLE / "learnplat_notes"
    return sum(code_lines(p.read_text()) for p in package.rglob("*.py")
               if "migrations" not in p.parts)


def test_the_example_plugin_is_at_most_50_lines_and_the_docs_say_how_many():
    lines = plugin_code_lines()
    assert lines <= 50
    assert f"**{lines} lines**" in DOC.read_text()


def test_the_docs_show_the_example_files_as_they_are():
    text = DOC.read_text()
    includes = re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", text, re.S)
    shown = {path for path, _ in includes}
    assert {"examples/learnplat-notes/learnplat_notes/hooks.py",
            "examples/learnplat-notes/setup.cfg",
            "examples/learnplat-notes/tests/test_notes.py"} <= shown
    for path, body in includes:
        assert body == (REPO / path).read_text(), f"docs/plugins.md shows an old {path}"


def test_the_example_keeps_the_import_boundaries():
    assert boundaries.check([EXAMPLE]) == []


@pytest.mark.e2e
def test_the_example_installs_like_a_third_party_plugin_and_its_tests_pass(tmp_path):
    src = tmp_path / "learnplat-notes"
    # Build from a copy: pip builds in the source tree and would leave build/ behind.
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info",
                                                                 "__pycache__"))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "install",
                    "--no-deps", "--no-build-isolation", "--target", str(site), str(src)],
                   check=True, capture_output=True, text=True, timeout=240)
    assert (site / "learnplat_notes" / "migrations" / "0001_initial.py").exists()
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(src / "tests")], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "4 passed" in run.stdout
