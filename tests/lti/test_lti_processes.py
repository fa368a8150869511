"""LTI launches across two real gunicorn servers on one database (issue 28: "two gunicorn
servers (a launch begun on one completes on the other)").

A school behind a load balancer: both servers have the balancer's address as their public URL
(the issuer, the addresses peers are given), and the test, playing the browser, sends each
step of a launch to the server it chooses; peers' own calls (JWKS, tokens) go through the
balancer, which alternates. What one server records of a launch (the OIDC state and nonce, the
launch a learner asked for) must be found by the other, and a replay refused by both:

* learnplat as tool: a platform built on `lti1p3platform` starts a launch; the OIDC login
  initiation goes to server 1, the id_token is posted to server 2;
* learnplat as platform: a learner's launch of an `lti` module is made on server 1, the tool
  (`pylti1p3` in Flask) sends the browser to the authorization endpoint of server 2, and the
  id_token it gets there passes pylti1p3's checks.

The database is the suite's (SQLite or PostgreSQL + Redis, LEARNPLAT_TEST_BACKEND).
"""

from __future__ import annotations

import html
import http.client
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import cycle
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from learnplat.tenancy import TenantInfo
from learnplat.testing import make_tenant, serve_with_gunicorn

pytestmark = pytest.mark.e2e

# The school's front end, where a launched learner lands (never requested here).
LANDING = "http://127.0.0.1:9"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


# -- the load balancer --------------------------------------------------------------------------

class _Forward(BaseHTTPRequestHandler):
    """Each request to the next server in turn (round robin), as a balancer without sticky
    sessions does."""

    balancer: Balancer

    def _forward(self) -> None:
        port = next(self.balancer.turns)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            upstream = conn.getresponse()
            data = upstream.read()
        finally:
            conn.close()
        self.balancer.served.append((port, self.command, self.path.split("?")[0]))
        self.send_response(upstream.status)
        for name, value in upstream.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    def log_message(self, *args: object) -> None:
        pass


class Balancer:
    """Bound before the servers start (its address is their public URL); the servers' ports
    are given once they serve."""

    def __init__(self) -> None:
        handler = type("Forward", (_Forward,), {"balancer": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.turns: Iterator[int] = iter(())
        self.served: list[tuple[int, str, str]] = []
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self, *servers: str) -> None:
        self.turns = cycle([int(urlsplit(s).port or 0) for s in servers])
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Servers:
    one: str
    two: str
    public: str  # the balancer: every URL the school gives a peer starts with it
    balancer: Balancer

    def on(self, server: str, url: str) -> str:
        """`url` (an address the school gave out) sent to `server` instead of the balancer:
        the browser's request that the balancer happened to send there."""
        assert url.startswith(self.public), url
        return server + url[len(self.public):]


@pytest.fixture
def servers(lp_runtime: Any, lp_database: Any, lti_plugin: Any, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Servers]:
    balancer = Balancer()
    env = {"LEARNPLAT_APP_PUBLIC_URL": balancer.url,
           # The peers are on loopback, over plain HTTP (as the suite's runtime allows).
           "LEARNPLAT_OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8",
           "LEARNPLAT_OUTBOUND_REQUIRE_HTTPS": "false"}
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    # This process makes registrations and reads addresses as the servers do.
    monkeypatch.setattr(lti_plugin.urls, "base", lambda: balancer.url)
    with serve_with_gunicorn(lp_runtime, lp_database, tmp_path / "one", workers=1, env=env
                             ) as one, \
            serve_with_gunicorn(lp_runtime, lp_database, tmp_path / "two", workers=1, env=env
                                ) as two:
        balancer.start(one, two)
        try:
            yield Servers(one, two, balancer.url, balancer)
        finally:
            balancer.stop()


# -- the school's keys ----------------------------------------------------------------------------

def test_both_servers_publish_the_key_the_first_one_made(servers, school):
    """The school's RSA key is made on first use by whichever server is asked first, and
    the other publishes the same key: a peer that fetched the JWKS through the balancer
    verifies what either server signs."""
    path = f"/lti/schools/{school.tenant.slug}/jwks"
    first = requests.get(servers.one + path, timeout=10)
    assert first.status_code == 200, first.text
    second = requests.get(servers.two + path, timeout=10)
    assert second.status_code == 200, second.text
    assert first.json() == second.json()
    (key,) = first.json()["keys"]
    assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")


# -- the peers ------------------------------------------------------------------------------------

def rsa_pems() -> tuple[str, str]:
    """A fresh RSA key pair (private PKCS#8, public SubjectPublicKeyInfo), PEM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


class Serving:
    """A WSGI app on a loopback port, in a thread of this process."""

    def __init__(self, app: Any):
        from werkzeug.serving import make_server

        self.httpd = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class PyltiTool:
    """A tool built on pylti1p3 in Flask: its OIDC login (FlaskOIDCLogin, which sends the
    browser to the platform's authorization endpoint with a state cookie and a nonce in the
    Flask session) and its launch (FlaskMessageLaunch: state, id_token signature against
    the platform's JWKS, issuer, audience, nonce, deployment, message). `launches` holds the
    launch data it accepted, `refused` what it refused and why."""

    def __init__(self) -> None:
        from flask import Flask, jsonify, request
        from pylti1p3.contrib.flask import FlaskMessageLaunch, FlaskOIDCLogin, FlaskRequest
        from pylti1p3.exception import LtiException

        self.private, self.public = rsa_pems()
        self.conf: Any = None
        self.launches: list[dict[str, Any]] = []
        self.refused: list[str] = []
        app = Flask("pylti-tool")
        app.secret_key = "pylti-tool-session-key"
        app.config["SESSION_COOKIE_NAME"] = "pylti_tool_session"

        @app.route("/login", methods=["GET", "POST"])
        def login() -> Any:
            target = request.values.get("target_link_uri", "")
            return FlaskOIDCLogin(FlaskRequest(), self.conf).redirect(target)

        @app.route("/launch", methods=["POST"])
        def launch() -> Any:
            try:
                data = FlaskMessageLaunch(FlaskRequest(), self.conf).get_launch_data()
            except LtiException as exc:
                self.refused.append(str(exc))
                return str(exc), 400
            self.launches.append(dict(data))
            return jsonify(data)

        @app.route("/jwks")
        def jwks() -> Any:
            return jsonify(self.conf.get_jwks())

        self.serving = Serving(app)
        self.url = self.serving.url

    def configure(self, *, issuer: str, client_id: str, deployment_ids: list[str],
                  auth_login_url: str, token_url: str, jwks_url: str) -> None:
        """What the tool's admin enters from the school's addresses and registration."""
        from pylti1p3.tool_config import ToolConfDict

        conf = ToolConfDict({issuer: [{
            "default": True, "client_id": client_id, "auth_login_url": auth_login_url,
            "auth_token_url": token_url, "auth_audience": None, "key_set_url": jwks_url,
            "key_set": None, "deployment_ids": deployment_ids}]})
        conf.set_private_key(issuer, self.private, client_id=client_id)
        conf.set_public_key(issuer, self.public, client_id=client_id)
        self.conf = conf


class LtiPlatformPeer:
    """An LMS built on lti1p3platform: its OIDC third-party-initiated login (the preflight
    URL to the tool's login) and its launch (it checks the tool's authentication request:
    nonce, state, redirect_uri, client_id; and signs the id_token with its key, published at
    its JWKS URL on a loopback port)."""

    CLIENT_ID = "learnplat-in-the-lms"
    DEPLOYMENT_ID = "deployment-1"

    def __init__(self, login_url: str, launch_url: str, tool_jwks_url: str) -> None:
        from flask import Flask, jsonify
        from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
        from lti1p3platform.registration import Registration

        private, public = rsa_pems()
        app = Flask("lti-platform")

        @app.route("/jwks")
        def jwks() -> Any:
            return jsonify({"keys": registration.get_jwks()})

        self.serving = Serving(app)
        self.issuer = self.serving.url
        self.auth_login_url = f"{self.issuer}/auth"
        self.token_url = f"{self.issuer}/token"
        self.jwks_url = f"{self.issuer}/jwks"
        registration = (Registration().set_iss(self.issuer).set_client_id(self.CLIENT_ID)
                        .set_deployment_id(self.DEPLOYMENT_ID).set_oidc_login_url(login_url)
                        .set_launch_url(launch_url).set_platform_private_key(private)
                        .set_platform_public_key(public).set_tool_key_set_url(tool_jwks_url))

        class Conf(LTI1P3PlatformConfAbstract):
            def init_platform_config(self, **kwargs: Any) -> None:
                self._registration = registration

            def get_registration_by_params(self, **kwargs: Any) -> Registration:
                return registration

        self.conf = Conf()

    def login(self, user_id: str, message_hint: str, target_link_uri: str = "") -> str:
        """The URL the LMS sends the browser to: the tool's OIDC login initiation."""
        from lti1p3platform.oidc_login import OIDCLoginAbstract

        class Login(OIDCLoginAbstract):
            def set_lti_message_hint(self, **kwargs: Any) -> None:
                self._lti_message_hint = kwargs["hint"]

            def get_redirect(self, url: str) -> str:
                return url

        login = Login(None, self.conf)
        login.set_lti_message_hint(hint=message_hint)
        if target_link_uri:
            login.set_launch_url(target_link_uri)
        return str(login.initiate_login(user_id))

    def launch(self, auth_request: dict[str, str], *, sub: str, roles: list[str],
               name: str, email: str, context: tuple[str, str], resource_link: str,
               target_link_uri: str = "") -> dict[str, str]:
        """The LMS's answer to the tool's authentication request (the query of the
        browser's request to `auth_login_url`): the form to post, ``launch_url`` (the
        redirect_uri asked for), ``id_token`` and ``state``."""
        from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
        from lti1p3platform.request import Request, TRequest

        class Req(Request):
            def build_metadata(self, request: Any) -> TRequest:
                return request  # already the library's shape (TRequest)

        class Launch(LTIAdvantageMessageLaunchAbstract):
            def render_launch_form(self, launch_data: dict[str, Any], **kwargs: Any
                                   ) -> dict[str, str]:
                return launch_data

        req = Req({"method": "GET", "get_data": dict(auth_request), "form_data": {},
                   "headers": {}, "content_type": None, "path": "/auth", "json": None})
        launch = Launch(req, self.conf)
        if target_link_uri:
            launch.set_launch_url(target_link_uri)
        launch.set_user_data(sub, roles, full_name=name, email_address=email)
        launch.set_launch_context_claim(context[0], context_title=context[1])
        launch.set_resource_link_claim(resource_link)
        return dict(launch.lti_launch())


# -- a school with a published course -------------------------------------------------------------

@dataclass
class School:
    tenant: TenantInfo
    admin: Any  # learnplat.testing.Client of the school's admin (this process's app)
    teacher: Any
    course_id: int
    module_id: int


@pytest.fixture
def school(lp_runtime: Any, lp_app: Any) -> School:
    from learnplat_identity.testing import UserFactory

    from learnplat.testing import Client

    tenant = make_tenant(lp_runtime)
    users = UserFactory(lp_runtime, tenant)
    admin = Client(lp_app, tenant, users.make("admin").token)
    teacher = Client(lp_app, tenant, users.make("instructor").token)
    r = teacher.post("/courses", json={"title": "Chemistry"})
    assert r.status_code == 201, r.text
    cid = r.json["id"]
    r = teacher.post(f"/courses/{cid}/modules", json={"title": "Acids"})
    assert r.status_code == 201, r.text
    mid = r.json["id"]
    assert teacher.post(f"/courses/{cid}/submit").status_code == 200
    assert admin.post(f"/courses/{cid}/approve").status_code == 200
    return School(tenant, admin, teacher, cid, mid)


def school_url(servers: Servers, school: School, path: str) -> str:
    """An address the school gives peers (`LtiUrls.school`): the balancer's."""
    return f"{servers.public}/lti/schools/{school.tenant.slug}{path}"


def refusals(school: School) -> list[tuple[str, str]]:
    """(role, code) of the school's refused launches, from its audit log."""
    r = school.admin.get("/audit", params={"action": "lti.launch_refused"})
    assert r.status_code == 200, r.text
    return [(e["detail"]["role"], e["detail"]["code"]) for e in r.json["items"]]


def problem(r: requests.Response) -> str:
    """The problem code of a refusal (problem+json: the client asked for JSON)."""
    assert r.headers.get("content-type", "").startswith("application/problem+json"), r.text
    return str(r.json().get("code"))


# -- learnplat as tool: login on one server, launch on the other ---------------------------------

def test_a_launch_into_learnplat_begun_on_one_server_completes_on_the_other(
        servers, school, lp_runtime):
    launch_url = school_url(servers, school, "/tool/launch")
    peer = LtiPlatformPeer(school_url(servers, school, "/tool/login"), launch_url,
                           school_url(servers, school, "/jwks"))
    try:
        r = school.admin.post("/lti/platforms", json={
            "name": "The LMS", "issuer": peer.issuer, "client_id": peer.CLIENT_ID,
            "deployment_ids": [peer.DEPLOYMENT_ID], "auth_login_url": peer.auth_login_url,
            "token_url": peer.token_url, "jwks_url": peer.jwks_url,
            "landing_url": f"{LANDING}/lti-landing"})
        assert r.status_code == 201, r.text
        assert r.json["tool"]["launch_url"] == launch_url
        target = f"{launch_url}?course={school.course_id}"
        browser = requests.Session()
        browser.headers["Accept"] = "application/json"  # refusals as problem+json

        # The LMS sends the browser to the school's login initiation: server one.
        login = peer.login("lms-user-7", "resource-link-1", target)
        r = browser.get(servers.on(servers.one, login), allow_redirects=False, timeout=30)
        assert r.status_code == 302, r.text
        auth = urlsplit(r.headers["Location"])
        assert f"{auth.scheme}://{auth.netloc}{auth.path}" == peer.auth_login_url
        asked = dict(parse_qsl(auth.query))
        assert asked["redirect_uri"] == launch_url and asked["client_id"] == peer.CLIENT_ID

        # The LMS checks the authentication request (lti1p3platform) and answers the
        # id_token, which the browser posts to the redirect URI: server two.
        form = peer.launch(asked, sub="lms-user-7", roles=[LEARNER], name="Ada Lovelace",
                           email="ada@lms.example.org", context=("lms-course-1", "Chemistry"),
                           resource_link="resource-link-1", target_link_uri=target)
        assert form["launch_url"] == launch_url
        fields = {"id_token": form["id_token"], "state": form["state"]}
        r = browser.post(servers.on(servers.two, launch_url), data=fields,
                         allow_redirects=False, timeout=30)
        assert r.status_code == 302, r.text
        landing = urlsplit(r.headers["Location"])
        assert f"{landing.scheme}://{landing.netloc}{landing.path}" == f"{LANDING}/lti-landing"
        back = dict(parse_qsl(landing.query))
        assert back["course_id"] == str(school.course_id)

        # The one-time code signs the learner in on server one; they are enrolled.
        r = requests.post(f"{servers.one}/auth/oauth/exchange", json={"code": back["code"]},
                          headers={"X-Tenant": school.tenant.slug}, timeout=30)
        assert r.status_code == 200, r.text
        learner = {"Authorization": f"Bearer {r.json()['access_token']}",
                   "X-Tenant": school.tenant.slug}
        r = requests.get(f"{servers.two}/auth/profile", headers=learner, timeout=30)
        assert r.status_code == 200, r.text
        assert (r.json()["email"], r.json()["role"]) == ("ada@lms.example.org", "student")
        # Enrolled: their progress in the course is theirs to read.
        r = requests.get(f"{servers.one}/progress/{school.course_id}", headers=learner,
                         timeout=30)
        assert r.status_code == 200, r.text

        # The same launch posted again, to either server: refused (the state was used),
        # and each refusal in the school's audit log.
        for server in (servers.two, servers.one):
            r = browser.post(servers.on(server, launch_url), data=fields,
                             allow_redirects=False, timeout=30)
            assert r.status_code == 400, r.text
            assert problem(r) == "lti_state_mismatch"
        assert refusals(school) == [("tool", "lti_state_mismatch")] * 2

        # A second launch of the same LMS user, the other way round: the same account.
        login = peer.login("lms-user-7", "resource-link-1", target)
        r = browser.get(servers.on(servers.two, login), allow_redirects=False, timeout=30)
        assert r.status_code == 302, r.text
        form = peer.launch(dict(parse_qsl(urlsplit(r.headers["Location"]).query)),
                           sub="lms-user-7", roles=[LEARNER], name="Ada Lovelace",
                           email="ada@lms.example.org", context=("lms-course-1", "Chemistry"),
                           resource_link="resource-link-1", target_link_uri=target)
        r = browser.post(servers.on(servers.one, launch_url),
                         data={"id_token": form["id_token"], "state": form["state"]},
                         allow_redirects=False, timeout=30)
        assert r.status_code == 302, r.text
        code = dict(parse_qsl(urlsplit(r.headers["Location"]).query))["code"]
        r = requests.post(f"{servers.two}/auth/oauth/exchange", json={"code": code},
                          headers={"X-Tenant": school.tenant.slug}, timeout=30)
        assert r.status_code == 200, r.text
        again = {"Authorization": f"Bearer {r.json()['access_token']}",
                 "X-Tenant": school.tenant.slug}
        me = requests.get(f"{servers.one}/auth/profile", headers=again, timeout=30).json()
        assert me["email"] == "ada@lms.example.org"
    finally:
        peer.serving.stop()


# -- learnplat as platform: the launch made on one server, authorized on the other ----------------

def posted_form(page: str) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of the page that posts a signed message on (the
    browser submits it; this test reads it)."""
    action = re.search(r'<form[^>]* action="([^"]*)"', page)
    assert action, page[:500]
    fields = re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)"', page)
    return html.unescape(action.group(1)), {html.unescape(k): html.unescape(v)
                                            for k, v in fields}


def test_a_launch_of_a_tool_made_on_one_server_is_authorized_on_the_other(
        servers, school, lp_runtime):
    from learnplat_identity.testing import UserFactory

    tool = PyltiTool()
    try:
        r = school.admin.post("/lti/tools", json={
            "name": "Chemistry lab", "login_url": f"{tool.url}/login",
            "launch_url": f"{tool.url}/launch", "jwks_url": f"{tool.url}/jwks",
            "send_name": True, "send_email": False})
        assert r.status_code == 201, r.text
        registered, ours = r.json, r.json["platform"]
        assert ours["authorization_url"] == school_url(servers, school, "/platform/auth")
        tool.configure(issuer=ours["issuer"], client_id=registered["client_id"],
                       deployment_ids=registered["deployment_ids"],
                       auth_login_url=ours["authorization_url"], token_url=ours["token_url"],
                       jwks_url=ours["jwks_url"])
        path = f"/courses/{school.course_id}/modules/{school.module_id}/lti"
        r = school.teacher.put(path, json={"tool_id": registered["id"]})
        assert r.status_code == 200, r.text
        student = UserFactory(lp_runtime, school.tenant).make("student", name="Ada Lovelace")
        learner = {"Authorization": f"Bearer {student.token}", "X-Tenant": school.tenant.slug}
        r = requests.post(f"{servers.one}/courses/{school.course_id}/enroll", headers=learner,
                          timeout=30)
        assert r.status_code == 201, r.text

        # The learner opens the module: server one makes the launch.
        r = requests.post(f"{servers.one}/lti/launches", json={"module_id": school.module_id},
                          headers=learner, timeout=30)
        assert r.status_code == 201, r.text
        browser = requests.Session()
        browser.headers["Accept"] = "text/html,application/json;q=0.9"
        # The tool's login (pylti1p3) sends the browser to the school's authorization
        # endpoint, which the balancer gives to server two.
        r = browser.get(r.json()["launch_url"], allow_redirects=False, timeout=30)
        assert r.status_code == 302, r.text
        authorize = r.headers["Location"]
        assert authorize.startswith(ours["authorization_url"] + "?")
        r = browser.get(servers.on(servers.two, authorize), allow_redirects=False, timeout=30)
        assert r.status_code == 200, r.text
        action, fields = posted_form(r.text)
        assert action == f"{tool.url}/launch" and set(fields) == {"id_token", "state"}

        # The tool takes the id_token: its signature checked with the school's JWKS (read
        # through the balancer), its nonce and state the ones its login made.
        r = browser.post(action, data=fields, timeout=30)
        assert r.status_code == 200, (r.text, tool.refused)
        (claims,) = tool.launches
        assert claims["iss"] == ours["issuer"] and claims["aud"] in (
            registered["client_id"], [registered["client_id"]])
        assert claims["sub"] == str(student.id)
        assert claims[CLAIM + "roles"] == [LEARNER]
        assert claims[CLAIM + "context"]["id"] == str(school.course_id)
        assert claims[CLAIM + "resource_link"]["id"] == str(school.module_id)
        assert claims["name"] == "Ada Lovelace" and "email" not in claims  # privacy

        # The authorization again, on either server: the launch was used.
        browser.headers["Accept"] = "application/json"
        for server in (servers.one, servers.two):
            r = browser.get(servers.on(server, authorize), allow_redirects=False, timeout=30)
            assert r.status_code == 400, r.text
            assert problem(r) == "lti_auth_launch_used"
        assert len(tool.launches) == 1
        assert refusals(school) == [("platform", "lti_auth_launch_used")] * 2
        # The tool read the school's keys through the balancer (from either server).
        assert any(path.endswith("/jwks") for _port, _m, path in servers.balancer.served)
    finally:
        tool.serving.stop()
