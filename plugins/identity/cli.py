"""The identity plugin's commands: `learnplat users ...`, `learnplat audit list`,
`learnplat keys rotate`. Each acts on one tenant named with --tenant SLUG."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from learnplat import db
from learnplat.cli.main import AppContext, echo_json, pass_app, read_text_file
from learnplat.errors import LearnplatError
from learnplat.pagination import PageQuery
from learnplat.tenancy import tenant_context

from .models import ROLES
from .services import IdentityService, ImportRow, normalize_email

TENANT = click.option("--tenant", "tenant_slug", required=True, metavar="SLUG",
                      help="The school (tenant) to act in.")


@contextmanager
def in_tenant(app: AppContext, slug: str) -> Iterator[IdentityService]:
    """A connection, the tenant's context and one transaction around a command's work."""
    rt = app.runtime
    with db.connection():
        tenant = rt.tenants.require(slug)
        with tenant_context(tenant), db.transaction():
            yield rt.service("identity")


def register(cli: click.Group) -> None:
    cli.add_command(users)
    cli.add_command(audit)
    cli.add_command(keys)


@click.group()
def users() -> None:
    """Create and manage a school's user accounts."""


@users.command("create")
@TENANT
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--name", default="", help="Display name (default: the email's local part).")
@click.option("--role", type=click.Choice(ROLES), default="student", show_default=True)
@pass_app
def users_create(app: AppContext, tenant_slug: str, email: str, password: str, name: str,
                 role: str) -> None:
    """Create a user with a password."""
    with in_tenant(app, tenant_slug) as svc:
        user = svc.create_user(email, password, name or email.split("@")[0], role=role)
    click.echo(f"created {role} {user.email} (id {user.id})")


@users.command("list")
@TENANT
@click.option("--role", type=click.Choice(ROLES), default=None)
@click.option("--json", "as_json", is_flag=True)
@pass_app
def users_list(app: AppContext, tenant_slug: str, role: str | None, as_json: bool) -> None:
    """List the school's users."""
    rows: list[dict[str, Any]] = []
    with in_tenant(app, tenant_slug) as svc:
        cursor = None
        while True:
            page = svc.list_users(PageQuery(limit=100, cursor=cursor), role=role)
            rows.extend(page["items"])
            if not (cursor := page["next_cursor"]):
                break
    if as_json:
        echo_json(rows)
        return
    for u in rows:
        click.echo(f"{u['id']}\t{u['email']}\t{u['role']}\t"
                   f"{'active' if u['active'] else 'deactivated'}\t{u['name']}")


def read_csv(path: Path) -> list[ImportRow]:
    """Rows of `email,name,role[,password]`; a first row starting with "email" is a header."""
    text = read_text_file(path)
    rows: list[ImportRow] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for record in reader:
            line = reader.line_num
            if not record or all(not c.strip() for c in record):
                continue
            cells = [c.strip() for c in record]
            if not rows and line == 1 and cells[0].lower() == "email":
                continue
            if len(cells) not in (3, 4):
                rows.append(ImportRow(line, cells[0], "", "", error=(
                    f"expected 3 or 4 columns (email,name,role[,password]), got {len(cells)}")))
                continue
            rows.append(ImportRow(line, normalize_email(cells[0]), cells[1], cells[2].lower(),
                                  cells[3] if len(cells) == 4 else ""))
    except csv.Error as exc:
        raise LearnplatError(f"{path}: line {reader.line_num}: {exc}") from None
    return rows


@users.command("import")
@TENANT
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--valid-only", is_flag=True,
              help="Import the valid rows even when some are rejected (default: all or nothing).")
@pass_app
def users_import(app: AppContext, tenant_slug: str, file: Path, valid_only: bool) -> None:
    """Bulk-create users from FILE.csv: email,name,role[,password] per line.

    All or nothing by default: when any row is rejected, each rejected line is reported with its
    reason and nothing is imported (exit 1). With --valid-only the valid rows are imported, each
    created user and each rejected line is listed, and the exit status is 1 if any was rejected.
    A row without a password creates an account that signs in through the school's OAuth
    providers only.
    """
    rows = read_csv(file)
    if not rows:
        raise LearnplatError(f"{file}: no rows to import")
    with in_tenant(app, tenant_slug) as svc:
        report = svc.import_users(rows, valid_only=valid_only)
    for line, reason in report.rejected:
        click.echo(f"{file}:{line}: rejected: {reason}", err=True)
    for line, email, user_id in report.created:
        click.echo(f"{file}:{line}: created {email} (id {user_id})")
    if report.rejected and not report.created:
        click.echo(f"error: {len(report.rejected)} row(s) rejected; nothing was imported",
                   err=True)
        raise SystemExit(1)
    click.echo(f"imported {len(report.created)} user(s); {len(report.rejected)} row(s) rejected")
    if report.rejected:
        raise SystemExit(1)


@users.command("set-role")
@TENANT
@click.argument("email")
@click.argument("role", type=click.Choice(ROLES))
@pass_app
def users_set_role(app: AppContext, tenant_slug: str, email: str, role: str) -> None:
    """Give EMAIL's account ROLE.

    Their access tokens stop working at once; the next token they get (a refresh or a new
    login) carries the new role.
    """
    with in_tenant(app, tenant_slug) as svc:
        user = svc.set_role(svc.get_user_by_email(email).id, role)
    click.echo(f"{user.email} is now {user.role}")


@users.command("deactivate")
@TENANT
@click.argument("email")
@pass_app
def users_deactivate(app: AppContext, tenant_slug: str, email: str) -> None:
    """Deactivate EMAIL's account: no more logins, its tokens stop working at once."""
    with in_tenant(app, tenant_slug) as svc:
        user = svc.deactivate(svc.get_user_by_email(email).id)
    click.echo(f"deactivated {user.email}")


@users.command("unlock")
@TENANT
@click.argument("email")
@pass_app
def users_unlock(app: AppContext, tenant_slug: str, email: str) -> None:
    """Lift the lock that repeated failed logins put on EMAIL."""
    with in_tenant(app, tenant_slug) as svc:
        user = svc.unlock(svc.get_user_by_email(email).id)
    click.echo(f"unlocked {user.email}")


@click.group()
def audit() -> None:
    """Read a school's audit log."""


@audit.command("list")
@TENANT
@click.option("--action", default=None, help="Only this action, e.g. login.failed.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_app
def audit_list(app: AppContext, tenant_slug: str, action: str | None, limit: int,
               as_json: bool) -> None:
    """The newest audit entries first."""
    rows: list[dict[str, Any]] = []
    with in_tenant(app, tenant_slug) as svc:
        cursor = None
        while len(rows) < limit:
            page = svc.list_audit(PageQuery(limit=min(100, limit - len(rows)), cursor=cursor),
                                  action=action)
            rows.extend(page["items"])
            if not (cursor := page["next_cursor"]):
                break
    if as_json:
        echo_json(rows)
        return
    for e in rows:
        click.echo(f"{e['created_at'].isoformat()}\t{e['action']}\tactor={e['actor_id']}\t"
                   f"subject={e['subject_id']}\t{e['ip']}\t{e['detail']}")


@click.group()
def keys() -> None:
    """Manage a school's token-signing keys."""


@keys.command("rotate")
@TENANT
@pass_app
def keys_rotate(app: AppContext, tenant_slug: str) -> None:
    """Sign new tokens with a new key; tokens signed by the old key stay valid until they expire."""
    with in_tenant(app, tenant_slug) as svc:
        kid = svc.keys.rotate()
    click.echo(f"new signing key {kid}")
