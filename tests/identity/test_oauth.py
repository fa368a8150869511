"""The whole OAuth authorization-code flow (PKCE, state, nonce) over real loopback HTTP: the app
served by wsgiref in a thread, the OIDC provider of oidc_provider.py in another, and a
requests.Session as the browser."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from socketserver import ThreadingMixIn
from urllib.parse import parse_qs, urlparse
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import jwt
import pytest
import requests
from learnplat_identity.models import User
from learnplat_identity.social_storage import Nonce, UserSocialAuth

from learnplat import db
from learnplat.tenancy import tenant_context
from learnplat.testing import make_tenant

from .oidc_provider import OIDCProvider, b64url_sha256

CLIENT_ID, CLIENT_SECRET = "learnplat-test", "s3cret:+/="
IDP_USER = {"sub": "op-user-1", "email": "Ada@Example.org", "email_verified": True,
            "name": "Ada Lovelace"}


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format, *args):
        return


@pytest.fixture
def op() -> Iterator[OIDCProvider]:
    with OIDCProvider(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, user=IDP_USER) as p:
        yield p


@pytest.fixture(scope="module")
def app_url(lp_app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, lp_app, _Server, _Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def _school(runtime, op, **oauth):
    providers = {"campus": {"backend": "oidc", "key": CLIENT_ID, "secret": CLIENT_SECRET,
                            "issuer": op.issuer}}
    return make_tenant(runtime, settings={"oauth": {"providers": providers, **oauth}})


def browser(tenant) -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # never send 127.0.0.1 through a proxy from the environment
    s.headers["X-Tenant"] = tenant.slug
    return s


def _rows(tenant, model):
    with db.connection(), tenant_context(tenant), db.transaction():
        return list(model.select())


def _to_callback(s: requests.Session, app_url: str) -> tuple[str, dict]:
    """/login -> provider /authorize -> the callback URL, not yet visited."""
    r1 = s.get(f"{app_url}/auth/oauth/campus/login", allow_redirects=False)
    assert r1.status_code == 302, r1.text
    auth = parse_qs(urlparse(r1.headers["Location"]).query)
    assert auth["code_challenge_method"] == ["S256"] and auth["code_challenge"]
    assert auth["state"] and auth["nonce"] and "openid" in auth["scope"][0]
    cookie = r1.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/auth/oauth/" in cookie
    r2 = s.get(r1.headers["Location"], allow_redirects=False)
    assert r2.status_code == 302
    return r2.headers["Location"], auth


def test_full_flow_creates_a_verified_student_and_gives_tokens(lp_runtime, op, app_url):
    school = _school(lp_runtime, op)
    s = browser(school)
    callback, auth = _to_callback(s, app_url)
    assert callback.startswith(f"{app_url}/auth/oauth/campus/callback?")
    r = s.get(callback, allow_redirects=False)
    assert r.status_code == 200, r.text
    pair = r.json()
    assert pair["token_type"] == "Bearer" and pair["refresh_token"]
    assert r.headers["Cache-Control"] == "no-store"
    me = s.get(f"{app_url}/auth/profile",
               headers={"Authorization": f"Bearer {pair['access_token']}"}).json()
    assert (me["email"], me["role"], me["name"]) == ("ada@example.org", "student", "Ada Lovelace")
    # PKCE really happened: the verifier sent to the token endpoint matches the challenge.
    sent = op.token_requests[-1]
    assert b64url_sha256(sent["code_verifier"]) == auth["code_challenge"][0]
    assert sent["redirect_uri"] == f"{app_url}/auth/oauth/campus/callback"
    # The stored id_token verifies against the provider's JWKS, with our nonce.
    [link] = _rows(school, UserSocialAuth)
    assert (link.provider, link.uid, link.user_id) == ("campus", "op-user-1", me["id"])
    token = link.extra_data["id_token"]
    key = jwt.PyJWKClient(f"{op.issuer}/jwks").get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=CLIENT_ID,
                        issuer=op.issuer)
    assert claims["nonce"] == auth["nonce"][0]
    assert _rows(school, Nonce) == []  # the state was consumed
    [user] = _rows(school, User)
    assert user.email_verified and user.password_hash is None
    # A second sign-in finds the same account through the link.
    again = browser(school).get(f"{app_url}/auth/oauth/campus/login")
    assert again.status_code == 200, again.text
    assert len(_rows(school, User)) == 1 and len(_rows(school, UserSocialAuth)) == 1


def test_existing_account_with_same_verified_email_is_linked(lp_runtime, lp_users, op, app_url,
                                                              lp_client):
    school = _school(lp_runtime, op)
    teacher = lp_users.make("instructor", email="ada@example.org", tenant=school)
    r = browser(school).get(f"{app_url}/auth/oauth/campus/login")
    assert r.status_code == 200, r.text
    [user] = _rows(school, User)
    assert user.id == teacher.id and user.role == "instructor"
    [link] = _rows(school, UserSocialAuth)
    assert link.user_id == teacher.id
    admin = lp_users.make("admin", tenant=school)
    log = lp_client.as_(admin.token, tenant=school).get("/audit",
                                                         params={"action": "oauth.linked"})
    assert log.json["items"][0]["subject_id"] == teacher.id
    assert log.json["items"][0]["detail"]["new_account"] is False
    # The password still works too.
    ok = lp_client.as_(tenant=school).post("/auth/login", json={"email": teacher.email,
                                                                "password": teacher.password})
    assert ok.status_code == 200


def test_replayed_callback_fails_cleanly(lp_runtime, op, app_url):
    school = _school(lp_runtime, op)
    s = browser(school)
    callback, _ = _to_callback(s, app_url)
    stale_cookies = s.cookies.copy()
    assert s.get(callback, allow_redirects=False).status_code == 200
    same_browser = s.get(callback, allow_redirects=False)
    assert same_browser.status_code == 400
    assert same_browser.headers["Content-Type"] == "application/problem+json"
    assert same_browser.json()["code"] == "oauth_session_context_missing"
    attacker = browser(school)
    attacker.cookies.update(stale_cookies)  # the cookie from before the callback
    replay = attacker.get(callback, allow_redirects=False)
    assert replay.status_code == 400 and replay.json()["code"] == "oauth_state_mismatch"
    assert len(_rows(school, User)) == 1


def test_failed_callback_cannot_be_retried(lp_runtime, op, app_url):
    """A callback that fails after consuming the state (unverified email) stays consumed."""
    op.user = {**IDP_USER, "email_verified": False}
    school = _school(lp_runtime, op)
    s = browser(school)
    callback, _ = _to_callback(s, app_url)
    stale = s.cookies.copy()
    r = s.get(callback, allow_redirects=False)
    assert r.status_code == 403 and r.json()["code"] == "oauth_authentication_disallowed"
    assert _rows(school, User) == [] and _rows(school, Nonce) == []
    retry = browser(school)
    retry.cookies.update(stale)
    assert retry.get(callback, allow_redirects=False).status_code == 400


def test_redirect_delivery_with_one_time_code(lp_runtime, op, app_url):
    school = _school(lp_runtime, op, redirect_url="https://app.school.example/done?x=1")
    s = browser(school)
    callback, _ = _to_callback(s, app_url)
    r = s.get(callback, allow_redirects=False)
    assert r.status_code == 302, r.text
    target = urlparse(r.headers["Location"])
    assert (target.netloc, target.path) == ("app.school.example", "/done")
    query = parse_qs(target.query)
    assert query["x"] == ["1"] and "access_token" not in query
    code = query["code"][0]
    pair = s.post(f"{app_url}/auth/oauth/exchange", json={"code": code})
    assert pair.status_code == 200, pair.text
    assert pair.json()["access_token"]
    again = s.post(f"{app_url}/auth/oauth/exchange", json={"code": code})
    assert again.status_code == 401
    assert s.post(f"{app_url}/auth/oauth/exchange", json={"code": "x" * 40}).status_code == 401
    assert s.post(f"{app_url}/auth/oauth/exchange", json={}).status_code == 422


def test_bad_callbacks_and_unknown_providers(lp_runtime, op, app_url, lp_other_tenant):
    school = _school(lp_runtime, op)
    s = browser(school)
    callback, _ = _to_callback(s, app_url)
    tampered = callback.replace("state=", "state=x")
    assert s.get(tampered, allow_redirects=False).status_code == 400
    for url in (f"{app_url}/auth/oauth/campus/callback",
                f"{app_url}/auth/oauth/campus/callback?code=abc&state=" + "s" * 500,
                f"{app_url}/auth/oauth/campus/callback?error=access_denied&state=abc"):
        r = browser(school).get(url, allow_redirects=False)
        assert r.status_code == 400, (url, r.status_code, r.text)
        assert r.headers["Content-Type"] == "application/problem+json"
    for name in ("nope", "CAMPUS", "x" * 40, "campus%00", "%2e%2e"):
        r = s.get(f"{app_url}/auth/oauth/{name}/login", allow_redirects=False)
        assert r.status_code == 404, name
    # Another school has no such provider: 404 there, whatever this school configured.
    r = browser(lp_other_tenant).get(f"{app_url}/auth/oauth/campus/login",
                                     allow_redirects=False)
    assert r.status_code == 404
    # The same provider identity in two schools is two accounts.
    other = _school(lp_runtime, op)
    assert browser(school).get(f"{app_url}/auth/oauth/campus/login").status_code == 200
    assert browser(other).get(f"{app_url}/auth/oauth/campus/login").status_code == 200
    [a], [b] = _rows(school, User), _rows(other, User)
    assert a.id != b.id


def test_misconfigured_or_unreachable_provider_is_not_a_500(lp_runtime, op, app_url):
    from learnplat.errors import ValidationFailed
    from learnplat.models import Tenant

    half = {"oauth": {"providers": {"campus": {"backend": "oidc", "key": "k"}}}}
    # `tenants apply` (and every writer) refuses a provider without its secret...
    with pytest.raises(ValidationFailed, match=r"settings\.oauth\.providers\.campus\.secret"):
        make_tenant(lp_runtime, settings=half)
    # ...but a row stored before that check, or edited by hand, still answers 503, not 500.
    broken = make_tenant(lp_runtime)
    with db.connection():
        Tenant.update(settings=half).where(Tenant.id == broken.id).execute()
    lp_runtime.tenants.invalidate()
    r = browser(broken).get(f"{app_url}/auth/oauth/campus/login", allow_redirects=False)
    assert r.status_code == 503
    down = make_tenant(lp_runtime, settings={"oauth": {"providers": {
        "campus": {"backend": "oidc", "key": "k", "secret": "s",
                   "issuer": "http://127.0.0.1:9/nothing-here"}}}})
    r = browser(down).get(f"{app_url}/auth/oauth/campus/login", allow_redirects=False)
    assert r.status_code in (502, 503), r.text


def test_deactivated_account_cannot_sign_in_with_oauth(lp_runtime, lp_users, op, app_url):
    school = _school(lp_runtime, op)
    browser(school).get(f"{app_url}/auth/oauth/campus/login")
    [user] = _rows(school, User)
    svc = lp_runtime.service("identity")
    with db.connection(), tenant_context(school), db.transaction():
        lp_users.make("admin", tenant=school)  # so this one is not the last admin
        svc.deactivate(user.id)
    r = browser(school).get(f"{app_url}/auth/oauth/campus/login")
    assert r.status_code == 403
