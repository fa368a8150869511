"""The API reference page, GET /docs (issue 26, item 2): Swagger UI from the pinned
swagger-ui-py package, served by learnplat with its assets (cached for good, nothing from
another host), the operations grouped by plugin with descriptions, the intro sections, the
catalogue of problem types (every code raised in the code base declared, with an anchor each),
hidden for a school that asks; and a real headless Chromium that renders it from gunicorn."""

from __future__ import annotations

import ast
import gzip
import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import falcon
import pytest
import requests
from corehelpers import build_runtime

from learnplat.errors import Conflict, NotFound
from learnplat.http import reference
from learnplat.http.app import create_app
from learnplat.http.openapi import build_document
from learnplat.http.problems import catalogue
from learnplat.plugin import PUBLIC, Plugin, ProblemCode, Route, endpoint, hookimpl
from learnplat.registry import StartupError
from learnplat.tenants import TenantSpec
from learnplat.testing import Client, make_tenant, serve_with_gunicorn

REPO = Path(__file__).resolve().parents[2]
ASSET_URL = re.compile(r'(?:src|href)="((?:\.\./)?docs/assets/([0-9a-f]{16})/([^"]+))"')


def _page(client: Client, path: str = "/docs", host: str | None = None,
          **headers: str) -> falcon.testing.Result:
    extra: dict[str, Any] = {"host": host} if host else {}
    return client.request("GET", path, headers=headers or None, **extra)


@pytest.fixture(scope="module")
def anonymous(lp_app: Any) -> Client:
    return Client(lp_app)


def test_page_is_html_with_a_strict_policy_and_same_origin_urls(anonymous: Client) -> None:
    r = _page(anonymous)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert r.headers["cache-control"] == "no-cache"
    page = r.text
    # Nothing points off-site: no absolute URL at all in an attribute, every asset relative.
    assert not re.search(r'(?:src|href|action|data-url)="(?:[a-z]+:)?//', page, re.I)
    assert "http://" not in page and "https://" not in page
    assert 'data-url="openapi.json"' in page
    assets = {name for _, _, name in ASSET_URL.findall(page)}
    assert {"swagger-ui-bundle.js", "swagger-ui.css", "reference.js",
            "reference.css"} <= assets
    assert "<script>" not in page and "<style" not in page  # nothing inline for the CSP
    # The problem catalogue, one anchor per code.
    assert 'id="problem-types"' in page
    assert 'id="problem-email_taken"' in page and 'id="problem-validation_failed"' in page
    # /docs/ (a trailing slash) works too: its relative URLs go one step up.
    slash = _page(anonymous, "/docs/")
    assert slash.status_code == 200
    assert 'data-url="../openapi.json"' in slash.text
    assert {url for url, _, _ in ASSET_URL.findall(slash.text)} == {
        f"../{url}" for url, _, _ in ASSET_URL.findall(page)}


def test_assets_cached_for_good_gzip_and_304(anonymous: Client) -> None:
    page = _page(anonymous).text
    found = {name: (url, digest) for url, digest, name in ASSET_URL.findall(page)}
    url, digest = found["swagger-ui-bundle.js"]
    r = anonymous.request("GET", f"/{url}", headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "content-encoding" not in r.headers
    assert b"SwaggerUIBundle" in r.content
    # The file the pinned package ships, byte for byte, and its version is Swagger UI 5.
    shipped = reference.Assets()
    bundle = shipped.files()["swagger-ui-bundle.js"].body
    assert r.content == bundle and b"5.24.2" in bundle
    assert shipped.digest == digest and shipped.swagger_ui_version == "25.7.1"
    etag = r.headers["etag"]
    again = anonymous.request("GET", f"/{url}", headers={"If-None-Match": etag,
                                                          "Accept-Encoding": "identity"})
    assert again.status_code == 304 and not again.content
    # Read as RFC 9110 says (learnplat.http.conditional): a list, a weak form of the tag.
    listed = anonymous.request("GET", f"/{url}", headers={
        "If-None-Match": f'"other", W/{etag}', "Accept-Encoding": "identity"})
    assert listed.status_code == 304 and not listed.content
    zipped = anonymous.request("GET", f"/{url}", headers={"Accept-Encoding": "gzip, br"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["vary"]
    assert gzip.decompress(zipped.content) == bundle
    assert zipped.headers["etag"] != etag
    css = anonymous.get(f"/{found['swagger-ui.css'][0]}")
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    png = anonymous.get(f"/{found['favicon-32x32.png'][0]}")
    assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    # Another digest (an old page after an upgrade) or a file the page does not use: 404.
    for path in (f"/docs/assets/{'0' * 16}/swagger-ui-bundle.js",
                 f"/docs/assets/{digest}/swagger-editor-bundle.js",
                 f"/docs/assets/{digest}/..%2Fsetup.cfg"):
        missing = anonymous.get(path)
        assert missing.status_code == 404, path
        assert missing.headers["content-type"] == "application/problem+json"


def test_a_school_hides_its_page(lp_app: Any, lp_runtime: Any, anonymous: Client) -> None:
    suffix = uuid.uuid4().hex[:8]
    hidden = make_tenant(lp_runtime, settings={"api": {"reference": False}},
                         domains=[f"hidden-{suffix}.example"])
    shown = make_tenant(lp_runtime, domains=[f"shown-{suffix}.example"])
    for kw in ({"X-Tenant": hidden.slug}, {"host": f"hidden-{suffix}.example"}):
        r = _page(anonymous, **kw)
        assert r.status_code == 404, kw
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json["code"] == "not_found" and "reference" in r.json["detail"]
    for kw in ({"X-Tenant": shown.slug}, {"host": f"shown-{suffix}.example"}, {}):
        assert _page(anonymous, **kw).status_code == 200, kw
    assert _page(anonymous, **{"X-Tenant": "no-such-school"}).status_code == 404
    # The document itself stays published (the page is only its reader).
    assert anonymous.request("GET", "/openapi.json",
                             headers={"X-Tenant": hidden.slug}).status_code == 200
    # The setting is validated when a school is declared.
    with pytest.raises(ValueError, match=r"api\.reference"):
        TenantSpec(slug="x", name="x", settings={"api": {"reference": "no"}})


def test_the_server_can_switch_it_off(tmp_path: Path, fresh_db: Any) -> None:
    rt = build_runtime(tmp_path, fresh_db, server={"reference_page": False})
    r = Client(create_app(rt)).get("/docs")
    assert r.status_code == 404 and "switched off" in r.json["detail"]


def test_document_describes_plugins_and_the_intro(lp_runtime: Any) -> None:
    doc = build_document(lp_runtime)
    tags = {t["name"]: t["description"] for t in doc["tags"]}
    assert len(tags) == len(doc["tags"])  # one per name
    used = {tag for item in doc["paths"].values() for op in item.values()
            for tag in op.get("tags", [])}
    assert used <= set(tags)
    assert {"core", "identity", "courses", "enrollment", "progress", "quizzes",
            "notifications", "certificates", "media"} <= used
    for name in used:
        assert len(tags[name]) > 20 and tags[name] != f"The {name} plugin.", name
    assert tags["courses"].startswith("Courses and their modules")
    intro = doc["info"]["description"]
    for section in ("## Schools", "## Signing in", "## Pagination", "## Rate limits",
                    "## Errors", "X-Tenant", "RateLimit-Policy", "Retry-After", "next_cursor",
                    "urn:learnplat:problem:<code>", "/auth/login", "/auth/refresh"):
        assert section in intro, section
    docs_op = doc["paths"]["/docs"]["get"]
    assert docs_op["security"] == [] and "text/html" in docs_op["responses"]["200"]["content"]
    assert "429" in docs_op["responses"]  # rate limited like every public route


# -- the catalogue of problem types --------------------------------------------------------------

# python-social-auth's exceptions, raised in the identity plugin's sign-in pipeline, reach the
# client as oauth_<their code> (learnplat_identity.oauth._problem_for).
_SOCIAL_EXCEPTIONS = re.compile(r"^Auth[A-Za-z]*Error$|^SocialAuthBaseException$")


def _codes_in_source() -> dict[str, list[str]]:
    """Every code given as ``code="..."`` to a call in learnplat/ and plugins/ (tests
    excluded), with where: what an error raised in the code base can answer."""
    found: dict[str, list[str]] = {}
    for root in (REPO / "learnplat", REPO / "plugins"):
        for path in root.rglob("*.py"):
            if "tests" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                callee = node.func.id if isinstance(node.func, ast.Name) else getattr(
                    node.func, "attr", "")
                for kw in node.keywords:
                    if kw.arg == "code" and isinstance(kw.value, ast.Constant) and isinstance(
                            kw.value.value, str):
                        code = kw.value.value
                        if _SOCIAL_EXCEPTIONS.match(callee):
                            code = f"oauth_{code}"
                        elif not callee[:1].isupper():
                            continue  # not an exception (PROBLEM_TYPE.format(code=...))
                        found.setdefault(code, []).append(
                            f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def test_every_code_raised_in_the_code_base_is_in_the_catalogue(lp_runtime: Any) -> None:
    known = catalogue(lp_runtime.registry)
    missing = {code: where for code, where in _codes_in_source().items() if code not in known}
    assert not missing, f"undeclared problem codes: {missing}"
    for code, entry in known.items():
        assert entry.explanation and entry.title and entry.statuses, code
    # The core's error classes, the plugins' declarations, single sign-on's reasons.
    for code in ("validation_failed", "rate_limited", "not_found", "method_not_allowed",
                 "storage_full", "internal_error", "email_taken", "course_full",
                 "module_locked", "no_certificate", "oauth_state_mismatch",
                 "public_url_not_set"):
        assert code in known, code
    assert known["module_locked"].declared_by == ("progress", "quizzes")
    assert known["not_enrolled"].statuses == (403, 404)


class _ProbePlugin(Plugin):
    """Answers with problem codes the catalogue knows, does not know, or knows with another
    status."""

    problems = {"probe_declared": ProblemCode(409, "Declared by the probe.")}

    @hookimpl
    def register_routes(self) -> list[Route]:
        return [Route("/probe/{which}", _ProbeResource(), tenant_scoped=False)]


class _ProbeResource:
    @endpoint(permission=PUBLIC, errors=(404, 409))
    def on_get(self, req: falcon.Request, resp: falcon.Response, which: str) -> None:
        """Raise the problem named by the path."""
        if which == "declared":
            raise Conflict("declared", code="probe_declared")
        if which == "wrong-status":
            raise NotFound("declared as a 409", code="probe_declared")
        raise Conflict("nobody declared this", code="probe_undeclared")


def test_an_undeclared_code_is_a_loud_defect_under_check_responses(
        tmp_path: Path, fresh_db: Any, caplog: pytest.LogCaptureFixture) -> None:
    rt = build_runtime(tmp_path, fresh_db, plugins=[("probe", _ProbePlugin)])
    assert rt.settings.server.check_responses  # as in every test
    client = Client(create_app(rt))
    assert client.get("/probe/declared").json["code"] == "probe_declared"
    for which, said in (("undeclared", "probe_undeclared"), ("wrong-status", "says (409,)")):
        r = client.get(f"/probe/{which}")
        assert r.status_code == 500, r.text
        assert r.json["code"] == "internal_error" and said in r.json["detail"]
    assert "is in no catalogue" in caplog.text
    # Off (production): the answer goes out as raised.
    quiet = build_runtime(tmp_path / "quiet", fresh_db, plugins=[("probe", _ProbePlugin)],
                          do_migrate=False, server={"check_responses": False})
    assert Client(create_app(quiet)).get("/probe/undeclared").status_code == 409


def test_a_malformed_declaration_stops_start_up(tmp_path: Path, fresh_db: Any) -> None:
    class Bad(_ProbePlugin):
        problems = {"Bad Code": ProblemCode(409, "spaces")}

    with pytest.raises(StartupError, match="Bad Code"):
        build_runtime(tmp_path, fresh_db, plugins=[("bad", Bad)], do_migrate=False)


# -- a real browser ------------------------------------------------------------------------------

def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("chromium is not installed (.ci/run installs the Debian package)")
    return found


def _page_requests(path: Path) -> list[tuple[str, str]]:
    """(URL, initiator) of every request the browser started, from its NetLog
    (--log-net-log). The browser's own background requests have no origin as initiator
    ("not an origin"); what a page loads has the page's origin."""
    text = path.read_text(encoding="utf-8", errors="replace").rstrip().rstrip(",")
    if not text.endswith("}"):
        text += "]}"  # a log cut at exit: close the events list
    log = json.loads(text)
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [(e["params"]["url"], e["params"].get("initiator", ""))
            for e in log["events"] if e["type"] == start and "url" in e.get("params", {})]


@pytest.mark.e2e
@pytest.mark.one_backend  # see tests/conftest.py
def test_chromium_renders_the_page_from_gunicorn(lp_runtime: Any, lp_database: Any,
                                                 tmp_path: Path) -> None:
    chromium = _chromium()
    access_log = tmp_path / "access.log"
    with serve_with_gunicorn(lp_runtime, lp_database, tmp_path, workers=1,
                             args=("--access-logfile", str(access_log))) as base:
        assert requests.get(f"{base}/docs", timeout=10).status_code == 200
        login = requests.get(f"{base}/openapi.json", timeout=30).json()[
            "paths"]["/auth/login"]["post"]["requestBody"]["content"]["application/json"]
        net_log = tmp_path / "net.json"
        profile = tmp_path / "profile"
        run = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-dev-shm-usage", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-extensions",
             "--no-default-browser-check", f"--user-data-dir={profile}",
             "--disable-features=NetworkTimeServiceQuerying,OptimizationHints",
             # No other host can even be resolved: a CDN load would fail (and show below).
             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
             f"--log-net-log={net_log}", "--enable-logging=stderr", "--v=0",
             "--virtual-time-budget=20000", "--dump-dom",
             # A deep link opens the sign-in operation: its examples render too.
             f"{base}/docs#/identity/post_auth_login"],
            capture_output=True, text=True, timeout=120)
        dom = run.stdout
    assert run.returncode == 0, run.stderr[-3000:]
    # Swagger UI ran (reference.js's onComplete) and rendered the document's parts.
    assert 'data-reference-ready="true"' in dom, run.stderr[-3000:]
    assert 'class="swagger-ui' in dom
    for section in ("Schools", "Signing in", "Pagination", "Rate limits", "Errors"):
        assert f">{section}</h2>" in dom, section
    # The operations grouped by plugin: one tag section each, with its description.
    for tag in ("core", "identity", "courses", "enrollment", "quizzes", "certificates"):
        assert f'id="operations-tag-{tag}"' in dom, tag
    assert "Courses and their modules" in dom
    assert "/auth/login" in dom and "/courses/{course_id}" in dom
    assert 'id="problem-course_full"' in dom and "urn:learnplat:problem:course_full" in dom
    opened = dom[dom.index('id="operations-identity-post_auth_login"'):]
    assert "Example Value" in opened and "Try it out" in opened
    # The body's example is the document's (its own `example`, else one from the schema).
    shown = login.get("example") or {"email": "string"}
    assert f'"{shown["email"]}"' in opened and '"password"' in opened
    # The policy refused nothing: Swagger UI needs nothing inline beyond what it allows.
    assert "Content Security Policy" not in run.stderr, run.stderr[-3000:]
    # Everything the page loaded came from this server (the browser's own background
    # requests, started by no page, are not the page's; no other host resolves anyway).
    origin = f"{urlsplit(base).scheme}://{urlsplit(base).netloc}"
    started = _page_requests(net_log)
    loaded = [url for url, initiator in started if initiator == origin]
    assert any(url.endswith("/openapi.json") for url in loaded), started
    assert all(url.startswith(f"{origin}/") for url, initiator in started
               if initiator != "not an origin"), started
    served = access_log.read_text()
    for path in ("/docs ", "/swagger-ui-bundle.js", "/swagger-ui.css", "/reference.js",
                 "/openapi.json"):
        assert path in served, (path, served[-2000:])
