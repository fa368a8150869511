"""`learnplat events`: the catalogue of events and actions (`list`), the outbox's deliveries
(`deliveries`) and re-queueing failed ones (`redeliver`). The logic is in
learnplat.event_deliveries; these commands only parse options and print."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from .. import db
from ..timestamps import api_timestamp
from .helpers import echo_rows, find_tenant, json_option
from .main import AppContext, cli, echo_json, pass_app


@cli.group()
def events() -> None:
    """The events plugins publish and handle, the actions they may veto, and the outbox's
    deliveries (per handler) with a way to retry failed ones."""


@events.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the catalogue as JSON.")
@click.option("--markdown", is_flag=True, help="Print the catalogue of docs/events.md.")
@click.option("--update", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE", help="With --markdown: rewrite the generated part of FILE "
              "(docs/events.md), keeping its hand-written part.")
@pass_app
def events_list(app: AppContext, as_json: bool, markdown: bool, update: Path | None) -> None:
    """Every declared event (publisher, payload fields, handlers, whether it leaves learnplat
    and with which fields) and vetoable action."""
    from ..catalogue import (
        catalogue_markdown,
        events_catalogue,
        leaves_learnplat,
        update_document,
    )

    catalogue = events_catalogue(app.runtime.registry)
    if update is not None:
        if not markdown:
            raise click.UsageError("--update FILE goes with --markdown")
        old = update.read_text(encoding="utf-8") if update.exists() else ""
        update.write_text(update_document(old, catalogue), encoding="utf-8")
        click.echo(f"wrote the catalogue into {update}")
        return
    if as_json:
        echo_json(catalogue)
        return
    if markdown:
        click.echo(catalogue_markdown(catalogue), nl=False)
        return
    for e in catalogue["events"]:
        click.echo(f"{e['name']:<34} {e['publisher'] or '(not loaded)':<12} {e['description']}")
        if e["fields"]:
            click.echo("    payload: " + ", ".join(f"{f['name']}: {f['type']}"
                                                   for f in e["fields"]))
        if e["publisher"]:
            click.echo("    leaves learnplat: " + leaves_learnplat(e, quote=""))
        if e["handlers"]:
            click.echo("    handled by: " + ", ".join(e["handlers"]))
    for a in catalogue["actions"]:
        click.echo(f"{a['name']:<34} {a['asked_by'] or '(not loaded)':<12} {a['description']}"
                   f" [action]")
        if a["vetoes"]:
            click.echo("    vetoed by: " + ", ".join(a["vetoes"]))
    for warning in catalogue["warnings"]:
        click.echo(f"warning: {warning}", err=True)


def _one_line(text: str | None, width: int = 120) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= width else line[:width - 3] + "..."


def _time(moment: dt.datetime | None) -> str:
    # As --json and the API write it ("Z"), not isoformat()'s "+00:00".
    return "" if moment is None else api_timestamp(moment)


def _tenant_id(app: AppContext, slug: str | None) -> int | None:
    # Disabled schools too: their failed deliveries are what an operator may be looking for.
    return find_tenant(app.runtime, slug, allow_disabled=True).id if slug else None


handler_option = click.option(
    "--handler", "handlers", multiple=True, metavar="NAME",
    help="A handler (notifications.enrolled) or every handler of a plugin (notifications); "
         "repeatable.")
tenant_filter = click.option("--tenant", "tenant_slug", default=None, metavar="SLUG",
                             help="Only this school's events.")


@events.command("deliveries")
@tenant_filter
@click.option("--status", "statuses", multiple=True, metavar="STATUS",
              type=click.Choice(["pending", "failed", "done", "skipped"]),
              help="pending, failed, done or skipped; repeatable (default: all).")
@handler_option
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True,
              help="At most this many, newest event first.")
@json_option
@pass_app
def events_deliveries(app: AppContext, tenant_slug: str | None, statuses: tuple[str, ...],
                      handlers: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Each handler's delivery of each event, newest event first.

    Columns: delivery id (- when not tried yet), event id, event, handler, school, status,
    attempts, recorded at, next attempt (pending ones), last error. Failed ones can be retried
    with `learnplat events redeliver`.
    """
    from ..event_deliveries import list_deliveries

    runtime = app.runtime  # built before the first query: it points db at the database
    with db.connection(), db.transaction(write=False):
        rows = list_deliveries(runtime, tenant_id=_tenant_id(app, tenant_slug),
                               statuses=statuses, handlers=handlers, limit=limit)
    echo_rows([r.as_dict() for r in rows],
              lambda r: ("-" if r["id"] is None else r["id"], r["event_id"], r["event"],
                         r["handler"], r["tenant"] or f"#{r['tenant_id']}", r["status"],
                         r["attempts"], _time(r["created_at"]), _time(r["next_attempt_at"]),
                         _one_line(r["last_error"])), as_json=as_json)


@events.command("redeliver")
@click.argument("ids", nargs=-1, type=int)
@click.option("--failed", "all_failed", is_flag=True,
              help="Every failed delivery (narrowed by --tenant and --handler).")
@tenant_filter
@handler_option
@json_option
@pass_app
def events_redeliver(app: AppContext, ids: tuple[int, ...], all_failed: bool,
                     tenant_slug: str | None, handlers: tuple[str, ...], as_json: bool
                     ) -> None:
    """Queue failed deliveries again: IDS (from `learnplat events deliveries`), or --failed.

    Each goes back to pending with its attempts reset, and a worker retries it at once
    (events.max_attempts tries, with backoff); handlers already done are not run again.
    Exits 1 when a given id was not re-queued (not failed, unknown), after queuing the rest.
    """
    from ..event_deliveries import redeliver

    if bool(ids) == all_failed:
        raise click.UsageError("give delivery IDS or --failed (one of the two)")
    if ids and (tenant_slug or handlers):
        raise click.UsageError("--tenant and --handler go with --failed")
    runtime = app.runtime  # built before the first query: it points db at the database
    with db.connection():
        result = redeliver(runtime, list(ids) if ids else None,
                           tenant_id=_tenant_id(app, tenant_slug), handlers=handlers)
    if as_json:
        echo_json(result.as_dict())
    else:
        for d in result.requeued:
            click.echo(f"re-queued delivery {d.id}: event {d.event_id} {d.event} -> "
                       f"{d.handler} in {d.tenant} (last error: {_one_line(d.last_error)})")
        for delivery_id, reason in result.skipped:
            click.echo(f"skipped delivery {delivery_id}: {reason}", err=True)
        if not result.requeued:
            click.echo("nothing re-queued" if ids else "no failed deliveries")
    if ids and result.skipped:
        click.get_current_context().exit(1)


__all__ = ["events", "events_deliveries", "events_list", "events_redeliver"]
