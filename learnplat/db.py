"""The one database of a learnplat process, its transactions and their after-commit work.

`database` is a peewee DatabaseProxy that `connect_database()` initialises at start from the
configured URL (SQLite with WAL and foreign keys, or pooled PostgreSQL). `transaction()` is the
unit of work: it applies the current tenant to PostgreSQL's row-level security and runs
after-commit callbacks (event dispatch, task enqueues) only when the outermost block commits.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
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


class _ConnectionState(Protocol):
    """Database._state as DeferredBegin uses it (peewee's stub omits this private attribute).

    peewee's per-thread connection state (its connection, whether closed, the transaction
    stack) and the deferred BEGIN that DeferredBegin adds to it: pending_begin is unset until
    the first begin(), hence the getattr(..., None) reads.
    """

    conn: Any
    closed: bool
    transactions: list[Any]
    pending_begin: tuple[tuple[Any, ...], dict[str, Any]] | None
    pending_tenant: int | bool | None  # False: no tenant to set


if TYPE_CHECKING:
    # A mixin of a peewee Database (SqliteDatabase, PooledPostgresqlDatabase): the checker
    # sees the Database its super() calls reach; at run time it stays a plain mixin.
    _DatabaseMixin = peewee.Database
else:
    _DatabaseMixin = object


class DeferredBegin(_DatabaseMixin):
    """Open a transaction with its first statement, not at BEGIN.

    A request's unit of work is opened before anyone knows whether it will touch the database
    (a heartbeat or a cached page never does). BEGIN is remembered instead of sent; the first
    statement takes the connection from the pool and sends BEGIN and the tenant's set_config
    with it. PostgreSQL gets all three in one round trip (the simple query protocol runs
    several statements; the cursor holds the last one's rows); SQLite sends BEGIN first. A
    unit of work that ran no statement commits by doing nothing.
    """

    if TYPE_CHECKING:
        _state: _ConnectionState
        # The (url, home) connect_database() built it for.
        learnplat_url: tuple[str, str]

    def begin(self, *args: Any, **kwargs: Any) -> None:
        self._state.pending_begin = (args, kwargs)
        self._state.pending_tenant = False  # False: none to set

    def defer_tenant(self, tenant_id: int | None) -> bool:
        """Fold the tenant's set_config into the pending BEGIN; False when none is pending."""
        if getattr(self._state, "pending_begin", None) is None:
            return False
        self._state.pending_tenant = tenant_id
        return True

    def _take_pending(self) -> tuple[tuple[Any, ...], dict[str, Any], int | None] | None:
        state = self._state
        pending = getattr(state, "pending_begin", None)
        if pending is None:
            return None
        state.pending_begin = None
        return pending[0], pending[1], state.pending_tenant

    def _begin_sql(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        raise NotImplementedError

    def flush_begin(self) -> None:
        """Send a pending BEGIN (and set_config) now, as a statement of its own."""
        pending = self._take_pending()
        if pending is not None:
            args, kwargs, tenant_id = pending
            sql = self._begin_sql(args, kwargs) + _set_tenant_sql(self, tenant_id)
            with peewee.__exception_wrapper__:  # type: ignore[attr-defined]  # peewee's stub lacks __exception_wrapper__
                super().cursor().execute(sql)

    def connect(self, reuse_if_open: bool = False) -> bool:
        """Open a connection, keeping a deferred transaction's place.

        peewee ties the transaction stack to the connection: connect() empties it. A deferred
        transaction (and any savepoint block above it) is pushed before there is a
        connection, so whoever connects first (its first statement, or any code that opens
        a connection inside the unit of work) must not make it forget them; else the unit's
        end pops an empty stack (IndexError: a 500, and the thread's next request inherits
        the damage). Kept also when connecting fails (a database restart): the unit of work
        then ends as a clean rollback and the request answers 503, not 500.
        """
        state = self._state
        keep = (list(state.transactions)
                if state.closed and getattr(state, "pending_begin", None) is not None else None)
        try:
            return super().connect(reuse_if_open)
        finally:
            if keep is not None:
                state.transactions = keep

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        if getattr(self._state, "pending_begin", None) is not None:
            self.connect(reuse_if_open=True)
            self.flush_begin()
        return super().cursor(*args, **kwargs)

    def execute_sql(self, sql: str, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        if getattr(self._state, "pending_begin", None) is not None and isinstance(
                self, peewee.PostgresqlDatabase):
            self.connect(reuse_if_open=True)
            pending = self._take_pending()
            assert pending is not None  # pending_begin was set above, and connect() keeps it
            begin_args, begin_kwargs, tenant_id = pending
            prefix = self._begin_sql(begin_args, begin_kwargs) + _set_tenant_sql(self, tenant_id)
            # psycopg2 interpolates client-side: a literal % in the prefix would need doubling;
            # it has none (the tenant id is an int).
            sql = f"{prefix}; {sql}"
        return super().execute_sql(sql, params, *args, **kwargs)

    def commit(self) -> None:
        if self._take_pending() is None:
            super().commit()

    def rollback(self) -> None:
        if self._take_pending() is None:
            super().rollback()


def _set_tenant_sql(db: Any, tenant_id: int | bool | None) -> str:
    if not isinstance(db, peewee.PostgresqlDatabase) or tenant_id is False:
        return ""
    value = "" if tenant_id is None else str(int(tenant_id))
    return f"; SELECT set_config('{TENANT_SETTING}', '{value}', true)"


class SqliteDatabase(DeferredBegin, peewee.SqliteDatabase):
    def _begin_sql(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        lock_type = kwargs.get("lock_type") or (args[0] if args else None)
        return f"BEGIN {lock_type}" if lock_type else "BEGIN"


class PostgresqlDatabase(DeferredBegin, PooledPostgresqlDatabase):
    """The pooled PostgreSQL database, without a `SELECT 1` at every checkout.

    peewee's pool pings an idle connection each time it hands it out: a round trip per request.
    A connection given back moments ago is trusted instead; one idle longer than `ping_after`
    seconds is still checked (a server restart or a proxy's idle timeout ends those). A
    connection that died anyway fails its first statement, and is discarded at check-in.
    """

    ping_after = 10.0

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._returned_at: dict[int, float] = {}

    def _begin_sql(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        return "BEGIN"

    def rollback(self) -> None:
        conn = self._state.conn
        if conn is not None and conn.closed:
            # The server ended the session (a restart, a crash): its transaction ended with
            # it. Sending ROLLBACK would only raise InterfaceError over the request's real
            # error (a 503); the pool drops the connection at check-in.
            self._take_pending()
            return
        super().rollback()

    def _is_closed(self, conn: Any) -> bool:
        if conn.closed:
            return True
        returned = self._returned_at.get(id(conn))
        if returned is not None and time.monotonic() - returned < self.ping_after and (
                conn.info.transaction_status == 0):  # TRANSACTION_STATUS_IDLE
            return False
        return super()._is_closed(conn)

    def _close(self, conn: Any, close_conn: bool = False) -> None:
        super()._close(conn, close_conn)
        if close_conn or conn.closed:
            self._returned_at.pop(id(conn), None)
        else:
            self._returned_at[id(conn)] = time.monotonic()


def make_database(
        url: str, settings: Settings | None = None) -> SqliteDatabase | PostgresqlDatabase:
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
        return SqliteDatabase(
            path,
            pragmas={"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 10000,
                     "synchronous": "normal"},
            check_same_thread=False,
        )
    if parsed.scheme in ("postgres", "postgresql"):
        opts: dict[str, Any] = dict(parse_qsl(parsed.query))
        db_settings = settings.database if settings else None
        opts.setdefault("connect_timeout", db_settings.connect_timeout if db_settings else 5)
        return PostgresqlDatabase(
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
    db.learnplat_url = (settings.database.url, settings.home)
    database.initialize(db)
    return db


# -- units of work -------------------------------------------------------------------------------


@dataclass
class UnitOfWork:
    """State of the outermost open transaction of this context."""

    after_commit: list[Callable[[], None]] = field(default_factory=list)
    tenant_id: int | None = None
    events_recorded: bool = False
    # Generation keys to replace after commit (learnplat.answers.bump_generation): one
    # key-value round trip for all of them, however many learners a transaction touched.
    generation_bumps: set[str] | None = None
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
        target = database.obj
        if isinstance(target, DeferredBegin) and target.defer_tenant(tenant_id):
            uow.tenant_id = tenant_id
            return
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
        # A savepoint. Work its block asked to run after commit (a task enqueued, an event
        # dispatch) goes with it when it rolls back: an event handler that enqueued a task
        # and then failed must not have its task run on rows that were never written.
        mark = len(outer.after_commit)
        try:
            with database.atomic():
                yield outer
        except BaseException:
            del outer.after_commit[mark:]
            raise
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
    """Hold a connection for a request or task and always give it back (to the pool).

    Inside a unit of work (a request's, a task's) the unit owns the connection: its first
    statement takes one and its end gives it back. A block here then neither opens nor
    closes one: opening would reset peewee's transaction stack under the open unit, and
    closing would end its transaction halfway (both left the next request on the thread
    out of step: learnplat issue 24).
    """
    db = database.obj
    if _current_uow.get() is not None or db._state.transactions:
        yield
        return
    opened = db.connect(reuse_if_open=True)
    try:
        yield
    finally:
        if opened and not db.is_closed():
            db.close()


def leftovers() -> list[str]:
    """What this thread still holds of the database after a unit of work should have ended:
    an open unit, transactions on peewee's stack, a deferred BEGIN, a connection. Empty
    when the thread is clean, as every request must leave it."""
    found = []
    if _current_uow.get() is not None:
        found.append("an open unit of work")
    db = database.obj
    if db is None:
        return found
    state = db._state
    if state.transactions:
        found.append(f"{len(state.transactions)} transaction(s) on the stack")
    if getattr(state, "pending_begin", None) is not None:
        found.append("a deferred BEGIN")
    if not state.closed:
        found.append("a connection")
    return found


def reset_thread() -> list[str]:
    """Give back whatever this thread still holds of the database (see `leftovers`), rolling
    back any transaction; returns what was found. A request starts with this so that no
    earlier request, however it ended, changes what the next one on the thread gets."""
    found = [f for f in leftovers() if f != "a connection"]  # a held connection is harmless
    if not found:
        return []
    _current_uow.set(None)
    db = database.obj
    if db is None:
        return found
    state = db._state
    conn = state.conn
    state.pending_begin = None
    try:
        if conn is not None and not getattr(conn, "closed", False):
            # The connection may be mid-transaction: roll back before it goes back to the
            # pool (PostgreSQL), or release SQLite's lock.
            conn.rollback()
    except Exception:  # a broken connection: dropped below
        log.debug("rollback while resetting the thread failed", exc_info=True)
    state.transactions = []
    try:
        if not state.closed:
            db.close()
    except Exception:
        log.debug("closing while resetting the thread failed", exc_info=True)
        state.reset()
    return found


# -- prepared queries ------------------------------------------------------------------------------


_UNPLANNED = object()


def _marker(index: int, value: Any) -> Any:
    """A stand-in argument that no real query would carry, to find its place in the params."""
    if type(value) is int:
        return -(7_340_000_000_000 + index)
    if type(value) is str:
        return f"\x00learnplat-marker-{index}\x00"
    return None


class Prepared:
    """A SELECT whose SQL is generated once and then run with new arguments.

    peewee builds a query's SQL from its expression tree on every execution: 0.1-0.3 ms of
    CPU for an ordinary query, more than the database takes to answer it. For the queries of
    the hot paths (the per-caller parts of a course page, lookups by id) that is most of the
    request. ``Prepared(lambda course_id, user_id: Model.select().where(...).limit(1))``
    builds the query once per database and tenant (the tenant's id is part of the SQL's
    parameters) with marker arguments, finds where each argument lands among the parameters,
    and from then on only swaps the arguments in. Arguments must be ints or strs (anything
    else runs the query the ordinary way), and `build` must depend on its arguments alone.
    """

    def __init__(self, build: Callable[..., Any]):
        self.build = build
        self._plans: dict[tuple[Any, ...], Any] = {}

    def _plan(self, args: tuple[Any, ...]) -> Any:
        from .tenancy import current_tenant_id

        key = (id(database.obj), current_tenant_id(), *(type(a) for a in args))
        plan = self._plans.get(key, _UNPLANNED)
        if plan is _UNPLANNED:
            plan = None
            markers = [_marker(i, a) for i, a in enumerate(args)]
            if None not in markers:
                query = self.build(*markers)
                sql, params = query.sql()
                positions = []
                for marker in markers:
                    found = [i for i, p in enumerate(params)
                             if type(p) is type(marker) and p == marker]
                    if len(found) != 1:
                        break
                    positions.append(found[0])
                else:
                    plan = (sql, tuple(params), positions, query)
            self._plans[key] = plan
        return plan

    def all(self, *args: Any) -> list[Any]:
        plan = self._plan(args)
        if plan is None:
            return list(self.build(*args))
        sql, template, positions, query = plan
        params = list(template)
        for position, value in zip(positions, args, strict=True):
            params[position] = value
        cursor = database.execute_sql(sql, params)
        return list(query._get_cursor_wrapper(cursor))

    def first(self, *args: Any) -> Any:
        rows = self.all(*args)
        return rows[0] if rows else None
