"""GET/PUT/DELETE /users, roles, ownership, and another school seeing nothing."""

from __future__ import annotations

PROBLEM = "application/problem+json"


def test_admin_lists_filters_and_pages(lp_client, lp_users, admin):
    for i in range(3):
        lp_users.make("instructor", name=f"Teacher Zed{i}")
    lp_users.make("student", name="Pupil")
    c = lp_client.as_(admin.token)
    r = c.get("/users", params={"role": "instructor"})
    assert r.status_code == 200, r.text
    assert [u["role"] for u in r.json["items"]] == ["instructor"] * 3
    r = c.get("/users", params={"q": "zed1"})
    assert [u["name"] for u in r.json["items"]] == ["Teacher Zed1"]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = c.get("/users", params=params).json
        seen += [u["id"] for u in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert len(seen) == len(set(seen)) == 5
    for bad in ({"role": "king"}, {"limit": 0}, {"limit": 101}, {"cursor": "garbage"}):
        r = c.get("/users", params=bad)
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, bad


def test_non_admins_cannot_list_users(lp_client, lp_users):
    for role in ("instructor", "student"):
        assert lp_client.as_(lp_users.make(role).token).get("/users").status_code == 403
    assert lp_client.get("/users").status_code == 401


def test_self_or_admin_reads_and_edits(lp_client, lp_users, admin):
    alice, bob = lp_users.make("student"), lp_users.make("student")
    me = lp_client.as_(alice.token)
    assert me.get(f"/users/{alice.id}").json["email"] == alice.email
    # Someone else's account is not even visible (404, not 403).
    assert me.get(f"/users/{bob.id}").status_code == 404
    assert me.put(f"/users/{bob.id}", json={"name": "x"}).status_code == 404
    r = me.put(f"/users/{alice.id}", json={"name": "Alice A.", "bio": "hi",
                                           "avatar_url": "https://cdn.example.org/a.png"})
    assert r.status_code == 200, r.text
    assert (r.json["name"], r.json["bio"]) == ("Alice A.", "hi")
    assert r.json["avatar_url"] == "https://cdn.example.org/a.png"
    r = lp_client.as_(admin.token).put(f"/users/{bob.id}", json={"bio": "edited by admin"})
    assert r.status_code == 200 and r.json["bio"] == "edited by admin"


def test_profile_validation_names_each_field(lp_client, lp_users):
    u = lp_users.make("student")
    r = lp_client.as_(u.token).put(f"/users/{u.id}", json={
        "name": "", "bio": "x" * 2001, "avatar_url": "javascript:alert(1)", "colour": "red"})
    assert r.status_code == 422
    assert {e["field"] for e in r.json["errors"]} == {"name", "bio", "avatar_url", "colour"}
    for body in ({"avatar_url": "ftp://example.org/a.png"}, {"avatar_url": "x" * 600}):
        assert lp_client.as_(u.token).put(f"/users/{u.id}", json=body).status_code == 422
    assert lp_client.as_(u.token).put(f"/users/{u.id}", json={"avatar_url": ""}).status_code == 200


def test_student_cannot_change_own_role(lp_client, lp_users):
    u = lp_users.make("student")
    me = lp_client.as_(u.token)
    r = me.put(f"/users/{u.id}", json={"role": "admin"})
    assert r.status_code == 403 and r.json["code"] == "role_change_forbidden"
    assert me.put(f"/users/{u.id}/role", json={"role": "admin"}).status_code == 403
    assert me.get("/auth/profile").json["role"] == "student"
    # Sending one's own current role is not a change.
    assert me.put(f"/users/{u.id}", json={"role": "student"}).status_code == 200


def test_role_change_stops_access_tokens_at_once(lp_client, lp_users, admin, lp_app):
    u = lp_users.make("student")
    assert lp_client.as_(u.token).get("/users").status_code == 403
    r = lp_client.as_(admin.token).put(f"/users/{u.id}/role", json={"role": "admin"})
    assert r.status_code == 200 and r.json["role"] == "admin"
    # The old access token carries the old token version: refused from the next request on.
    r = lp_client.as_(u.token).get("/auth/profile")
    assert r.status_code == 401 and r.json["code"] == "token_revoked"
    # The refresh token goes on: its new pair carries the new role (as does a new login).
    r = lp_client.post("/auth/refresh", json={"refresh_token": u.refresh_token})
    assert r.status_code == 200, r.text
    assert lp_client.as_(r.json["access_token"]).get("/users").status_code == 200
    pair = lp_client.post("/auth/login", json={"email": u.email, "password": u.password}).json
    assert lp_client.as_(pair["access_token"]).get("/users").status_code == 200
    # And that is what the API description says.
    op = lp_client.get("/openapi.json").json["paths"]["/users/{user_id}/role"]["put"]
    text = f"{op['summary']} {op.get('description', '')}"
    assert "next request" not in op["summary"] and "stop at once" in text
    assert "refresh" in text
    assert lp_client.as_(admin.token).put(f"/users/{u.id}/role",
                                          json={"role": "root"}).status_code == 422
    entries = lp_client.as_(admin.token).get("/audit", params={"action": "user.role_changed"})
    assert entries.json["items"][0]["detail"] == {"from": "student", "to": "admin"}


def test_deactivation_kills_tokens_at_once_and_keeps_records(lp_client, lp_users, admin):
    u = lp_users.make("instructor")
    assert lp_client.as_(u.token).get("/auth/profile").status_code == 200
    assert lp_client.as_(admin.token).delete(f"/users/{u.id}").status_code == 204
    assert lp_client.as_(u.token).get("/auth/profile").status_code == 401
    assert lp_client.post("/auth/refresh",
                          json={"refresh_token": u.refresh_token}).status_code == 401
    r = lp_client.post("/auth/login", json={"email": u.email, "password": u.password})
    assert r.status_code == 401
    record = lp_client.as_(admin.token).get(f"/users/{u.id}")
    assert record.status_code == 200 and record.json["active"] is False
    assert lp_client.as_(admin.token).delete(f"/users/{u.id}").status_code == 204  # idempotent


def test_last_admin_cannot_be_demoted_or_deactivated(lp_client, admin):
    c = lp_client.as_(admin.token)
    r = c.put(f"/users/{admin.id}/role", json={"role": "student"})
    assert r.status_code == 409 and r.json["code"] == "last_admin"
    assert c.delete(f"/users/{admin.id}").status_code == 409


def test_another_school_sees_nothing(lp_client, lp_users, admin, lp_other_tenant):
    here = lp_users.make("student")
    there_admin = lp_users.make("admin", tenant=lp_other_tenant)
    there = lp_client.as_(there_admin.token, tenant=lp_other_tenant)
    # Their admin, in their school, asking for our user ids: not found.
    for method, path, body in (("GET", f"/users/{here.id}", None),
                               ("PUT", f"/users/{here.id}", {"name": "x"}),
                               ("PUT", f"/users/{here.id}/role", {"role": "admin"}),
                               ("DELETE", f"/users/{here.id}", None),
                               ("POST", f"/users/{here.id}/unlock", None)):
        r = there.request(method, path, json=body)
        assert r.status_code == 404, (method, path, r.status_code)
    assert here.id not in [u["id"] for u in there.get("/users").json["items"]]
    assert all(e["subject_id"] != here.id for e in there.get("/audit").json["items"])
    # Their token in our school: 401.
    assert lp_client.as_(there_admin.token).get("/users").status_code == 401
    # Our user is untouched.
    assert lp_client.as_(admin.token).get(f"/users/{here.id}").json["active"] is True


def test_ids_out_of_range_are_404(lp_client, admin):
    c = lp_client.as_(admin.token)
    for path in ("/users/0", "/users/99999999999999", "/users/abc", "/users/-1"):
        assert c.get(path).status_code == 404, path
