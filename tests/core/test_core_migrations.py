"""`learnplat migrate`: idempotent, safe when two processes run it at once, and a failing
migration leaves schema and history as they were, with one clear line and a non-zero exit."""

from __future__ import annotations

import subprocess

import pytest
from corehelpers import CLI, REPO, cli_env, fake_distribution, run_cli

from learnplat import db
from learnplat.db import make_database
from learnplat.testing import backend

BAD_PLUGIN = {
    "learnplat_badmig/__init__.py": '"""A plugin whose second migration fails half-way."""\n',
    "learnplat_badmig/migrations/0001_first.py": '''
        def up(migrator, db):
            db.execute_sql("CREATE TABLE badmig_first (id integer primary key)")
    ''',
    "learnplat_badmig/migrations/0002_broken.py": '''
        def up(migrator, db):
            db.execute_sql("CREATE TABLE badmig_second (id integer primary key)")
            db.execute_sql("ALTER TABLE badmig_first ADD COLUMN note text")
            db.execute_sql("THIS IS NOT SQL")
    ''',
}


def history(url):
    database = make_database(url)
    try:
        return sorted(r[0] for r in database.execute_sql("select name from learnplat_migration"))
    finally:
        database.close()


def tables_and_columns(url):
    database = make_database(url)
    try:
        return {t: sorted(c.name for c in database.get_columns(t)) for t in database.get_tables()}
    finally:
        database.close()


def test_migrate_is_idempotent(tmp_path, fresh_db):
    env = cli_env(tmp_path, fresh_db)
    first = run_cli(["migrate"], env)
    assert first.returncode == 0, first.stderr
    assert "applied core:0001_initial" in first.stdout
    applied = history(fresh_db.url)
    again = run_cli(["migrate"], env)
    assert again.returncode == 0, again.stderr
    home, summary = again.stdout.strip().splitlines()  # the home line, then the outcome
    assert home.startswith("home: ") and summary == "up to date"
    assert history(fresh_db.url) == applied
    if backend() == "postgres":
        assert unprotected_tenant_tables(fresh_db.url, deliberately_global(env)) == []


def deliberately_global(env):
    """Tables that plugins register as models but not as TenantModels (a lookup that must work
    without a tenant, e.g. certificate public id -> issuing school): not under RLS on purpose."""
    from learnplat.models import TenantModel
    from learnplat.runtime import create_runtime
    from learnplat.settings import load_settings

    previous = db.database.obj  # create_runtime points the process's proxy at its database
    rt = create_runtime(load_settings(environ=env))
    db.database.initialize(previous)
    return {m._meta.table_name for models in rt.registry.models.values() for m in models
            if not issubclass(m, TenantModel)}


def unprotected_tenant_tables(url, allowed=frozenset()):
    """Tables with a tenant_id column (every installed plugin's) that lack forced RLS, but for
    the `allowed` ones."""
    database = make_database(url)
    try:
        rows = database.execute_sql(
            "select c.relname from pg_class c join pg_attribute a on a.attrelid = c.oid "
            "where a.attname = 'tenant_id' and c.relkind = 'r' and c.relname not like %s "
            "and not c.relforcerowsecurity", ("learnplat_%",)).fetchall()
        return [row for row in rows if row[0] not in allowed]
    finally:
        database.close()


@pytest.mark.e2e
def test_two_processes_migrating_at_once_apply_each_migration_once(tmp_path, fresh_db):
    env = cli_env(tmp_path, fresh_db)
    procs = [subprocess.Popen([*CLI, "migrate"], env=env, cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    applied = [line.split(" ", 1)[1] for out, _ in outs for line in out.splitlines()
               if line.startswith("applied ")]
    assert "core:0001_initial" in applied
    assert len(applied) == len(set(applied))  # nothing applied twice
    assert sorted(applied) == history(fresh_db.url)


def test_failing_migration_leaves_schema_and_history_unchanged(tmp_path, fresh_db):
    root = fake_distribution(tmp_path / "site", "learnplat-badmig",
                             {"badmig": "learnplat_badmig"}, BAD_PLUGIN)
    env = cli_env(tmp_path, fresh_db, pythonpath=[root])
    r = run_cli(["migrate"], env)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: migration badmig:0002_broken failed and was rolled back")
    done = history(fresh_db.url)
    assert "badmig:0001_first" in done and "badmig:0002_broken" not in done
    schema = tables_and_columns(fresh_db.url)
    assert "badmig_second" not in schema
    assert schema["badmig_first"] == ["id"]  # the ALTER was undone too
    # Running again fails the same way and changes nothing.
    r = run_cli(["migrate"], env)
    assert r.returncode != 0 and history(fresh_db.url) == done
    assert tables_and_columns(fresh_db.url) == schema




GEN_PLUGIN = '''
import peewee

from learnplat import hookimpl
from learnplat.models import TenantModel


class Widget(TenantModel):
    name = peewee.CharField(max_length=50)

    class Meta:
        table_name = "gen_widget"


@hookimpl
def register_models():
    return [Widget]
'''


def test_makemigrations_writes_a_migration_that_migrate_applies(tmp_path, fresh_db):
    import importlib.util

    from corehelpers import build_runtime

    from learnplat import db
    from learnplat.migrate import MigrationFailed, generate, migrate
    from learnplat.testing import use_runtime

    pkg = tmp_path / "gen_plugin"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(GEN_PLUGIN)
    spec = importlib.util.spec_from_file_location("gen_plugin", pkg / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    rt = build_runtime(tmp_path, fresh_db, plugins=[("gen", module)], do_migrate=False)
    with use_runtime(rt):
        if backend() == "postgres":  # a TenantModel without its migration is refused
            with pytest.raises(MigrationFailed, match="learnplat makemigrations gen"):
                migrate(rt)
        path = generate(rt, "gen", "")
        assert path and path.endswith("0001_initial.py")
        assert "gen_widget" in (pkg / "migrations" / "0001_initial.py").read_text()
        assert "gen:0001_initial" in migrate(rt)
        assert generate(rt, "gen", "") is None  # models match the database now
        with db.connection():
            assert "gen_widget" in db.database.get_tables()
        if backend() == "postgres":
            assert unprotected_tenant_tables(fresh_db.url) == []
