"""Helpers for plugins' CLI commands: act in one tenant (`tenant_command`, `with_tenant`) and
list rows (`echo_pages`, `echo_rows`, `json_option`) in one line each instead of five.

    @tenant_command(notes, "list", write=False)
    @json_option
    def notes_list(runtime, tenant, as_json):
        \"\"\"List the school's notes.\"\"\"
        svc = runtime.service("notes")
        echo_pages(svc.list_notes, lambda n: (n["id"], n["title"]), as_json=as_json)
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .. import db
from ..errors import LearnplatError
from ..tenancy import TenantInfo, tenant_context
from .main import AppContext, echo_json

if TYPE_CHECKING:
    from ..runtime import Runtime

F = TypeVar("F", bound=Callable[..., Any])

tenant_option = click.option("--tenant", "tenant_slug", required=True, metavar="SLUG",
                             help="The school (tenant) to act in.")
json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print JSON instead of tab-separated rows.")


def find_tenant(runtime: Runtime, slug: str, *, allow_disabled: bool = False) -> TenantInfo:
    """Tenant SLUG, fresh from the database (needs a connection); a one-line LearnplatError
    when there is none, or when it is disabled and `allow_disabled` is false."""
    tenant = runtime.tenants.require(slug)  # NotFound: "no tenant 'slug'"
    if not tenant.enabled and not allow_disabled:
        raise LearnplatError(f"tenant {slug!r} is disabled (learnplat tenants enable {slug})")
    return tenant


def with_tenant(fn: F | None = None, *, write: bool = True, allow_disabled: bool = False,
                plugin: bool = False) -> Any:
    """Give a click command `--tenant SLUG` and run it in that tenant.

    The function is called as ``fn(runtime, tenant, **options)`` (with ``plugin=True``,
    ``fn(plugin_object, tenant, **options)``: the object of the plugin whose package defines
    the command, so that its commands need not import the plugin's class) inside a connection, the
    tenant's context and one transaction (read-only on SQLite with ``write=False``): anything
    it raises rolls everything back and prints one error line (exit 1). An unknown tenant, or
    a disabled one unless ``allow_disabled=True``, is that error line. Returning a non-zero int
    exits with it *after* the commit (e.g. 1 when some rows were rejected but the valid ones
    are kept); ``raise SystemExit`` inside would roll the work back.
    """
    # The command click sees takes --tenant instead of the function's first two arguments.
    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def command(*args: Any, tenant_slug: str, **options: Any) -> Any:
            ctx = click.get_current_context()
            runtime = ctx.ensure_object(AppContext).runtime
            with db.connection():
                tenant = find_tenant(runtime, tenant_slug, allow_disabled=allow_disabled)
                with tenant_context(tenant), db.transaction(write=write):
                    first = runtime.plugin_of(func.__module__) if plugin else runtime
                    result = func(first, tenant, *args, **options)
            if isinstance(result, int) and not isinstance(result, bool) and result:
                ctx.exit(result)
            return result

        return tenant_option(command)

    return decorate(fn) if fn is not None else decorate


def tenant_command(group: click.Group, name: str | None = None, *, write: bool = True,
                   allow_disabled: bool = False, plugin: bool = False, **command_kwargs: Any
                   ) -> Callable[[Callable[..., Any]], click.Command]:
    """``group.command(name)`` plus `with_tenant`: a command of `group` with ``--tenant SLUG``
    that runs ``fn(runtime, tenant, **options)`` in that tenant and one transaction
    (``fn(plugin_object, tenant, **options)`` with ``plugin=True``)."""
    def decorate(fn: Callable[..., Any]) -> click.Command:
        wrapped = with_tenant(fn, write=write, allow_disabled=allow_disabled, plugin=plugin)
        return group.command(name, **command_kwargs)(wrapped)

    return decorate


# -- lists ------------------------------------------------------------------------------------


def read_pages(fetch: Callable[[Any], Any], *, limit: int | None = None,
               page_size: int = 100) -> list[dict[str, Any]]:
    """Every item of a paginated service call, following ``next_cursor``.

    `fetch(page_query)` is a service method returning ``{"items": [...], "next_cursor": ...}``
    (or a `Page`); bind its other arguments with a lambda or functools.partial. `limit` stops
    after that many items.
    """
    from ..pagination import PageQuery

    rows: list[dict[str, Any]] = []
    cursor = None
    while limit is None or len(rows) < limit:
        size = page_size if limit is None else min(page_size, limit - len(rows))
        page = fetch(PageQuery(limit=size, cursor=cursor))
        items, cursor = ((page["items"], page["next_cursor"]) if isinstance(page, Mapping)
                         else (page.items, page.next_cursor))
        rows.extend(items)
        if not cursor:
            break
    return rows


def _cell(value: Any) -> str:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return "" if value is None else str(value)


def echo_rows(rows: Iterable[Any], row: Callable[[Any], str | Sequence[Any]], *,
              as_json: bool) -> None:
    """Print `rows` as one JSON array (``--json``) or one line per row: `row(item)` gives the
    line, or its cells (joined by tabs; datetimes in ISO 8601, None empty)."""
    rows = list(rows)
    if as_json:
        echo_json(rows)
        return
    for item in rows:
        line = row(item)
        click.echo(line if isinstance(line, str) else "\t".join(_cell(c) for c in line))


def echo_pages(fetch: Callable[[Any], Any], row: Callable[[Any], str | Sequence[Any]], *,
               as_json: bool, limit: int | None = None) -> None:
    """`read_pages` then `echo_rows`: a plugin's whole `list` command body."""
    echo_rows(read_pages(fetch, limit=limit), row, as_json=as_json)


__all__ = ["echo_json", "echo_pages", "echo_rows", "find_tenant", "json_option", "read_pages",
           "tenant_command", "tenant_option", "with_tenant"]
