"""Every media route: in a valid OpenAPI document with its permission, 404 for a user of
another school, and no malformed input answers 500."""

from __future__ import annotations

from mediahelpers import MULTIPART, mp4_bytes, multipart
from openapi_spec_validator import validate

from learnplat.http.endpoint import spec_of
from learnplat.http.openapi import responders
from learnplat.http.routing import openapi_path


def media_routes(app):
    return [r for r in app.runtime.registry.routes if r.plugin == "media"]


def test_every_route_is_in_a_valid_openapi_document(lp_client):
    doc = lp_client.get("/openapi.json").json
    validate(doc)
    routes = media_routes(lp_client.app)
    assert len(routes) >= 10
    for route in routes:
        path = openapi_path(route.path)
        assert path in doc["paths"], path
        for method, _fn in responders(route.resource):
            op = doc["paths"][path][method.lower()]
            assert op["x-permission"], (method, path)
    upload = doc["paths"]["/courses/{course_id}/modules/{module_id}/video"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert {"201", "404", "413", "415", "422"} <= set(upload["responses"])
    stream = doc["paths"]["/media/{tenant_id}/{media_id}"]["get"]
    assert {"200", "206", "304", "403", "416"} <= set(stream["responses"])


VALID = {"/grade": {"points": 1}, "/assignment": {}, "/direct": {"size": 10},
         "/confirm": {"upload_token": "x" * 20}}


def fill(path: str, stage, other: int = 1) -> str:
    return (openapi_path(path).replace("{course_id}", str(stage.course_id))
            .replace("{module_id}", str(stage.module_ids[0]))
            .replace("{media_id}", str(other)).replace("{submission_id}", str(other))
            .replace("{user_id}", str(stage.student.id)).replace("{tenant_id}", "1"))


def test_another_school_sees_nothing_and_bad_input_is_never_a_500(stage, outsider, lp_client,
                                                                  lp_users, lp_other_tenant):
    # Students of the other school for what only students do (an admin's role refuses it
    # before any lookup: a 403 that says nothing about this school).
    pupil = lp_client.as_(lp_users.make("student", tenant=lp_other_tenant).token,
                          tenant=lp_other_tenant)
    assert stage.t.put(stage.path(0, "assignment"), json={}).status_code == 200
    for route in media_routes(lp_client.app):
        for method, _fn in responders(route.resource):
            path = fill(route.path, stage)
            if path.startswith("/media/"):
                continue  # the signed stream: no tenant of the caller's, see test_media_video
            spec = spec_of(_fn)
            kwargs: dict = {}
            if spec.body is not None:  # a valid body, so only the school decides the answer
                kwargs = {"json": next(v for k, v in VALID.items() if path.endswith(k))}
            elif spec.content_type == "multipart/form-data":
                kwargs = {"body": multipart(mp4_bytes()), "headers": {
                    "Content-Type": MULTIPART}}
            who = pupil if "/assignment/submission" in path and "/submissions" not in path \
                else outsider
            r = who.request(method, path, **kwargs)
            assert r.status_code == 404, (method, path, r.status_code, r.text)
            for junk in ({"body": b"\x00\xff garbage", "headers": {
                    "Content-Type": "multipart/form-data; boundary=zz"}},
                         {"body": b"{", "headers": {"Content-Type": "application/json"}},
                         {"body": b"--zz\r\n\r\n", "headers": {
                             "Content-Type": "multipart/form-data; boundary=zz"}}):
                for client in (stage.t, stage.s, stage.a):
                    r = client.request(method, path, **junk)
                    assert r.status_code < 500, (method, path, r.status_code, r.text)


def test_a_school_without_the_plugin_gets_404(lp_runtime, lp_app, lp_users):
    from learnplat.testing import Client, make_tenant

    tenant = make_tenant(lp_runtime, disabled_plugins=["media"])
    teacher = lp_users.make("instructor", tenant=tenant)
    t = Client(lp_app, tenant, teacher.token)
    cid = t.post("/courses", json={"title": "No media here"}).json["id"]
    mid = t.post(f"/courses/{cid}/modules", json={"title": "M"}).json["id"]
    r = t.post(f"/courses/{cid}/modules/{mid}/video", body=multipart(mp4_bytes()),
               headers={"Content-Type": MULTIPART})
    assert r.status_code == 404
    assert t.get(f"/courses/{cid}/modules/{mid}/video").status_code == 404
