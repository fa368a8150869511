"""Every Python sample in docs/ and README.md runs: files shown from the repository are
compared with it (test_core_example_plugin), the reminders example runs as a plugin
(test_core_docs_example), signatures compile, and every other sample executes as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from corehelpers import REPO

BLOCK = re.compile(r"(?:^(<!-- file: \S+ -->)\n)?^```python\n(.*?)^```", re.S | re.M)
TESTED_ELSEWHERE = ("# learnplat_reminders/plugin.py",)


def samples() -> list[tuple[str, str]]:
    found = []
    for path in [*sorted((REPO / "docs").rglob("*.md")), REPO / "README.md"]:
        text = path.read_text()
        for match in BLOCK.finditer(text):
            included, code = match.group(1), match.group(2)
            if included or code.startswith(TESTED_ELSEWHERE):
                continue
            line = text[:match.start(2)].count("\n") + 1
            found.append((f"{path.relative_to(REPO)}:{line}", code))
    return found


def is_signature(code: str) -> bool:
    """A hook reference block: one `def name(...) -> T` without a body (after decorators)."""
    body = "\n".join(line for line in code.splitlines() if not line.startswith("@"))
    return body.lstrip().startswith("def ") and not body.rstrip().endswith(":") and (
        ":\n" not in body)


def prelude() -> dict[str, object]:
    """What the docs say a plugin module starts with: the public face, click and crontab."""
    import click
    from huey import crontab

    import learnplat.plugin as face

    namespace: dict[str, object] = {"__name__": "docs_sample", "click": click,
                                    "crontab": crontab, "hookspec": face.hookspec}
    namespace.update({name: getattr(face, name) for name in face.__all__})
    return namespace


@pytest.mark.parametrize(("where", "code"), samples(), ids=[w for w, _ in samples()])
def test_docs_python_sample_runs(where: str, code: str) -> None:
    if is_signature(code):
        compile(code.rstrip() + ": ...\n", where, "exec")
        return
    exec(compile(code, where, "exec"), prelude())


def test_samples_are_found():
    assert len(samples()) >= 10
    assert Path(REPO / "docs" / "plugins.md").exists()
