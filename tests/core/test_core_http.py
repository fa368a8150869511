"""HTTP conventions of the contract (§3): problem+json for every error, 400/413/415/422/500,
pagination, per-tenant CORS, request ids, health and readiness, the OpenAPI document."""

from __future__ import annotations

import io
import json

import falcon.testing
import pytest
from corehelpers import build_runtime, cli_env, free_port, run_cli, token

from learnplat import db
from learnplat.http.app import create_app
from learnplat.testing import Client, make_tenant, use_runtime


def problem(r, status):
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json
    for key in ("type", "title", "status", "detail"):
        assert key in body
    assert body["status"] == status
    return body


def test_malformed_json_is_400(client):
    problem(client.post("/notes", body=b'{"title": "x",',
                        headers={"Content-Type": "application/json"}), 400)
    problem(client.post("/notes", body=b"", headers={"Content-Type": "application/json"}), 400)


def test_wrong_content_type_is_415(client):
    problem(client.post("/notes", body=b"title=x",
                        headers={"Content-Type": "application/x-www-form-urlencoded"}), 415)
    problem(client.post("/notes", body=b'{"title": "x"}'), 415)  # none at all


def test_oversize_body_is_413(client, core_runtime):
    limit = core_runtime.settings.app.max_body_bytes
    big = json.dumps({"title": "x", "body": "y" * (limit + 10)}).encode()
    problem(client.post("/notes", body=big, headers={"Content-Type": "application/json"}), 413)


def test_chunked_bodies_without_content_length(core_app, tenant_a, core_runtime):
    from falcon.testing import StartResponseMock

    def call(payload: bytes):
        env = falcon.testing.create_environ(
            path="/notes", method="POST", headers={
                "Content-Type": "application/json", "X-Tenant": tenant_a.slug,
                "Authorization": f"Bearer {token(tenant_a)}", "Transfer-Encoding": "chunked"})
        env.pop("CONTENT_LENGTH", None)
        env["wsgi.input"] = io.BytesIO(payload)
        env["wsgi.input_terminated"] = True
        start = StartResponseMock()
        body = b"".join(core_app(env, start))
        return start.status, json.loads(body)

    status, body = call(b'{"title": "chunked"}')
    assert status.startswith("201"), body
    limit = core_runtime.settings.app.max_body_bytes
    status, body = call(json.dumps({"title": "x", "body": "y" * limit}).encode())
    assert status.startswith("413") and body["status"] == 413


def test_invalid_fields_are_422_naming_each(client):
    body = problem(client.post("/notes", json={"title": "", "stars": 9, "body": 3}), 422)
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"title", "stars", "body"}
    assert all(e["message"] for e in body["errors"])
    body = problem(client.post("/notes", json=[1, 2]), 422)
    assert body["errors"]


def test_unhandled_exception_is_500_problem_without_internals(client, caplog):
    r = client.get("/notes-boom", headers={"X-Request-Id": "req-boom-1"})
    body = problem(r, 500)
    assert body["request_id"] == "req-boom-1"
    assert "hunter2" not in r.text and "RuntimeError" not in r.text and "Traceback" not in r.text
    assert any("req-boom-1" in rec.getMessage() or "hunter2" in (rec.exc_text or "")
               or rec.exc_info for rec in caplog.records)


def test_request_id_is_echoed_or_made(client):
    assert client.get("/notes", headers={"X-Request-Id": "abc-123"}).headers[
        "x-request-id"] == "abc-123"
    made = client.get("/notes", headers={"X-Request-Id": "bad id with spaces"}).headers[
        "x-request-id"]
    assert made and " " not in made
    assert client.get("/notes").headers["x-request-id"]


def test_pagination(client):
    for i in range(45):
        assert client.post("/notes", json={"title": f"n{i}"}).status_code == 201
    first = client.get("/notes").json
    assert len(first["items"]) == 20 and first["next_cursor"]
    seen = [n["title"] for n in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = client.get("/notes", params={"cursor": cursor, "limit": 10}).json
        seen += [n["title"] for n in page["items"]]
        cursor = page["next_cursor"]
    assert seen == [f"n{i}" for i in range(45)]
    assert len(client.get("/notes", params={"limit": 100}).json["items"]) == 45
    body = problem(client.get("/notes", params={"limit": 101}), 422)
    assert body["errors"][0]["field"] == "limit"
    problem(client.get("/notes", params={"limit": 0}), 422)
    tampered = first["next_cursor"][:-3] + ("AAA" if not first["next_cursor"].endswith("AAA")
                                            else "BBB")
    body = problem(client.get("/notes", params={"cursor": tampered}), 422)
    assert body["errors"][0]["field"] == "cursor"
    problem(client.get("/notes", params={"cursor": "!!!not-base64"}), 422)


def test_cors_per_tenant(core_app, core_runtime):
    open_ = make_tenant(core_runtime, settings={"cors": {"origins": ["https://app.example"]}})
    closed = make_tenant(core_runtime)
    hdr = {"Origin": "https://app.example"}
    r = Client(core_app, open_).get("/notes", headers=hdr)
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    r = Client(core_app, open_).get("/notes", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    r = Client(core_app, closed).get("/notes", headers=hdr)
    assert "access-control-allow-origin" not in r.headers
    pre = Client(core_app, open_).request("OPTIONS", "/notes", headers={
        **hdr, "Access-Control-Request-Method": "POST"})
    assert pre.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in pre.headers["access-control-allow-methods"]
    assert "X-Tenant" in pre.headers["access-control-allow-headers"]


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    assert set(r.json["checks"]) >= {"database", "queue", "storage", "cache"}
    assert set(r.json["checks"].values()) == {"ok"}


@pytest.mark.parametrize("broken", ["redis", "storage"])
def test_readyz_is_degraded_when_redis_or_storage_is_down(tmp_path, core_database, broken):
    """Redis and the store are shared by every process: readiness stays 200 ("degraded") so a
    load balancer does not take every process out at once; the checks name what failed."""
    dead = f"127.0.0.1:{free_port()}"
    overrides = ({"redis": {"url": f"redis://{dead}/0"}} if broken == "redis" else
                 {"storage": {"url": f"s3://k:s@{dead}/bucket?secure=false"}})
    rt = build_runtime(tmp_path, core_database, do_migrate=False, **overrides)
    app = create_app(rt)
    with use_runtime(rt):
        r = Client(app).get("/readyz")
    body = r.json
    assert r.status_code == 200, r.text
    assert body["status"] == "degraded" and body["checks"]["database"] == "ok"
    failing = {k for k, v in body["checks"].items() if v != "ok"}
    assert failing == ({"cache"} if broken == "redis" else {"storage"})
    assert Client(app).get("/healthz").status_code == 200  # liveness does not depend on them


def test_openapi_document_is_valid_and_matches_the_cli(client, tmp_path, core_database):
    from openapi_spec_validator import validate

    doc = client.get("/openapi.json").json
    assert doc["openapi"].startswith("3.1")
    validate(doc)
    post = doc["paths"]["/notes"]["post"]
    assert post["x-permission"] == "testnotes.create"
    assert {"201", "400", "401", "413", "415", "422"} <= set(post["responses"])
    assert "/notes/{note_id}" in doc["paths"] and "/healthz" in doc["paths"]
    # The CLI prints the same document for the same set of plugins (here: core only, as the
    # subprocess has no testnotes); compare it with an app built on the same plugins.
    env = cli_env(tmp_path, core_database)
    r = run_cli(["openapi"], env)
    assert r.returncode == 0, r.stderr
    from learnplat.http.openapi import build_document
    from learnplat.runtime import create_runtime

    cli_doc = json.loads(r.stdout)
    validate(cli_doc)
    previous = db.database.obj  # create_runtime points the process's proxy at its database
    rt = create_runtime(_settings_from_env(env))
    db.database.initialize(previous)
    with use_runtime(rt):
        assert cli_doc == json.loads(json.dumps(build_document(rt)))


def _settings_from_env(env):
    from learnplat.settings import load_settings

    return load_settings(environ=env)


def test_unknown_route_and_method(client):
    problem(client.get("/nope"), 404)
    problem(client.request("DELETE", "/notes"), 405)


def test_database_down_is_503_not_500(tmp_path, core_database):
    from learnplat.testing import TestDatabase

    dead = TestDatabase(url=f"postgresql://nobody@127.0.0.1:{free_port()}/nothing")
    rt = build_runtime(tmp_path, dead, do_migrate=False)
    app = create_app(rt)
    with use_runtime(rt):
        r = Client(app).get("/notes", headers={"X-Tenant": "any"})
        body = problem(r, 503)
        assert r.headers["retry-after"] and "nobody" not in r.text
        assert body["code"] == "service_unavailable"
        ready = Client(app).get("/readyz")
        assert ready.status_code == 503 and ready.json["checks"]["database"] != "ok"
        assert Client(app).get("/healthz").status_code == 200
