"""The "Commands and periodic work" example of docs/plugins.md runs as written: its plugin class
is loaded as the plugin (the object an entry point would name), and every command of the shell
session after it succeeds."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import re
import shlex
import sys
from pathlib import Path

import pytest
from corehelpers import REPO, build_runtime

from learnplat import db
from learnplat.tenancy import tenant_context
from learnplat.testing import CliInvoker, make_tenant, use_runtime

DOC = (REPO / "docs" / "plugins.md").read_text()


def example_module() -> str:
    match = re.search(r"```python\n(# learnplat_reminders/plugin\.py\n.*?)```", DOC, re.S)
    assert match, "the reminders example is missing from docs/plugins.md"
    return match.group(1)


def example_session() -> list[list[str]]:
    after = DOC[DOC.index("# learnplat_reminders/plugin.py"):]
    match = re.search(r"```sh\n(.*?)```", after, re.S)
    assert match
    return [shlex.split(line, comments=True) for line in match.group(1).splitlines()
            if line.strip()]


@pytest.fixture
def reminders(tmp_path: Path):
    pkg = tmp_path / "site" / "learnplat_reminders"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "plugin.py").write_text(example_module())
    sys.path.insert(0, str(pkg.parent))
    try:
        yield importlib.import_module("learnplat_reminders.plugin")
    finally:
        sys.path.remove(str(pkg.parent))
        for name in [n for n in sys.modules if n.startswith("learnplat_reminders")]:
            del sys.modules[name]


def test_the_reminders_example_runs_as_documented(tmp_path, fresh_db, reminders):
    rt = build_runtime(tmp_path, fresh_db, plugins=[("reminders", reminders.RemindersPlugin)],
                       do_migrate=False)
    assert isinstance(rt.plugin(reminders.RemindersPlugin), reminders.RemindersPlugin)
    cli = CliInvoker(rt)
    outputs = {}
    with use_runtime(rt):
        for args in example_session():
            assert args[0] == "learnplat"
            result = cli(*args[1:])
            assert result.exit_code == 0, (args, result.stderr)
            outputs[" ".join(args[1:4])] = result.stdout
            if args[1] == "migrate":
                demo = make_tenant(rt, slug="demo")

        migration = Path(reminders.__file__).parent / "migrations" / "0001_initial.py"
        assert "TODO" not in migration.read_text()
        assert outputs["reminders add --tenant"] == "reminder 1 added in demo\n"
        assert json.loads(outputs["reminders list --tenant"]) == [
            {"id": 1, "text": "Grades are due on Friday"}]
        assert ("reminders.purge_everywhere\treminders\tglobal\t0 3 * * *\t"
                "Purge old reminders in every school that has the plugin.") in outputs[
                    "tasks list"].splitlines()
        assert outputs["tasks run reminders.purge"] == "ran reminders.purge in demo: 0\n"
        assert outputs["tasks run reminders.purge_everywhere"] == (
            'ran reminders.purge_everywhere: {"demo":0}\n')
        assert ("| `reminders.manage` | any | own | - | reminders | Manage reminders |"
                in outputs["permissions list --markdown"])

        # What the nightly task does: old reminders go, in every school that has the plugin.
        other = make_tenant(rt)
        off = make_tenant(rt, disabled_plugins=["reminders"])
        old = dt.datetime.now(dt.UTC) - dt.timedelta(days=60)
        for tenant in (demo, other, off):
            with db.connection(), tenant_context(tenant), db.transaction():
                reminders.Reminder.create(text="old", created_at=old)
        assert reminders.purge_everywhere(rt) == {"demo": 1, other.slug: 1}
        for tenant, left in ((demo, ["Grades are due on Friday"]), (other, []), (off, ["old"])):
            with db.connection(), tenant_context(tenant), db.transaction():
                assert [r.text for r in reminders.Reminder.select()] == left
