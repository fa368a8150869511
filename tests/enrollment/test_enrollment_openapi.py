"""The enrollment routes in the OpenAPI document: schemas, permissions and error answers."""

from __future__ import annotations

ROUTES = {
    "/courses/{course_id}/enroll": {"post", "delete"},
    "/courses/enrollments": {"get"},
    "/courses/{course_id}/students": {"get"},
    "/courses/{course_id}/enrollment-rules": {"get", "put"},
    "/courses/{course_id}/enrollments/bulk": {"post"},
}


def test_every_enrollment_route_is_documented(lp_client):
    doc = lp_client.get("/openapi.json").json
    for path, methods in ROUTES.items():
        assert path in doc["paths"], path
        ops = doc["paths"][path]
        assert methods <= set(ops), (path, set(ops))
        for method in methods:
            op = ops[method]
            assert op.get("summary"), (path, method)
            codes = set(op["responses"])
            assert {"401", "403"} <= codes, (path, method, codes)
            assert any(c.startswith("2") for c in codes)
            ok = next(c for c in codes if c.startswith("2"))
            assert op["responses"][ok]["content"]["application/json"]["schema"], (path, method)
    put = doc["paths"]["/courses/{course_id}/enrollment-rules"]["put"]
    assert "422" in put["responses"] and put["requestBody"]["content"]["application/json"]
    bulk = doc["paths"]["/courses/{course_id}/enrollments/bulk"]["post"]
    assert {"404", "409", "422"} <= set(bulk["responses"])
    listing = doc["paths"]["/courses/enrollments"]["get"]
    names = {p.get("name") for p in listing["parameters"]}
    assert names >= {"limit", "cursor", "status"}, names
