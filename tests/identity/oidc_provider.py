"""A small but real OpenID Connect provider for tests, served on 127.0.0.1.

Why: learnplat's OAuth login must be tested end to end (real HTTP, real RS256
signatures, real PKCE) without internet access and without mocking
social-auth-core internals. Mocks would hide exactly the bugs we care about:
wrong redirect_uri, missing code_verifier, unchecked nonce, replayed codes.

Usage::

    with OIDCProvider(client_id="app", client_secret="s3cret",
                      user={"sub": "u1", "email": "a@example.org"}) as op:
        op.issuer  # http://127.0.0.1:<random port>

It auto-approves the configured ``user`` (mutable between logins) and keeps a
log of token requests in ``op.token_requests`` for assertions.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import parse_qs, urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import TracebackType

    StartResponse = Callable[..., Any]


def b64url_sha256(value: str) -> str:
    """PKCE S256 transform (RFC 7636 section 4.2); also used for at_hash."""
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """Threads so a slow client never blocks the token endpoint."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """Keep pytest output clean; failures show up as assertion errors."""

    def log_message(self, format: str, *args: Any) -> None:
        return


@dataclass
class _Grant:
    """What /authorize promised; /token must see the same values again."""

    client_id: str
    redirect_uri: str
    nonce: str | None
    code_challenge: str | None
    scope: str
    user: dict[str, Any]
    expires_at: float


class OIDCProvider:
    """Authorization-code OIDC provider with PKCE (S256), run in a thread."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        user: dict[str, Any],
        *,
        require_pkce: bool = True,
        redirect_uris: Iterable[str] | None = None,
        code_ttl: int = 60,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.user = dict(user)
        self.require_pkce = require_pkce
        self.redirect_uris = set(redirect_uris) if redirect_uris else None
        self.code_ttl = code_ttl
        self.kid = secrets.token_hex(8)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._grants: dict[str, _Grant] = {}
        self._tokens: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.token_requests: list[dict[str, str]] = []
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------
    @property
    def issuer(self) -> str:
        """Base URL; social_core appends /.well-known/openid-configuration."""
        if self._server is None:
            raise RuntimeError("provider not started")
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> Self:
        """Bind a random loopback port (port 0) and serve in a daemon thread."""
        self._server = make_server("127.0.0.1", 0, self._app, _ThreadingWSGIServer, _QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut the server down and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- WSGI plumbing -----------------------------------------------------
    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        routes = {
            "/.well-known/openid-configuration": self._discovery,
            "/authorize": self._authorize,
            "/token": self._token,
            "/jwks": self._jwks,
            "/userinfo": self._userinfo,
        }
        handler = routes.get(environ.get("PATH_INFO", ""))
        if handler is None:
            status, headers, body = _json(404, {"error": "not_found"})
        else:
            status, headers, body = handler(environ)
        start_response(status, headers)
        return [body]

    # -- endpoints ---------------------------------------------------------
    def _discovery(self, environ: dict[str, Any]) -> _Resp:
        iss = self.issuer
        return _json(
            200,
            {
                "issuer": iss,
                "authorization_endpoint": f"{iss}/authorize",
                "token_endpoint": f"{iss}/token",
                "userinfo_endpoint": f"{iss}/userinfo",
                "jwks_uri": f"{iss}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "scopes_supported": ["openid", "email", "profile"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
            },
        )

    def _authorize(self, environ: dict[str, Any]) -> _Resp:
        q = _form(environ.get("QUERY_STRING", ""))
        redirect_uri = q.get("redirect_uri", "")
        if q.get("client_id") != self.client_id or not redirect_uri:
            # Never redirect to an unverified URI (open redirector).
            return _json(400, {"error": "invalid_request"})
        if self.redirect_uris is not None and redirect_uri not in self.redirect_uris:
            return _json(400, {"error": "invalid_request", "detail": "redirect_uri"})
        state = q.get("state")

        def back(params: dict[str, str]) -> _Resp:
            if state is not None:
                params["state"] = state
            sep = "&" if "?" in redirect_uri else "?"
            return "302 Found", [("Location", redirect_uri + sep + urlencode(params))], b""

        if q.get("response_type") != "code":
            return back({"error": "unsupported_response_type"})
        challenge = q.get("code_challenge")
        if challenge is None and self.require_pkce:
            return back({"error": "invalid_request", "error_description": "PKCE"})
        if challenge is not None and q.get("code_challenge_method") != "S256":
            return back({"error": "invalid_request", "error_description": "S256 only"})
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._grants[code] = _Grant(
                client_id=self.client_id,
                redirect_uri=redirect_uri,
                nonce=q.get("nonce"),
                code_challenge=challenge,
                scope=q.get("scope", "openid"),
                user=dict(self.user),
                expires_at=time.time() + self.code_ttl,
            )
        return back({"code": code})

    def _token(self, environ: dict[str, Any]) -> _Resp:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        form = _form(environ["wsgi.input"].read(length).decode())
        self.token_requests.append(form)
        client_id, client_secret = _client_credentials(environ, form)
        if not (
            client_id == self.client_id
            and client_secret is not None
            and secrets.compare_digest(client_secret, self.client_secret)
        ):
            return _json(401, {"error": "invalid_client"})
        if form.get("grant_type") != "authorization_code":
            return _json(400, {"error": "unsupported_grant_type"})
        with self._lock:  # pop => a code is usable exactly once
            grant = self._grants.pop(form.get("code", ""), None)
        if grant is None or grant.expires_at < time.time():
            return _json(400, {"error": "invalid_grant"})
        if grant.redirect_uri != form.get("redirect_uri"):
            return _json(400, {"error": "invalid_grant", "detail": "redirect_uri"})
        if grant.code_challenge is not None:
            verifier = form.get("code_verifier", "")
            if not verifier or not secrets.compare_digest(
                b64url_sha256(verifier), grant.code_challenge
            ):
                return _json(400, {"error": "invalid_grant", "detail": "pkce"})
        access_token = secrets.token_urlsafe(32)
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "at_hash": _at_hash(access_token),
            **grant.user,
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        with self._lock:
            self._tokens[access_token] = dict(grant.user)
        id_token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})
        return _json(
            200,
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 300,
                "scope": grant.scope,
                "id_token": id_token,
            },
        )

    def _jwks(self, environ: dict[str, Any]) -> _Resp:
        jwk = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        jwk.update({"kid": self.kid, "alg": "RS256", "use": "sig"})
        return _json(200, {"keys": [jwk]})

    def _userinfo(self, environ: dict[str, Any]) -> _Resp:
        auth = environ.get("HTTP_AUTHORIZATION", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with self._lock:
            user = self._tokens.get(token)
        if user is None:
            return _json(401, {"error": "invalid_token"})
        return _json(200, user)


_Resp = tuple[str, list[tuple[str, str]], bytes]


def _json(status: int, payload: dict[str, Any]) -> _Resp:
    reasons = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}
    body = json.dumps(payload).encode()
    headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
    return f"{status} {reasons[status]}", headers, body


def _form(raw: str) -> dict[str, str]:
    """Single-valued form parsing; duplicated OAuth params are an error anyway."""
    return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}


def _client_credentials(
    environ: dict[str, Any], form: dict[str, str]
) -> tuple[str | None, str | None]:
    """client_secret_basic first, then client_secret_post (RFC 6749 2.3.1)."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if auth.startswith("Basic "):
        raw = base64.b64decode(auth[6:]).decode()
        cid, _, secret = raw.partition(":")
        return cid, secret
    return form.get("client_id"), form.get("client_secret")


def _at_hash(access_token: str) -> str:
    """Left half of SHA-256, base64url (OIDC Core 3.1.3.6)."""
    digest = hashlib.sha256(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
