"""`learnplat makemigrations`: files that run without hand edits for defaults computed in Python
(no `<function _now at 0x7f...>` TODO), and index names that follow the table's prefixed name."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from corehelpers import build_runtime
from test_core_migrations import unprotected_tenant_tables

from learnplat import db
from learnplat.migrate import generate, migrate
from learnplat.tenancy import tenant_context
from learnplat.testing import backend, make_tenant, use_runtime

V1 = '''
import datetime as dt

import peewee

from learnplat import hookimpl
from learnplat.models import TenantModel, UTCDateTimeField


def _now():
    return dt.datetime.now(dt.UTC)


class Widget(TenantModel):
    name = peewee.CharField(max_length=50, index=True)
    code = peewee.CharField(max_length=10, unique=True)
    created_at = UTCDateTimeField(default=_now)

    class Meta:
        table_name = "gen_widget"


@hookimpl
def register_models():
    return [Widget]
'''

# The same plugin one release later: two columns added, both with defaults computed in Python.
V2 = V1.replace('''    created_at = UTCDateTimeField(default=_now)
''', '''    created_at = UTCDateTimeField(default=_now)
    updated_at = UTCDateTimeField(default=utcnow)
    seen_at = UTCDateTimeField(default=lambda: None, null=True)
''').replace("import TenantModel, UTCDateTimeField", "import TenantModel, UTCDateTimeField, utcnow")


def load(path: Path, source: str, name: str) -> ModuleType:
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # importable by name, as an installed plugin's module is
    spec.loader.exec_module(module)
    return module


def index_names(table: str) -> set[str]:
    with db.connection():
        return {i.name for i in db.database.get_indexes(table)}


@pytest.fixture
def pkg(tmp_path: Path) -> Path:
    path = tmp_path / "gen_plugin"
    path.mkdir()
    yield path
    for name in ("gen_v1", "gen_v2"):
        sys.modules.pop(name, None)


def test_generated_migrations_run_as_written(tmp_path, fresh_db, pkg):
    v1 = load(pkg / "__init__.py", V1, "gen_v1")
    rt = build_runtime(tmp_path, fresh_db, plugins=[("gen", v1)], do_migrate=False)
    with use_runtime(rt):
        first = Path(generate(rt, "gen", ""))
        text = first.read_text()
        assert "TODO" not in text and "<function" not in text and " at 0x" not in text
        assert "legacy_table_names = False" in text
        assert "gen:0001_initial" in migrate(rt)
        # Indexes are named after the table, not after the class ("widget_name").
        assert {"gen_widget_name", "gen_widget_code", "gen_widget_tenant_id"} <= index_names(
            "gen_widget")
        assert not {n for n in index_names("gen_widget") if n.startswith("widget_")}
        tenant = make_tenant(rt)
        with db.connection(), tenant_context(tenant), db.transaction():
            v1.Widget.create(name="old", code="A1")

    v2 = load(pkg / "v2.py", V2, "gen_v2")
    rt2 = build_runtime(tmp_path, fresh_db, plugins=[("gen", v2)], do_migrate=False)
    with use_runtime(rt2):
        second = Path(generate(rt2, "gen", "times"))
        assert second.name == "0002_times.py"
        text = second.read_text()
        assert " at 0x" not in text and "<function" not in text and "<lambda>" not in text
        assert "default=learnplat.plugin.utcnow" in text and "\nimport learnplat.plugin\n" in text
        assert "# NOTE: existing rows of gen_widget.seen_at stay NULL" in text
        assert "gen:0002_times" in migrate(rt2)
        with db.connection(), tenant_context(tenant), db.transaction():
            old = v2.Widget.get(v2.Widget.code == "A1")
        # The existing row was filled: on PostgreSQL that UPDATE acts for no tenant, so the
        # runner lifts forced RLS for the migration's transaction, and puts it back.
        assert old.updated_at is not None and old.seen_at is None
        if backend() == "postgres":
            assert unprotected_tenant_tables(fresh_db.url) == []
        assert generate(rt2, "gen", "") is None  # the models match the database now


def test_a_default_that_cannot_be_imported_is_a_todo_without_an_address(tmp_path, fresh_db,
                                                                          pkg):
    v1 = load(pkg / "__init__.py", V1, "gen_v1")
    rt = build_runtime(tmp_path, fresh_db, plugins=[("gen", v1)], do_migrate=False)
    with use_runtime(rt):
        generate(rt, "gen", "")
        migrate(rt)
    source = V1.replace('''    created_at = UTCDateTimeField(default=_now)
''', '''    created_at = UTCDateTimeField(default=_now)
    stamp = UTCDateTimeField(default=lambda: _now())
''')
    v2 = load(pkg / "v2.py", source, "gen_v2")
    rt2 = build_runtime(tmp_path, fresh_db, plugins=[("gen", v2)], do_migrate=False)
    with use_runtime(rt2):
        text = Path(generate(rt2, "gen", "")).read_text()
    assert ("# TODO: gen_widget.stamp: its default is computed in Python and cannot be "
            "imported here; pass add_column a default=... to fill existing rows") in text
    assert " at 0x" not in text
