"""`learnplat tasks list` and `learnplat tasks run NAME`: every registered task, and an
operator's way to run one now, in this process, without a worker."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import click
import orjson

from ..errors import LearnplatError
from ..registry import TaskSpec
from .helpers import echo_rows, find_tenant, json_option
from .main import AppContext, cli, pass_app

# huey.crontab() keeps what it matches in its closure as
# [months, days, weekdays, hours, minutes]; crontab field order is minute hour day month weekday.
_FIELDS = ((4, range(60)), (3, range(24)), (1, range(1, 32)), (0, range(1, 13)), (2, range(7)))


def _compact(values: Sequence[int], full: range) -> str:
    chosen = sorted(set(values))
    if chosen == list(full):
        return "*"
    for step in range(2, len(full)):
        if chosen == list(full[::step]):
            return f"*/{step}"
    parts: list[str] = []
    start = prev = chosen[0]
    for v in [*chosen[1:], None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        parts.append(str(start) if start == prev else
                     f"{start},{prev}" if prev == start + 1 else f"{start}-{prev}")
        if v is not None:
            start = prev = v
    return ",".join(parts)


def describe_periodic(validator: Callable[..., Any] | None) -> str | None:
    """A huey.crontab(...) schedule as crontab text ("*/5 * * * *"); None when not periodic.
    Any other validator function is shown by name."""
    if validator is None:
        return None
    for cell in validator.__closure__ or ():
        value = cell.cell_contents
        if (isinstance(value, list) and len(value) == 5
                and all(isinstance(v, list) and v for v in value)):
            # Sunday may be stored as 7 as well as 0.
            return " ".join(_compact([v % 7 for v in value[i]] if i == 2 else value[i], full)
                            for i, full in _FIELDS)
    return f"custom ({getattr(validator, '__qualname__', repr(validator))})"


def task_row(spec: TaskSpec) -> dict[str, Any]:
    doc = (spec.fn.__doc__ or "").strip().splitlines()
    return {"name": spec.name, "plugin": spec.plugin, "tenant_scoped": spec.tenant_scoped,
            "periodic": describe_periodic(spec.periodic), "retries": spec.retries,
            "description": doc[0] if doc else ""}


@cli.group()
def tasks() -> None:
    """Inspect and run background tasks."""


@tasks.command("list")
@json_option
@pass_app
def tasks_list(app: AppContext, as_json: bool) -> None:
    """Every registered task: name, plugin, tenant-scoped or not, periodic schedule (crontab
    minute hour day month weekday, server time in UTC)."""
    rows = [task_row(spec) for spec in sorted(app.runtime.registry.tasks.values(),
                                              key=lambda s: s.name)]
    echo_rows(rows, lambda r: (r["name"], r["plugin"],
                               "tenant" if r["tenant_scoped"] else "global",
                               r["periodic"] or "-", r["description"]), as_json=as_json)


def parse_arg(raw: str) -> Any:
    """A task argument from the command line: JSON when it parses (42, true, "x", [1, 2]),
    else the text itself."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


@tasks.command("run")
@click.argument("name")
@click.argument("args", nargs=-1)
@click.option("--tenant", "tenant_slug", default=None, metavar="SLUG",
              help="The school to run a tenant-scoped task in (required for those).")
@pass_app
def tasks_run(app: AppContext, name: str, args: tuple[str, ...], tenant_slug: str | None
              ) -> None:
    """Run task NAME now, in this process, with ARGS (each JSON when it parses, else text).

    It runs as a worker would run it (its connection, tenant and transaction) but once: no
    retries, no queue. Tasks it enqueues go to the queue as usual. Its log lines (INFO and up)
    go to stderr, formatted by the home's config/logging.toml.
    """
    from ..logs import logging_configured

    runtime = app.runtime
    spec = runtime.registry.tasks.get(name)
    if spec is None:
        raise LearnplatError(f"no task named {name!r} (see learnplat tasks list)")
    values = [parse_arg(a) for a in args]
    wrapper = runtime.queue.wrappers[name]
    where = ""
    call: tuple[Any, ...] = tuple(values)
    if spec.tenant_scoped:
        if not tenant_slug:
            raise LearnplatError(f"task {name} is tenant-scoped: give --tenant SLUG")
        with app.connection():
            tenant = find_tenant(runtime, tenant_slug)
        call = (tenant.id, *values)
        where = f" in {tenant.slug}"
    elif tenant_slug:
        raise LearnplatError(f"task {name} is not tenant-scoped: it takes no --tenant")
    # The task's own log lines (INFO and up, on stderr) as the worker logs them: without this,
    # Python's last-resort handler shows warnings only and the operator runs the task blind.
    # Repeated failures are summarised per logging.repeat_seconds, as in the worker.
    with logging_configured(runtime.settings.home,
                            repeat_seconds=runtime.settings.logging.repeat_seconds):
        result = wrapper.call_local(*call)
    shown = "" if result is None else ": " + orjson.dumps(result, default=str).decode()
    click.echo(f"ran {name}{where}{shown}")
