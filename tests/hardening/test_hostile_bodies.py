"""Hostile JSON bodies against every operation of the served OpenAPI document that takes one:
deep nesting, huge and non-finite numbers, invalid UTF-8, NUL characters, overlong strings,
duplicate keys, the wrong top-level type, the wrong content type, an empty or oversized body.
Each answers a 4xx problem document (never a 5xx) and writes nothing for the tenant.
On PostgreSQL a NUL character that reached the database would be a 500: the validation layer
(learnplat.http.endpoint) refuses it first, for every plugin at once."""

from __future__ import annotations

import collections
from typing import Any

import pytest
from bodyhelpers import (
    Examples,
    Operation,
    count_rows,
    hostile_cases,
    is_problem,
    json_operations,
    tenant_tables,
)

from learnplat.testing import Client


@pytest.fixture
def cast(lp_client: Any, lp_users: Any) -> dict[str, Any]:
    """An admin, an instructor and a student, a course of the instructor's with a module, so
    that path fields name objects that exist."""
    admin, teacher, student = (lp_users.make(r) for r in ("admin", "instructor", "student"))
    t = lp_client.as_(teacher.token)
    cid = t.post("/courses", json={"title": "Hostile"}).json["id"]
    mid = t.post(f"/courses/{cid}/modules", json={"title": "M"}).json["id"]
    return {"clients": {"admin": lp_client.as_(admin.token), "instructor": t,
                        "student": lp_client.as_(student.token), "anonymous": lp_client},
            "ids": {"course_id": cid, "module_id": mid, "user_id": student.id}}


def _send(client: Client, op: Operation, url: str, body: bytes, ctype: str | None) -> Any:
    headers = {"Content-Type": ctype} if ctype else {}
    return client.request(op.method, url, body=body, headers=headers)


def _role_for(cast: dict[str, Any], op: Operation, url: str) -> str | None:
    """The first role the route lets past its permission check (a body of the wrong shape
    then answers 422, not 401/403)."""
    for role in ("admin", "instructor", "student", "anonymous"):
        r = _send(cast["clients"][role], op, url, b"[]", "application/json")
        if r.status_code not in (401, 403):
            return role
    return None


SHARDS = 3  # the operations in three tests, so that parallel test processes share them


@pytest.mark.parametrize("shard", range(SHARDS))
def test_hostile_json_bodies_answer_4xx_problems_and_write_nothing(
        lp_runtime: Any, lp_app: Any, lp_tenant: Any, cast: dict[str, Any], shard: int) -> None:
    doc = cast["clients"]["admin"].get("/openapi.json").json
    every = json_operations(doc)
    assert len(every) >= 30, [str(o) for o in every]  # every plugin's JSON routes are there
    ops = every[shard::SHARDS]
    examples = Examples(doc)
    tables = tenant_tables(lp_runtime)
    assert len(tables) >= 20
    max_body = lp_runtime.settings.app.max_body_bytes
    failures: list[str] = []
    unreached: list[str] = []
    nul_refused: list[str] = []  # operations where a schema-valid body carried the NUL
    later: list[tuple[Operation, str, str, Any]] = []  # cases that may write: run last
    sent = 0
    for op in ops:
        url = op.url(cast["ids"])
        role = _role_for(cast, op, url)
        if role is None:
            unreached.append(str(op))
            continue
        client = cast["clients"][role]
        cases = list(hostile_cases(examples, op, max_body))
        later.extend((op, url, role, c) for c in cases if not c.strict)
        before = count_rows(tables, lp_tenant)
        for case in (c for c in cases if c.strict):
            r = _send(client, op, url, case.body, case.content_type)
            sent += 1
            if r.status_code not in case.expect or (r.status_code >= 400 and not is_problem(r)):
                failures.append(f"{op} as {role}, {case.name}: {r.status_code} "
                                f"{r.headers.get('content-type')} {r.text[:200]}")
            elif case.name == "\\u0000 in every string" and "string_nul" in r.text:
                nul_refused.append(str(op))
        after = count_rows(tables, lp_tenant)
        if after != before:
            changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
            failures.append(f"{op} as {role}: rows written {changed}")
    for op, url, role, case in later:
        r = _send(cast["clients"][role], op, url, case.body, case.content_type)
        sent += 1
        if r.status_code not in case.expect or (r.status_code >= 400 and not is_problem(r)):
            failures.append(f"{op} as {role}, {case.name}: {r.status_code} "
                            f"{r.headers.get('content-type')} {r.text[:200]}")
    print(f"\n{len(ops)} JSON operations, {sent} hostile bodies; the NUL reached the "
          f"check past schema validation on {len(nul_refused)} operations")
    assert not failures, "\n".join(failures)
    # Every operation is reachable by one of the roles (else its bodies went untested).
    assert not unreached, unreached
    # The schema-shaped NUL bodies really got past the schemas' own checks for most routes.
    assert len(nul_refused) >= len(ops) // 2, nul_refused


@pytest.mark.parametrize("path", ["/courses?q=a%00b", "/courses?tag=%00", "/courses?x=%00",
                                  "/notifications?cursor=%00", "/audit?action=a%00"])
def test_nul_in_a_query_string_is_a_400(lp_client: Any, lp_users: Any, path: str) -> None:
    client = lp_client.as_(lp_users.make("admin").token)
    r = client.get(path)
    assert r.status_code == 400, r.text
    assert is_problem(r)


@pytest.mark.parametrize("path", [
    "/courses/1%00", "/certificates/ab%00cd/verify", "/certificates/ab%00cd/pdf",
    "/certificates/ab%00cd/credential", "/certificates/issuers/a%00b/did.json",
    "/certificates/issuers/a%00b/jwks.json", "/certificates/issuers/a%00b/status/revocation",
    "/auth/oauth/a%00b/login", "/auth/oauth/a%00b/callback",
])
def test_nul_in_a_path_names_nothing(lp_client: Any, lp_users: Any, path: str) -> None:
    """Path fields that are strings (ids, slugs, provider names) never reach the database with
    a NUL: 404 (or 400; 422 where a signature is missing first), never a 500 on PostgreSQL."""
    client = lp_client.as_(lp_users.make("admin").token)
    for method in ("GET", "POST"):
        r = client.request(method, path)
        assert r.status_code in (400, 404, 405, 422), (method, r.text)
        assert is_problem(r)


@pytest.mark.parametrize("path", ["/courses/99999999999999999999999", "/courses/-1",
                                  "/courses/9223372036854775808/modules"])
def test_ids_out_of_range_in_the_path_are_not_found(lp_client: Any, lp_users: Any,
                                                   path: str) -> None:
    client = lp_client.as_(lp_users.make("admin").token)
    r = client.get(path)
    assert r.status_code in (400, 404), r.text
    assert is_problem(r)


def test_duplicate_keys_name_the_key(lp_client: Any, lp_users: Any) -> None:
    client = lp_client.as_(lp_users.make("instructor").token)
    r = client.post("/courses", body=b'{"title": "A", "title": "B"}',
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "'title' appears twice" in r.json["detail"], r.text
    # Duplicates only in different objects are fine.
    r = client.post("/courses", json={"title": "C", "tags": []})
    assert r.status_code == 201, r.text


def test_nul_and_huge_numbers_name_the_field(lp_client: Any, lp_users: Any) -> None:
    client = lp_client.as_(lp_users.make("instructor").token)
    r = client.post("/courses", json={"title": "a\x00b"})
    assert r.status_code == 422, r.text
    assert r.json["errors"] == [{"field": "title", "type": "string_nul",
                                 "message": "must not contain a NUL character (\\u0000)"}]
    r = client.post("/courses", json={"title": "ok", "tags": ["x\x00"]})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "tags.0", r.text
    # Text that merely shows the escape (an escaped backslash) is no NUL.
    r = client.post("/courses", json={"title": "JSON", "description": "write \\u0000 for NUL"})
    assert r.status_code == 201, r.text
    assert r.json["description"] == "write \\u0000 for NUL"


def test_counts_are_per_operation(lp_runtime: Any, lp_tenant: Any, lp_client: Any,
                                  lp_users: Any) -> None:
    """The row count the sweep relies on sees a write (else "nothing written" proves nothing)."""
    tables = tenant_tables(lp_runtime)
    before = count_rows(tables, lp_tenant)
    client = lp_client.as_(lp_users.make("instructor").token)
    assert client.post("/courses", json={"title": "Counted"}).status_code == 201
    after = count_rows(tables, lp_tenant)
    grown = collections.Counter(after) - collections.Counter(before)
    assert grown.get("courses_course") == 1, grown


def test_nul_in_the_tenant_header_names_no_school(lp_client: Any) -> None:
    r = lp_client.get("/courses", headers={"X-Tenant": "a\x00b"})
    assert r.status_code == 404 and is_problem(r), r.text


def test_a_value_the_database_refuses_is_a_422() -> None:
    """peewee.DataError (too long for its column, out of range): the input's fault, a 422."""
    import falcon
    import falcon.testing
    import peewee

    from learnplat.http import problems

    class Refusing:
        def on_post(self, req: Any, resp: Any) -> None:
            raise peewee.DataError('value too long for type character varying(40)')

    app = falcon.App()
    problems.install(app)
    app.add_route("/x", Refusing())
    r = falcon.testing.TestClient(app).simulate_post("/x")
    assert r.status_code == 422 and is_problem(r), r.text
    assert r.json["errors"][0]["type"] == "data_error"


def test_made_up_school_names_do_not_grow_the_tenant_cache(lp_runtime: Any,
                                                           monkeypatch: Any) -> None:
    """Every lookup is cached, misses too; a client making up X-Tenant values (or issuer
    slugs, or Host names) must not grow a process's memory without bound."""
    from learnplat import db, tenants
    from learnplat.tenants import TenantService

    monkeypatch.setattr(tenants, "_CACHE_MAX", 50)
    service = TenantService(cache_seconds=60)
    with db.connection():
        for i in range(400):
            assert service.get_by_slug(f"made-up-{i}") is None
            assert service.get_by_domain(f"made-up-{i}.example") is None
    assert len(service._cache) <= 50
