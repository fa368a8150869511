"""`learnplat webhooks ...`: a school's webhook endpoints (list, create, show, update, delete,
rotate-secret), its delivery log and redelivery, for operators and scripts."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import click

from learnplat.plugin import LearnplatError, TenantInfo, dump
from learnplat.plugin.cli import echo_json, echo_rows, json_option, tenant_command

from .resources import delivery_fields, endpoint_out
from .services import REDELIVER_STATUSES

if TYPE_CHECKING:
    from .plugin import WebhooksPlugin

ID = click.IntRange(min=1, max=2**63 - 1)
STATUSES = click.Choice(["pending", "delivered", "failed", "cancelled"])


class Moment(click.ParamType):
    """An ISO 8601 date or date-time; without a zone it is UTC."""

    name = "DATETIME"

    def convert(self, value: Any, param: Any, ctx: Any) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return value
        try:
            moment = dt.datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date-time (2026-09-03T09:00:00Z)",
                      param, ctx)
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


MOMENT = Moment()


def _json(value: Any) -> Any:
    import orjson

    return orjson.loads(dump(value))


@click.group()
def webhooks() -> None:
    """A school's webhook endpoints, their deliveries and redelivery (docs/webhooks.md)."""


@webhooks.group()
def endpoints() -> None:
    """List, create, show, update, delete endpoints; rotate a signing secret."""


@webhooks.group()
def deliveries() -> None:
    """The delivery log: list, show one with its attempts."""


def _endpoint_line(e: dict[str, Any]) -> tuple[Any, ...]:
    state = "enabled" if e["enabled"] else f"disabled ({e['disabled_reason'] or '-'})"
    return (e["id"], state, e["url"], ",".join(e["event_types"]), e["description"])


@tenant_command(endpoints, "list", write=False, allow_disabled=True, plugin=True)
@json_option
def list_endpoints(plugin: WebhooksPlugin, tenant: TenantInfo, as_json: bool) -> None:
    """The school's endpoints, oldest first."""
    from .models import Endpoint

    rows = [_json(endpoint_out(r)) for r in Endpoint.select().order_by(Endpoint.id)]
    echo_rows(rows, _endpoint_line, as_json=as_json)


@tenant_command(endpoints, "create", allow_disabled=True, plugin=True)
@click.option("--url", required=True, help="https:// URL that receives the deliveries.")
@click.option("--event-type", "event_types", multiple=True, required=True, metavar="TYPE",
              help="A published event type or pattern (enrollment.*, *); repeat for more.")
@click.option("--description", default="", help="What it is for (at most 500 characters).")
@click.option("--disabled", is_flag=True, help="Create it switched off.")
@json_option
def create(plugin: WebhooksPlugin, tenant: TenantInfo, url: str, event_types: tuple[str, ...],
           description: str, disabled: bool, as_json: bool) -> None:
    """Add an endpoint; prints its signing secret, which is never shown again."""
    from .schemas import EndpointIn

    try:
        body = EndpointIn(url=url, event_types=list(event_types), description=description,
                          enabled=not disabled)
    except ValueError as exc:
        raise LearnplatError(str(exc)) from None
    row, secret = plugin.webhooks.create(body.url, body.event_types, body.description,
                                         body.enabled)
    if as_json:
        echo_json({**_json(endpoint_out(row)), "secret": secret})
    else:
        click.echo(f"endpoint {row.id}\t{row.url}")
        click.echo(f"secret\t{secret}\t(shown once: store it now)")


@tenant_command(endpoints, "show", write=False, allow_disabled=True, plugin=True)
@click.argument("endpoint_id", type=ID)
@json_option
def show(plugin: WebhooksPlugin, tenant: TenantInfo, endpoint_id: int, as_json: bool) -> None:
    """One endpoint (never its secret)."""
    out = _json(endpoint_out(plugin.webhooks.get(endpoint_id)))
    if as_json:
        echo_json(out)
    else:
        for key, value in out.items():
            click.echo(f"{key}\t{value}")


@tenant_command(endpoints, "update", allow_disabled=True, plugin=True)
@click.argument("endpoint_id", type=ID)
@click.option("--url", default=None)
@click.option("--event-type", "event_types", multiple=True, metavar="TYPE",
              help="Replaces the event types (repeat for more).")
@click.option("--description", default=None)
@click.option("--enable/--disable", "enabled", default=None,
              help="--enable also re-enables one the delivery engine disabled.")
@json_option
def update(plugin: WebhooksPlugin, tenant: TenantInfo, endpoint_id: int, url: str | None,
           event_types: tuple[str, ...], description: str | None, enabled: bool | None,
           as_json: bool) -> None:
    """Change an endpoint."""
    from .schemas import EndpointPatch

    given: dict[str, Any] = {"url": url, "event_types": list(event_types) or None,
                             "description": description, "enabled": enabled}
    try:
        body = EndpointPatch.model_validate({k: v for k, v in given.items() if v is not None})
    except ValueError as exc:
        raise LearnplatError(str(exc)) from None
    row = plugin.webhooks.update(endpoint_id, body.model_dump(exclude_unset=True))
    out = _json(endpoint_out(row))
    echo_json(out) if as_json else click.echo("\t".join(map(str, _endpoint_line(out))))


@tenant_command(endpoints, "delete", allow_disabled=True, plugin=True)
@click.argument("endpoint_id", type=ID)
def delete(plugin: WebhooksPlugin, tenant: TenantInfo, endpoint_id: int) -> None:
    """Delete an endpoint with its secrets, queued deliveries and their log."""
    plugin.webhooks.delete(endpoint_id)
    click.echo(f"endpoint {endpoint_id} deleted")


@tenant_command(endpoints, "rotate-secret", allow_disabled=True, plugin=True)
@click.argument("endpoint_id", type=ID)
@click.option("--overlap-hours", type=click.IntRange(0, 168), default=24, show_default=True,
              help="How long the current secret keeps signing beside the new one.")
@json_option
def rotate_secret(plugin: WebhooksPlugin, tenant: TenantInfo, endpoint_id: int,
                  overlap_hours: int, as_json: bool) -> None:
    """A new signing secret (printed once); the old one signs until the overlap ends."""
    secret, until = plugin.webhooks.rotate(endpoint_id, overlap_hours)
    if as_json:
        echo_json({"endpoint_id": endpoint_id, "secret": secret,
                   "previous_expires_at": _json(until)})
    else:
        click.echo(f"secret\t{secret}\t(shown once: store it now)")
        click.echo(f"previous secret signs until\t{until.isoformat() if until else '-'}")


def _delivery_line(d: dict[str, Any]) -> tuple[Any, ...]:
    return (d["id"], d["status"], f"endpoint {d['endpoint_id']}", d["event_type"],
            d["created_at"], f"{d['attempts']} attempts", d["last_status"] or "-")


@tenant_command(deliveries, "list", write=False, allow_disabled=True, plugin=True)
@click.option("--endpoint", "endpoint_id", type=ID, default=None, metavar="ID")
@click.option("--status", type=STATUSES, default=None)
@click.option("--since", type=MOMENT, default=None, help="Queued at or after (ISO 8601).")
@click.option("--until", type=MOMENT, default=None, help="Queued before (ISO 8601).")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@json_option
def list_deliveries(plugin: WebhooksPlugin, tenant: TenantInfo, endpoint_id: int | None,
                    status: str | None, since: dt.datetime | None, until: dt.datetime | None,
                    limit: int, as_json: bool) -> None:
    """Deliveries, newest first."""
    svc = plugin.webhooks
    if endpoint_id is not None:
        svc.get(endpoint_id)
    found = svc.all_deliveries(status=status, endpoint_id=endpoint_id, since=since,
                               until=until, limit=limit)
    echo_rows([_json(delivery_fields(m)) for m in found], _delivery_line, as_json=as_json)


@tenant_command(deliveries, "show", write=False, allow_disabled=True, plugin=True)
@click.argument("delivery_id", type=ID)
@json_option
def show_delivery(plugin: WebhooksPlugin, tenant: TenantInfo, delivery_id: int,
                  as_json: bool) -> None:
    """A delivery, what it sent and each attempt (time, status, latency, answer)."""
    svc = plugin.webhooks
    m = svc.delivery(delivery_id)
    attempts = [{"id": a.id, "at": a.at, "status": a.status, "latency_ms": a.latency_ms,
                 "answer": a.answer, "error": a.error} for a in svc.attempts(m.id)]
    out = _json({**delivery_fields(m), "payload": m.payload, "attempt_log": attempts})
    if as_json:
        echo_json(out)
        return
    click.echo("\t".join(str(c) for c in _delivery_line(out)))
    for a in out["attempt_log"]:
        click.echo(f"  {a['at']}\t{a['status'] or '-'}\t{a['latency_ms']:.0f} ms\t"
                   f"{a['error'] or a['answer'][:80]!r}")


@tenant_command(webhooks, "redeliver", allow_disabled=True, plugin=True)
@click.argument("delivery_ids", type=ID, nargs=-1)
@click.option("--endpoint", "endpoint_id", type=ID, default=None, metavar="ID",
              help="With --since (and --until): that endpoint's deliveries of the range.")
@click.option("--since", type=MOMENT, default=None)
@click.option("--until", type=MOMENT, default=None)
@click.option("--status", type=click.Choice(list(REDELIVER_STATUSES)), default="failed",
              show_default=True, help="Which deliveries of the range.")
@json_option
def redeliver(plugin: WebhooksPlugin, tenant: TenantInfo, delivery_ids: tuple[int, ...],
              endpoint_id: int | None, since: dt.datetime | None, until: dt.datetime | None,
              status: str, as_json: bool) -> None:
    """Send deliveries again (same webhook-id and body): DELIVERY_IDS, or an endpoint's
    deliveries of a time range (--endpoint ID --since ... [--until ...])."""
    svc = plugin.webhooks
    if delivery_ids and endpoint_id is None and since is None:
        done = [m for d in delivery_ids for m in svc.redeliver(d)]
    elif endpoint_id is not None and since is not None and not delivery_ids:
        done = svc.redeliver_range(endpoint_id, since, until, status)
    else:
        raise LearnplatError("give delivery ids, or --endpoint ID --since DATETIME "
                             "[--until DATETIME]")
    ids = [m.id for m in done]
    if as_json:
        echo_json({"redelivered": len(ids), "ids": ids})
    else:
        click.echo(f"{len(ids)} deliveries queued again" + (f": {ids}" if ids else ""))
