"""An LTI 1.3 tool for the tests of learnplat as platform: a Flask app on a loopback port
built on pylti1p3 (``pylti1p3.contrib.flask``), configured with the school's issuer, the
client_id learnplat made, its authorization, token and key set URLs. It keeps what it
validated (``launches``: the id_token claims as pylti1p3 checked them) and answers a Deep
Linking request with the content items the test set (``offer``), signing the response."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, jsonify
from pylti1p3.contrib.flask import (
    FlaskMessageLaunch,
    FlaskOIDCLogin,
    FlaskRequest,
)
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.exception import LtiException
from pylti1p3.lineitem import LineItem
from pylti1p3.registration import Registration
from pylti1p3.tool_config import ToolConfDict
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class _Quiet(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: Any) -> None:
        return


def rsa_pem() -> tuple[str, str]:
    """A fresh RSA key pair as (private PEM, public PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


@dataclass
class Platform:
    """What the tool knows of learnplat (the registration's other half)."""

    issuer: str
    client_id: str
    deployment_ids: list[str]
    auth_url: str
    token_url: str
    jwks_url: str


@dataclass
class Offer:
    """A content item the tool answers a Deep Linking request with."""

    title: str
    url: str
    custom: dict[str, str] = field(default_factory=dict)
    score_maximum: float | None = None


class TestTool:
    """The tool app, served on 127.0.0.1 from `start()` to `stop()`."""

    __test__ = False  # not a test class for pytest

    def __init__(self) -> None:
        self.private_pem, self.public_pem = rsa_pem()
        self.platform: Platform | None = None
        self.launches: list[dict[str, Any]] = []  # claims pylti1p3 validated
        self.errors: list[str] = []  # what pylti1p3 refused
        self.offer: list[Offer] = []
        self.deep_link: dict[str, str] = {}  # the last response: return_url, JWT
        self.app = self._app()
        self._server: BaseWSGIServer | None = None
        self.base = ""

    # -- serving --------------------------------------------------------------------------------

    def start(self) -> TestTool:
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True,
                                   request_handler=_Quiet)
        self.base = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def login_url(self) -> str:
        return f"{self.base}/login"

    @property
    def launch_url(self) -> str:
        return f"{self.base}/launch"

    @property
    def jwks_url(self) -> str:
        return f"{self.base}/jwks"

    def public_jwk(self) -> dict[str, Any]:
        return dict(Registration.get_jwk(self.public_pem))

    def registration_body(self, **fields: Any) -> dict[str, Any]:
        """A POST /lti/tools body for this tool."""
        body: dict[str, Any] = {"name": "Chem Lab", "login_url": self.login_url,
                                "launch_url": self.launch_url, "jwks_url": self.jwks_url}
        body.update(fields)
        return body

    # -- pylti1p3 -------------------------------------------------------------------------------

    def conf(self) -> ToolConfDict:
        p = self.platform
        assert p is not None, "configure the tool with learnplat's URLs first"
        conf = ToolConfDict({p.issuer: [{
            "default": True, "client_id": p.client_id, "auth_login_url": p.auth_url,
            "auth_token_url": p.token_url, "key_set_url": p.jwks_url, "key_set": None,
            "deployment_ids": p.deployment_ids}]})
        conf.set_private_key(p.issuer, self.private_pem, client_id=p.client_id)
        conf.set_public_key(p.issuer, self.public_pem, client_id=p.client_id)
        return conf

    def _app(self) -> Flask:
        app = Flask("ltitool")
        app.secret_key = "a test tool's session key"
        app.config.update(SESSION_COOKIE_NAME="tool_session")

        @app.route("/jwks")
        def jwks() -> Any:
            return jsonify({"keys": [self.public_jwk()]})

        @app.route("/login", methods=["GET", "POST"])
        def login() -> Any:
            # pylti1p3 sends its argument as redirect_uri: the tool's one launch URL, as
            # tools do (the launch's target_link_uri claim says what to show).
            try:
                return FlaskOIDCLogin(FlaskRequest(), self.conf()).redirect(self.launch_url)
            except LtiException as exc:
                self.errors.append(str(exc))
                return jsonify({"error": str(exc)}), 400

        @app.route("/launch", methods=["POST"])
        @app.route("/launch/<path:rest>", methods=["POST"])
        def launch(rest: str = "") -> Any:
            try:
                message = FlaskMessageLaunch(FlaskRequest(), self.conf())
                data = message.get_launch_data()  # validates: state, signature, nonce...
            except LtiException as exc:
                self.errors.append(str(exc))
                return jsonify({"error": str(exc)}), 400
            self.launches.append(dict(data))
            if not message.is_deep_link_launch():
                return jsonify({"launched": True})
            resources = []
            for item in self.offer:
                r = DeepLinkResource().set_title(item.title).set_url(item.url)
                if item.custom:
                    r.set_custom_params(item.custom)
                if item.score_maximum is not None:
                    r.set_lineitem(LineItem().set_score_maximum(item.score_maximum)
                                   .set_label(item.title))
                resources.append(r)
            deep_link = message.get_deep_link()
            settings = data["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"]
            self.deep_link = {"return_url": settings["deep_link_return_url"],
                              "JWT": deep_link.get_response_jwt(resources)}
            return jsonify({"deep_link": True})

        return app
