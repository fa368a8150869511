"""The one database of a learnplat process, its transactions and their after-commit work.

`database` is a peewee DatabaseProxy that `connect_database()` initialises at start from the
configured URL (SQLite with WAL and foreign keys, or pooled PostgreSQL). `transaction()` is the
unit of work: it applies the current tenant to PostgreSQL's row-level security and runs
after-commit callbacks (event dispatch, task enqueues) only when the outermost block commits.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlparse

import peewee
from playhouse.pool import PooledPostgresqlDatabase

from .settings import ConfigError, Settings

log = logging.getLogger(__name__)

database = peewee.DatabaseProxy()

TENANT_SETTING = "learnplat.tenant_id"


def is_postgres(db: Any = None) -> bool:
    target = db if db is not None else database.obj
    return isinstance(target, peewee.PostgresqlDatabase)


def make_database(url: str, settings: Settings | None = None) -> peewee.Database:
    """A peewee Database for a URL: sqlite:///path (relative to home) or postgresql://..."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        raw = unquote(url[len("sqlite://") :])
        if raw in ("/:memory:", ":memory:"):
            path = ":memory:"
        else:
            # sqlite:///var/x.db is relative to home; sqlite:////abs/x.db is absolute.
            rel = raw[1:] if raw.startswith("/") else raw
            path = str(settings.path(rel)) if settings else rel
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return peewee.SqliteDatabase(
            path,
            pragmas={"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 10000,
                     "synchronous": "normal"},
            check_same_thread=False,
        )
    if parsed.scheme in ("postgres", "postgresql"):
        opts = dict(parse_qsl(parsed.query))
        db_settings = settings.database if settings else None
        return PooledPostgresqlDatabase(
            (parsed.path or "/")[1:] or "postgres",
            user=unquote(parsed.username) if parsed.username else None,
            password=unquote(parsed.password) if parsed.password else None,
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or 5432,
            max_connections=db_settings.max_connections if db_settings else 20,
            stale_timeout=db_settings.stale_timeout if db_settings else 300,
            timeout=db_settings.pool_timeout if db_settings else 10,
            **opts,
        )
    raise ConfigError(f"database.url: unsupported scheme {parsed.scheme!r} (sqlite or postgresql)")


def connect_database(settings: Settings) -> peewee.Database:
    """Point the process's proxy at the configured database and return it.

    A process has one database: a second runtime for the same URL (tests, tools) reuses the
    open Database (and its pool) instead of building a second pool beside it.
    """
    current = database.obj
    if current is not None and getattr(current, "learnplat_url", None) == (
            settings.database.url, settings.home):
        return current
    db = make_database(settings.database.url, settings)
    db.learnplat_url = (settings.database.url, settings.home)  # type: ignore[attr-defined]
    database.initialize(db)
    return db


# -- units of work -------------------------------------------------------------------------------


@dataclass
class UnitOfWork:
    """State of the outermost open transaction of this context."""

    after_commit: list[Callable[[], None]] = field(default_factory=list)
    tenant_id: int | None = None
    events_recorded: bool = False
    # Set by keep_on_failure(): the request fails, but what it wrote must stay (a failed login
    # is audited and counted even though the answer is 401).
    commit_on_failure: bool = False


_current_uow: contextvars.ContextVar[UnitOfWork | None] = contextvars.ContextVar(
    "learnplat_uow", default=None
)


def current_unit() -> UnitOfWork | None:
    return _current_uow.get()


def on_commit(callback: Callable[[], None]) -> None:
    """Run `callback` after the outermost transaction commits; at once when none is open."""
    uow = _current_uow.get()
    if uow is None:
        callback()
    else:
        uow.after_commit.append(callback)


def apply_tenant(tenant_id: int | None) -> None:
    """Tell PostgreSQL's RLS policies which tenant this transaction acts for."""
    uow = _current_uow.get()
    if uow is None or not is_postgres():
        return
    if uow.tenant_id != tenant_id:
        database.execute_sql(
            "SELECT set_config(%s, %s, true)",
            (TENANT_SETTING, "" if tenant_id is None else str(tenant_id)),
        )
        uow.tenant_id = tenant_id


def keep_on_failure() -> None:
    """Commit the current request's unit of work even though the request answers an error.

    Only for writes that record the failure itself (audit entries, revocations); call it right
    before raising, when nothing else has been written.
    """
    uow = _current_uow.get()
    if uow is not None:
        uow.commit_on_failure = True


def forget_tenant() -> None:
    """Mark the tenant applied to this transaction as unknown, so the next apply re-sets it."""
    uow = _current_uow.get()
    if uow is not None:
        uow.tenant_id = -1


@contextmanager
def transaction(write: bool = True) -> Iterator[UnitOfWork]:
    """Open a transaction (or a savepoint when one is open) bound to the current tenant.

    `write=True` on SQLite takes the write lock at BEGIN, which avoids the deadlock of two
    readers that both try to upgrade later.
    """
    from .tenancy import current_tenant_id  # tenancy imports db for apply_tenant

    outer = _current_uow.get()
    if outer is not None:
        with database.atomic():
            yield outer
        return
    db = database.obj
    kwargs: dict[str, Any] = {}
    if write and isinstance(db, peewee.SqliteDatabase):
        kwargs["lock_type"] = "IMMEDIATE"
    uow = UnitOfWork()
    token = _current_uow.set(uow)
    try:
        with db.atomic(**kwargs):
            apply_tenant(current_tenant_id())
            yield uow
    finally:
        _current_uow.reset(token)
    for callback in uow.after_commit:
        try:
            callback()
        except Exception:  # the commit stands; a failed follow-up must not undo the response
            log.exception("after-commit callback failed")


@contextmanager
def connection() -> Iterator[None]:
    """Hold a connection for a request or task and always give it back (to the pool)."""
    db = database.obj
    opened = db.connect(reuse_if_open=True)
    try:
        yield
    finally:
        if opened and not db.is_closed():
            db.close()
