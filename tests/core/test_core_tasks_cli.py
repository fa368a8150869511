"""Work across all tenants (learnplat.each_tenant) and `learnplat tasks list|run`: every
registered task with its plugin, scope and schedule, and an operator's way to run one now."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import testnotes
from corehelpers import build_runtime
from huey import crontab
from testnotes import Note

from learnplat import db, hookimpl
from learnplat.cli.task_commands import describe_periodic, parse_arg
from learnplat.each_tenant import each_tenant
from learnplat.logs import RepeatFilter
from learnplat.registry import TaskSpec
from learnplat.tenancy import current_tenant, tenant_context
from learnplat.testing import CliInvoker, make_tenant, use_runtime


def add_note(runtime: Any, title: str, copies: int = 1) -> int:
    """Add notes to the current tenant."""
    for _ in range(copies):
        Note.create(title=title)
    return Note.select().count()


def add_everywhere(runtime: Any, title: str = "nightly") -> dict[str, int]:
    """Add a note in every school that has the plugin."""
    return each_tenant(runtime, add_note, title, plugin="testnotes").results


def repeat_intervals(runtime: Any) -> list[float]:
    """The intervals of the repeat filters on the root logger's handlers."""
    return [f.interval for h in logging.getLogger().handlers for f in h.filters
            if isinstance(f, RepeatFilter)]


class TaskPlugin:
    @hookimpl
    def register_tasks(self) -> list[TaskSpec]:
        return [TaskSpec("tasktest.add_note", add_note),
                TaskSpec("tasktest.everywhere", add_everywhere, tenant_scoped=False,
                         periodic=crontab(minute="0", hour="3")),
                TaskSpec("tasktest.repeat_intervals", repeat_intervals, tenant_scoped=False)]


@pytest.fixture
def rt(tmp_path, fresh_db):
    runtime = build_runtime(tmp_path, fresh_db,
                            plugins=[("testnotes", testnotes), ("tasktest", TaskPlugin())])
    with use_runtime(runtime):
        yield runtime


def notes_of(tenant: Any) -> list[str]:
    with db.connection(), tenant_context(tenant), db.transaction():
        return [n.title for n in Note.select().order_by(Note.id)]


def test_each_tenant_runs_everywhere_and_one_failure_stops_nothing(rt, caplog):
    a, b, c = (make_tenant(rt, slug=s) for s in ("a-school", "b-school", "c-school"))
    off = make_tenant(rt, slug="d-off", enabled=False)
    no_plugin = make_tenant(rt, slug="e-noplugin", disabled_plugins=["testnotes"])

    def body(runtime: Any, title: str) -> str:
        tenant = current_tenant()
        Note.create(title=title)  # in the tenant, in its own transaction
        if tenant.slug == "b-school":
            raise RuntimeError("b is broken")
        return tenant.slug

    outcome = each_tenant(rt, body, "swept", plugin="testnotes")
    assert outcome.results == {"a-school": "a-school", "c-school": "c-school"}
    assert list(outcome.failed) == ["b-school"] and not outcome.ok
    assert str(outcome.failed["b-school"]) == "b is broken"
    assert outcome.skipped == ["e-noplugin"]
    assert notes_of(a) == notes_of(c) == ["swept"]
    assert notes_of(b) == []  # its write was rolled back with its failure
    assert notes_of(off) == notes_of(no_plugin) == []
    assert any("b-school" in r.getMessage() and r.exc_info for r in caplog.records)
    # Without plugin=, a school that switched the plugin off is not skipped.
    assert "e-noplugin" in each_tenant(rt, lambda runtime: None).results


def test_tasks_list(rt):
    cli = CliInvoker(rt)
    r = cli("tasks", "list", "--json")
    assert r.exit_code == 0, r.stderr
    rows = {t["name"]: t for t in json.loads(r.stdout)}
    assert rows["tasktest.add_note"] == {
        "name": "tasktest.add_note", "plugin": "tasktest", "tenant_scoped": True,
        "periodic": None, "retries": 3, "description": "Add notes to the current tenant."}
    assert rows["tasktest.everywhere"]["periodic"] == "0 3 * * *"
    assert rows["tasktest.everywhere"]["tenant_scoped"] is False
    assert rows["learnplat.sweep_events"]["plugin"] == "core"
    text = cli("tasks", "list").stdout.splitlines()
    assert ("tasktest.everywhere\ttasktest\tglobal\t0 3 * * *\t"
            "Add a note in every school that has the plugin.") in text


def test_tasks_run_a_tenant_task_now(rt):
    a, b = make_tenant(rt), make_tenant(rt)
    cli = CliInvoker(rt)
    r = cli("tasks", "run", "tasktest.add_note", "--tenant", a.slug, "hello", "2")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == f"ran tasktest.add_note in {a.slug}: 2\n"
    assert notes_of(a) == ["hello", "hello"] and notes_of(b) == []


def test_tasks_run_a_task_over_every_tenant(rt):
    a, b = make_tenant(rt), make_tenant(rt)
    r = CliInvoker(rt)("tasks", "run", "tasktest.everywhere")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout.split(": ", 1)[1]) == {a.slug: 1, b.slug: 1}
    assert notes_of(a) == notes_of(b) == ["nightly"]


def test_tasks_run_summarises_repeats_per_the_setting(tmp_path, fresh_db):
    """The task's log lines go through config/logging.toml's repeat filter with
    logging.repeat_seconds, as in the worker, not the filter's 60 s default."""
    runtime = build_runtime(tmp_path, fresh_db, logging={"repeat_seconds": 7},
                            plugins=[("testnotes", testnotes), ("tasktest", TaskPlugin())])
    with use_runtime(runtime):
        r = CliInvoker(runtime)("tasks", "run", "tasktest.repeat_intervals")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "ran tasktest.repeat_intervals: [7.0]\n"


@pytest.mark.parametrize(("args", "error"), [
    (["nope.task"], "no task named 'nope.task' (see learnplat tasks list)"),
    (["tasktest.add_note", "x"], "task tasktest.add_note is tenant-scoped: give --tenant SLUG"),
    (["tasktest.everywhere", "--tenant", "{slug}"],
     "task tasktest.everywhere is not tenant-scoped: it takes no --tenant"),
    (["tasktest.add_note", "--tenant", "no-such-school", "x"], "no tenant 'no-such-school'"),
])
def test_tasks_run_refusals(rt, args, error):
    tenant = make_tenant(rt)
    r = CliInvoker(rt)("tasks", "run", *[a.replace("{slug}", tenant.slug) for a in args])
    assert r.exit_code == 1
    assert r.stderr == f"error: {error}\n"
    assert notes_of(tenant) == []


@pytest.mark.parametrize(("schedule", "text"), [
    (crontab(), "* * * * *"),
    (crontab(minute="*/5"), "*/5 * * * *"),
    (crontab(minute="0", hour="3"), "0 3 * * *"),
    (crontab(hour="3"), "* 3 * * *"),  # every minute of 3 o'clock: what tasks list is for
    (crontab(minute="0,30", hour="8-17", day_of_week="1-5"), "*/30 8-17 * * 1-5"),
    (crontab(minute="15", day="1", month="1,4,7,10"), "15 * 1 */3 *"),
    (crontab(minute="5,6,7,20"), "5-7,20 * * * *"),
    (crontab(minute="1,2"), "1,2 * * * *"),
    (crontab(minute="0", hour="*/6", day_of_week="0"), "0 */6 * * 0"),
    (crontab(minute="0", day_of_week="7"), "0 * * * 0"),
    (None, None),
])
def test_describe_periodic(schedule, text):
    assert describe_periodic(schedule) == text


def test_describe_a_custom_validator():
    def on_weekdays(dt: Any) -> bool:
        return dt.weekday() < 5

    assert describe_periodic(on_weekdays) == (
        "custom (test_describe_a_custom_validator.<locals>.on_weekdays)")


def test_parse_arg():
    assert [parse_arg(a) for a in ("42", "true", '"7"', "[1, 2]", "hello", "")] == [
        42, True, "7", [1, 2], "hello", ""]
