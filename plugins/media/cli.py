"""`learnplat media ...`: storage housekeeping for a school."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import click

from learnplat.plugin.cli import echo_json, tenant_command

from .sweep import sweep

if TYPE_CHECKING:
    from learnplat.plugin import TenantInfo

    from .plugin import MediaPlugin


@click.group()
def media() -> None:
    """Media storage housekeeping."""


# allow_disabled=True: a disabled school's storage is checked (and cleaned) all the same.
@tenant_command(media, "check", write=False, allow_disabled=True, plugin=True)
@click.option("--delete-orphans", is_flag=True,
              help="Also delete stored objects that no media row names (older than --min-age).")
@click.option("--min-age", "min_age_hours", type=click.IntRange(min=0), default=48,
              show_default=True, metavar="HOURS",
              help="Never delete orphans younger than this: uploads in progress, direct "
                   "uploads not confirmed yet.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def media_check(plugin: MediaPlugin, tenant: TenantInfo, delete_orphans: bool,
                min_age_hours: int, as_json: bool) -> int:
    """Find stored objects with no metadata, and metadata with no stored object.

    Exit status 0 when storage and metadata agree, 1 when something is out of place."""
    report = sweep(plugin.runtime, delete_orphans, dt.timedelta(hours=min_age_hours))
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
    return 1 if remaining or report.missing_objects else 0
