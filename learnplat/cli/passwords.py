"""Passwords given to commands (`tenants create`, `users create`) without putting them on the
command line, where `ps` shows them to every user of the machine and shell history keeps them.

A command takes ``--NAME-file FILE`` (``-``: standard input, for scripts) or asks at the
terminal (hidden input, typed twice); ``--NAME VALUE`` still works for existing scripts but is
discouraged (docs/deployment.md). `learnplat backup setup-role --password-file` works the same.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..errors import LearnplatError
from .main import read_text_file

F = TypeVar("F", bound=Callable[..., Any])


def password_options(option: str, who: str, account: str | None = None
                     ) -> Callable[[F], F]:
    """``--OPTION`` (discouraged) and ``--OPTION-file``: the command gets the password as its
    parameter OPTION (dashes as underscores), from either or from a prompt at the terminal.
    `who` names whose password it is in the help; `account`, the parameter that names the
    account (``email``), makes the prompt "password for boss@school.example".

    The password is read while click parses the command line, before the command runs: a
    prompt must never wait inside the command's transaction (on SQLite, the write lock that
    every request of the running API would wait for)."""
    dest = option.replace("-", "_")

    def resolve(ctx: click.Context, param: click.Parameter, _value: Any) -> None:
        if ctx.resilient_parsing:  # shell completion: nothing is run, nothing asked
            return
        # After both options (declared before this one and never given on the command line,
        # so click processes it after them) and after the account's, given on the line.
        named = ctx.params.get(account) if account else None
        ctx.params[dest] = read_password(option, ctx.params.get(dest),
                                         ctx.params.pop(f"{dest}_file", None),
                                         f"password for {named}" if named else "password")

    def decorate(fn: F) -> F:
        fn = click.option(f"--{option}-resolved", hidden=True, expose_value=False,
                          callback=resolve)(fn)
        fn = click.option(
            f"--{option}-file", type=click.Path(dir_okay=False, allow_dash=True,
                                                path_type=Path), default=None,
            help=f"Read {who}'s password from this file (- for standard input). Without it "
                 f"or --{option}, asked at the terminal (hidden, typed twice).")(fn)
        return click.option(
            f"--{option}", default=None, metavar="PASSWORD",
            help=f"{who.capitalize()}'s password. Discouraged: visible in `ps` and kept in "
                 f"shell history; use --{option}-file or the prompt.")(fn)
    return decorate


def read_password(option: str, value: str | None, path: Path | None, prompt: str) -> str:
    """The password from ``--OPTION VALUE``, ``--OPTION-file PATH`` or, at a terminal, a hidden
    prompt typed twice. Refused with one clear line when there is no terminal to ask at (a
    script that forgot the file must not hang on a prompt nobody sees)."""
    if value is not None and path is not None:
        raise LearnplatError(f"give --{option} or --{option}-file, not both")
    if value is not None:
        # Discouraged in --help and the docs, but silent: scripts and tests written for it
        # expect their output as it was.
        return value
    if path is not None:
        text = sys.stdin.read() if str(path) == "-" else read_text_file(path)
        # The file's one line: an editor's or echo's final newline is not part of it.
        password = text.removesuffix("\n").removesuffix("\r")
        if not password:
            raise LearnplatError(f"--{option}-file {path}: empty password")
        if "\n" in password:
            raise LearnplatError(f"--{option}-file {path}: more than one line")
        return password
    if sys.stdin.isatty():
        entered: str = click.prompt(prompt, hide_input=True, confirmation_prompt=True)
        return entered
    raise LearnplatError(f"no password: give --{option}-file FILE (- for standard input), or "
                         "run the command at a terminal to be asked for it")
