"""social-auth-core strategy for Falcon, with per-tenant settings (see docs/decisions/0101).

Session choice: an *encrypted, authenticated cookie* (Fernet), not a
server-side store keyed by state. Why:

* core 7 writes the transaction (state, PKCE ``code_verifier``, OIDC nonce,
  ``next``) *before* the state exists to key on, and reads it back on the
  callback from the same browser; a cookie is exactly "bound to this browser",
  which is what login-CSRF protection needs. A store keyed only by state would
  accept a callback from any browser holding the URL.
* replay protection does not depend on the cookie: core 7 records the state
  in the ``Nonce`` table at start and ``consume()``s it on callback, and the
  provider's code is single-use. Replaying an old cookie + URL fails.
* Fernet encrypts (the ``code_verifier`` stays secret from logs/extensions)
  and carries a timestamp, so the cookie expires on its own (``max_age``).
* no table, no cleanup job, works across app workers.

Costs: cookie size (~1 KB per pending login, pruned by core after
STATE_LIFETIME), and SameSite must be ``Lax`` (the callback is a top-level
cross-site GET; ``Strict`` would drop it, ``form_post`` would need ``None``).
This cookie holds only the OAuth transaction; the app's own login session is
set by the ``login`` callback passed to ``do_complete``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import falcon
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from social_core.strategy import BaseStrategy

if TYPE_CHECKING:
    from collections.abc import Mapping

    from social_core.storage import BaseStorage


class CookieSession:
    """Encrypted JSON dict in one cookie; ``MultiFernet`` allows key rotation."""

    def __init__(
        self,
        keys: list[bytes],
        *,
        cookie_name: str = "lp_oauth",
        max_age: int = 1800,
        path: str = "/auth/oauth/",
    ) -> None:
        self.fernet = MultiFernet([Fernet(k) for k in keys])
        self.cookie_name = cookie_name
        self.max_age = max_age
        self.path = path

    def load(self, req: falcon.Request) -> dict[str, Any]:
        """Return the session, or {} if absent, tampered with or expired."""
        values = req.get_cookie_values(self.cookie_name) or []
        for raw in values:
            try:
                data = json.loads(self.fernet.decrypt(raw.encode(), ttl=self.max_age))
            except (InvalidToken, ValueError):
                continue
            if isinstance(data, dict):
                return data
        return {}

    def save(self, req: falcon.Request, resp: falcon.Response, data: dict[str, Any]) -> None:
        """Write (or clear) the cookie; Secure follows the request scheme."""
        secure = req.scheme == "https"
        if not data:
            resp.unset_cookie(self.cookie_name, path=self.path)
            return
        token = self.fernet.encrypt(json.dumps(data).encode()).decode()
        resp.set_cookie(
            self.cookie_name,
            token,
            max_age=self.max_age,
            path=self.path,
            secure=secure,
            http_only=True,
            same_site="Lax",
        )


class FalconStrategy(BaseStrategy[falcon.Response]):
    """One instance per request: holds req/resp, the tenant's settings, session.

    Call :meth:`commit` after ``do_auth``/``do_complete`` to persist the session.
    Responses (``redirect``/``html``) are the Falcon ``resp`` itself, mutated.
    """

    def __init__(
        self,
        storage: type[BaseStorage],
        req: falcon.Request,
        resp: falcon.Response,
        settings: Mapping[str, Any],
        session: CookieSession,
        public_url: str = "",
    ) -> None:
        self.req = req
        self.resp = resp
        self.settings = settings
        self.public_url = public_url.rstrip("/")
        self._cookie = session
        self.session: dict[str, Any] = session.load(req)
        self._dirty = False
        self.context: dict[str, Any] = {}  # what the pipeline hands back to the resource
        super().__init__(storage)

    # -- settings: plain dict per tenant, e.g. {"SOCIAL_AUTH_OIDC_KEY": ...}
    def get_setting(self, name: str) -> Any:
        return self.settings[name]  # KeyError => BaseStrategy tries next name

    # -- request
    def get_request_data(self, merge: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.req.method == "POST":
            media = self.req.get_media(default_when_empty=None)
            if isinstance(media, dict):
                data.update(media)
        if merge or not data:
            data = {**dict(self.req.params), **data}
        return data

    def request_host(self) -> str:
        return self.req.netloc  # host[:port], what sanitize_redirect compares

    def request_is_secure(self) -> bool:
        return self.req.scheme == "https" or self.public_url.startswith("https://")

    def request_path(self) -> str:
        return self.req.path

    def request_port(self) -> int:
        return self.req.port

    def request_get(self) -> dict[str, Any]:
        return dict(self.req.params)

    def request_post(self) -> dict[str, Any]:
        if self.req.method != "POST":
            return {}
        media = self.req.get_media(default_when_empty=None)
        return media if isinstance(media, dict) else {}

    def build_absolute_uri(self, path: str | None = None) -> str:
        # req.prefix = scheme://netloc + app root; behind a proxy enable
        # falcon's forwarded-header handling so scheme/host are the public ones.
        if path and "://" in path:
            return path
        return (self.public_url or self.req.prefix) + (path or self.req.path)

    # -- responses
    def redirect(self, url: str) -> falcon.Response:
        self.resp.status = falcon.HTTP_302
        self.resp.location = url
        return self.resp

    def html(self, content: str) -> falcon.Response:
        self.resp.content_type = falcon.MEDIA_HTML
        self.resp.text = content
        return self.resp

    def render_html(
        self, tpl: str | None = None, html: str | None = None, context: dict[str, Any] | None = None
    ) -> str:
        if html is None:
            raise ValueError("templates are not supported; pass html")
        return html

    # -- session (JSON-serialisable values only: it goes into a cookie)
    def session_get(self, name: str, default: Any = None) -> Any:
        return self.session.get(name, default)

    def session_set(self, name: str, value: Any) -> None:
        self.session[name] = value
        self._dirty = True

    def session_pop(self, name: str) -> Any:
        self._dirty = self._dirty or name in self.session
        return self.session.pop(name, None)

    def commit(self) -> None:
        """Persist session changes into the response cookie."""
        if self._dirty:
            self._cookie.save(self.req, self.resp, self.session)
            self._dirty = False
