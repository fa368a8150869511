"""Generated data sets: every plugin writes its own part of a school (the benchmark's data set,
a demo school) through its ``seed_tenant`` hook, so that nothing outside a plugin knows its
tables.

A run (`SeedRun`) seeds one school after another. In each school the plugins that implement
``seed_tenant`` are called in dependency order (a plugin after those it ``requires``), inside
the school's context and one transaction (a part that fails leaves nothing). A plugin reads
the sizes it is asked for with ``seed.size(name, default)``, what earlier plugins made in the
school from ``seed.made`` (each plugin documents the keys it leaves there), writes its rows
with ``seed.bulk`` / ``seed.bulk_ids`` or its own services, and leaves what later plugins
need in ``seed.made``.
``seed.shared`` outlives the school (something made once, then cloned). The generator is
deterministic: one seeded RNG per run.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from . import db
from .auth import Principal
from .errors import LearnplatError
from .tenancy import TenantInfo, tenant_context

if TYPE_CHECKING:
    from .runtime import Runtime

log = logging.getLogger(__name__)

CHUNK = 1000  # rows per INSERT: ~20 columns x 1000 stays far below PostgreSQL's 65,535 params
V = TypeVar("V", int, float, str)


@dataclass
class Seed:
    """One school's part of a run, as each plugin's ``seed_tenant`` hook sees it."""

    runtime: Runtime
    tenant: TenantInfo
    index: int  # the school's place in its run: 0 for the first
    sizes: Mapping[str, Any]
    rng: random.Random
    now: dt.datetime  # the run's "now" (aware UTC): rows made "today" share it
    shared: dict[str, Any]  # kept from one school of the run to the next
    rows: Counter[str]  # rows written, by kind, for the run's report
    made: dict[str, Any] = field(default_factory=dict)  # what this school's plugins made
    asked: set[str] = field(default_factory=set)  # the sizes plugins read (a typo reads none)

    def size(self, name: str, default: V) -> V:
        """The size `name` the run asks for (a count, a share, a password...), else `default`;
        of the default's type (an int for an int: ``seed.size("courses", 40)``)."""
        self.asked.add(name)
        value = self.sizes.get(name, default)
        try:
            return type(default)(value)
        except (TypeError, ValueError):
            raise LearnplatError(f"seed size {name}={value!r}: expected "
                                 f"{type(default).__name__}") from None

    def principal(self, user_id: int, role: str) -> Principal:
        """A principal of this school, for a service that acts as someone."""
        return Principal(user_id, self.tenant.id, role,
                         self.runtime.registry.grants_for(role))

    def bulk(self, model: Any, rows: list[dict[str, Any]], kind: str = "") -> int:
        """Insert `rows` (dicts by field name; a field left out takes its default) through the
        plugin's model in this school: the model's own INSERT, many rows per statement, as
        the app's role (row-level security applies; the model fills the tenant column).
        Counted as `kind` (default: the model's table) in the run's report. How many."""
        insert(model, rows, ids=False)
        self.rows[kind or model._meta.table_name] += len(rows)
        return len(rows)

    def bulk_ids(self, model: Any, rows: list[dict[str, Any]], kind: str = "") -> list[int]:
        """As `bulk`, and the new rows' ids, in order."""
        ids = insert(model, rows, ids=True)
        self.rows[kind or model._meta.table_name] += len(rows)
        return ids


class SeedRun:
    """Seed schools one after another with every plugin's part (`seed_tenant` hooks)."""

    def __init__(self, runtime: Runtime, rng_seed: int = 14,
                 log: Callable[[str], Any] | None = None):
        self.runtime = runtime
        self.rng = random.Random(rng_seed)
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.shared: dict[str, Any] = {}
        self.rows: Counter[str] = Counter()
        self.seconds: dict[str, float] = defaultdict(float)  # by plugin: where time goes
        self.count = 0
        self.log = log

    def plugins(self) -> list[tuple[str, Callable[..., Any]]]:
        """(plugin name, its seed_tenant) for each plugin that implements it, each after the
        plugins it requires (directly or through others), otherwise by name."""
        pm = self.runtime.pm
        requires = {name: tuple(getattr(obj, "requires", ()) or ())
                    for name, obj in pm.list_name_plugin()}
        order: list[str] = []

        def visit(name: str, path: tuple[str, ...]) -> None:
            if name in order or name in path or name not in requires:
                return
            for needed in sorted(requires[name]):
                visit(needed, (*path, name))
            order.append(name)

        for name in sorted(requires):
            visit(name, ())
        impls = {impl.plugin_name: impl for impl in pm.hook.seed_tenant.get_hookimpls()}
        return [(name, _taking_what_it_names(impls[name].function, impls[name].argnames))
                for name in order if name in impls]

    def tenant(self, tenant: TenantInfo, sizes: Mapping[str, Any] | None = None) -> Seed:
        """Seed `tenant` (a new, empty school) with every plugin's part; the Seed, whose
        `made` says what was made."""
        seed = Seed(self.runtime, tenant, self.count, dict(sizes or {}), self.rng, self.now,
                    self.shared, self.rows)
        with db.connection(), tenant_context(tenant), db.transaction():
            # one transaction for the school: a part that fails leaves none of the others
            for name, hook in self.plugins():
                if not tenant.plugin_enabled(name):
                    continue
                started = time.perf_counter()
                try:
                    hook(runtime=self.runtime, seed=seed)
                except LearnplatError:
                    raise
                except Exception as exc:
                    raise LearnplatError(f"plugin {name!r} failed to seed {tenant.slug!r}: "
                                         f"{exc!r}") from exc
                self.seconds[name] += time.perf_counter() - started
        self.count += 1
        return seed


def _taking_what_it_names(function: Callable[..., Any], argnames: tuple[str, ...]
                          ) -> Callable[..., Any]:
    """An implementation takes the hook's arguments it names (pluggy's rule), by keyword."""
    return lambda **kwargs: function(**{k: v for k, v in kwargs.items() if k in argnames})


def insert(model: Any, rows: list[dict[str, Any]], ids: bool) -> list[int]:
    """The model's own INSERT (peewee generates it from the model, with the tenant the model
    adds), sent for CHUNK rows at a time with psycopg2's execute_values, each value converted
    by its field's db_value. peewee's insert_many builds the same statement but spends ~100 us
    per row composing it: minutes for a million rows. On SQLite, or where the model's
    statement is not the expected shape, peewee's insert_many does it all."""
    if not rows:
        return []
    fields = [f for f in model._meta.sorted_fields if f.name != "id"]
    tenant_field = getattr(model, "tenant", None)
    defaults = {f.name: f.default for f in fields if f.default is not None}
    full = [{f.name: row[f.name] if f.name in row else
             (d() if callable(d := defaults.get(f.name)) else d) for f in fields if
             f is not tenant_field} for row in rows]
    sql, _params = model.insert(full[0]).sql()
    columns = "(" + ", ".join(f'"{f.column_name}"' for f in fields) + ")"
    head, values, tail = sql.partition(" VALUES ")
    if not head.endswith(columns) or not values or not db.is_postgres():
        return _insert_many(model, full, ids)
    from psycopg2.extras import execute_values

    returning = tail[tail.index(")") + 1:]  # "" or ' RETURNING "table"."id"'
    tenant_id = model._tenant_id() if tenant_field is not None else None
    args = [[tenant_id if f is tenant_field else f.db_value(row[f.name]) for f in fields]
            for row in full]
    cursor = db.database.cursor()
    out = execute_values(cursor, f"{head} VALUES %s{returning}", args, page_size=CHUNK,
                         fetch=bool(returning) and ids)
    return [r[0] for r in out] if ids else []


def _insert_many(model: Any, rows: list[dict[str, Any]], ids: bool) -> list[int]:
    out: list[int] = []
    for start in range(0, len(rows), CHUNK):
        query = model.insert_many(rows[start:start + CHUNK])
        if ids:
            out += [r[0] for r in query.returning(model.id).tuples().execute()]
        else:
            query.as_rowcount().execute()
    return out
