"""Tenant resolution (X-Tenant, Host), 404 for unknown/disabled tenants, TenantModel scoping,
and PostgreSQL row-level security against a deliberately unscoped query."""

from __future__ import annotations

import pytest
from corehelpers import token
from testnotes import Note

from learnplat import db
from learnplat.tenancy import NoTenant, tenant_context
from learnplat.testing import Client, backend, make_tenant


def _problem(r, status):
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json["status"] == status and r.json["type"] and r.json["title"]


def test_x_tenant_header_selects_the_tenant(client, tenant_a):
    r = client.post("/notes", json={"title": "hello"})
    assert r.status_code == 201, r.text
    assert [n["title"] for n in client.get("/notes").json["items"]] == ["hello"]


def test_host_domain_selects_the_tenant(core_app, core_runtime):
    tenant = make_tenant(core_runtime, domains=[f"school{id(core_app)}.example.org"])
    c = Client(core_app)
    host = tenant.domains[0]
    r = c.post("/notes", json={"title": "by host"},
               headers={"Host": f"{host}:8000", "Authorization": f"Bearer {token(tenant)}"})
    assert r.status_code == 201, r.text
    r = c.get("/notes", headers={"Host": host})
    assert [n["title"] for n in r.json["items"]] == ["by host"]


def test_unknown_tenant_is_404_problem(core_app):
    c = Client(core_app)
    _problem(c.get("/notes", headers={"X-Tenant": "no-such-school"}), 404)
    _problem(c.get("/notes", headers={"Host": "unknown.example.net"}), 404)
    _problem(c.get("/notes"), 404)  # no tenant named at all
    # Tenant-free routes still answer.
    assert c.get("/healthz").status_code == 200


def test_disabled_tenant_is_404_until_enabled(core_app, core_runtime, tenant_a):
    c = Client(core_app, tenant_a)
    assert c.get("/notes").status_code == 200
    with db.connection():
        core_runtime.tenants.set_enabled(tenant_a.slug, False)
    _problem(c.get("/notes"), 404)
    with db.connection():
        core_runtime.tenants.set_enabled(tenant_a.slug, True)
    assert c.get("/notes").status_code == 200


def test_token_of_another_tenant_is_401(core_app, tenant_a, tenant_b):
    c = Client(core_app, tenant_a, token(tenant_b))
    _problem(c.post("/notes", json={"title": "x"}), 401)


def test_other_tenant_sees_nothing_over_http(core_app, tenant_a, tenant_b):
    a = Client(core_app, tenant_a, token(tenant_a))
    b = Client(core_app, tenant_b, token(tenant_b))
    note = a.post("/notes", json={"title": "a's"}).json
    assert b.get("/notes").json["items"] == []
    _problem(b.get(f"/notes/{note['id']}"), 404)
    assert a.get(f"/notes/{note['id']}").status_code == 200


def _rows(tenant):
    with tenant_context(tenant), db.transaction():
        return sorted(n.title for n in Note.select())


def test_tenant_model_scopes_select_update_delete_insert(core_runtime, tenant_a, tenant_b):
    with db.connection():
        for tenant, titles in ((tenant_a, ["a1", "a2"]), (tenant_b, ["b1"])):
            with tenant_context(tenant), db.transaction():
                for t in titles:
                    Note.create(title=t)
                Note.insert(title=f"{tenant.slug}-insert").execute()
                Note.insert_many([{"title": f"{tenant.slug}-many"}]).execute()
        assert _rows(tenant_a) == sorted(["a1", "a2", f"{tenant_a.slug}-insert",
                                          f"{tenant_a.slug}-many"])
        with tenant_context(tenant_a), db.transaction():
            # Unfiltered update/delete touch only this tenant's rows.
            assert Note.update(body="edited").execute() == 4
            assert Note.delete().where(Note.title == "b1").execute() == 0
            assert Note.delete().where(Note.title == "a1").execute() == 1
            # Writing a row for another tenant is refused.
            with pytest.raises(PermissionError):
                Note.insert(title="sneaky", tenant=tenant_b.id).execute()
        with tenant_context(tenant_b), db.transaction():
            assert sorted(n.body for n in Note.select()) == ["", "", ""]
            assert "b1" in [n.title for n in Note.select()]


def test_no_tenant_outside_tenant_context(core_runtime):
    with db.connection():
        for action in (lambda: list(Note.select()), lambda: Note.update(body="x"),
                       lambda: Note.delete(), lambda: Note.insert(title="x"),
                       lambda: Note.create(title="x")):
            with pytest.raises(NoTenant):
                action()


@pytest.mark.skipif(backend() != "postgres", reason="row-level security is PostgreSQL's")
class TestRowLevelSecurity:
    def test_unscoped_raw_sql_sees_only_the_current_tenant(self, core_runtime, tenant_a,
                                                            tenant_b):
        with db.connection():
            for tenant in (tenant_a, tenant_b):
                with tenant_context(tenant), db.transaction():
                    Note.create(title=f"row of {tenant.slug}")
            with tenant_context(tenant_a), db.transaction():
                rows = db.database.execute_sql("select title, tenant_id from testnotes_note"
                                               ).fetchall()
                assert rows and {r[1] for r in rows} == {tenant_a.id}
                # The escape hatch is still fenced by RLS.
                assert {n.tenant_id for n in Note.unscoped()} == {tenant_a.id}
            with db.transaction():  # no tenant at all: nothing
                assert db.database.execute_sql("select count(*) from testnotes_note"
                                               ).fetchone()[0] == 0
                # and a raw insert for some tenant is refused by the policy's WITH CHECK
                import peewee

                with pytest.raises(peewee.DatabaseError), db.database.atomic():
                    db.database.execute_sql(
                        "insert into testnotes_note (tenant_id, title, body, created_at) "
                        "values (%s, 'x', '', now())", (tenant_b.id,))

    def test_every_tenant_table_has_forced_rls_and_the_policy(self, core_runtime):
        from learnplat.migrate import tenant_tables

        tables = tenant_tables(core_runtime)
        assert "testnotes_note" in tables
        with db.connection():
            for table in tables:
                forced, enabled = db.database.execute_sql(
                    "select relforcerowsecurity, relrowsecurity from pg_class where relname=%s",
                    (table,)).fetchone()
                assert forced and enabled, table
                assert db.database.execute_sql(
                    "select count(*) from pg_policies where tablename=%s and "
                    "policyname='learnplat_tenant'", (table,)).fetchone()[0] == 1

    def test_the_app_role_is_not_superuser_and_does_not_bypass_rls(self, core_runtime):
        with db.connection():
            row = db.database.execute_sql(
                "select rolsuper, rolbypassrls from pg_roles where rolname = current_user"
            ).fetchone()
        assert row == (False, False)


@pytest.fixture(scope="module")
def host_only_app(core_database, tmp_path_factory):
    """An app of a deployment that selects schools by their domain only."""
    from corehelpers import build_runtime

    from learnplat.http.app import create_app

    rt = build_runtime(tmp_path_factory.mktemp("host-only"), core_database, do_migrate=False,
                       tenancy={"select_by": "host"})
    return create_app(rt)


def test_host_only_deployment_ignores_no_domain_and_refuses_other_schools(
        core_runtime, host_only_app):
    """tenancy.select_by = "host": a school's domain serves that school alone; X-Tenant
    naming another school (or naming one with no Host of a school) finds nothing."""
    mine = make_tenant(core_runtime, domains=[f"mine{id(host_only_app)}.example.org"])
    other = make_tenant(core_runtime)
    c = Client(host_only_app)
    host = {"Host": mine.domains[0], "Authorization": f"Bearer {token(mine)}"}
    assert c.post("/notes", json={"title": "by host"}, headers=host).status_code == 201
    assert c.get("/notes", headers=host).status_code == 200
    assert c.get("/notes", headers={**host, "X-Tenant": mine.slug}).status_code == 200
    # The other school by name, through this school's domain or through no domain: nothing.
    _problem(c.get("/notes", headers={"Host": mine.domains[0], "X-Tenant": other.slug}), 404)
    _problem(c.get("/notes", headers={"X-Tenant": other.slug}), 404)
    _problem(c.get("/notes", headers={"X-Tenant": mine.slug}), 404)
    assert "domain" in c.get("/notes", headers={"X-Tenant": other.slug}).json["detail"]


def test_the_default_deployment_selects_by_header_then_host(core_runtime):
    """The selection rule itself, as the HTTP middleware and the WebSocket route use it."""
    mine = make_tenant(core_runtime, domains=[f"rule{id(core_runtime)}.example.org"])
    other = make_tenant(core_runtime)
    tenants = core_runtime.tenants
    with db.connection():
        assert tenants.select(f" {other.slug.upper()} ", mine.domains[0]).id == other.id
        assert tenants.select(None, f"{mine.domains[0]}:443").id == mine.id
        assert tenants.select(None, f"{mine.domains[0]}:443", host_only=True).id == mine.id
        assert tenants.select(other.slug, mine.domains[0], host_only=True) is None
        assert tenants.select(mine.slug, None, host_only=True) is None
