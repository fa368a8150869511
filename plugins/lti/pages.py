"""What a browser sees of LTI: the page that posts a signed message on to the peer (the
OIDC form_post response mode, a Deep Linking response), and refused launches, which name the
failed check and where to fix it (as an HTML page for a browser, problem+json otherwise: the
routes are declared ``browser=True``) and are written to the school's audit log."""

from __future__ import annotations

import html
import secrets
from collections.abc import Mapping
from typing import Any, NoReturn

import falcon
from learnplat_identity.api import IDENTITY

from learnplat.plugin import BadRequest, ProblemCode, Runtime, db

REFUSED_TITLE = "LTI launch refused"


def launch_problem(explanation: str, status: int = 400) -> ProblemCode:
    """The declaration of a refused launch's code (Plugin.problems)."""
    return ProblemCode(status, explanation, title=REFUSED_TITLE)


def refuse(runtime: Runtime, code: str, detail: str, fix: str, *, role: str, ip: str = "",
           audit: Mapping[str, Any] | None = None, status: int = 400) -> NoReturn:
    """Refuse a launch (or a step of one): audited as ``lti.launch_refused`` with the code,
    the role ("platform" or "tool"), what failed and `audit`'s details (registration ids;
    never a token), kept although the request fails; then a 400 problem with `code`, `detail`
    (what failed, in words) and `fix` (where to fix it: which registration field, which
    setting), shown as a page to a browser. `code` must be declared with `launch_problem`."""
    runtime.service(IDENTITY).audit("lti.launch_refused", ip=ip, detail={
        "code": code, "role": role, "detail": detail[:500], **(audit or {})})
    db.keep_on_failure()
    err = BadRequest(detail, code=code, fix=fix)
    err.status = status
    err.title = REFUSED_TITLE
    raise err


def auto_post(resp: falcon.Response, url: str, fields: Mapping[str, str],
              title: str = "Continuing…") -> None:
    """Answer a page that POSTs `fields` to `url` at once (a script allowed by a nonce in
    the page's CSP; a button without script). For the OIDC form_post response and Deep
    Linking responses: the browser carries the signed message to the peer."""
    nonce = secrets.token_urlsafe(16)
    esc = html.escape
    inputs = "".join(f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">'
                     for k, v in fields.items())
    resp.content_type = "text/html; charset=utf-8"
    resp.cache_control = ["no-store"]
    resp.set_header("Content-Security-Policy",
                    f"default-src 'none'; script-src 'nonce-{nonce}'; "
                    f"form-action {_origin(url)}; frame-ancestors *")
    resp.text = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}'
        f'</title></head><body><form id="lti" method="post" action="{esc(url)}">{inputs}'
        f'<noscript><button type="submit">Continue</button></noscript></form>'
        f'<script nonce="{nonce}">document.getElementById("lti").submit();</script>'
        "</body></html>")


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else "'self'"


def page(resp: falcon.Response, title: str, body_html: str) -> None:
    """A plain page of learnplat's own (the tool's content picker); `body_html` is trusted
    markup the caller built with html.escape."""
    esc = html.escape
    resp.content_type = "text/html; charset=utf-8"
    resp.cache_control = ["no-store"]
    resp.set_header("Content-Security-Policy",
                    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' *; "
                    "frame-ancestors *")
    resp.text = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}'
        "</title><style>body{font:16px/1.5 system-ui,sans-serif;max-width:48em;margin:2em "
        f"auto;padding:0 1em}}</style></head><body><h1>{esc(title)}</h1>{body_html}</body></html>")
