"""A platform for the grade passback tests, on lti1p3platform (the LMS side of LTI 1.3): its
OAuth 2 token endpoint (the library checks our client assertion against our JWKS, fetched over
HTTP from the served app) and its AGS score service (the library checks the bearer token it
issued), on a loopback port, recording what it was sent. Tests make it refuse tokens or answer
scores with chosen statuses."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.registration import Registration
from lti1p3platform.request import Request, TRequest
from lti1p3platform.score import UpdateScoreStatus
from lti1p3platform.service_connector import AssignmentsGradesService

from learnplat.testing import free_port

CLIENT_ID = "learnplat-in-canvas"
ISSUER = "https://canvas.test.example"


def _rsa_pem() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


class _Config(LTI1P3PlatformConfAbstract):
    """lti1p3platform's platform configuration: one registration (learnplat as a tool)."""

    def init_platform_config(self, **kwargs: Any) -> None:
        private, public = _rsa_pem()
        self._registration = (Registration().set_iss(ISSUER).set_client_id(CLIENT_ID)
                              .set_deployment_id("dep-1")
                              .set_platform_private_key(private)
                              .set_platform_public_key(public)
                              .set_tool_key_set_url(kwargs["tool_jwks_url"]))

    def get_registration_by_params(self, **kwargs: Any) -> Registration:
        assert self._registration is not None
        return self._registration


class _Req(Request):
    def build_metadata(self, request: Any) -> TRequest:
        return request  # type: ignore[no-any-return]  # already the library's shape


@dataclass
class Received:
    lineitem: str
    score: dict[str, Any]
    content_type: str
    token: str


class _Scores(AssignmentsGradesService):
    """The library's AGS service: only the score endpoint is used; scores are recorded."""

    peer: PlatformPeer

    def update_score(self, line_item_id: str, score: Any) -> UpdateScoreStatus:
        assert self.request is not None
        token = self.request.headers.get("Authorization", "").split()[-1]
        self.peer.scores.append(Received(line_item_id, dict(score),
                                         self.request.content_type or "", token))
        return UpdateScoreStatus.SUCCESS

    def find_lineitems(self, *a: Any, **k: Any) -> Any:
        raise NotImplementedError

    def find_lineitem(self, line_item_id: str) -> Any:
        raise NotImplementedError

    def create_lineitem(self, creation_data: Any) -> Any:
        raise NotImplementedError

    def update_lineitem(self, update_data: Any) -> Any:
        raise NotImplementedError

    def delete_lineitem(self, line_item_id: str) -> None:
        raise NotImplementedError

    def get_results(self, *a: Any, **k: Any) -> Any:
        raise NotImplementedError


@dataclass
class PlatformPeer:
    base: str
    config: _Config
    scores: list[Received] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)  # every token issued
    assertions: list[dict[str, Any]] = field(default_factory=list)  # their claims, checked
    token_requests: int = 0
    refuse_tokens: bool = False  # answer 401 invalid_client
    score_statuses: list[int] = field(default_factory=list)  # the next answers, then normal

    @property
    def token_url(self) -> str:
        return f"{self.base}/token"

    def lineitem(self, n: int, query: str = "") -> str:
        return f"{self.base}/lineitems/{n}" + (f"?{query}" if query else "")

    def issue(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The token endpoint: lti1p3platform verifies the assertion's signature with our
        JWKS; it leaves aud unchecked, so the claims it decoded are checked here (IMS
        Security Framework: iss = sub = client_id, aud = the token URL, a jti used once)."""
        self.token_requests += 1
        if self.refuse_tokens:
            return 401, {"error": "invalid_client"}
        try:
            result = self.config.get_access_token(form)
            claims = self.config.tool_validate_and_decode(form["client_assertion"])
        except Exception as exc:  # the library's refusals: missing claim, bad signature...
            return 400, {"error": "invalid_request", "error_description": str(exc)}
        if not (claims.get("iss") == claims.get("sub") == CLIENT_ID
                and claims.get("aud") == self.token_url and claims.get("jti")
                and claims["jti"] not in {c["jti"] for c in self.assertions}):
            return 401, {"error": "invalid_client", "claims": claims}
        self.assertions.append(claims)
        self.tokens.append(result["access_token"])
        return 200, dict(result)

    def score(self, path: str, query: str, headers: dict[str, str], body: bytes
              ) -> tuple[int, dict[str, Any] | None]:
        if self.score_statuses:
            return self.score_statuses.pop(0), {"error": "chosen by the test"}
        line_item_id = path.split("/")[2]
        request = _Req({"method": "POST", "form_data": {}, "get_data": {},
                        "headers": headers, "content_type": headers.get("Content-Type"),
                        "path": path, "json": json.loads(body or b"null")})
        service = _Scores(request, self.config, f"{self.base}/lineitems",
                          self.lineitem(int(line_item_id)))
        service.peer = self
        try:
            answer = service.handle_resp(service.handle_update_score,
                                         line_item_id=line_item_id)
        except Exception as exc:  # a token the library cannot even decode
            return 401, {"error": str(exc)}
        return answer.code, {"message": answer.message}


def _handler(peer: PlatformPeer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = urlsplit(self.path)
            if parts.path == "/token":
                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                status, out = peer.issue(form)
            elif parts.path.startswith("/lineitems/") and parts.path.endswith("/scores"):
                status, out = peer.score(parts.path, parts.query, dict(self.headers), body)
            else:
                status, out = 404, {"error": "not found"}
            data = json.dumps(out).encode() if out is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def start_platform(tool_jwks_url: str) -> tuple[PlatformPeer, ThreadingHTTPServer]:
    port = free_port()
    config = _Config(tool_jwks_url=tool_jwks_url)
    peer = PlatformPeer(f"http://127.0.0.1:{port}", config)
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(peer))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return peer, server


def running_platform(tool_jwks_url: str) -> Iterator[PlatformPeer]:
    """A fixture body: the platform for one test."""
    peer, server = start_platform(tool_jwks_url)
    try:
        yield peer
    finally:
        server.shutdown()
        server.server_close()
