from __future__ import annotations


def test_healthz(lp_client):
    r = lp_client.get("/healthz")
    assert r.status_code == 200
    assert r.json == {"status": "ok"}
    assert r.headers["x-request-id"]


def test_readyz(lp_client):
    r = lp_client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json["checks"]["database"] == "ok"


def test_openapi(lp_client):
    r = lp_client.get("/openapi.json")
    assert r.status_code == 200
    assert r.json["openapi"] == "3.1.0"
    assert "/healthz" in r.json["paths"]


def test_unknown_route_is_problem(lp_client):
    r = lp_client.get("/nope")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json["status"] == 404


def test_plugin_author_fixtures(lp_runtime, lp_tenant, lp_other_tenant, event_recorder):
    """The pytest11 fixtures a plugin's tests start from: runtime, tenants, event recorder."""
    from learnplat import db
    from learnplat.tenancy import tenant_context
    from learnplat.testing import declare_event

    assert lp_tenant.id != lp_other_tenant.id
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        event_id = lp_runtime.events.record(declare_event(lp_runtime, "smoke.checked.v1")(ok=True))
    lp_runtime.events.dispatch_pending()
    got = [e for e in event_recorder.events if e.id == event_id]
    assert [(e.name, e.tenant_id, e.payload) for e in got] == [
        ("smoke.checked.v1", lp_tenant.id, {"ok": True})]


def test_in_tenant_fixture(in_tenant, lp_runtime):
    from learnplat.tenancy import current_tenant

    assert current_tenant().id == in_tenant.id
