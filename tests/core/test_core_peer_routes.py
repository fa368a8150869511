"""Routes another system calls or sends a browser to (LTI peers): the school named in the
path (Route.tenant_param) instead of X-Tenant, an HTML form's body (FORM), an Authorization
header that is the route's own (own_credentials), and errors a person reads as a page
(browser=True) while a program still gets problem+json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import falcon
import pytest
import testnotes
from corehelpers import build_runtime

from learnplat import hookimpl
from learnplat.auth import PUBLIC
from learnplat.errors import BadRequest, Unauthorized
from learnplat.http.app import create_app
from learnplat.http.endpoint import FORM, endpoint
from learnplat.http.openapi import build_document
from learnplat.plugin import Schema
from learnplat.registry import Route
from learnplat.tenancy import current_tenant
from learnplat.testing import make_tenant, use_runtime


class PostedIn(Schema):
    id_token: str
    state: str = ""


class Landing:
    @endpoint(permission=PUBLIC, body=PostedIn, content_type=FORM, browser=True,
              own_credentials=True, summary="Where a peer posts a form")
    def on_post(self, req: falcon.Request, resp: falcon.Response, body: PostedIn
                ) -> dict[str, Any]:
        if body.state == "bad":
            raise BadRequest("the state <b>bad</b> was never issued", code="bad_request",
                             fix="start the launch again from the course page")
        return {"school": current_tenant().slug, "id_token": body.id_token,
                "state": body.state, "principal": req.context.principal is None,
                "authorization": req.get_header("Authorization") or ""}


def _lti_token(resource: Any, req: falcon.Request) -> None:
    if req.get_header("Authorization") != "Bearer good":
        raise Unauthorized("no valid access token")


class Scored:
    @endpoint(permission=PUBLIC, body=PostedIn, own_credentials=_lti_token,
              content_type="application/vnd.ims.lis.v1.score+json",
              summary="A JSON-based media type, with the route's own bearer token")
    def on_post(self, req: falcon.Request, resp: falcon.Response, body: PostedIn
                ) -> dict[str, Any]:
        return {"id_token": body.id_token}


class Plain:
    @endpoint(permission=PUBLIC, summary="An ordinary route")
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> dict[str, Any]:
        raise BadRequest("always")


class PeerPlugin:
    @hookimpl
    def register_routes(self, runtime: Any) -> list[Route]:
        return [Route("/peer/schools/{school}/landing", Landing(), tenant_param="school"),
                Route("/peer/schools/{school}/scores", Scored(), tenant_param="school"),
                Route("/peer/plain", Plain())]


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory, core_database: Any) -> Any:
    rt = build_runtime(tmp_path_factory.mktemp("peer"), core_database,
                       plugins=[("testnotes", testnotes), ("peer", PeerPlugin())],
                       do_migrate=False)
    return rt, create_app(rt)


FORM_HEADERS = {"Content-Type": FORM}


def _post(client: falcon.testing.TestClient, slug: str, body: str, **headers: str) -> Any:
    return client.simulate_post(f"/peer/schools/{slug}/landing", body=body,
                                headers={**FORM_HEADERS, **headers})


def test_the_path_names_the_school_and_the_form_is_read(peer: Any, core_runtime: Any) -> None:
    rt, app = peer
    client = falcon.testing.TestClient(app)
    with use_runtime(rt):
        a, b = make_tenant(rt), make_tenant(rt)
        r = _post(client, a.slug, "id_token=eyJ.a%2Bb.c&state=s1")
        assert r.status_code == 200, r.text
        assert r.json == {"school": a.slug, "id_token": "eyJ.a+b.c", "state": "s1",
                          "principal": True, "authorization": ""}
        # The path wins over an X-Tenant that names another school.
        r = _post(client, b.slug, "id_token=t", **{"X-Tenant": a.slug})
        assert r.status_code == 200 and r.json["school"] == b.slug
        # No such school: 404, as for an unknown X-Tenant.
        r = _post(client, "no-such-school", "id_token=t")
        assert r.status_code == 404 and r.json["code"] == "not_found"


def test_the_authorization_header_is_the_routes_own(peer: Any, core_runtime: Any) -> None:
    rt, app = peer
    client = falcon.testing.TestClient(app)
    with use_runtime(rt):
        a = make_tenant(rt)
        # Not a token learnplat issued: the gate does not refuse it, the responder reads it.
        r = _post(client, a.slug, "id_token=t", Authorization="Bearer lti-access-token")
        assert r.status_code == 200, r.text
        assert r.json["authorization"] == "Bearer lti-access-token"
        assert r.json["principal"] is True


def test_the_routes_own_credentials_are_checked_before_its_body(peer: Any, core_runtime: Any
                                                                  ) -> None:
    rt, app = peer
    client = falcon.testing.TestClient(app)
    score = "application/vnd.ims.lis.v1.score+json"
    with use_runtime(rt):
        a = make_tenant(rt)
        path = f"/peer/schools/{a.slug}/scores"
        for auth in ("", "Bearer bad", f"Bearer note:{a.id}:admin:1"):
            r = client.simulate_post(path, body="{}", headers={"Content-Type": score,
                                                               "Authorization": auth})
            assert r.status_code == 401, (auth, r.text)  # not 422: who asks comes first
        r = client.simulate_post(path, body="{}", headers={"Content-Type": score,
                                                           "Authorization": "Bearer good"})
        assert r.status_code == 422
        r = client.simulate_post(path, body='{"id_token": "t"}',
                                 headers={"Content-Type": score, "Authorization": "Bearer good"})
        assert r.status_code == 200 and r.json == {"id_token": "t"}
    op = build_document(rt)["paths"]["/peer/schools/{school}/scores"]["post"]
    assert list(op["requestBody"]["content"]) == [score]


@pytest.mark.parametrize(("body", "content_type", "status", "says"), [
    ('{"id_token": "t"}', "application/json", 415, FORM),
    ("id_token=a&id_token=b", FORM, 400, "appears twice"),
    ("id_token=%FF", FORM, 400, "UTF-8"),
    ("state=only", FORM, 422, "id_token"),
    ("", FORM, 422, "id_token"),
    ("id_token=a%00b", FORM, 422, "NUL"),
    ("id_token=t&extra=1", FORM, 422, "extra"),
])
def test_bad_forms_are_clear_4xx(peer: Any, core_runtime: Any, body: str, content_type: str,
                                 status: int, says: str) -> None:
    rt, app = peer
    client = falcon.testing.TestClient(app)
    with use_runtime(rt):
        a = make_tenant(rt)
        r = _post(client, a.slug, body, **{"Content-Type": content_type})
        assert r.status_code == status, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert says in r.text


def test_a_browser_reads_a_page_a_program_reads_problem_json(peer: Any, core_runtime: Any
                                                              ) -> None:
    rt, app = peer
    client = falcon.testing.TestClient(app)
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    with use_runtime(rt):
        a = make_tenant(rt)
        r = _post(client, a.slug, "id_token=t&state=bad", Accept=browser)
        assert r.status_code == 400
        assert r.headers["content-type"].startswith("text/html")
        page = r.text
        # What failed and how to fix it, escaped; the code and the request id to quote.
        assert "the state &lt;b&gt;bad&lt;/b&gt; was never issued" in page
        assert "<b>bad</b>" not in page
        assert "start the launch again from the course page" in page
        assert r.headers["X-Request-Id"] in page and "bad_request" in page
        assert "script-src" not in r.headers["Content-Security-Policy"]
        for accept in ("application/json", "application/problem+json", "*/*", ""):
            r = _post(client, a.slug, "id_token=t&state=bad", Accept=accept)
            assert r.headers["content-type"] == "application/problem+json", accept
            assert r.json["fix"] == "start the launch again from the course page"
        # A route that is not a browser's keeps problem+json whatever the client prefers.
        r = client.simulate_get("/peer/plain", headers={"X-Tenant": a.slug, "Accept": browser})
        assert r.status_code == 400
        assert r.headers["content-type"] == "application/problem+json"


def test_the_document_names_the_school_in_the_path_and_the_form(peer: Any, tmp_path: Path
                                                                 ) -> None:
    rt, _app = peer
    op = build_document(rt)["paths"]["/peer/schools/{school}/landing"]["post"]
    params = {p.get("name", p.get("$ref")): p for p in op["parameters"]}
    assert params["school"]["in"] == "path" and "slug" in params["school"]["description"]
    assert "#/components/parameters/XTenant" not in params
    assert list(op["requestBody"]["content"]) == [FORM]


def test_own_credentials_only_on_public_routes() -> None:
    with pytest.raises(ValueError, match="PUBLIC"):
        endpoint(permission="course.update", own_credentials=True)(lambda self, req, resp: None)
