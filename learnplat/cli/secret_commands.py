"""`learnplat secrets check|reencrypt`: whether app.secret_key (and app.old_secret_keys) decrypt
every key at rest, and re-encrypting them with app.secret_key after a rotation; `key_command`,
the decorator of commands that make keys (they must not make keys the deployment cannot read).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from ..secret_keys import SecretsReport, reencrypt, require_decryptable, scan
from .helpers import json_option, with_tenant
from .main import AppContext, cli, echo_json, pass_app


def key_command(group: click.Group, name: str, *, plugin: bool = False, **command_kwargs: Any
                ) -> Callable[[Callable[..., Any]], click.Command]:
    """`tenant_command` (``--tenant SLUG``, disabled schools allowed) for a command that makes
    or replaces keys encrypted under app.secret_key: it first checks that the secrets in force
    decrypt every key at rest in every school, and refuses (exit 1, naming the settings) when
    they do not. A key made with a wrong secret would be unreadable by the running deployment:
    that school's logins (or certificates) would fail from the next key cache refresh.
    ``plugin=True`` hands the command its plugin object, as `tenant_command` does."""
    def decorate(fn: Callable[..., Any]) -> click.Command:
        inner = with_tenant(fn, allow_disabled=True, plugin=plugin)

        @functools.wraps(inner)
        def command(*args: Any, **options: Any) -> Any:
            # Before the tenant's transaction: the check reads every school, each in its own
            # transaction (row-level security shows one school per transaction).
            require_decryptable(click.get_current_context().ensure_object(AppContext).runtime)
            return inner(*args, **options)

        return group.command(name, **command_kwargs)(command)

    return decorate


def _rows(report: SecretsReport, rewritten: bool) -> list[dict[str, Any]]:
    return [{"tenant": r.tenant, "data": r.data, "plugin": r.plugin, "total": r.scan.total,
             "old_secret": r.scan.old, "undecryptable": r.scan.undecryptable,
             **({"reencrypted": r.rewritten} if rewritten else {})}
            for r in report.rows]


@cli.group()
def secrets() -> None:
    """Check and re-encrypt what is encrypted under app.secret_key (rotating the secret)."""


@secrets.command("check")
@json_option
@pass_app
def secrets_check(app: AppContext, as_json: bool) -> None:
    """Whether app.secret_key, with app.old_secret_keys, decrypts every key at rest of every
    school; how many still need an old secret. Exit 1 when something cannot be decrypted."""
    report = scan(app.runtime)
    if as_json:
        echo_json({"ok": not report.undecryptable, "on_old_secret": report.on_old_secret,
                   "problems": report.problems(), "items": _rows(report, False)})
    else:
        for r in report.rows:
            click.echo(f"{r.tenant}\t{r.data}\t{r.scan.total} key(s)\t"
                       f"{r.scan.old} on an old secret\t{r.scan.undecryptable} undecryptable")
        total = sum(r.scan.total for r in report.rows)
        click.echo(f"{total} key(s) at rest; {report.on_old_secret} need app.old_secret_keys "
                   "(learnplat secrets reencrypt)" if report.on_old_secret else
                   f"{total} key(s) at rest, all encrypted with app.secret_key")
    if report.undecryptable:
        require_decryptable(app.runtime)  # the one error line naming the settings, exit 1


@secrets.command("reencrypt")
@json_option
@pass_app
def secrets_reencrypt(app: AppContext, as_json: bool) -> None:
    """Re-encrypt every key at rest with app.secret_key (one transaction per school; a
    second run changes nothing). Afterwards the old secret can leave app.old_secret_keys.
    Refuses, changing nothing, when a key cannot be decrypted with the secrets in force."""
    report = reencrypt(app.runtime)
    done = sum(r.rewritten for r in report.rows)
    if as_json:
        echo_json({"reencrypted": done, "items": _rows(report, True)})
        return
    for r in report.rows:
        if r.rewritten:
            click.echo(f"{r.tenant}\t{r.data}\t{r.rewritten} re-encrypted")
    total = sum(r.scan.total for r in report.rows)
    click.echo(f"{done} of {total} key(s) re-encrypted with app.secret_key; every key at rest "
               "now decrypts without app.old_secret_keys")
