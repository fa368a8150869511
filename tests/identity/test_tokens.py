"""Access tokens: bad tokens are 401 (never 500), logout, refresh families, key rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from learnplat import db
from learnplat.tenancy import tenant_context

PROBLEM = "application/problem+json"


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).rstrip(b"=").decode()


def _claims_and_header(token: str) -> tuple[dict, dict]:
    return (jwt.decode(token, options={"verify_signature": False}),
            jwt.get_unverified_header(token))


def _public_pem(lp_client, kid: str) -> bytes:
    jwks = lp_client.get("/.well-known/jwks.json").json
    jwk = next(k for k in jwks["keys"] if k["kid"] == kid)
    key = jwt.algorithms.OKPAlgorithm.from_jwk(jwk)
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def test_bad_tokens_are_401_problems(lp_runtime, lp_client, lp_users, lp_other_tenant):
    user = lp_users.make("admin")
    claims, _header = _claims_and_header(user.token)
    svc = lp_runtime.service("identity")
    forged_key = Ed25519PrivateKey.generate()
    now = int(time.time())
    expired = dict(claims, iat=now - 7200, exp=now - 3600)
    with db.connection(), tenant_context(lp_client.tenant), db.transaction():
        kid, key = svc.keys.signing_key()
    stranger = lp_users.make("admin", tenant=lp_other_tenant)
    pem = _public_pem(lp_client, kid)
    cases = {
        "garbage": "not-a-token",
        "three dots": "a.b.c",
        "empty segments": "..",
        "bad base64 header": "!!!.e30.sig",
        "json header not object": _b64([1]) + "." + _b64(claims) + ".sig",
        "truncated": user.token[:-10],
        "tampered payload": user.token.split(".")[0] + "." + _b64(dict(claims,
                                                                       exp=now + 86400)) + "."
        + user.token.split(".")[2],
        "alg none": _b64({"alg": "none", "typ": "JWT", "kid": kid}) + "." + _b64(claims) + ".",
        "alg none no kid": jwt.encode(claims, None, algorithm="none"),
        "HS256 with public key": _hs256(claims, kid, pem),
        "HS256 with public JWK x": _hs256(claims, kid, _jwk_x(lp_client, kid)),
        "HS256 forged header": _b64({"alg": "HS256", "kid": kid}) + "." + _b64(claims) + ".AAAA",
        "unknown kid": jwt.encode(claims, forged_key, algorithm="EdDSA",
                                  headers={"kid": "nope-123"}),
        "right kid, wrong key": jwt.encode(claims, forged_key, algorithm="EdDSA",
                                           headers={"kid": kid}),
        "kid not a string": _b64({"alg": "EdDSA", "kid": 5}) + "." + _b64(claims) + ".AAAA",
        "expired": jwt.encode(expired, key, algorithm="EdDSA", headers={"kid": kid}),
        "wrong audience": jwt.encode(dict(claims, aud="someone-else"), key, algorithm="EdDSA",
                                     headers={"kid": kid}),
        "wrong issuer": jwt.encode(dict(claims, iss="evil"), key, algorithm="EdDSA",
                                   headers={"kid": kid}),
        "other tenant claim": jwt.encode(dict(claims, tenant=lp_other_tenant.id), key,
                                         algorithm="EdDSA", headers={"kid": kid}),
        "no sub": jwt.encode({k: v for k, v in claims.items() if k != "sub"}, key,
                             algorithm="EdDSA", headers={"kid": kid}),
        "sub not a number": jwt.encode(dict(claims, sub="abc"), key, algorithm="EdDSA",
                                       headers={"kid": kid}),
        "sub of nobody": jwt.encode(dict(claims, sub="2147483000"), key, algorithm="EdDSA",
                                    headers={"kid": kid}),
        "sub huge": jwt.encode(dict(claims, sub="9" * 30), key, algorithm="EdDSA",
                               headers={"kid": kid}),
        "another tenant's token": stranger.token,
        "huge token": "a" * 20000,
    }
    for name, token in cases.items():
        r = lp_client.as_(token).get("/auth/profile")
        assert r.status_code == 401, (name, r.status_code, r.text)
        assert r.headers["content-type"] == PROBLEM, name
        assert r.json["status"] == 401 and r.json["detail"], name
        assert r.headers.get("www-authenticate", "").startswith("Bearer"), name
    for header_value in ("Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "bearer  "):
        r = lp_client.get("/auth/profile", headers={"Authorization": header_value})
        assert r.status_code == 401, header_value
    # The genuine token still works.
    assert lp_client.as_(user.token).get("/auth/profile").status_code == 200


def _hs256(claims: dict, kid: str, secret: bytes) -> str:
    """The classic confusion attack: HMAC-sign with the published public key as the secret
    (by hand: PyJWT itself refuses to use a PEM key as an HMAC secret)."""
    signing_input = _b64({"alg": "HS256", "typ": "JWT", "kid": kid}) + "." + _b64(claims)
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _jwk_x(lp_client, kid: str) -> bytes:
    jwks = lp_client.get("/.well-known/jwks.json").json
    return next(k for k in jwks["keys"] if k["kid"] == kid)["x"].encode()


def test_logout_revokes_access_and_refresh(lp_client, lp_users):
    u = lp_users.make("student")
    me = lp_client.as_(u.token)
    assert me.post("/auth/logout").status_code == 204
    assert me.get("/auth/profile").status_code == 401
    r = lp_client.post("/auth/refresh", json={"refresh_token": u.refresh_token})
    assert r.status_code == 401
    assert me.post("/auth/logout").status_code == 401


def test_refresh_reuse_revokes_the_family(lp_client, lp_users, admin):
    u = lp_users.make("student")
    first = lp_client.post("/auth/refresh", json={"refresh_token": u.refresh_token})
    assert first.status_code == 200
    second = lp_client.post("/auth/refresh", json={"refresh_token": first.json["refresh_token"]})
    assert second.status_code == 200
    latest = second.json
    assert lp_client.as_(latest["access_token"]).get("/auth/profile").status_code == 200
    # A thief replays the first refresh token: the whole family ends, the live pair included.
    stolen = lp_client.post("/auth/refresh", json={"refresh_token": u.refresh_token})
    assert stolen.status_code == 401 and stolen.json["code"] == "refresh_token_reused"
    assert lp_client.post("/auth/refresh",
                          json={"refresh_token": latest["refresh_token"]}).status_code == 401
    assert lp_client.as_(latest["access_token"]).get("/auth/profile").status_code == 401
    # Another login of the same user (another family) is unaffected.
    other = lp_client.post("/auth/login", json={"email": u.email, "password": u.password}).json
    assert lp_client.as_(other["access_token"]).get("/auth/profile").status_code == 200
    log = lp_client.as_(admin.token).get("/audit", params={"action": "token_family.revoked"})
    assert log.json["items"][0]["detail"]["reason"] == "refresh_token_reuse"


def test_refresh_bad_input(lp_client):
    for body in ({"refresh_token": "x" * 40}, {"refresh_token": "short"}, {}, {"x": 1}):
        r = lp_client.post("/auth/refresh", json=body)
        assert r.status_code in (401, 422), body
        assert r.headers["content-type"] == PROBLEM


def test_key_rotation_keeps_old_tokens_and_uses_new_kid(lp_client, lp_users, lp_cli):
    u = lp_users.make("student")
    old_kid = jwt.get_unverified_header(u.token)["kid"]
    result = lp_cli("keys", "rotate", "--tenant", lp_client.tenant.slug)
    assert result.exit_code == 0, result.stderr
    new_kid = result.stdout.split()[-1]
    assert new_kid != old_kid
    assert lp_client.as_(u.token).get("/auth/profile").status_code == 200
    pair = lp_client.post("/auth/login", json={"email": u.email, "password": u.password}).json
    assert jwt.get_unverified_header(pair["access_token"])["kid"] == new_kid
    assert lp_client.as_(pair["access_token"]).get("/auth/profile").status_code == 200
    jwks = lp_client.get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    kids = {k["kid"] for k in jwks.json["keys"]}
    assert {old_kid, new_kid} <= kids
    assert all(k["kty"] == "OKP" and k["alg"] == "EdDSA" and "d" not in k
               for k in jwks.json["keys"])
    # The published key verifies a token on its own, as another service would.
    key = jwt.algorithms.OKPAlgorithm.from_jwk(
        next(k for k in jwks.json["keys"] if k["kid"] == new_kid))
    claims = jwt.decode(pair["access_token"], key, algorithms=["EdDSA"],
                        audience=f"learnplat:{lp_client.tenant.slug}")
    assert claims["sub"] == str(u.id) and claims["role"] == "student"
    assert {"sub", "tenant", "role", "jti", "iat", "exp", "iss", "aud"} <= set(claims)


def test_jwks_is_per_tenant(lp_client, lp_users, lp_other_tenant):
    lp_users.make("student")
    lp_users.make("student", tenant=lp_other_tenant)
    ours = {k["kid"] for k in lp_client.get("/.well-known/jwks.json").json["keys"]}
    theirs = {k["kid"] for k in lp_client.as_(tenant=lp_other_tenant)
              .get("/.well-known/jwks.json").json["keys"]}
    assert ours and theirs and not ours & theirs
