"""The `learnplat` command line: operators and tenant admins at a terminal.

Commands build a Runtime lazily (so `--help` works without a database) and fail with one clear
line and a non-zero exit on any error.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click
import peewee

from ..errors import LearnplatError
from ..registry import StartupError
from ..settings import ConfigError


class AppContext:
    """Holds the Runtime of one CLI invocation, built on first use."""

    def __init__(self) -> None:
        self._runtime: Any = None
        self._settings: Any = None
        self._pm: Any = None

    @property
    def runtime(self) -> Any:
        if self._runtime is None:
            from ..runtime import create_runtime

            self._runtime = create_runtime(self._settings)
        return self._runtime

    @contextlib.contextmanager
    def connection(self) -> Iterator[None]:
        """A database connection for a command body. The runtime is built first: the database
        proxy is initialised only by create_runtime, and `with db.connection()` before it fails
        as "'NoneType' object has no attribute 'connect'" (tests that hand the CLI a built
        runtime never see that)."""
        from .. import db

        _ = self.runtime
        with db.connection():
            yield

    @property
    def settings(self) -> Any:
        """The validated settings, without building the runtime (the runtime's when built)."""
        if self._runtime is not None:
            return self._runtime.settings
        if self._settings is None:
            from ..settings import load_settings

            self._settings = load_settings()
        return self._settings

    @property
    def plugin_manager(self) -> Any:
        """The loaded plugins, without a database or the runtime (the runtime's when built):
        for commands that only read what plugins declare."""
        if self._runtime is not None:
            return self._runtime.pm
        if self._pm is None:
            from .. import core_plugin
            from ..plugins import build_plugin_manager

            self._pm, _ = build_plugin_manager([("core", core_plugin)])
        return self._pm


pass_app = click.make_pass_decorator(AppContext, ensure=True)


class LearnplatGroup(click.Group):
    """Turns known errors into one line on stderr and exit status 1 (2 for usage)."""

    def invoke(self, ctx: click.Context) -> Any:
        from ..migrate import MigrationFailed

        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit,
                click.exceptions.Abort):
            raise
        except (ConfigError, StartupError, LearnplatError, MigrationFailed) as exc:
            detail = getattr(exc, "detail", None) or str(exc)
            _fail(detail)
        except peewee.DatabaseError as exc:
            hint = ""
            if "no such table" in str(exc) or "does not exist" in str(exc):
                hint = " (is the database migrated? run `learnplat migrate`)"
            _fail(f"database: {type(exc).__name__}: {exc}{hint}")
        except Exception as exc:  # still one line; the traceback only when asked for
            if os.environ.get("LEARNPLAT_CLI_TRACEBACK"):
                raise
            _fail(f"unexpected {type(exc).__name__}: {exc} "
                  "(set LEARNPLAT_CLI_TRACEBACK=1 for details)")


def _fail(message: str) -> None:
    # One line whatever the message (database errors come with a caret diagram).
    line = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
    click.echo(f"error: {line}", err=True)
    sys.exit(1)


@click.group(cls=LearnplatGroup)
@click.version_option(package_name="learnplat")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """learnplat: multi-tenant learning platform backend."""
    ctx.ensure_object(AppContext)


def _load_plugin_commands(group: click.Group) -> None:
    """Plugins add commands through register_commands; loaded without a database."""
    from .. import core_plugin
    from ..plugins import build_plugin_manager

    try:
        pm, _ = build_plugin_manager([("core", core_plugin)])
    except StartupError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    pm.hook.register_commands(cli=group)


def main(argv: list[str] | None = None) -> None:
    from ..logs import configure_command_logging
    from . import core_commands  # noqa: F401  (registers the core commands on `cli`)

    # Every command logs through the home's config/logging.toml, as the services do (here,
    # not in the `cli` group: commands invoked in-process by tests keep the test's logging).
    configure_command_logging()
    _load_plugin_commands(cli)
    cli.main(args=argv, prog_name="learnplat")


def read_text_file(path: Any) -> str:
    """A UTF-8 text file given on the command line (a BOM is dropped); one clear error line
    when it is unreadable or not UTF-8."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LearnplatError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
                             ) from None
    except OSError as exc:
        raise LearnplatError(f"{path}: {exc.strerror}") from None


def echo_json(data: Any) -> None:
    """`data` (JSON values, dataclasses, pydantic models: what a service returns) as indented
    JSON, its times written as the API writes them."""
    import orjson
    import pydantic
    import pydantic_core

    from ..timestamps import JSON_OPTIONS

    def jsonable(value: Any) -> Any:  # what orjson does not know (models' times: orjson's)
        if isinstance(value, pydantic.BaseModel):
            return value.__pydantic_serializer__.to_python(value, by_alias=True)
        return pydantic_core.to_jsonable_python(value, by_alias=True)

    if isinstance(data, pydantic.BaseModel):
        data = data.__pydantic_serializer__.to_python(data, by_alias=True)
    click.echo(orjson.dumps(data, default=jsonable,
                            option=orjson.OPT_INDENT_2 | JSON_OPTIONS).decode())


def in_transaction(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command body inside a connection and a transaction (the runtime built first)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .. import db

        app = click.get_current_context().ensure_object(AppContext)
        with app.connection(), db.transaction():
            return fn(*args, **kwargs)

    return wrapper
