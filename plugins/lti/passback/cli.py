"""`learnplat lti passbacks ...`: the grades sent back to platforms, one passback with its
attempts, and sending one again (the operator acts as an admin of the school)."""

from __future__ import annotations

from itertools import islice
from typing import TYPE_CHECKING, Any

import click

from learnplat.plugin import (
    Principal,
    TenantInfo,
    echo_json,
    echo_rows,
    json_option,
    tenant_command,
)

from .resources import detail_out, entry_fields
from .services import READ, REDELIVER, PassbackService

if TYPE_CHECKING:
    from ..plugin import LtiPlugin

ID = click.IntRange(min=1, max=2**63 - 1)


@click.group()
def passbacks() -> None:
    """Grades sent back to the LMSs that launch the school's courses."""


def _operator(tenant: TenantInfo) -> Principal:
    # The command line is the school's operator: every passback, as an admin sees them.
    return Principal(user_id=None, tenant_id=tenant.id, role="admin",
                     grants={READ: "any", REDELIVER: "any"})


@tenant_command(passbacks, "list", write=False, allow_disabled=True, plugin=True)
@click.option("--course-id", type=ID, default=None)
@click.option("--user-id", type=ID, default=None)
@click.option("--status", type=click.Choice(["pending", "delivered", "failed", "cancelled"]),
              default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=50)
@json_option
def list_(plugin: LtiPlugin, tenant: TenantInfo, course_id: int | None, user_id: int | None,
          status: str | None, limit: int, as_json: bool) -> None:
    """The passbacks, newest first."""
    svc = PassbackService(plugin)
    found = (m for m in svc.iter_all()
             if (status is None or m.status == status)
             and (course_id is None or m.payload.get("course_id") == course_id)
             and (user_id is None or m.payload.get("user_id") == user_id))
    seen: dict[str, Any] = {}
    rows = [entry_fields(svc, m, seen) for m in islice(found, limit)]
    echo_rows(rows, lambda r: (r["id"], r["course_id"], r["module_id"] or "", r["user_id"],
                               r["event_type"], r["score_given"], r["status"], r["attempts"],
                               r["last_status"] or "", r["last_error"] or ""),
              as_json=as_json)


@tenant_command(passbacks, "show", write=False, allow_disabled=True, plugin=True)
@click.argument("passback_id", type=ID)
@json_option
def show(plugin: LtiPlugin, tenant: TenantInfo, passback_id: int, as_json: bool) -> None:
    """One passback: the score sent and every attempt."""
    svc = PassbackService(plugin)
    out = detail_out(svc, svc.entry(_operator(tenant), passback_id)).model_dump(mode="json")
    if as_json:
        echo_json(out)
        return
    for k in ("id", "course_id", "module_id", "user_id", "lineitem", "status", "attempts",
              "last_status", "last_error", "platform_disabled_reason"):
        click.echo(f"{k}\t{out[k]}")
    for a in out["attempts_log"]:
        click.echo(f"attempt\t{a['at']}\t{a['status']}\t{a['error'] or ''}\t{a['answer']}")


@tenant_command(passbacks, "redeliver", allow_disabled=True, plugin=True)
@click.argument("passback_id", type=ID)
def redeliver(plugin: LtiPlugin, tenant: TenantInfo, passback_id: int) -> None:
    """Send one passback again (switching its platform on again if the engine had stopped)."""
    m = PassbackService(plugin).redeliver(_operator(tenant), passback_id)
    click.echo(f"passback {m.id} queued again ({m.status})")
