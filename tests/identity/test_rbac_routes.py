"""Walks every route of the app (every plugin's, present and future) and checks who gets in.

For each route and method, with path parameters filled with the ids of another school's objects
or of nothing at all:

* anonymous: 401, unless the route is PUBLIC or open to visitors (`@endpoint(anonymous=...)`,
  e.g. the catalogue of a school that keeps it public): then never 2xx on someone else's or a
  nonexistent object; the walk is done in a school whose catalogue is private too, where the
  same routes answer 401;
* each role without the declared permission: 403 (or 404 under the "not visible" rule);
* each role with it: never 2xx on someone else's or a nonexistent object (404 or another 4xx);
* a valid token of another school: 401, whatever the route;
* never a 5xx.

And a route without an @endpoint declaration, or with an unknown permission, stops start-up.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from learnplat.auth import AUTHENTICATED, PUBLIC
from learnplat.http.app import check_routes
from learnplat.http.endpoint import anonymous_allowed, endpoint, spec_of
from learnplat.http.openapi import responders
from learnplat.http.routing import path_fields
from learnplat.registry import ROLES, Permission, Registry, Route, StartupError
from learnplat.testing import make_tenant

_FIELD = re.compile(r"{[^}]+}")
BODY_METHODS = {"POST", "PUT", "PATCH"}


def _operations(app):
    for route in app.runtime.registry.routes:
        for method, fn in responders(route.resource):
            yield route, method, spec_of(fn)


def _fill(template: str, values: dict[str, str]) -> str:
    fields = iter(path_fields(template))

    def one(_match: re.Match) -> str:
        name, converter = next(fields)
        return values.get(name) or values["int" if converter == "int" else "str"]

    return _FIELD.sub(one, template)


@pytest.fixture
def foreign_ids(lp_users, lp_other_tenant):
    """Ids that exist only in another school, and ids of nothing."""
    other = lp_users.make("admin", tenant=lp_other_tenant)
    return [{"int": str(other.id), "str": str(other.id)},
            {"int": "2147483647", "str": "does-not-exist"}]


def test_every_route_declares_and_enforces_its_permission(lp_app, lp_client, lp_users,
                                                          lp_other_tenant, foreign_ids):
    registry = lp_app.runtime.registry
    tokens = {role: lp_users.make(role).token for role in ROLES}
    foreign = lp_users.make("admin", tenant=lp_other_tenant).token
    failures: list[str] = []
    operations = list(_operations(lp_app))
    assert len(operations) >= 15  # identity's own routes at least: the walk really walks

    def check(label: str, method: str, path: str, token: str | None, ok, client=None) -> int:
        kw = {"json": {}} if method in BODY_METHODS else {}
        r = (client or lp_client.as_(token)).request(method, path, **kw)
        if r.status_code >= 500 or not ok(r.status_code):
            failures.append(f"{method} {path} as {label}: {r.status_code} {r.text[:200]}")
        elif r.status_code >= 400 and "problem+json" not in r.headers.get("content-type", ""):
            failures.append(f"{method} {path} as {label}: {r.status_code} not problem+json")
        return r.status_code

    # A school that closed what visitors may see (the courses catalogue): routes open to
    # visitors elsewhere must answer 401 there.
    private = make_tenant(lp_app.runtime, settings={"courses": {"catalogue": "private"}})
    visitors: dict[str, set[str]] = {"public": set(), "private": set()}
    for route, method, spec in operations:
        assert spec is not None, f"{method} {route.path} has no @endpoint"  # core refuses too
        has_params = bool(path_fields(route.path))
        for values in (foreign_ids if has_params else [{}]):
            if route.tenant_param:  # the school the path names: the caller's own
                values = {**values, route.tenant_param: lp_client.tenant.slug}
            path = _fill(route.path, values) if has_params else route.path
            if spec.permission != PUBLIC:
                for label, school in (("public", lp_client.tenant), ("private", private)):
                    welcome = anonymous_allowed(spec, _request_in(school))
                    if welcome:
                        visitors[label].add(f"{method} {route.path}")
                    # Welcome: in, but someone else's or a missing object is still not found.
                    ok = ((lambda s, p=has_params: s != 401 and (not p or 400 <= s < 500))
                          if welcome else (lambda s: s == 401))
                    check(f"anonymous ({label} school)", method, path, None, ok,
                          client=lp_client.as_(None, tenant=school))
            if route.tenant_scoped:
                check("another school's admin", method, path, foreign, lambda s: s == 401)
            for role, token in tokens.items():
                allowed = spec.permission in (PUBLIC, AUTHENTICATED) or (
                    spec.permission in registry.grants_for(role))
                if not allowed:
                    check(role, method, path, token, lambda s: s in (403, 404))
                elif has_params and spec.permission != PUBLIC:
                    # Someone else's object, or none: never a success.
                    check(role, method, path, token, lambda s: 400 <= s < 500)
    assert not failures, "\n".join(failures)
    # What visitors may use besides PUBLIC routes: the published catalogue, and only in a
    # school that did not make it private.
    assert visitors["public"] == {
        "GET /courses", "GET /courses/{course_id:int}", "GET /courses/{course_id:int}/modules",
        "GET /courses/{course_id:int}/modules/{module_id:int}",
        "GET /courses/{course_id:int}/image", "GET /courses/{course_id:int}/thumbnail",
    } and not visitors["private"], visitors
    # Nothing in the walk ended a session of ours.
    for token in tokens.values():
        assert lp_client.as_(token).get("/auth/profile").status_code == 200


def _request_in(tenant):
    """What an `anonymous` predicate looks at: the request's school."""
    return SimpleNamespace(context=SimpleNamespace(tenant=tenant, principal=None))


class _Undeclared:
    def on_get(self, req, resp):
        resp.media = {"secret": True}


class _UnknownPermission:
    @endpoint(permission="no.such.permission")
    def on_get(self, req, resp):
        return {}


class _Declared:
    @endpoint(permission="thing.read")
    def on_get(self, req, resp):
        return {}

    def on_delete(self, req, resp):  # one undeclared method is enough to refuse the route
        pass


@pytest.mark.parametrize("resource,message", [
    (_Undeclared(), "no @endpoint declaration"),
    (_UnknownPermission(), "unknown permission"),
    (_Declared(), "DELETE /things has no @endpoint declaration"),
])
def test_undeclared_routes_stop_startup(resource, message):
    registry = Registry()
    registry.add_permission(Permission("thing.read", "read", {"admin": "any"}, plugin="demo"))
    registry.add_route(Route("/things", resource, plugin="demo"))
    with pytest.raises(StartupError, match=message):
        check_routes(SimpleNamespace(registry=registry))
