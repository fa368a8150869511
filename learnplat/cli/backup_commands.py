"""`learnplat backup create|verify|restore|setup-role`: backups that cannot silently be empty
(learnplat.backup; docs/deployment.md#backups-and-restore)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..backup import (
    DEFAULT_ROLE,
    BackupError,
    Report,
    create_backup,
    default_output,
    restore_backup,
    role_statements,
    role_url,
    setup_role,
    verify_archive,
)
from .main import AppContext, cli, pass_app, read_text_file

SECRET_REMINDER = ("keep app.secret_key with every backup (stored apart from it): the schools' "
                   "signing keys in it are encrypted with that secret")


def _summary(report: Report) -> str:
    m = report.manifest
    return (f"{len(m['tables'])} tables, {report.rows} rows, {report.files} stored files "
            f"({m['backend']}, learnplat {m['learnplat_version']}, {m['created_at']})")


@cli.group()
def backup() -> None:
    """Back up and restore the database, the embedded stores and local files."""


@backup.command("create")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The archive to write (default: ./learnplat-backup-<UTC time>.tar).")
@pass_app
def backup_create(app: AppContext, output: Path | None) -> None:
    """Write one archive: the database dump, stored files and a manifest of row counts.

    On PostgreSQL pg_dump connects as backup.database_url, a role that row-level security does
    not filter (`learnplat backup setup-role`). Every table's rows in the dump are counted and
    must equal the database's in the same snapshot, or nothing is written and the command
    fails."""
    report = create_backup(app.settings, output or default_output())
    click.echo(f"wrote {report.path}: {_summary(report)}; every table's rows match the database")
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(SECRET_REMINDER)


@backup.command("verify")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def backup_verify(archive: Path) -> None:
    """Check an archive without a database: every checksum, and every table's rows in the dump
    against the counts taken when it was made."""
    report = verify_archive(archive)
    click.echo(f"ok {archive}: {_summary(report)}")


@backup.command("restore")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--into", "into", default=None, metavar="DATABASE_URL",
              help="The database to restore into (default: database.url). It must be empty.")
@click.option("--force", is_flag=True,
              help="Restore into a database or storage directory that is not empty, replacing "
                   "the backup's tables and files.")
@click.option("--ignore-secret", is_flag=True,
              help="Restore although app.secret_key is not the backup's (logins then fail).")
@pass_app
def backup_restore(app: AppContext, archive: Path, into: str | None, force: bool,
                   ignore_secret: bool) -> None:
    """Restore ARCHIVE into an empty database (and the storage directory, the embedded
    stores), checking every checksum and every table's rows. Stop the API and workers first;
    use the app.secret_key the backup was made with."""
    report = restore_backup(app.settings, archive, into=into, force=force,
                            ignore_secret=ignore_secret)
    click.echo(f"restored {archive}: {_summary(report)}; every table's rows match the backup")
    for note in report.notes:
        click.echo(f"note: {note}", err=True)


@backup.command("setup-role")
@click.option("--role", default=DEFAULT_ROLE, show_default=True, help="The role's name.")
@click.option("--admin-url", default=None, metavar="URL",
              help="A superuser's URL (its password in ~/.pgpass or PGPASSWORD): create the "
                   "role there. Without it the SQL is printed, for psql.")
@click.option("--password-file", type=click.Path(dir_okay=False, allow_dash=True,
                                                 path_type=Path), default=None,
              help="Read the role's password from this file (- for standard input).")
@click.option("--no-password", is_flag=True,
              help="No password (peer, certificate or trust authentication).")
@pass_app
def backup_setup_role(app: AppContext, role: str, admin_url: str | None,
                      password_file: Path | None, no_password: bool) -> None:
    """Create the PostgreSQL role backups run as: LOGIN BYPASSRLS with pg_read_all_data, so
    it reads every school's rows (the application's role must not), and nothing more."""
    password = _password(password_file, no_password, prompt=admin_url is not None)
    if admin_url is None:
        for statement in role_statements(role, password):
            click.echo(f"{statement};")
        if not password:
            click.echo(f"-- then, in psql: \\password {role}")
    else:
        created = setup_role(admin_url, role, password, app.settings)
        click.echo(f"{'created' if created else 'updated'} role {role} "
                   "(LOGIN BYPASSRLS, pg_read_all_data)")
    url = app.settings.database.url
    if url.startswith(("postgres://", "postgresql://")):
        click.echo(f"then set backup.database_url: LEARNPLAT_BACKUP_DATABASE_URL="
                   f"{role_url(url, role)} (the password in ~/.pgpass, or in the URL)")


def _password(path: Path | None, none: bool, prompt: bool) -> str | None:
    """The new role's password: never an option's value, which `ps` and shell history keep."""
    if none:
        return None
    if path is not None:
        text = sys.stdin.read() if str(path) == "-" else read_text_file(path)
        password = text.strip("\r\n")
        if not password:
            raise BackupError(f"{path}: empty password")
        return password
    if prompt and sys.stdin.isatty():
        value: str = click.prompt("password for the new role", hide_input=True,
                                  confirmation_prompt=True)
        return value
    if prompt:
        raise BackupError("give the role's password with --password-file FILE (- for standard "
                          "input), or --no-password")
    return None
