"""The API reference page, ``GET /docs``: Swagger UI over ``/openapi.json``, with the intro of
the document's ``info.description`` (schools, signing in, pagination, rate limits, errors), the
operations grouped by plugin (the document's tags) and the catalogue of problem types.

Swagger UI's files come from the pinned ``swagger-ui-py`` distribution, read from where it is
installed (its Python package is never imported) and served by learnplat under
``/docs/assets/<digest>/<name>``, cached for good; nothing comes from another host, and the
page's Content-Security-Policy would refuse it if anything tried (docs/decisions/1601). A
school hides the page with the tenant setting ``api.reference = false``; ``server.
reference_page = false`` hides it for every school.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import importlib.metadata
import inspect
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import falcon

from .. import __version__
from ..auth import PUBLIC
from ..contracts import Plugin
from ..errors import NotFound
from . import reference_page
from .conditional import none_match
from .endpoint import endpoint
from .problems import catalogue

if TYPE_CHECKING:
    from ..registry import ProblemType
    from ..runtime import Runtime
    from ..tenancy import TenantInfo

DISTRIBUTION = "swagger-ui-py"  # pinned in setup.cfg; ships Swagger UI 5 as plain files
# The files of the distribution the page uses (of the ~25 it ships), by name.
PACKAGE_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
OWN_FILES = {
    "reference.js": (reference_page.SCRIPT, "text/javascript; charset=utf-8"),
    "reference.css": (reference_page.STYLES, "text/css; charset=utf-8"),
}
# Only this origin's scripts, styles, images and API calls. Swagger UI sets styles through the
# DOM (allowed), its stylesheet draws icons from data: URLs, and "Try it out" calls this API.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'self'")
IMMUTABLE = "public, max-age=31536000, immutable"
TENANT_SETTING = "api.reference"


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str
    gzipped: bytes | None  # for text files, sent to clients that accept gzip


class Assets:
    """The page's files, read once on first use (Swagger UI's bundle is 1.5 MB: a command
    that never serves the page never reads it). `digest` names this set of files in their
    URLs, so an upgrade of the package or of the page's own files changes every URL and a
    browser's cached copy is never stale."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, Asset] | None = None
        self.digest = ""
        self.swagger_ui_version = ""

    def files(self) -> dict[str, Asset]:
        if self._files is None:
            with self._lock:
                if self._files is None:
                    self._files = self._load()
        return self._files

    def _load(self) -> dict[str, Asset]:
        dist = importlib.metadata.distribution(DISTRIBUTION)
        raw: dict[str, tuple[bytes, str]] = {}
        for name, content_type in PACKAGE_FILES.items():
            path = Path(str(dist.locate_file(f"swagger_ui/static/{name}")))
            raw[name] = (path.read_bytes(), content_type)
        for name, (text, content_type) in OWN_FILES.items():
            raw[name] = (text.encode(), content_type)
        total = hashlib.sha256()
        files: dict[str, Asset] = {}
        for name, (body, content_type) in sorted(raw.items()):
            digest = hashlib.sha256(body).hexdigest()
            total.update(f"{name}:{digest}\n".encode())
            compressible = not content_type.startswith("image/")
            files[name] = Asset(body, content_type, f'"{digest[:32]}"',
                                gzip.compress(body, 9, mtime=0) if compressible else None)
        self.swagger_ui_version = dist.version
        self.digest = total.hexdigest()[:16]
        return files


# -- what the document says (info.description, tags) -------------------------------------------

INTRO = """\
How a school's web or mobile app talks to learnplat. Every operation below shows its \
parameters, its request and answer bodies with an example of each, and every status it can \
answer; **Try it out** sends a real request to this server.

## Schools

Every school is its own tenant. Name it in each request with the `X-Tenant: <slug>` header, \
or call the API on the school's own domain. A request that names no known school gets 404 on \
every school's operation, and a token issued in one school is refused (401) in every other.

## Signing in

1. `POST /auth/login` with `{"email": "...", "password": "..."}` answers a token pair: \
`access_token`, `refresh_token`, `expires_in` (seconds).
2. Send the access token with each request: `Authorization: Bearer <access_token>` (the \
**Authorize** button here does it for **Try it out**).
3. Before it expires (or on a 401 `not_authenticated`), `POST /auth/refresh` with \
`{"refresh_token": "..."}` for a new pair. A refresh token works once: using it twice ends \
the session (401 `refresh_token_reused`).
4. `POST /auth/logout` ends the session. Operations marked with no lock need no token.

Accounts come from `POST /auth/register` (when the school allows it), an administrator, or \
the school's single sign-on (`/auth/oauth/{provider}/login`).

## Pagination

Lists take `?limit=` (default 20, at most 100) and `?cursor=`, and answer \
`{"items": [...], "next_cursor": "..."}`. Pass `next_cursor` as `cursor` for the next page; \
`next_cursor` is `null` on the last page. Cursors are opaque: do not build or change them.

## Rate limits

Every operation (but the health probes) counts against budgets: the caller's (or, without a \
token, the client address's) and the school's. Each answer says where the caller stands:

- `RateLimit: "user";r=148;t=1`: the budget closest to refusing, with `r` units remaining \
and `t` seconds until it is whole again;
- `RateLimit-Policy: "user";q=150;w=30, "tenant";q=5000;w=10`: each budget, `q` units of \
burst refilled in `w` seconds.

Once a budget is spent the answer is 429 `rate_limited` with `Retry-After: <seconds>`: wait \
that long, then retry. An operation's `x-rate-limit` says which budget it uses and what one \
request costs.

## Errors

Errors are `application/problem+json` (RFC 9457): `type`, `title`, `status`, `detail`, \
`code` and `request_id`, and for invalid input (422) an `errors` list naming each field. \
`type` is `urn:learnplat:problem:<code>`: every code is explained under \
[Problem types](#problem-types) at the end of this page (`/docs#problem-<code>`).
"""


def describe_api(runtime: Runtime) -> str:
    """The document's ``info.description`` (Markdown, which the reference page renders)."""
    return INTRO


def _first_paragraph(text: str | None) -> str:
    return " ".join((inspect.cleandoc(text or "").split("\n\n") or [""])[0].split())


def plugin_description(obj: Any) -> str:
    """What a plugin's operations are for: its declared ``description``, else its class's
    docstring (a Plugin object) or its module's (a module of hooks), first paragraph."""
    declared = getattr(obj, "description", "")
    if isinstance(declared, str) and declared.strip():
        return " ".join(declared.split())
    if isinstance(obj, Plugin) and type(obj).__doc__ not in (None, Plugin.__doc__):
        return _first_paragraph(type(obj).__doc__)
    return _first_paragraph(getattr(obj, "__doc__", None))


def plugin_tags(runtime: Runtime, names: list[str]) -> list[dict[str, str]]:
    """The document's top-level ``tags``: one per plugin with operations, in `names`' order,
    described (the reference page shows each group with its description)."""
    tags = []
    for name in names:
        obj = runtime.pm.get_plugin(name)
        description = plugin_description(obj) if obj is not None else ""
        tags.append({"name": name, "description": description or f"The {name} plugin."})
    return tags


# -- the page ----------------------------------------------------------------------------------

_LITERAL = re.compile(r"``([^`]+)``|`([^`]+)`")


def _explanation_html(text: str) -> str:
    escaped = html.escape(text, quote=False)
    return _LITERAL.sub(lambda m: f"<code>{m.group(1) or m.group(2)}</code>", escaped)


def problem_rows(problems: dict[str, ProblemType]) -> str:
    """The catalogue's rows, by code, each with its anchor (``#problem-<code>``)."""
    rows = []
    for code in sorted(problems):
        entry = problems[code]
        rows.append(reference_page.PROBLEM_ROW.substitute(
            code=html.escape(code), statuses=", ".join(map(str, entry.statuses)),
            title=html.escape(entry.title), explanation=_explanation_html(entry.explanation),
            declared_by=html.escape(", ".join(entry.declared_by))))
    return "\n".join(rows)


def hidden_for(tenant: TenantInfo | None) -> bool:
    """Whether the school hides its reference page (tenant setting ``api.reference =
    false``). Without a school the page is shown."""
    return tenant is not None and tenant.setting(TENANT_SETTING, True) is False


def _hidden_everywhere(runtime: Runtime) -> None:
    if not runtime.settings.server.reference_page:
        raise NotFound("the API reference page is switched off on this server")


class ReferencePage:
    """``GET /docs``: the page (a few KB; Swagger UI and the document load from this host)."""

    def __init__(self, runtime: Runtime, assets: Assets):
        self.runtime = runtime
        self.assets = assets
        self._body: dict[str, bytes] = {}  # by the relative prefix of its URLs

    @endpoint(permission=PUBLIC, response_content_type="text/html", errors=(404,),
              summary="The API reference page (this page): the operations by plugin, how to "
                      "sign in, paginate and read rate limits, and every problem type")
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The API reference page (HTML). A school hides it with its setting
        ``api.reference = false``: the page then answers 404 when the request names that
        school (X-Tenant or its domain); without a school it is always served (unless the
        server's ``server.reference_page`` is false)."""
        _hidden_everywhere(self.runtime)
        tenant = req.context.tenant
        if tenant is None:  # not named by X-Tenant: the school of the domain, if any
            passage = req.context.passage
            passage.hold_connection()
            tenant = passage.find_tenant(None, required=False)
        if hidden_for(tenant):
            raise NotFound("this school does not publish its API reference page")
        # /docs/ (trailing slash) reaches this route too: its relative URLs need one step up.
        base = "../" if req.env.get("PATH_INFO", "").endswith("/") else ""
        body = self._body.get(base)
        if body is None:
            body = self._body[base] = self._render(base)
        resp.data = body
        resp.content_type = "text/html; charset=utf-8"
        resp.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.set_header("Referrer-Policy", "same-origin")
        # Whether it is shown depends on the school (X-Tenant, or Host): never cache across.
        resp.set_header("Cache-Control", "no-cache")
        resp.append_header("Vary", "X-Tenant")

    def _render(self, base: str) -> bytes:
        self.assets.files()  # the digest
        page = reference_page.PAGE.substitute(
            title="learnplat", version=html.escape(__version__),
            assets=f"{base}docs/assets/{self.assets.digest}",
            problems=problem_rows(catalogue(self.runtime.registry)))
        return page.replace('href="openapi.json"', f'href="{base}openapi.json"').replace(
            'data-url="openapi.json"', f'data-url="{base}openapi.json"').encode()


class ReferenceAsset:
    """``GET /docs/assets/{digest}/{asset}``: a file of the page, cached by browsers and
    proxies for a year (its URL changes with its content)."""

    def __init__(self, runtime: Runtime, assets: Assets):
        self.runtime = runtime
        self.assets = assets

    @endpoint(permission=PUBLIC, response_content_type="*/*", errors=(404,), also=(304,),
              summary="A file of the API reference page (Swagger UI's, from the pinned "
                      "swagger-ui-py package, or the page's own)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, digest: str,
               asset: str) -> None:
        _hidden_everywhere(self.runtime)
        found = self.assets.files().get(asset)
        if found is None or digest != self.assets.digest:
            # An old page's URL after an upgrade finds nothing rather than a newer file.
            raise NotFound("no such file of the reference page (reload the page)")
        gzipped = found.gzipped is not None and "gzip" in (
            req.get_header("Accept-Encoding") or "").lower()
        etag = found.etag[:-1] + '-gz"' if gzipped else found.etag
        resp.set_header("Cache-Control", IMMUTABLE)
        resp.set_header("ETag", etag)
        resp.set_header("X-Content-Type-Options", "nosniff")
        if found.gzipped is not None:
            resp.append_header("Vary", "Accept-Encoding")
        if none_match(req.get_header("If-None-Match"), etag):
            resp.status = 304
            return
        resp.content_type = found.content_type
        if gzipped:
            resp.set_header("Content-Encoding", "gzip")
        resp.data = found.gzipped if gzipped else found.body


def routes(runtime: Runtime) -> list[Any]:
    """The page's routes (registered by the core plugin): not tenant-scoped, as
    /openapi.json (a school is still named by X-Tenant or its domain, for hiding)."""
    from ..registry import Route

    assets = Assets()
    return [Route("/docs", ReferencePage(runtime, assets), tenant_scoped=False),
            Route("/docs/assets/{digest}/{asset}", ReferenceAsset(runtime, assets),
                  tenant_scoped=False)]
