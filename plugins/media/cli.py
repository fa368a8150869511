"""`learnplat media ...`: storage housekeeping for a school."""

from __future__ import annotations

import datetime as dt

import click

from learnplat.cli.main import AppContext, echo_json, pass_app
from learnplat.plugin import db, tenant_context

from .sweep import sweep


@click.group()
def media() -> None:
    """Media storage housekeeping."""


@media.command("check")
@click.option("--tenant", "tenant_slug", required=True, metavar="SLUG",
              help="The school (tenant) to check.")
@click.option("--delete-orphans", is_flag=True,
              help="Also delete stored objects that no media row names (older than --min-age).")
@click.option("--min-age", "min_age_hours", type=click.IntRange(min=0), default=48,
              show_default=True, metavar="HOURS",
              help="Never delete orphans younger than this: uploads in progress, direct "
                   "uploads not confirmed yet.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_app
def media_check(app: AppContext, tenant_slug: str, delete_orphans: bool, min_age_hours: int,
                as_json: bool) -> None:
    """Find stored objects with no metadata, and metadata with no stored object.

    Exit status 0 when storage and metadata agree, 1 when something is out of place."""
    rt = app.runtime
    with db.connection():
        tenant = rt.tenants.require(tenant_slug)
        with tenant_context(tenant), db.transaction(write=False):
            report = sweep(rt, delete_orphans, dt.timedelta(hours=min_age_hours))
    if as_json:
        echo_json(report.as_dict())
    else:
        click.echo(f"{report.objects} stored objects, {report.rows} media rows")
        for key in report.orphan_objects:
            state = (" (deleted)" if key in report.deleted
                     else " (recent: kept)" if key in report.recent else "")
            click.echo(f"orphan object: {key}{state}")
        for media_id in report.missing_objects:
            click.echo(f"missing object for media {media_id}")
    remaining = set(report.orphan_objects) - set(report.deleted)
    if remaining or report.missing_objects:
        raise SystemExit(1)
