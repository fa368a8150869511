"""Seeing and retrying the outbox's deliveries without SQL: `learnplat events deliveries` lists
each handler's delivery (filtered by school, status, handler), `learnplat events redeliver`
puts failed ones back in the queue; in-process and as real processes from a fresh home."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from corehelpers import REPO, build_runtime, cli_env, fake_distribution

from learnplat import db
from learnplat.cli import core_commands  # noqa: F401  (registers the core commands)
from learnplat.cli.main import AppContext, cli
from learnplat.event_deliveries import list_deliveries, redeliver
from learnplat.models import OutboxEvent
from learnplat.registry import EventHandler
from learnplat.runtime import Runtime
from learnplat.tenancy import TenantInfo, tenant_context
from learnplat.testing import declare_event, forget_redis_keys, make_tenant, use_runtime


@pytest.fixture
def bus_runtime(tmp_path: Path, core_database: Any, _core_runtime: Runtime) -> Any:
    """A runtime whose queue is not immediate, so the test decides when dispatch runs; two
    attempts before a delivery fails."""
    rt = build_runtime(tmp_path, core_database, do_migrate=False,
                       queue={"immediate": False}, redis={"url": ""},
                       events={"max_attempts": 2, "backoff_seconds": 10})
    with use_runtime(rt):
        yield rt


def invoke(runtime: Runtime, *args: str) -> Result:
    ctx = AppContext()
    ctx._runtime = runtime
    return CliRunner().invoke(cli, list(args), obj=ctx)


def listed(runtime: Runtime, *args: str) -> list[dict[str, Any]]:
    result = invoke(runtime, "events", "deliveries", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def record(runtime: Runtime, tenant: TenantInfo, name: str) -> int:
    with db.connection(), tenant_context(tenant), db.transaction():
        return runtime.events.record(declare_event(runtime, name)())


def make_due() -> None:
    # The backoff is 10 s and more: skip it rather than wait.
    with db.connection():
        OutboxEvent.update(next_attempt_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).where(
            OutboxEvent.status == "pending").execute()


class Flaky:
    """A handler that raises until it is fixed; remembers the events it handled."""

    def __init__(self) -> None:
        self.broken = True
        self.handled: list[int] = []

    def __call__(self, runtime: Runtime, event: Any) -> None:
        if self.broken:
            raise RuntimeError("the mail server refused the message")
        self.handled.append(event.id)


def test_a_failed_delivery_is_listed_redelivered_and_done_after_the_fix(bus_runtime):
    rt = bus_runtime
    a, b = make_tenant(rt), make_tenant(rt)
    tag = uuid.uuid4().hex[:8]
    name, flaky, steady = f"t.deliveries{tag}.v1", Flaky(), []
    rt.registry.handlers.append(EventHandler(name, f"flaky{tag}", flaky, plugin="tests"))
    rt.registry.handlers.append(EventHandler(name, f"steady{tag}", lambda r, e: steady.append(
        e.id), plugin="tests"))
    flaky_key, steady_key = f"tests.flaky{tag}", f"tests.steady{tag}"
    ev_a, ev_b = record(rt, a, name), record(rt, b, name)

    # Not dispatched yet: each handler's delivery is pending, with no row (id None) so far.
    waiting = listed(rt, "--tenant", a.slug, "--status", "pending")
    assert [(r["id"], r["event_id"], r["handler"], r["attempts"], r["tenant"]) for r in waiting
            ] == [(None, ev_a, flaky_key, 0, a.slug), (None, ev_a, steady_key, 0, a.slug)]

    rt.events.dispatch_pending()
    make_due()
    rt.events.dispatch_pending()  # the second and last attempt
    assert sorted(steady) == sorted([ev_a, ev_b])

    failed = listed(rt, "--status", "failed", "--handler", flaky_key)
    assert [(r["event_id"], r["tenant"], r["status"], r["attempts"]) for r in failed] == [
        (ev_b, b.slug, "failed", 2), (ev_a, a.slug, "failed", 2)]  # newest event first
    assert all("the mail server refused" in r["last_error"] for r in failed)
    assert all(r["event"] == name and r["next_attempt_at"] is None for r in failed)
    # --tenant: that school's deliveries only, every status; --handler takes a plugin name too.
    in_a = listed(rt, "--tenant", a.slug, "--handler", "tests")
    assert {(r["handler"], r["status"]) for r in in_a} == {(flaky_key, "failed"),
                                                            (steady_key, "done")}
    assert {r["tenant"] for r in in_a} == {a.slug} and {r["event_id"] for r in in_a} == {ev_a}
    assert listed(rt, "--tenant", a.slug, "--status", "done", "--status", "pending") == [
        r for r in in_a if r["status"] == "done"]
    assert len(listed(rt, "--tenant", a.slug, "--limit", "1")) == 1
    # Without --json: one tab-separated line per delivery, the error on one line.
    text = invoke(rt, "events", "deliveries", "--tenant", a.slug, "--status", "failed")
    assert text.exit_code == 0, text.output
    [line] = text.stdout.splitlines()
    cells = line.split("\t")
    assert cells[1:7] == [str(ev_a), name, flaky_key, a.slug, "failed", "2"]
    assert cells[7] == failed[1]["created_at"] and cells[7].endswith("Z")  # as --json
    assert cells[8] == ""  # no next attempt: failed
    assert cells[-1] == "RuntimeError: the mail server refused the message"

    flaky.broken = False  # the fix is deployed
    queued_before = rt.queue.huey.pending_count()
    result = invoke(rt, "events", "redeliver", "--failed", "--tenant", a.slug)
    assert result.exit_code == 0, result.output
    [done_line] = result.stdout.splitlines()
    assert done_line.startswith(f"re-queued delivery {failed[1]['id']}: event {ev_a} {name} "
                                f"-> {flaky_key} in {a.slug}")
    # Queued for the worker after commit; until it runs, the delivery waits with 0 attempts.
    assert rt.queue.huey.pending_count() == queued_before + 1
    [again] = listed(rt, "--tenant", a.slug, "--handler", flaky_key)
    assert (again["status"], again["attempts"]) == ("pending", 0)

    rt.events.dispatch_pending()  # what the worker's dispatch task runs
    assert flaky.handled == [ev_a]
    assert sorted(steady) == sorted([ev_a, ev_b])  # a done handler is not run again
    assert {(r["tenant"], r["status"]) for r in listed(rt, "--handler", flaky_key)} == {
        (a.slug, "done"), (b.slug, "failed")}
    with db.connection():
        assert OutboxEvent.get_by_id(ev_a).status == "done"
        assert OutboxEvent.get_by_id(ev_b).status == "failed"

    # By id: b's failed delivery is re-queued; a's done one is refused (exit 1, after commit).
    done_id = failed[1]["id"]
    by_id = invoke(rt, "events", "redeliver", str(failed[0]["id"]), str(done_id), "999999999")
    assert by_id.exit_code == 1
    assert f"re-queued delivery {failed[0]['id']}: event {ev_b}" in by_id.stdout
    assert f"skipped delivery {done_id}: done, not failed" in by_id.stderr
    assert "skipped delivery 999999999: no such delivery" in by_id.stderr
    rt.events.dispatch_pending()
    assert sorted(flaky.handled) == sorted([ev_a, ev_b])
    assert {r["status"] for r in listed(rt, "--handler", flaky_key)} == {"done"}
    nothing = invoke(rt, "events", "redeliver", "--failed", "--handler", flaky_key)
    assert (nothing.exit_code, nothing.stdout) == (0, "no failed deliveries\n")


def test_redeliver_gives_a_fresh_budget_and_keeps_other_failures(bus_runtime):
    """Only the chosen handler is retried; the event's attempts and backoff start over."""
    rt = bus_runtime
    tenant = make_tenant(rt)
    tag = uuid.uuid4().hex[:8]
    name, one, two = f"t.budget{tag}.v1", Flaky(), Flaky()
    rt.registry.handlers += [EventHandler(name, f"one{tag}", one, plugin="tests"),
                             EventHandler(name, f"two{tag}", two, plugin="tests")]
    event_id = record(rt, tenant, name)
    rt.events.dispatch_pending()
    make_due()
    rt.events.dispatch_pending()
    one.broken = two.broken = False
    with db.connection():
        result = redeliver(rt, tenant_id=tenant.id, handlers=[f"tests.one{tag}"])
        assert [d.handler for d in result.requeued] == [f"tests.one{tag}"]
        event = OutboxEvent.get_by_id(event_id)
        assert (event.status, event.attempts) == ("pending", 0)
    rt.events.dispatch_pending()
    assert one.handled == [event_id] and two.handled == []
    with db.connection():
        rows = {d.handler: d.status for d in list_deliveries(rt, tenant_id=tenant.id)}
        # The event finished with `two` still failed: listed so, and redeliverable later.
        assert rows == {f"tests.one{tag}": "done", f"tests.two{tag}": "failed"}
        assert [d.handler for d in redeliver(rt, tenant_id=tenant.id).requeued] == [
            f"tests.two{tag}"]


def test_bad_options_are_one_line_errors(bus_runtime):
    assert invoke(bus_runtime, "events", "redeliver").exit_code == 2  # neither ids nor --failed
    assert invoke(bus_runtime, "events", "redeliver", "1", "--failed").exit_code == 2
    assert invoke(bus_runtime, "events", "redeliver", "1", "--tenant", "x").exit_code == 2
    assert invoke(bus_runtime, "events", "deliveries", "--status", "lost").exit_code == 2
    unknown = invoke(bus_runtime, "events", "deliveries", "--tenant", "no-such-school")
    assert unknown.exit_code == 1
    assert unknown.stderr == "error: no tenant 'no-such-school'\n"


# -- as real processes, from a fresh home ------------------------------------------------------

PLUGIN = '''
"""A handler that fails while the file named by E2E_BROKEN exists."""
import os
from typing import ClassVar

import click

from learnplat.plugin import Event, EventHandler, hookimpl, tenant_command


class Pinged(Event):
    """Someone pinged (a test event)."""
    name: ClassVar[str] = "e2e.pinged.v1"


def write(runtime, event):
    if os.path.exists(os.environ["E2E_BROKEN"]):
        raise RuntimeError("broken until fixed")


@hookimpl
def register_events():
    return [Pinged]


@hookimpl
def register_event_handlers():
    return [EventHandler(Pinged, "write", write)]


@hookimpl
def register_commands(cli):
    @tenant_command(cli, "e2e-ping")
    def ping(runtime, tenant):
        click.echo(runtime.events.record(Pinged()))
'''


def test_deliveries_and_redeliver_as_processes_from_a_fresh_home(tmp_path, fresh_db):
    plugin_root = fake_distribution(tmp_path / "site", "learnplat-e2e-deliveries",
                                    {"e2edeliveries": "learnplat_e2e_deliveries"},
                                    {"learnplat_e2e_deliveries.py": PLUGIN})
    home = tmp_path / "home"  # empty: no config/learnplat.toml, nothing but the environment
    home.mkdir()
    env = cli_env(tmp_path, fresh_db, pythonpath=[plugin_root], EVENTS_MAX_ATTEMPTS="1")
    env["LEARNPLAT_HOME"] = str(home)
    broken = tmp_path / "broken"
    broken.touch()
    env["E2E_BROKEN"] = str(broken)
    # The installed console script, as an operator runs it.
    learnplat = str(Path(sys.executable).parent / "learnplat")

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([learnplat, *args], env=env, cwd=tmp_path, capture_output=True,
                           text=True, timeout=120)
        assert (r.returncode == 0) == ok, (args, r.stdout, r.stderr)
        return r

    try:
        run("migrate")
        schools = tmp_path / "schools"
        schools.mkdir()
        for slug in ("north", "south"):
            (schools / f"{slug}.toml").write_text(f'name = "{slug.title()} School"\n')
        run("tenants", "apply", str(schools))
        catalogue = json.loads(run("events", "list", "--json").stdout)
        [pinged] = [e for e in catalogue["events"] if e["name"] == "e2e.pinged.v1"]
        # Its own handler, and those of every event ("*": the webhooks fan-out).
        assert pinged["handlers"][0] == "e2edeliveries.write"
        north = int(run("e2e-ping", "--tenant", "north").stdout)
        south = int(run("e2e-ping", "--tenant", "south").stdout)
        pending = json.loads(run("events", "deliveries", "--status", "pending", "--json",
                                 "--handler", "e2edeliveries").stdout)
        assert [(r["event_id"], r["status"]) for r in pending] == [(south, "pending"),
                                                                   (north, "pending")]
        run("tasks", "run", "learnplat.dispatch_events")  # the worker's dispatch, once

        failed = json.loads(run("events", "deliveries", "--status", "failed", "--json").stdout)
        assert [(r["event_id"], r["tenant"], r["handler"]) for r in failed] == [
            (south, "south", "e2edeliveries.write"), (north, "north", "e2edeliveries.write")]
        assert "RuntimeError: broken until fixed" in failed[0]["last_error"]
        only_north = run("events", "deliveries", "--tenant", "north", "--handler",
                         "e2edeliveries").stdout.splitlines()
        assert len(only_north) == 1 and "\tnorth\tfailed\t1\t" in only_north[0]

        broken.unlink()  # the fix
        out = run("events", "redeliver", "--failed", "--tenant", "north").stdout
        assert out.startswith(f"re-queued delivery {failed[1]['id']}: event {north} "
                              "e2e.pinged.v1 -> e2edeliveries.write in north")
        run("tasks", "run", "learnplat.dispatch_events")
        now = {r["tenant"]: r["status"] for r in json.loads(
            run("events", "deliveries", "--json", "--handler", "e2edeliveries").stdout)}
        assert now == {"north": "done", "south": "failed"}
        skipped = run("events", "redeliver", str(failed[1]["id"]), ok=False)
        assert skipped.stderr == f"skipped delivery {failed[1]['id']}: done, not failed\n"
        run("events", "redeliver", str(failed[0]["id"]))
        run("tasks", "run", "learnplat.dispatch_events")
        done = json.loads(run("events", "deliveries", "--json", "--status", "done").stdout)
        assert {r["tenant"] for r in done} == {"north", "south"}
    finally:
        forget_redis_keys(fresh_db.redis_url, env["LEARNPLAT_REDIS_PREFIX"])


def test_events_list_update_keeps_the_hand_written_part(bus_runtime, tmp_path):
    """docs/events.md is a guide written by hand above a marker, the catalogue below it."""
    from learnplat.catalogue import GENERATED_MARKER

    doc = tmp_path / "events.md"
    head = f"# Events\n\nWritten by hand.\n{GENERATED_MARKER}\n"
    doc.write_text(head + "\nstale catalogue\n")
    result = invoke(bus_runtime, "events", "list", "--markdown", "--update", str(doc))
    assert result.exit_code == 0, result.output
    text = doc.read_text()
    assert text.startswith(head + "\n## Events and actions catalogue\n")
    assert "stale" not in text and "### Vetoable actions" in text
    assert invoke(bus_runtime, "events", "list", "--update", str(doc)).exit_code == 2


def test_the_commands_are_documented():
    events_md = (REPO / "docs" / "events.md").read_text()
    plugins_md = (REPO / "docs" / "plugins.md").read_text()
    for command in ("learnplat events deliveries", "learnplat events redeliver"):
        assert command in events_md and command in plugins_md
