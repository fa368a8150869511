"""Register, log in, use the token, refresh, log out: the identity plugin's main path."""

from __future__ import annotations


def test_register_login_profile(lp_client):
    r = lp_client.post("/auth/register", json={"email": "Ada@Example.org",
                                               "password": "a long passphrase", "name": "Ada"})
    assert r.status_code == 201, r.text
    assert r.json["role"] == "student"
    r = lp_client.post("/auth/login", json={"email": "ada@example.org",
                                            "password": "a long passphrase"})
    assert r.status_code == 200, r.text
    pair = r.json
    assert pair["token_type"] == "Bearer" and pair["expires_in"] > 0
    me = lp_client.as_(pair["access_token"]).get("/auth/profile")
    assert me.status_code == 200, me.text
    assert me.json["email"] == "ada@example.org"
    assert me.json["tenant"] == lp_client.tenant.slug


def test_refresh_rotates_and_logout_revokes(lp_client, lp_users):
    user = lp_users.make("student")
    r = lp_client.post("/auth/refresh", json={"refresh_token": user.refresh_token})
    assert r.status_code == 200, r.text
    new = r.json
    # The old refresh token is spent; presenting it again ends the whole family.
    again = lp_client.post("/auth/refresh", json={"refresh_token": user.refresh_token})
    assert again.status_code == 401
    assert lp_client.post("/auth/refresh",
                          json={"refresh_token": new["refresh_token"]}).status_code == 401
    # Logout of a fresh login: its access token stops working at once.
    pair = lp_client.post("/auth/login", json={"email": user.email,
                                               "password": user.password}).json
    authed = lp_client.as_(pair["access_token"])
    assert authed.get("/auth/profile").status_code == 200
    assert authed.post("/auth/logout").status_code == 204
    assert authed.get("/auth/profile").status_code == 401


def test_token_of_other_tenant_is_401(lp_client, lp_users, lp_other_tenant):
    stranger = lp_users.make("admin", tenant=lp_other_tenant)
    r = lp_client.as_(stranger.token).get("/auth/profile")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"


def test_bad_login_is_401_and_audited(lp_client, lp_users):
    user = lp_users.make("student")
    r = lp_client.post("/auth/login", json={"email": user.email, "password": "wrong-password!"})
    assert r.status_code == 401
    r = lp_client.post("/auth/login", json={"email": "nobody@example.org",
                                            "password": "wrong-password!"})
    assert r.status_code == 401


def test_duplicate_email_409_and_invalid_422(lp_client, lp_users):
    user = lp_users.make("student")
    r = lp_client.post("/auth/register", json={"email": user.email, "password": "another long one",
                                               "name": "X"})
    assert r.status_code == 409
    r = lp_client.post("/auth/register", json={"email": "not-an-email", "password": "short",
                                               "name": ""})
    assert r.status_code == 422
    fields = {e["field"] for e in r.json["errors"]}
    assert {"email", "name"} <= fields
