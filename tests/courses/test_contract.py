"""Every courses route: declared permission, in the OpenAPI document, 404 for another tenant,
and no bad input answers 500."""

from __future__ import annotations

import pytest
from coursehelpers import image_bytes, upload

from learnplat.http.openapi import responders
from learnplat.http.routing import openapi_path

VALID = {  # a valid body per (method, path suffix), so only the tenant decides the answer
    ("POST", "/reject"): {"reason": "x"}, ("POST", "/modules"): {"title": "x"},
    ("PUT", "/order"): {"module_ids": [1]}, ("PUT", "{module_id}"): {"title": "x"},
    ("POST", "/ratings"): {"stars": 3}, ("PUT", "/reply"): {"body": "x"},
    ("POST", "/feedback"): {"subject": "s", "body": "b"}, ("POST", "/messages"): {"body": "x"},
    ("PUT", "{course_id}"): {"title": "x"},
}


def valid_body(method, path):
    for (m, suffix), body in VALID.items():
        if m == method and openapi_path(path).endswith(suffix):
            return body
    return None


def courses_routes(app):
    return [r for r in app.runtime.registry.routes if r.plugin == "courses"]


def fill(path, cid, mid=1, other=1):
    return (openapi_path(path).replace("{course_id}", str(cid)).replace("{module_id}", str(mid))
            .replace("{rating_id}", str(other)).replace("{thread_id}", str(other)))


def test_every_route_is_in_openapi_with_a_permission(lp_client):
    doc = lp_client.get("/openapi.json").json
    routes = courses_routes(lp_client.app)
    assert len(routes) >= 20
    for route in routes:
        path = openapi_path(route.path)
        assert path in doc["paths"], path
        for method, _fn in responders(route.resource):
            op = doc["paths"][path][method.lower()]
            assert op["x-permission"], (method, path)
            assert "404" in op["responses"]
    upload = doc["paths"]["/courses/{course_id}/image"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert {"413", "415", "422"} <= set(upload["responses"])
    q = {p["name"] for p in doc["paths"]["/courses"]["get"]["parameters"] if "name" in p}
    assert {"q", "tag", "level", "language", "instructor", "status", "limit", "cursor"} <= q
    # Every status a responder can answer is documented: a delete that archives answers 200
    # with the course, a real delete 204 with no body; a repeated rating 200.
    delete = doc["paths"]["/courses/{course_id}"]["delete"]["responses"]
    assert "content" in delete["200"] and "content" not in delete["204"]
    assert {"200", "201"} <= set(doc["paths"]["/courses/{course_id}/ratings"]["post"]["responses"])


@pytest.fixture
def populated(world):
    course = world.course("Everything", publish=True, modules=2)
    cid = course["id"]
    mid = course["modules"][0]["id"]
    world.enroll(world.s, cid)
    rid = world.s.post(f"/courses/{cid}/ratings", json={"stars": 4}).json["id"]
    tid = world.s.post(f"/courses/{cid}/feedback", json={"subject": "s", "body": "b"}
                       ).json["id"]
    return cid, mid, rid, tid


def test_another_tenant_gets_404_on_every_route(lp_client, populated, outsider):
    cid, mid, rid, tid = populated
    for route in courses_routes(lp_client.app):
        if route.path == "/courses":
            continue
        for method, _fn in responders(route.resource):
            for target in ((rid, tid) if "rating" in route.path else (tid,)):
                path = fill(route.path, cid, mid, target)
                if path.endswith("/image") and method == "POST":
                    r = upload(outsider, cid, image_bytes())
                else:
                    r = outsider.request(method, path, json=valid_body(method, route.path))
                # 403 only where the outsider's role lacks the permission outright (an admin
                # submitting, rating, asking): it says nothing about this tenant's data.
                assert r.status_code in (404, 403), (method, path, r.status_code, r.text)
                if r.status_code == 403:
                    assert r.json["code"] == "permission_denied"
    assert outsider.get("/courses").json["items"] == []
    assert outsider.get("/courses?q=Everything").json["items"] == []


GARBAGE = [None, [], "x", 0, -1, 10**30, {"title": 12}, {"title": "x" * 10_000},
           {"module_ids": "nope"}, {"stars": None}, {"reason": []}, {"body": {"a": 1}},
           {"subject": "\x00", "body": "\u202e\ufeff"}, {"release_at": "2024-13-45"}]


def test_bad_input_never_500(lp_client, populated, world):
    cid, mid, rid, tid = populated
    for route in courses_routes(lp_client.app):
        for method, _fn in responders(route.resource):
            if method in ("GET", "DELETE"):
                continue  # no body to spoil
            path = fill(route.path, cid, mid, rid if "rating" in route.path else tid)
            # The owner gets furthest into validation; the student into the rating rules.
            client = world.s if "ratings" in path or "feedback" in path else world.t
            for body in GARBAGE:
                r = client.request(method, path, json=body)
                assert r.status_code < 500, (method, path, body, r.text)
    for query in ("limit=abc", "cursor=%00", "q=%00%ff", "level=1", "tag=" + "t" * 99,
                  "instructor=99999999999999999999"):
        r = world.a.request("GET", "/courses?" + query)
        assert r.status_code < 500, (query, r.text)
    for bad in ("/courses/0", "/courses/-1", "/courses/abc", "/courses/99999999999999999999",
                f"/courses/{cid}/modules/0", f"/courses/{cid}/ratings/abc/reply",
                f"/courses/{cid}/modules/99999999999999999999",
                f"/courses/{cid}/feedback/99999999999999999999"):
        assert world.a.get(bad).status_code == 404, bad
    r = world.t.delete(f"/courses/{cid}/modules/99999999999999999999")
    assert r.status_code == 404


def test_forged_cursor_is_422_not_500(world):
    import base64
    import json

    world.course("A", publish=True)
    world.course("B", publish=True)
    page = world.s.get("/courses?limit=1").json
    tag = json.loads(base64.urlsafe_b64decode(page["next_cursor"] + "=="))["o"]
    for values in ([10**30], ["x"], [None], [[1]], [{"dt": "nope"}], [True], [1.5]):
        raw = json.dumps({"o": tag, "v": values}).encode()
        forged = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        r = world.s.get(f"/courses?cursor={forged}")
        assert r.status_code == 422, (values, r.text)
        assert r.json["errors"][0]["field"] == "cursor"
