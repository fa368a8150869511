"""The identity plugin's commands: `learnplat users ...`, `learnplat audit list`,
`learnplat keys rotate`. Each acts on one tenant named with --tenant SLUG."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING

import click

from learnplat.plugin import LearnplatError
from learnplat.plugin.cli import (
    echo_pages,
    json_option,
    key_command,
    password_options,
    read_text_file,
    tenant_command,
)

from .models import ROLES
from .services import ImportRow, normalize_email

if TYPE_CHECKING:
    from learnplat.plugin import TenantInfo

    from .plugin import IdentityPlugin

# Every command here takes allow_disabled=True: operators prepare a school's accounts before
# enabling it, and read its audit log after disabling it.
#
# The list commands print each page's model_dump(): Python values, so that echo_json writes
# times as the API does (a model inside a list would be written in pydantic's JSON mode).


@click.group()
def users() -> None:
    """Create and manage a school's user accounts."""


@tenant_command(users, "create", allow_disabled=True, plugin=True)
@click.option("--email", required=True)
@password_options("password", "the user", account="email")
@click.option("--name", default="", help="Display name (default: the email's local part).")
@click.option("--role", type=click.Choice(ROLES), default="student", show_default=True)
def users_create(plugin: IdentityPlugin, tenant: TenantInfo, email: str, password: str,
                 name: str, role: str) -> None:
    """Create a user with a password (asked for at the terminal, or read with --password-file
    FILE, - for standard input)."""
    user = plugin.identity.create_user(email, password, name or email.split("@")[0],
                                       role=role)
    click.echo(f"created {role} {user.email} (id {user.id})")


@tenant_command(users, "list", write=False, allow_disabled=True, plugin=True)
@click.option("--role", type=click.Choice(ROLES), default=None)
@json_option
def users_list(plugin: IdentityPlugin, tenant: TenantInfo, role: str | None,
               as_json: bool) -> None:
    """List the school's users."""
    echo_pages(lambda page: plugin.identity.list_users(page, role=role).model_dump(),
               lambda u: (u["id"], u["email"], u["role"],
                          "active" if u["active"] else "deactivated", u["name"]),
               as_json=as_json)


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


@tenant_command(users, "import", allow_disabled=True, plugin=True)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--valid-only", is_flag=True,
              help="Import the valid rows even when some are rejected (default: all or nothing).")
def users_import(plugin: IdentityPlugin, tenant: TenantInfo, file: Path,
                 valid_only: bool) -> int:
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
    report = plugin.identity.import_users(rows, valid_only=valid_only)
    for line, reason in report.rejected:
        click.echo(f"{file}:{line}: rejected: {reason}", err=True)
    for line, email, user_id in report.created:
        click.echo(f"{file}:{line}: created {email} (id {user_id})")
    if report.rejected and not report.created:
        click.echo(f"error: {len(report.rejected)} row(s) rejected; nothing was imported",
                   err=True)
        return 1
    click.echo(f"imported {len(report.created)} user(s); {len(report.rejected)} row(s) rejected")
    return 1 if report.rejected else 0


@tenant_command(users, "set-role", allow_disabled=True, plugin=True)
@click.argument("email")
@click.argument("role", type=click.Choice(ROLES))
def users_set_role(plugin: IdentityPlugin, tenant: TenantInfo, email: str, role: str) -> None:
    """Give EMAIL's account ROLE.

    Their access tokens stop working at once; the next token they get (a refresh or a new
    login) carries the new role.
    """
    svc = plugin.identity
    user = svc.set_role(svc.get_user_by_email(email).id, role)
    click.echo(f"{user.email} is now {user.role}")


@tenant_command(users, "deactivate", allow_disabled=True, plugin=True)
@click.argument("email")
def users_deactivate(plugin: IdentityPlugin, tenant: TenantInfo, email: str) -> None:
    """Deactivate EMAIL's account: no more logins, its tokens stop working at once."""
    svc = plugin.identity
    user = svc.deactivate(svc.get_user_by_email(email).id)
    click.echo(f"deactivated {user.email}")


@tenant_command(users, "unlock", allow_disabled=True, plugin=True)
@click.argument("email")
def users_unlock(plugin: IdentityPlugin, tenant: TenantInfo, email: str) -> None:
    """Lift the lock that repeated failed logins put on EMAIL."""
    svc = plugin.identity
    user = svc.unlock(svc.get_user_by_email(email).id)
    click.echo(f"unlocked {user.email}")


@click.group()
def audit() -> None:
    """Read a school's audit log."""


@tenant_command(audit, "list", write=False, allow_disabled=True, plugin=True)
@click.option("--action", default=None, help="Only this action, e.g. login.failed.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@json_option
def audit_list(plugin: IdentityPlugin, tenant: TenantInfo, action: str | None, limit: int,
               as_json: bool) -> None:
    """The newest audit entries first."""
    echo_pages(lambda page: plugin.identity.list_audit(page, action=action).model_dump(),
               lambda e: (e["created_at"], e["action"], f"actor={e['actor_id']}",
                          f"subject={e['subject_id']}", str(e["ip"]), str(e["detail"])),
               as_json=as_json, limit=limit)


@click.group()
def keys() -> None:
    """Manage a school's token-signing keys."""


@key_command(keys, "rotate", plugin=True)
def keys_rotate(plugin: IdentityPlugin, tenant: TenantInfo) -> None:
    """Sign new tokens with a new key; tokens signed by the old key stay valid until they expire."""
    click.echo(f"new signing key {plugin.identity.keys.rotate()}")
