"""`learnplat lti scores --course N`: the scores tools posted for a course's learners."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
import orjson

from learnplat.plugin import TenantInfo, dump, echo_rows, json_option, with_tenant

if TYPE_CHECKING:
    from ..plugin import LtiPlugin

ID = click.IntRange(min=1, max=2**63 - 1)


def with_tenant_plugin(fn: Any) -> Any:
    """`with_tenant` for a read-only command of this plugin (``--tenant SLUG``)."""
    return with_tenant(fn, write=False, allow_disabled=True, plugin=True)


@click.command("scores")
@click.option("--course", "course_id", type=ID, required=True)
@click.option("--module", "module_id", type=ID, default=None)
@click.option("--user", "user_id", type=ID, default=None)
@click.option("--limit", type=click.IntRange(1, 10000), default=1000, show_default=True)
@json_option
@with_tenant_plugin
def scores(plugin: LtiPlugin, tenant: TenantInfo, course_id: int, module_id: int | None,
           user_id: int | None, limit: int, as_json: bool) -> None:
    """Scores LTI tools posted for a course, newest first (every score kept)."""
    from .models import LtiScoreEntry
    from .resources import score_out

    q = LtiScoreEntry.select().where(LtiScoreEntry.course_id == course_id)
    if module_id is not None:
        q = q.where(LtiScoreEntry.module_id == module_id)
    if user_id is not None:
        q = q.where(LtiScoreEntry.user_id == user_id)
    rows: list[dict[str, Any]] = [dict(orjson.loads(dump(score_out(e))))
                                  for e in q.order_by(LtiScoreEntry.id.desc()).limit(limit)]
    echo_rows(rows, lambda s: (s["timestamp"], s["module_id"], s["user_id"], s["score_given"],
                               s["score_maximum"], s["activity_progress"],
                               s["grading_progress"]), as_json=as_json)
