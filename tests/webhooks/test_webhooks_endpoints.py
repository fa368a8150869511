"""Managing webhook endpoints through the API: create (secret shown once), read, update with
If-Match, delete, validation (URL safety, event types, sizes, the per-school cap), the event
types list, the OpenAPI `webhooks` section, and another school seeing nothing."""

from __future__ import annotations

from typing import Any

import pytest
from learnplat_identity.testing import UserFactory
from webhookhelpers import Hooks

from learnplat import db
from learnplat.errors import UnsafeURL
from learnplat.http.openapi import build_document
from learnplat.outbound.safe_http import Policy
from learnplat.tenancy import tenant_context
from learnplat.testing import make_tenant


def test_create_shows_the_secret_once_and_crud_works(hooks: Hooks):
    created = hooks.create("http://127.0.0.1:9/hook", ["wbtest.*", "wbtest.graded.v1"],
                           description="SIS")
    assert created["secret"].startswith("whsec_") and len(created["secret"]) >= 38
    assert created["event_types"] == ["wbtest.*", "wbtest.graded.v1"]
    assert created["enabled"] is True and created["created_by"] == hooks.admin.id
    eid = created["id"]

    got = hooks.api.get(f"/webhooks/endpoints/{eid}")
    assert got.status_code == 200 and "secret" not in got.json
    assert created["secret"] not in got.text
    listed = hooks.api.get("/webhooks/endpoints")
    assert [e["id"] for e in listed.json["items"]] == [eid]
    assert created["secret"] not in listed.text

    etag = got.headers["ETag"]
    r = hooks.api.patch(f"/webhooks/endpoints/{eid}", json={"description": "SIS v2",
                                                            "event_types": ["wbtest.noted.v1"]},
                        headers={"If-Match": etag})
    assert r.status_code == 200, r.text
    assert r.json["description"] == "SIS v2" and r.json["event_types"] == ["wbtest.noted.v1"]
    stale = hooks.api.patch(f"/webhooks/endpoints/{eid}", json={"description": "x"},
                            headers={"If-Match": etag})
    assert stale.status_code == 412

    off = hooks.api.patch(f"/webhooks/endpoints/{eid}", json={"enabled": False})
    assert off.json["enabled"] is False and off.json["disabled_reason"] == "disabled by an admin"
    on = hooks.api.patch(f"/webhooks/endpoints/{eid}", json={"enabled": True})
    assert on.json["enabled"] is True and on.json["disabled_reason"] is None

    assert hooks.api.delete(f"/webhooks/endpoints/{eid}").status_code == 204
    assert hooks.api.get(f"/webhooks/endpoints/{eid}").status_code == 404
    assert hooks.api.get("/webhooks/endpoints").json["items"] == []


@pytest.mark.parametrize("body, field", [
    ({"url": "ftp://127.0.0.1/x", "event_types": ["*"]}, "url"),
    ({"url": "http://127.0.0.1:9/", "event_types": []}, "event_types"),
    ({"url": "http://127.0.0.1:9/", "event_types": ["nosuch.event.v1"]}, "event_types[0]"),
    ({"url": "http://127.0.0.1:9/", "event_types": ["enrollment.*", "zz.*"]}, "event_types[1]"),
    ({"url": "http://127.0.0.1:9/", "event_types": ["Bad Name"]}, "event_types"),
    ({"url": "http://127.0.0.1:9/", "event_types": ["*"], "description": "x" * 501},
     "description"),
    ({"url": "http://127.0.0.1:9/", "event_types": ["*"], "secret": "mine"}, "secret"),
])
def test_bad_input_is_a_422_naming_the_field_and_writes_nothing(hooks: Hooks,
                                                                 body: dict[str, Any],
                                                                 field: str):
    r = hooks.api.post("/webhooks/endpoints", json=body)
    assert r.status_code == 422, r.text
    assert any(e["field"].startswith(field) for e in r.json["errors"]), r.json
    assert hooks.api.get("/webhooks/endpoints").json["items"] == []


def test_unpublished_events_cannot_be_subscribed_to_and_are_not_listed(hooks: Hooks):
    r = hooks.api.post("/webhooks/endpoints", json={"url": "http://127.0.0.1:9/",
                                                    "event_types": ["wbtest.plumbing.v1"]})
    assert r.status_code == 422
    types = hooks.api.get("/webhooks/event-types").json["items"]
    by_name = {t["name"]: t for t in types}
    assert "wbtest.plumbing.v1" not in by_name
    graded = by_name["wbtest.graded.v1"]
    assert graded["publisher"] == "tests"
    assert set(graded["schema"]["properties"]) == {"course_id", "user_id", "score"}
    assert "enrollment.created.v1" in by_name  # a real plugin's event


def test_the_per_school_cap_is_a_409(hooks: Hooks, lp_runtime: Any, lp_client: Any):
    capped = Hooks(lp_runtime, lp_client, make_tenant(
        lp_runtime, settings={"webhooks": {"max_endpoints": 2}}))
    capped.create("http://127.0.0.1:9/a")
    capped.create("http://127.0.0.1:9/b")
    r = capped.api.post("/webhooks/endpoints", json={"url": "http://127.0.0.1:9/c",
                                                     "event_types": ["*"]})
    assert r.status_code == 409 and r.json["code"] == "too_many_endpoints"
    assert len(capped.api.get("/webhooks/endpoints").json["items"]) == 2


def test_urls_are_checked_for_safety_at_creation(hooks: Hooks, lp_runtime: Any):
    # The tests' settings allow loopback over http; production's defaults allow neither.
    strict = Policy.from_settings(lp_runtime.settings.outbound.model_copy(
        update={"allowed_networks": (), "require_https": True}))
    outbound = lp_runtime.outbound
    saved = outbound.policy
    outbound.policy = strict
    try:
        for url in ("https://127.0.0.1/hook", "https://10.1.2.3/hook", "https://[::1]/hook",
                    "https://169.254.169.254/latest/meta-data", "http://example.com/hook",
                    "https://localhost/hook"):
            r = hooks.api.post("/webhooks/endpoints", json={"url": url, "event_types": ["*"]})
            assert r.status_code == 422, (url, r.text)
            assert r.json["code"] == "unsafe_url", (url, r.json)
        with pytest.raises(UnsafeURL):
            outbound.check_url("https://192.168.0.10/")
    finally:
        outbound.policy = saved
    assert hooks.api.get("/webhooks/endpoints").json["items"] == []


def test_another_school_sees_none_of_this_schools_endpoints(hooks: Hooks, lp_runtime: Any,
                                                             lp_client: Any):
    eid = hooks.create("http://127.0.0.1:9/hook")["id"]
    other = make_tenant(lp_runtime)
    them = lp_client.as_(UserFactory(lp_runtime, other).make("admin").token, tenant=other)
    assert them.get("/webhooks/endpoints").json["items"] == []
    for method, path in [("GET", f"/webhooks/endpoints/{eid}"),
                         ("PATCH", f"/webhooks/endpoints/{eid}"),
                         ("DELETE", f"/webhooks/endpoints/{eid}"),
                         ("POST", f"/webhooks/endpoints/{eid}/rotate-secret"),
                         ("GET", f"/webhooks/endpoints/{eid}/deliveries"),
                         ("POST", f"/webhooks/endpoints/{eid}/test"),
                         ("POST", f"/webhooks/endpoints/{eid}/redeliver")]:
        body = {"rotate-secret": {}, "redeliver": {"since": "2026-01-01T00:00:00Z"}}.get(
            path.rsplit("/", 1)[-1], {"description": "x"} if method == "PATCH" else None)
        r = them.request(method, path, json=body)
        assert r.status_code == 404, (method, path, r.text)
    assert hooks.api.get(f"/webhooks/endpoints/{eid}").json["description"] == ""
    # A student of the school itself: 403.
    student = hooks.api.as_(hooks.users.make("student").token)
    assert student.get("/webhooks/endpoints").status_code == 403


def test_the_openapi_document_describes_each_published_event_as_a_webhook(hooks: Hooks,
                                                                           lp_runtime: Any):
    doc = build_document(lp_runtime)  # now: the served one is built once, before wb_events
    hook = doc["webhooks"]["wbtest.graded.v1"]["post"]
    assert {p["name"] for p in hook["parameters"]} == {"webhook-id", "webhook-timestamp",
                                                       "webhook-signature"}
    ref = hook["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    envelope = doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert envelope["required"] == ["type", "timestamp", "data"]
    data = doc["components"]["schemas"][envelope["properties"]["data"]["$ref"].rsplit("/")[-1]]
    assert "storage_key" not in data["properties"] and "score" in data["properties"]
    assert "wbtest.plumbing.v1" not in doc["webhooks"]
    assert "2XX" in hook["responses"]


def test_secrets_are_encrypted_at_rest(hooks: Hooks, lp_runtime: Any):
    from learnplat_webhooks.models import EndpointSecret

    secret = hooks.create("http://127.0.0.1:9/hook")["secret"]
    with (db.connection(), tenant_context(hooks.tenant), db.transaction(write=False)):
        stored = [s.secret for s in EndpointSecret.select()]
    assert stored and all(secret not in s and secret.removeprefix("whsec_") not in s
                          for s in stored)
