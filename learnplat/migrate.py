"""`learnplat migrate`: every plugin's migrations, in plugin order, with one history table.

Built on peewee's own runner (playhouse.migrations): plain scripts with ``up(migrator, db)``
and frozen model copies. Around it: a per-plugin history keyed "plugin:0001_name", a lock so two
processes migrating at once apply each migration once (PostgreSQL advisory lock, a file lock on
SQLite), transactions per migration (a failed one leaves the schema as it was on PostgreSQL),
and, last, row-level security on every tenant-owned table.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fasteners
import peewee
from playhouse.migrations import Migration, Runner

from . import db
from .models import TenantModel

if TYPE_CHECKING:
    from .runtime import Runtime

log = logging.getLogger(__name__)

HISTORY_TABLE = "learnplat_migration"
_ADVISORY_KEY = 0x1EA4_9_1A7  # any constant shared by every learnplat process


class MigrationFailed(Exception):
    """A migration raised; it was rolled back (schema and history unchanged on PostgreSQL)."""


class PluginRunner(Runner):
    """A Runner whose history rows are prefixed with the plugin name, so all plugins share
    one history table without their 0001_initial colliding."""

    def __init__(self, database: peewee.Database, directory: Path, plugin: str):
        super().__init__(database, str(directory), table_name=HISTORY_TABLE)
        self.plugin = plugin

    def _name(self, name: str) -> str:
        return f"{self.plugin}:{name}"

    def migrations(self) -> list[Migration]:
        if not Path(self.directory).is_dir():
            return []
        return [m._replace(name=self._name(m.name)) for m in super().migrations()]

    def applied(self) -> dict[str, Any]:
        prefix = self._name("")
        return {k: v for k, v in super().applied().items() if k.startswith(prefix)}

    def _run(self, name: str, module: Any, direction: str, fake: bool = False) -> None:
        try:
            with _owner_sees_every_row(self.database, getattr(module, "atomic", True)):
                super()._run(name, module, direction, fake)
        except Exception as exc:
            raise MigrationFailed(
                f"migration {name} failed and was rolled back: {type(exc).__name__}: "
                f"{(str(exc).strip().splitlines() or [''])[0]}"
            ) from exc


@contextlib.contextmanager
def _owner_sees_every_row(database: peewee.Database, atomic: bool) -> Iterator[None]:
    """Run one migration with row-level security not forced on the table owner.

    A migration acts for no tenant, so under FORCE ROW LEVEL SECURITY its UPDATEs and DELETEs
    see no rows: filling a new NOT NULL column (add_column's backfill) would update nothing and
    then fail. The owner (the app's role, which runs migrations) is exempt without FORCE; it is
    lifted and put back inside the migration's own transaction, so no other session ever sees a
    table unforced, and a failed migration rolls the change back with everything else.
    Migrations declaring ``atomic = False`` (no transaction) keep RLS forced.
    """
    if not atomic or not db.is_postgres(database):
        yield
        return
    with database.atomic():
        forced = [row[0] for row in database.execute_sql(
            "SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' AND c.relforcerowsecurity "
            "AND pg_table_is_visible(c.oid)")]
        for table in forced:
            database.execute_sql(f'ALTER TABLE "{table}" NO FORCE ROW LEVEL SECURITY')
        yield  # the migration runs in a savepoint of this transaction
        for table in forced:
            database.execute_sql(f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY')


def _ordered(runtime: Runtime) -> list[str]:
    """Plugins with their requirements first (core first of all)."""
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...] = ()) -> None:
        if name in order or name in path:
            return
        for dep in runtime.plugins[name].requires:
            visit(dep, (*path, name))
        order.append(name)

    visit("core")
    for name in runtime.plugins:
        visit(name)
    return order


@contextlib.contextmanager
def migration_lock(runtime: Runtime) -> Iterator[None]:
    database = db.database.obj
    if db.is_postgres():
        database.execute_sql("SELECT pg_advisory_lock(%s)", (_ADVISORY_KEY,))
        try:
            yield
        finally:
            database.execute_sql("SELECT pg_advisory_unlock(%s)", (_ADVISORY_KEY,))
    else:
        # Next to the database file: every process migrating this file shares the lock,
        # whatever its var_dir.
        name = getattr(database, "database", ":memory:")
        path = (runtime.settings.var_path / "migrate.lock" if name == ":memory:"
                else Path(f"{name}.migrate-lock"))
        path.parent.mkdir(parents=True, exist_ok=True)
        with fasteners.InterProcessLock(str(path)):
            yield


def migrate(runtime: Runtime) -> list[str]:
    """Apply every pending migration; returns the names applied (empty when up to date)."""
    applied: list[str] = []
    with db.connection(), migration_lock(runtime):
        for plugin in _ordered(runtime):
            directory = runtime.plugins[plugin].migrations_dir
            runner = PluginRunner(db.database.obj, directory, plugin)
            applied += runner.up()
        ensure_rls(runtime)
    return applied


def status(runtime: Runtime) -> list[tuple[str, bool]]:
    out = []
    with db.connection():
        for plugin in _ordered(runtime):
            runner = PluginRunner(db.database.obj, runtime.plugins[plugin].migrations_dir, plugin)
            out += [(m.name, m.applied is not None) for m in runner.status() if m.path]
    return out


def tenant_tables(runtime: Runtime) -> list[str]:
    return list(_tenant_tables(runtime))


def _tenant_tables(runtime: Runtime) -> dict[str, str]:
    """table name -> plugin, for every TenantModel a plugin registers."""
    tables = {}
    for plugin, models in runtime.registry.models.items():
        for model in models:
            if issubclass(model, TenantModel):
                tables[model._meta.table_name] = plugin
    return tables


def ensure_rls(runtime: Runtime) -> list[str]:
    """Give every tenant-owned table a row-level security policy (PostgreSQL; idempotent).

    FORCE makes the policy apply to the table owner too; a superuser still bypasses it, so the
    app must not connect as one (docs/deployment.md).
    """
    if not db.is_postgres():
        return []
    changed = []
    database = db.database.obj
    for table, plugin in _tenant_tables(runtime).items():
        row = database.execute_sql(
            "SELECT c.relforcerowsecurity, EXISTS (SELECT 1 FROM pg_policies p "
            "WHERE p.tablename = c.relname AND p.policyname = 'learnplat_tenant') "
            "FROM pg_class c WHERE c.relname = %s AND c.relkind = 'r'", (table,)
        ).fetchone()
        if row is None:
            raise MigrationFailed(f"plugin {plugin!r} registers tenant table {table}, which no "
                                  f"migration created (learnplat makemigrations {plugin})")
        if row[0] and row[1]:
            continue
        with database.atomic():
            database.execute_sql(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
            database.execute_sql(f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY')
            database.execute_sql(f'DROP POLICY IF EXISTS learnplat_tenant ON "{table}"')
            database.execute_sql(
                f'CREATE POLICY learnplat_tenant ON "{table}" USING (tenant_id = '
                f"NULLIF(current_setting('{db.TENANT_SETTING}', true), '')::integer) "
                f"WITH CHECK (tenant_id = NULLIF(current_setting('{db.TENANT_SETTING}', true),"
                f" '')::integer)"
            )
        changed.append(table)
    return changed


def generate(runtime: Runtime, plugin: str, name: str) -> str | None:
    """Write a migration for the difference between `plugin`'s models and the database
    (an initial migration when it has none); returns the new file's path."""
    from playhouse.schema_diff import SchemaDiff, diff_models

    from .migration_template import render

    directory = runtime.plugins[plugin].migrations_dir
    models = runtime.registry.models.get(plugin, [])
    with db.connection():
        runner = PluginRunner(db.database.obj, directory, plugin)
        if not runner.migrations():
            diff = SchemaDiff(
                peewee.sort_models(models),  # type: ignore[attr-defined]  # peewee's stub lacks sort_models
                [], [], [], [])
            name = name or "initial"
        else:
            diff = diff_models(db.database.obj, models)
            if not diff:
                return None
        return runner.create(name, body=render(diff))
