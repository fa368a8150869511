"""`learnplat xapi ...`: configure, show and switch off a school's learning record store, read
the statements' log and send statements again."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import click

from learnplat.plugin import (
    LearnplatError,
    TenantInfo,
    echo_json,
    echo_rows,
    json_option,
    tenant_command,
)

from .resources import _entry_fields, lrs_out

if TYPE_CHECKING:
    from .plugin import XapiPlugin

ID = click.IntRange(min=1, max=2**63 - 1)


@click.group()
def xapi() -> None:
    """Send learning events as xAPI statements to a school's learning record store."""


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


@tenant_command(xapi, "configure", allow_disabled=True, plugin=True)
@click.option("--endpoint", required=True, help="The LRS's xAPI base URL.")
@click.option("--key", required=True, help="Basic authentication: the key (user name).")
@click.option("--secret", default=None, envvar="LEARNPLAT_XAPI_SECRET",
              help="Basic authentication: the secret (or LEARNPLAT_XAPI_SECRET; omitted: the "
                   "stored one is kept).")
@click.option("--actor", type=click.Choice(["account", "mbox_sha1sum"]), default=None)
@click.option("--home-page", default=None, help="account.homePage and the activities' base.")
@click.option("--language", default=None, help="RFC 5646 tag (default en-US).")
@json_option
def configure(plugin: XapiPlugin, tenant: TenantInfo, endpoint: str, key: str,
              secret: str | None, actor: str | None, home_page: str | None,
              language: str | None, as_json: bool) -> None:
    """Set (or replace) the school's learning record store, and switch it on."""
    row = plugin.xapi.configure(endpoint=endpoint.strip(), key=key.strip(), secret=secret,
                                actor=actor, home_page=home_page, language=language,
                                enabled=True)
    _show(plugin, row, as_json)


def _show(plugin: XapiPlugin, row: Any, as_json: bool) -> None:
    out = lrs_out(plugin.xapi, row).model_dump(mode="json")
    if as_json:
        echo_json(out)
        return
    for k in ("endpoint", "key", "actor", "home_page", "language", "enabled"):
        click.echo(f"{k}\t{out[k]}")
    d = out["delivery"] or {}
    if d.get("disabled_at"):
        click.echo(f"disabled\t{d['disabled_at']}\t{d['disabled_reason']}")
    if d.get("failing_since"):
        click.echo(f"failing since\t{d['failing_since']}")


@tenant_command(xapi, "show", write=False, allow_disabled=True, plugin=True)
@json_option
def show(plugin: XapiPlugin, tenant: TenantInfo, as_json: bool) -> None:
    """Show the school's learning record store (never its secret)."""
    _show(plugin, plugin.xapi.require_config(), as_json)


@tenant_command(xapi, "disable", allow_disabled=True, plugin=True)
def disable(plugin: XapiPlugin, tenant: TenantInfo) -> None:
    """Stop sending statements (queued ones wait; `configure` switches it on again)."""
    plugin.xapi.set_enabled(False)
    click.echo("disabled")


@tenant_command(xapi, "statements", write=False, allow_disabled=True, plugin=True)
@click.option("--status", type=click.Choice(["pending", "delivered", "failed", "cancelled"]),
              default=None)
@click.option("--event-type", default=None)
@click.option("--since", type=click.DateTime(), default=None, help="Queued at or after (UTC).")
@click.option("--until", type=click.DateTime(), default=None, help="Queued before (UTC).")
@click.option("--limit", type=click.IntRange(1, 1000), default=50)
@json_option
def statements(plugin: XapiPlugin, tenant: TenantInfo, status: str | None,
               event_type: str | None, since: dt.datetime | None, until: dt.datetime | None,
               limit: int, as_json: bool) -> None:
    """The statements' delivery log, newest first."""
    plugin.xapi.require_config()
    rows = [_entry_fields(m) for m in plugin.xapi.log(
        statuses=(status,) if status else (), event_type=event_type, since=_utc(since),
        until=_utc(until), limit=limit)]
    echo_rows(rows, lambda r: (r["id"], r["statement_id"], r["verb"], r["event_type"],
                               r["status"], r["attempts"], r["last_status"] or "",
                               r["created_at"]), as_json=as_json)


@tenant_command(xapi, "redeliver", allow_disabled=True, plugin=True)
@click.option("--id", "ids", type=ID, multiple=True, help="A log entry's id (repeatable).")
@click.option("--since", type=click.DateTime(), default=None, help="Queued at or after (UTC).")
@click.option("--until", type=click.DateTime(), default=None, help="Queued before (UTC).")
@click.option("--status", "statuses", multiple=True, default=("failed",),
              type=click.Choice(["failed", "delivered", "cancelled"]),
              help="With a time range: which to send again (default failed).")
def redeliver(plugin: XapiPlugin, tenant: TenantInfo, ids: tuple[int, ...],
              since: dt.datetime | None, until: dt.datetime | None,
              statuses: tuple[str, ...]) -> None:
    """Send statements again: by id (whatever their status), or those of a time range."""
    if ids and (since or until):
        raise LearnplatError("give --id or --since/--until, not both")
    if ids:
        done = plugin.xapi.redeliver(ids=list(ids), statuses=(
            "failed", "delivered", "cancelled", "pending"))
    elif since and until:
        start, end = since.replace(tzinfo=since.tzinfo or dt.UTC), until.replace(
            tzinfo=until.tzinfo or dt.UTC)
        if start >= end:
            raise LearnplatError("--until must be after --since")
        done = plugin.xapi.redeliver(since=start, until=end, statuses=statuses)
    else:
        raise LearnplatError("give --id, or --since and --until")
    click.echo(f"{len(done)} statements queued again")
