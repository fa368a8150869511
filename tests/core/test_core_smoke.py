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
