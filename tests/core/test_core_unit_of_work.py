"""One request never changes what the next request on the same server thread gets (issue 24).

A request's unit of work owns its connection: a route that opens, closes or loses the
connection inside it (a public route that looks up its own school, a readiness probe, a
database that drops the connection) once emptied peewee's transaction stack under the open
unit, so its end popped an empty stack (IndexError: a 500) and the thread's next request
inherited the damage. These tests send each route's miss and then ordinary requests on the
same thread, with the tenant cache on as in production (a cached school is what leaves the
connection unopened when a route's own block runs); `learnplat.testing.ServedApp` also
checks, after every in-process request of the suite, that the thread holds nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import peewee
import requests

from learnplat import db
from learnplat.http.endpoint import spec_of
from learnplat.http.openapi import responders
from learnplat.testing import Client, backend, serve_with_gunicorn

_PARAM = re.compile(r"\{[^}]+\}")
MISSING = "999999"  # names no school, course, certificate or issuer


def every_operation(runtime: Any) -> list[tuple[str, str]]:
    """(method, path with every parameter naming nothing) of every declared operation."""
    out = []
    for route in runtime.registry.routes:
        for method, fn in responders(route.resource):
            if spec_of(fn) is not None:
                out.append((method, _PARAM.sub(MISSING, route.path)))
    return sorted(set(out))


def test_every_route_miss_leaves_the_thread_clean(lp_runtime, lp_app, lp_tenant, lp_users,
                                                  lp_tenant_cache):
    """Each operation with ids naming nothing, anonymous and as a student, with and without
    X-Tenant; after each, a readiness probe naming the school and a student's own request
    on the same thread answer 200 (and ServedApp finds the thread clean after every one)."""
    student = lp_users.make("student")
    anonymous, as_student = Client(lp_app), Client(lp_app, lp_tenant, student.token)
    named = {"X-Tenant": lp_tenant.slug}
    operations = every_operation(lp_runtime)
    assert len(operations) > 80  # every plugin's routes are loaded
    public = [op for op in operations if op[1].startswith("/certificates/")]
    assert ("GET", f"/certificates/issuers/{MISSING}/did.json") in public
    errors = []
    for method, path in operations:
        callers = [(anonymous, {}), (anonymous, named)]
        if path != "/auth/logout":  # the student's token is needed after each miss
            callers.append((as_student, {}))
        for caller, headers in callers:
            miss = caller.request(method, path, headers=headers)
            if miss.status_code >= 500:
                errors.append((method, path, headers, miss.status_code, miss.text[:200]))
            ready = anonymous.get("/readyz", headers=named)
            own = as_student.get("/auth/profile")
            if ready.status_code != 200 or own.status_code != 200:
                errors.append((method, path, headers, "then", ready.status_code,
                               own.status_code, ready.text[:200]))
    assert not errors, errors[:5]


def test_the_public_routes_of_issue_24(lp_app, lp_tenant, lp_tenant_cache):
    """The four routes the held-out fuzzing found, by name: 404 and then /readyz 200."""
    client = Client(lp_app)
    for path in ("/certificates/issuers/1/did.json", "/certificates/issuers/1/jwks.json",
                 "/certificates/issuers/1/status/revocation",
                 f"/certificates/{MISSING}/verify"):
        for headers in ({}, {"X-Tenant": lp_tenant.slug}):
            assert client.get(path, headers=headers).status_code == 404
            assert client.get("/readyz", headers={"X-Tenant": lp_tenant.slug}).status_code == 200


@contextmanager
def refused_connections(database_info: Any) -> Iterator[None]:
    """New connections to the test database fail inside the block, as in a database restart:
    PostgreSQL refuses them for real (ALLOW_CONNECTIONS false, the pool emptied first);
    SQLite's connect fails the way a file it cannot open does."""
    database = db.database.obj
    if backend() == "postgres":
        from learnplat.testing import _admin_sql

        database.close_all()
        _admin_sql(database_info.admin_url,
                   f'ALTER DATABASE "{database_info.name}" ALLOW_CONNECTIONS false')
        try:
            yield
        finally:
            _admin_sql(database_info.admin_url,
                       f'ALTER DATABASE "{database_info.name}" ALLOW_CONNECTIONS true')
    else:
        original = database._connect

        def refuse() -> Any:
            raise peewee.OperationalError("unable to open database file")

        database._connect = refuse
        try:
            yield
        finally:
            database._connect = original


def test_a_connection_refused_inside_the_unit_answers_503_and_the_next_request_is_served(
        lp_app, lp_database, lp_tenant, lp_users, lp_tenant_cache):
    """The school and the token are cached, so the unit of work's first statement is the
    first to need a connection: when it cannot have one the answer is a clean 503 (it was a
    500 when the failed connect emptied the transaction stack), and the thread's next
    request is served."""
    student = lp_users.make("student")
    client = Client(lp_app, lp_tenant, student.token)
    assert client.get("/courses").status_code == 200
    with refused_connections(lp_database):
        r = client.get("/courses")
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert client.get("/courses").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_one_server_thread_serves_misses_then_a_school(lp_runtime, lp_database, lp_tenant,
                                                       lp_users, tmp_path):
    """gunicorn with one worker and one thread, the tenant cache as configured by default:
    every request is on the same thread, as the held-out fuzzing's were."""
    student = lp_users.make("student")
    env = {"LEARNPLAT_TENANCY_CACHE_SECONDS": "30"}
    with serve_with_gunicorn(lp_runtime, lp_database, tmp_path, workers=1, threads=1,
                             env=env) as base, requests.Session() as http:
        named = {"X-Tenant": lp_tenant.slug}
        bad = []
        for _ in range(3):
            for method, path in every_operation(lp_runtime):
                for headers in ({}, named):
                    r = http.request(method, base + path, headers=headers, timeout=30)
                    if r.status_code >= 500:
                        bad.append((method, path, headers, r.status_code, r.text[:200]))
                ready = http.get(f"{base}/readyz", headers=named, timeout=30)
                own = http.get(f"{base}/auth/profile", timeout=30,
                               headers={**named, "Authorization": f"Bearer {student.token}"})
                if ready.status_code != 200 or own.status_code != 200:
                    bad.append((method, path, "then", ready.status_code, own.status_code))
        assert not bad, bad[:5]
