"""learnplat.cli.helpers: a plugin's tenant command in one decorator (tenant lookup, context,
transaction, one-line errors) and its list command in one call (every page, JSON or rows)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click
import pytest
from click.testing import CliRunner
from testnotes import Note

from learnplat import db
from learnplat.cli.helpers import (
    echo_pages,
    echo_rows,
    json_option,
    read_pages,
    tenant_command,
    with_tenant,
)
from learnplat.cli.main import AppContext, LearnplatGroup
from learnplat.errors import LearnplatError
from learnplat.tenancy import current_tenant, tenant_context
from learnplat.testing import make_tenant


def make_cli() -> click.Group:
    @click.group(cls=LearnplatGroup)
    def root() -> None:
        """Test root."""

    @root.group()
    def notes() -> None:
        """Notes."""

    @tenant_command(notes, "add")
    @click.option("--title", required=True)
    @click.option("--fail", is_flag=True)
    @click.option("--status", type=int, default=0)
    def notes_add(runtime: Any, tenant: Any, title: str, fail: bool, status: int) -> int:
        """Add a note."""
        assert current_tenant() == tenant and db.current_unit() is not None
        note = Note.create(title=title)
        click.echo(f"added {note.title} in {tenant.slug} via {type(runtime).__name__}")
        if fail:
            raise LearnplatError("refused after writing")
        return status

    @tenant_command(notes, "list", write=False, allow_disabled=True)
    @json_option
    def notes_list(runtime: Any, tenant: Any, as_json: bool) -> None:
        """List notes."""
        echo_rows([{"id": n.id, "title": n.title} for n in Note.select().order_by(Note.id)],
                  lambda n: (n["id"], n["title"]), as_json=as_json)

    @root.command("count")
    @with_tenant(write=False)
    def count(runtime: Any, tenant: Any) -> None:
        """Count notes (with_tenant on a plain command)."""
        click.echo(str(Note.select().count()))

    return root


def run(runtime: Any, *args: str):
    ctx = AppContext()
    ctx._runtime = runtime
    return CliRunner().invoke(make_cli(), list(args), obj=ctx)


def titles(runtime: Any, tenant: Any) -> list[str]:
    with db.connection(), tenant_context(tenant), db.transaction():
        return [n.title for n in Note.select().order_by(Note.id)]


def test_a_tenant_command_runs_in_the_tenant_and_commits(core_runtime, tenant_a, tenant_b):
    r = run(core_runtime, "notes", "add", "--tenant", tenant_a.slug, "--title", "hello")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == f"added hello in {tenant_a.slug} via Runtime\n"
    assert titles(core_runtime, tenant_a) == ["hello"]
    assert titles(core_runtime, tenant_b) == []
    r = run(core_runtime, "notes", "list", "--tenant", tenant_a.slug, "--json")
    assert [n["title"] for n in json.loads(r.stdout)] == ["hello"]
    assert run(core_runtime, "count", "--tenant", tenant_b.slug).stdout == "0\n"


def test_an_error_rolls_back_and_is_one_line(core_runtime, tenant_a):
    r = run(core_runtime, "notes", "add", "--tenant", tenant_a.slug, "--title", "x", "--fail")
    assert r.exit_code == 1 and r.stderr == "error: refused after writing\n"
    assert titles(core_runtime, tenant_a) == []


def test_a_returned_status_exits_after_the_commit(core_runtime, tenant_a):
    r = run(core_runtime, "notes", "add", "--tenant", tenant_a.slug, "--title", "kept",
            "--status", "3")
    assert r.exit_code == 3
    assert titles(core_runtime, tenant_a) == ["kept"]


def test_unknown_and_disabled_tenants_are_one_error_line(core_runtime):
    r = run(core_runtime, "notes", "add", "--tenant", "no-such-school", "--title", "x")
    assert r.exit_code == 1 and r.stderr == "error: no tenant 'no-such-school'\n"
    off = make_tenant(core_runtime, enabled=False)
    r = run(core_runtime, "notes", "add", "--tenant", off.slug, "--title", "x")
    assert r.exit_code == 1
    assert r.stderr == (f"error: tenant {off.slug!r} is disabled "
                        f"(learnplat tenants enable {off.slug})\n")
    assert titles(core_runtime, off) == []
    # allow_disabled=True: the command works there too.
    r = run(core_runtime, "notes", "list", "--tenant", off.slug)
    assert r.exit_code == 0 and r.stdout == ""


def test_tenant_is_a_required_documented_option(core_runtime):
    r = run(core_runtime, "notes", "add", "--title", "x")
    assert r.exit_code == 2 and "--tenant" in r.stderr
    r = run(core_runtime, "notes", "add", "--help")
    assert "--tenant SLUG" in r.stdout and "Add a note." in r.stdout


def fake_pages(total: int, calls: list[tuple[int, str | None]]):
    """A paginated service method over items 0..total-1 (cursor = next index)."""

    def fetch(page: Any) -> dict[str, Any]:
        calls.append((page.limit, page.cursor))
        start = int(page.cursor[1:]) if page.cursor else 0
        end = min(total, start + page.limit)
        items = [{"n": i, "at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC), "gone": None}
                 for i in range(start, end)]
        return {"items": items, "next_cursor": f"c{end}" if end < total else None}

    return fetch


def test_read_pages_follows_cursors_and_stops_at_a_limit():
    calls: list[tuple[int, str | None]] = []
    assert [r["n"] for r in read_pages(fake_pages(250, calls))] == list(range(250))
    assert calls == [(100, None), (100, "c100"), (100, "c200")]
    calls.clear()
    assert len(read_pages(fake_pages(250, calls), limit=120)) == 120
    assert calls == [(100, None), (20, "c100")]
    assert read_pages(fake_pages(0, [])) == []


def test_echo_pages_prints_json_or_rows(capsys: pytest.CaptureFixture[str]):
    echo_pages(fake_pages(3, []), lambda r: (r["n"], r["at"], r["gone"]), as_json=False)
    assert capsys.readouterr().out.splitlines() == [
        f"{i}\t2024-01-01T00:00:00+00:00\t" for i in range(3)]
    echo_pages(fake_pages(3, []), lambda r: "unused", as_json=True)
    out = json.loads(capsys.readouterr().out)
    assert [r["n"] for r in out] == [0, 1, 2] and out[0]["at"] == "2024-01-01T00:00:00Z"
    echo_rows([{"a": 1}], lambda r: f"a is {r['a']}", as_json=False)
    assert capsys.readouterr().out == "a is 1\n"
