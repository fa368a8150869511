"""A test LTI 1.3 platform (an LMS) built on the `lti1p3platform` package and served on a
loopback port by a small Flask app of ours: its OIDC authorization endpoint, JWKS, token
endpoint, AGS score endpoint (it records what it receives, and whether the access token was one it
issued with the score scope) and Deep Linking return URL (it
checks learnplat's response with the library and records the content items).

    platform = TestPlatform().start()
    platform.register_tool(tool)          # learnplat's URLs for one school (ToolUrls)
    result = platform.launch(User("u-1", ...), roles=[LEARNER], context=..., resource_link=...)
    platform.stop()

`launch` drives the browser's legs with requests: the login initiation at learnplat, the
redirect to this platform's authorization endpoint, the form_post of the id_token to
learnplat; the steps are also callable one by one (login, authorize, post_launch) to tamper
with what passes between them."""

from __future__ import annotations

import html.parser
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, Response, jsonify, request
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.oidc_login import OIDCLoginAbstract
from lti1p3platform.registration import Registration
from lti1p3platform.request import Request, TRequest
from werkzeug.serving import make_server

from learnplat.testing import free_port

LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
DROP = object()  # a claim override that removes the claim


def new_rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def public_pem(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@dataclass
class ToolUrls:
    """learnplat's addresses for one school (GET /lti/config's `tool`)."""

    login_url: str
    launch_url: str
    jwks_url: str
    deep_linking_url: str = ""


@dataclass
class User:
    sub: str
    name: str = ""
    email: str = ""


@dataclass
class PendingLaunch:
    """What the platform will put in the id_token once learnplat's login comes back."""

    user: User
    roles: list[str]
    context: dict[str, Any] | None
    resource_link: dict[str, Any] | None
    target_link_uri: str
    ags: dict[str, Any] | None = None
    deep_linking: dict[str, Any] | None = None
    custom: dict[str, Any] | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    expires_in: int = 300
    sign_with: str | None = None  # another private key: a forged signature


@dataclass
class LaunchResult:
    """The browser's last answer from learnplat (a 302 to the landing URL, the picker page,
    or a refusal) and what was posted to get it."""

    response: requests.Response
    fields: dict[str, str]
    launch_url: str

    @property
    def status(self) -> int:
        return self.response.status_code

    @property
    def location(self) -> str:
        return self.response.headers.get("Location", "")

    def query(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(urlsplit(self.location).query).items()}


class _Form(html.parser.HTMLParser):
    """The first form of a page: its action and fields (what a browser would post)."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}
        self.radios: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and not self.action:
            self.action = a.get("action", "")
        if tag == "input" and a.get("type") == "radio":
            self.radios.append(a.get("value", ""))
        elif tag == "input" and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")


def read_form(page: str) -> _Form:
    form = _Form()
    form.feed(page)
    return form


class _FlaskRequest(Request):
    def build_metadata(self, req: Any) -> TRequest:
        return {"method": req.method, "form_data": dict(req.form), "get_data": dict(req.args),
                "headers": dict(req.headers), "content_type": req.content_type,
                "path": req.path, "json": None}


class _Config(LTI1P3PlatformConfAbstract):
    def init_platform_config(self, **kwargs: Any) -> None:
        self._registration = kwargs["registration"]

    def get_registration_by_params(self, **kwargs: Any) -> Registration:
        return self._registration  # type: ignore[return-value]


class _Login(OIDCLoginAbstract):
    def set_lti_message_hint(self, **kwargs: Any) -> None:
        self._lti_message_hint = kwargs["hint"]

    def get_redirect(self, url: str) -> str:
        return url


class _MessageLaunch(LTIAdvantageMessageLaunchAbstract):
    pending: PendingLaunch

    def get_launch_message(self, include_extra_claims: bool = True) -> dict[str, Any]:
        message = super().get_launch_message(include_extra_claims)
        for name, value in self.pending.overrides.items():
            if value is DROP:
                message.pop(name, None)
            else:
                message[name] = value
        return message

    def generate_launch_request(self) -> Any:
        data = super().generate_launch_request()
        if self.pending.sign_with:  # the same claims signed by a key the JWKS does not hold
            claims = jwt.decode(data["id_token"], options={"verify_signature": False})
            data["id_token"] = jwt.encode(claims, self.pending.sign_with, algorithm="RS256")
        return data

    def render_launch_form(self, launch_data: dict[str, Any], **kwargs: Any) -> Response:
        url = launch_data["launch_url"]
        inputs = "".join(f'<input type="hidden" name="{k}" value="{launch_data[k]}">'
                         for k in ("id_token", "state"))
        return Response(f'<form method="post" action="{url}">{inputs}</form>',
                        mimetype="text/html")


class TestPlatform:
    """An LMS on 127.0.0.1: start(), register_tool(), launch(), stop(). `scores` lists the
    AGS scores received (line item path, body, Authorization header); `deep_links` the
    content items of each Deep Linking response it accepted."""

    __test__ = False  # not a pytest test class

    def __init__(self, client_id: str = "", deployment_id: str = "", issuer: str = ""):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.issuer = issuer or f"{self.base}/platform-{uuid.uuid4().hex[:6]}"
        self.client_id = client_id or f"learnplat-{uuid.uuid4().hex[:8]}"
        self.deployment_id = deployment_id or f"dep-{uuid.uuid4().hex[:6]}"
        self.private_key = new_rsa_pem()
        self.registration = (Registration().set_iss(self.issuer).set_client_id(self.client_id)
                             .set_deployment_id(self.deployment_id)
                             .set_platform_private_key(self.private_key)
                             .set_platform_public_key(public_pem(self.private_key)))
        self.tool: ToolUrls | None = None
        self.pending: dict[str, PendingLaunch] = {}
        self.scores: list[dict[str, Any]] = []
        self.deep_links: list[list[dict[str, Any]]] = []
        self.deep_link_errors: list[str] = []
        self.token_requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.app = self._make_app()
        self._server: Any = None

    # -- addresses learnplat is given ---------------------------------------------------------

    @property
    def auth_login_url(self) -> str:
        return f"{self.base}/auth"

    @property
    def jwks_url(self) -> str:
        return f"{self.base}/jwks"

    @property
    def token_url(self) -> str:
        return f"{self.base}/token"

    @property
    def deep_link_return_url(self) -> str:
        return f"{self.base}/deep-link-return"

    def lineitems_url(self, context_id: str) -> str:
        return f"{self.base}/contexts/{context_id}/lineitems"

    def lineitem_url(self, context_id: str, item: str) -> str:
        return f"{self.base}/contexts/{context_id}/lineitems/{item}"

    def registration_body(self, **fields: Any) -> dict[str, Any]:
        """The body of POST /lti/platforms that registers this platform in a school."""
        return {"name": f"Test LMS {self.port}", "issuer": self.issuer,
                "client_id": self.client_id, "deployment_ids": [self.deployment_id],
                "auth_login_url": self.auth_login_url, "token_url": self.token_url,
                "jwks_url": self.jwks_url, **fields}

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> TestPlatform:
        self._server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def register_tool(self, tool: ToolUrls) -> None:
        """Enter learnplat (one school) as a tool of this platform."""
        self.tool = tool
        self.registration.set_oidc_login_url(tool.login_url)
        self.registration.set_launch_url(tool.launch_url)
        self.registration.set_deeplink_launch_url(tool.deep_linking_url or tool.launch_url)
        self.registration.set_tool_key_set_url(tool.jwks_url)
        self.registration._tool_keyset = None  # fetched again from the new URL

    def _config(self) -> _Config:
        return _Config(registration=self.registration)

    # -- the browser's legs -----------------------------------------------------------------

    def login(self, pending: PendingLaunch, login_url: str | None = None,
              method: str = "GET", accept: str = "text/html", **extra: str
              ) -> requests.Response:
        """The platform starts the launch: the browser goes to learnplat's login initiation
        (GET, or a form POST). Returns learnplat's answer (a 302 to our /auth, or a refusal)."""
        assert self.tool is not None, "register_tool first"
        hint = uuid.uuid4().hex
        with self._lock:
            self.pending[hint] = pending
        login = _Login(None, self._config())
        login.set_lti_message_hint(hint=hint)
        login.set_launch_url(pending.target_link_uri)
        url = login.initiate_login(pending.user.sub)
        if login_url is not None:  # another address (another school's login URL)
            url = login_url + "?" + urlsplit(url).query
        query = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
        query.update(extra)
        base = url.split("?", 1)[0]
        if method == "POST":
            return requests.post(base, data=query, allow_redirects=False, timeout=10,
                                 headers={"Accept": accept})
        return requests.get(base, params=query, allow_redirects=False, timeout=10,
                            headers={"Accept": accept})

    def authorize(self, location: str) -> tuple[str, dict[str, str]]:
        """The browser follows learnplat's redirect to our authorization endpoint; returns
        the form it is then given: (learnplat's launch URL, {id_token, state})."""
        r = requests.get(location, allow_redirects=False, timeout=10)
        assert r.status_code == 200, r.text
        form = read_form(r.text)
        return form.action, form.fields

    def post_launch(self, launch_url: str, fields: dict[str, str],
                    accept: str = "text/html") -> LaunchResult:
        r = requests.post(launch_url, data=fields, allow_redirects=False, timeout=10,
                          headers={"Accept": accept})
        return LaunchResult(r, fields, launch_url)

    def launch(self, user: User, roles: list[str], context: dict[str, Any] | None = None,
               resource_link: dict[str, Any] | None = None, *, target_link_uri: str = "",
               ags: dict[str, Any] | None = None, deep_linking: dict[str, Any] | None = None,
               custom: dict[str, Any] | None = None, accept: str = "text/html",
               tamper: Callable[[dict[str, str]], None] | None = None,
               **pending: Any) -> LaunchResult:
        """A whole launch as a browser makes it. `ags`: {"lineitem": ..., "lineitems": ...}
        (an AGS claim), `deep_linking`: {"data": ...} (a Deep Linking request), `tamper`
        changes the posted fields first; other keywords go to PendingLaunch (overrides,
        expires_in, sign_with)."""
        assert self.tool is not None, "register_tool first"
        p = PendingLaunch(user, roles, context, resource_link,
                          target_link_uri or self.tool.launch_url, ags=ags,
                          deep_linking=deep_linking, custom=custom, **pending)
        r = self.login(p, accept=accept)
        if r.status_code != 302:  # refused at the login initiation
            return LaunchResult(r, {}, r.url)
        launch_url, fields = self.authorize(r.headers["Location"])
        if tamper is not None:
            tamper(fields)
        return self.post_launch(launch_url, fields, accept)

    def deep_link_choose(self, picker: LaunchResult, item: str | None = None
                         ) -> requests.Response:
        """The instructor picks `item` (default: the first) on learnplat's picker page; the
        browser posts the choice, then the auto-posted response to our return URL."""
        form = read_form(picker.response.text)
        assert form.radios, picker.response.text
        r = requests.post(form.action, data={**form.fields, "item": item or form.radios[0]},
                          allow_redirects=False, timeout=10, headers={"Accept": "text/html"})
        if r.status_code != 200:
            return r
        answer = read_form(r.text)
        return requests.post(answer.action, data=answer.fields, timeout=10)

    # -- the platform's own endpoints ----------------------------------------------------------

    def _make_app(self) -> Flask:
        app = Flask(f"platform-{self.port}")

        @app.get("/jwks")
        def jwks() -> Any:
            return jsonify({"keys": self.registration.get_jwks()})

        @app.get("/auth")
        def auth() -> Any:
            hint = request.args.get("lti_message_hint", "")
            with self._lock:
                pending = self.pending.get(hint)
            if pending is None:
                return Response("unknown lti_message_hint", status=400)
            launch = _MessageLaunch(_FlaskRequest(request), self._config())
            launch.pending = pending
            launch.set_launch_url(pending.target_link_uri)
            launch.set_id_token_expiration(pending.expires_in)
            u = pending.user
            launch.set_user_data(u.sub, pending.roles, u.name or None, u.email or None)
            if pending.context:
                launch.set_launch_context_claim(**pending.context)
            if pending.resource_link:
                launch.set_resource_link_claim(**pending.resource_link)
            if pending.custom:
                launch.set_custom_parameters_claim(pending.custom)
            if pending.ags is not None:
                launch.set_ags(lineitems_url=pending.ags.get("lineitems", ""),
                               lineitem_url=pending.ags.get("lineitem"))
            if pending.deep_linking is not None:
                launch.set_dl(self.deep_link_return_url, title="Pick learnplat content",
                              accept_types={"ltiResourceLink"},
                              extra_data=pending.deep_linking.get("data"))
            return launch.lti_launch()

        @app.post("/token")
        def token() -> Any:
            data = dict(request.form)
            with self._lock:
                self.token_requests.append(data)
            try:
                return jsonify(self._config_with_tool().get_access_token(data))
            except Exception as exc:  # the library's refusals: an OAuth error answer
                return jsonify({"error": "invalid_client", "error_description": str(exc)}), 400

        @app.post("/contexts/<context_id>/lineitems/<item>/scores")
        def scores(context_id: str, item: str) -> Any:
            auth = request.headers.get("Authorization", "")
            try:  # an access token this platform issued, with the score scope
                valid = auth.startswith("Bearer ") and self._config_with_tool().validate_token(
                    auth[7:], allowed_scopes=[SCORE_SCOPE])
            except Exception:
                valid = False
            with self._lock:
                self.scores.append({"path": request.path, "context_id": context_id,
                                    "lineitem": item, "body": request.get_json(force=True),
                                    "authorization": auth, "token_valid": valid,
                                    "content_type": request.content_type,
                                    "at": time.time()})
            return Response(status=204)

        @app.post("/deep-link-return")
        def deep_link_return() -> Any:
            try:
                items = self._config_with_tool().validate_deeplinking_resp(dict(request.form))
            except Exception as exc:
                with self._lock:
                    self.deep_link_errors.append(repr(exc))
                return Response(f"refused: {exc}", status=400)
            with self._lock:
                self.deep_links.append(items)
            return Response("placed", status=200)

        return app

    def _config_with_tool(self) -> _Config:
        config = self._config()
        config.get_registration()
        return config
