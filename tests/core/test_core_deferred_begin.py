"""The unit of work opens its transaction with its first statement (learnplat.db.DeferredBegin):
BEGIN and the tenant's set_config travel with that statement, RLS still fences it, and a unit
that runs no statement costs nothing."""

from __future__ import annotations

import peewee
import pytest

from learnplat import db
from learnplat.tenancy import tenant_context
from learnplat.testing import count_queries, make_tenant


def postgres_only() -> None:
    if not db.is_postgres():
        pytest.skip("PostgreSQL only (LEARNPLAT_TEST_BACKEND=postgres)")


def test_a_unit_of_work_without_statements_sends_nothing(lp_runtime, lp_tenant):
    database = db.database.obj
    if not database.is_closed():
        database.close()
    with count_queries() as q, tenant_context(lp_tenant), db.transaction():
        pass
    assert q.all == []
    assert database.is_closed()  # no connection was even taken from the pool


def test_the_first_statement_carries_begin_and_the_tenant(lp_runtime, lp_tenant):
    postgres_only()
    with count_queries() as q, db.connection(), tenant_context(lp_tenant), db.transaction():
        setting = db.database.execute_sql(
            "SELECT current_setting('learnplat.tenant_id', true)").fetchone()[0]
        in_txn = db.database.execute_sql("SELECT now() = statement_timestamp()").fetchone()[0]
    assert setting == str(lp_tenant.id)
    assert in_txn is False  # now() is the transaction's start: an explicit transaction is open
    assert len(q.all) == 2 and q.all[0].startswith("BEGIN; SELECT set_config(")
    assert q.count == 2  # the folded prefix is not counted as a query of its own


def test_rls_fences_the_first_statement(lp_runtime, lp_users):
    """Rows of another tenant are invisible to a transaction's very first statement, which
    carries the tenant setting in front of it."""
    postgres_only()
    from learnplat_identity.models import User

    mine, theirs = lp_users.tenant, make_tenant(lp_runtime)
    lp_users.make("student")
    lp_users.make("student", tenant=theirs)
    with db.connection(), tenant_context(mine), db.transaction():
        tenants = {row[0] for row in db.database.execute_sql(
            f"SELECT tenant_id FROM {User._meta.table_name}")}
    assert tenants == {mine.id}


def test_a_nested_block_starts_the_outer_transaction_first(lp_runtime, lp_tenant):
    from learnplat_identity.models import User

    with db.connection(), tenant_context(lp_tenant), db.transaction():
        try:
            with db.transaction():
                User.create(email="inner@example.org", name="i", role="student")
                raise RuntimeError("roll back to the savepoint only")
        except RuntimeError:
            pass
        User.create(email="outer@example.org", name="o", role="student")
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        emails = {u.email for u in User.select()}
    assert "outer@example.org" in emails and "inner@example.org" not in emails


def test_a_failing_first_statement_leaves_the_connection_usable(lp_runtime, lp_tenant):
    with db.connection(), tenant_context(lp_tenant):
        with pytest.raises(peewee.DatabaseError), db.transaction():
            db.database.execute_sql("SELECT * FROM no_such_table")
        with db.transaction():
            assert db.database.execute_sql("SELECT 1").fetchone()[0] == 1


def test_a_connection_killed_while_pooled_is_replaced(lp_runtime, lp_tenant):
    """The pool trusts a connection returned moments ago (no ping); if the server ended it
    meanwhile, its statement fails once, the connection is dropped at check-in, and the
    next unit of work gets a fresh one."""
    postgres_only()
    database = db.database.obj
    with db.connection():
        pid = database.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    import psycopg2

    params = {k: v for k, v in database.connect_params.items()
              if k in ("host", "port", "user", "password") and v is not None}
    admin = psycopg2.connect(dbname=database.database, **params)  # same role: may end its own
    admin.autocommit = True
    admin.cursor().execute("SELECT pg_terminate_backend(%s)", (pid,))
    admin.close()
    with pytest.raises(peewee.DatabaseError), db.connection():
        database.execute_sql("SELECT 1")
    with db.connection():
        assert database.execute_sql("SELECT pg_backend_pid()").fetchone()[0] != pid


def test_a_unit_of_work_opened_before_any_connection_commits(lp_runtime, lp_tenant):
    """The request path opens its transaction before a connection exists (the tenant came
    from the cache): the first statement connects, and the commit still finds its transaction."""
    from learnplat_identity.models import User

    database = db.database.obj
    if not database.is_closed():
        database.close()
    with tenant_context(lp_tenant):
        try:
            with db.transaction():
                User.create(email="lazy@example.org", name="l", role="student")
                with db.transaction():
                    User.create(email="lazy2@example.org", name="l", role="student")
        finally:
            database.close()
        with db.connection(), db.transaction():
            assert User.select().where(User.email.startswith("lazy")).count() == 2


def test_a_prepared_query_runs_with_new_arguments_in_each_tenant(lp_runtime, lp_users):
    """learnplat.db.Prepared generates the SQL once per tenant and swaps the arguments in."""
    from learnplat_identity.models import User

    find = db.Prepared(lambda email, uid: User.select().where(
        (User.email == email) | (User.id == uid)).order_by(User.id))
    mine, theirs = lp_users.tenant, make_tenant(lp_runtime)
    a, b = lp_users.make("student"), lp_users.make("student")
    c = lp_users.make("student", tenant=theirs)
    with db.connection(), tenant_context(mine), db.transaction():
        assert [u.id for u in find.all(a.email, b.id)] == sorted([a.id, b.id])
        with count_queries() as q:
            assert [u.email for u in find.all(b.email, -1)] == [b.email]
        assert len(q.all) == 1
        assert find.first(c.email, c.id) is None  # another tenant's row stays out
    with db.connection(), tenant_context(theirs), db.transaction():
        assert find.first(c.email, 0).id == c.id
        assert find.all(a.email, a.id) == []
    odd = db.Prepared(lambda flag: User.select().where(User.active == flag))
    with db.connection(), tenant_context(mine), db.transaction():
        assert len(odd.all(True)) >= 2  # a bool is not planned: the ordinary path
