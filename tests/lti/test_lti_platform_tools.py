"""Tool registrations of learnplat as platform (/lti/tools and `learnplat lti tools`):
validation, the platform URLs the admin gives the tool, lti modules, permissions and
tenant isolation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from learnplat_identity.testing import UserFactory
from ltiplatformhelpers import School
from ltitool import TestTool

from learnplat.tenancy import TenantInfo

SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"


@pytest.fixture
def school(lp_runtime: Any, lp_client: Any, lp_tenant: TenantInfo, lti_plugin: Any,
           lti_base: str) -> School:
    return School(lp_runtime, lp_client, lp_tenant, lti_plugin)


@pytest.fixture
def tool() -> Iterator[TestTool]:
    t = TestTool().start()
    yield t
    t.stop()


def test_register_read_change_remove(school: School, tool: TestTool) -> None:
    reg = school.register(tool, scopes=[SCORE], custom={"a": "$User.id"})
    assert reg["client_id"].startswith("lp-") and len(reg["client_id"]) > 30
    assert len(reg["deployment_ids"]) == 1  # one made
    assert reg["redirect_uris"] == [tool.launch_url]
    urls = school.plugin.urls
    assert reg["platform"] == {
        "issuer": urls.issuer(school.tenant), "jwks_url": urls.jwks(school.tenant),
        "authorization_url": urls.platform_auth(school.tenant),
        "token_url": urls.platform_token(school.tenant),
        "deep_link_return_url": urls.deep_link_return(school.tenant)}
    second = school.register(tool)
    assert second["client_id"] != reg["client_id"]
    listed = school.a.get("/lti/tools")
    assert [t["id"] for t in listed.json["items"]] == [reg["id"], second["id"]]
    r = school.a.patch(f"/lti/tools/{reg['id']}", json={"send_email": False,
                                                        "public_jwk": tool.public_jwk()})
    assert r.status_code == 200, r.text
    assert r.json["send_email"] is False and r.json["public_jwk"]["kty"] == "RSA"
    assert school.a.get(f"/lti/tools/{reg['id']}").json["send_email"] is False
    assert school.a.delete(f"/lti/tools/{reg['id']}").status_code == 204
    r = school.a.get(f"/lti/tools/{reg['id']}")
    assert r.status_code == 404 and r.json["code"] == "lti_no_tool"


@pytest.mark.parametrize(("fields", "where"), [
    ({"jwks_url": ""}, "jwks_url"),  # no keys at all
    ({"scopes": ["https://example.com/scope/everything"]}, "scopes"),
    ({"login_url": "ftp://tool.example/login"}, "login_url"),
    ({"jwks_url": "http://10.0.0.1/jwks"}, "jwks_url"),  # the outbound policy refuses it
    ({"custom": {"bad key": "x"}}, "custom"),
])
def test_bad_registrations_are_422(school: School, tool: TestTool, fields: dict[str, Any],
                                   where: str) -> None:
    r = school.a.post("/lti/tools", json=tool.registration_body(**fields))
    assert r.status_code == 422, r.text
    assert where in r.text
    assert school.a.get("/lti/tools").json["items"] == []


def test_patch_cannot_remove_both_keys(school: School, tool: TestTool) -> None:
    reg = school.register(tool)
    r = school.a.patch(f"/lti/tools/{reg['id']}", json={"jwks_url": ""})
    assert r.status_code == 422, r.text
    r = school.a.patch(f"/lti/tools/{reg['id']}", json={"name": None})
    assert r.status_code == 422, r.text


def test_only_admins_manage_tools_and_owners_link_modules(school: School,
                                                          tool: TestTool) -> None:
    reg = school.register(tool)
    for who in (school.t, school.s):
        assert who.get("/lti/tools").status_code == 403
        assert who.post("/lti/tools", json=tool.registration_body()).status_code == 403
        assert who.get(f"/lti/tools/{reg['id']}").status_code == 403
    path = f"/courses/{school.course_id}/modules/{school.module_ids[0]}/lti"
    assert school.s.put(path, json={"tool_id": reg["id"]}).status_code in (403, 404)
    r = school.t.put(path, json={"tool_id": 999999})
    assert r.status_code == 404 and r.json["code"] == "lti_no_tool"
    assert school.s.get(path).status_code == 404  # not an lti module yet
    out = school.link(reg["id"], custom={"k": "v"}, max_score=5)
    assert out["tool_name"] == "Chem Lab" and out["max_score"] == 5
    course = school.s.get(f"/courses/{school.course_id}").json
    assert next(m["kind"] for m in course["modules"]) == "lti"
    assert school.s.get(path).json["custom"] is None
    assert school.a.get(path).json["custom"] == {"k": "v"}


def test_another_school_sees_no_registration(school: School, tool: TestTool,
                                             lp_other_tenant: TenantInfo) -> None:
    reg = school.register(tool)
    other = UserFactory(school.runtime, lp_other_tenant).make("admin")
    c = school.client.as_(other.token, tenant=lp_other_tenant)
    assert c.get("/lti/tools").json["items"] == []
    for method in ("get", "delete"):
        r = getattr(c, method)(f"/lti/tools/{reg['id']}")
        assert r.status_code == 404, r.text
    assert c.patch(f"/lti/tools/{reg['id']}", json={"name": "mine"}).status_code == 404
    assert school.a.get(f"/lti/tools/{reg['id']}").json["name"] == "Chem Lab"
    # Its authorization endpoint does not know the client either.
    import requests

    params = {"scope": "openid", "response_type": "id_token", "response_mode": "form_post",
              "prompt": "none", "client_id": reg["client_id"],
              "redirect_uri": tool.launch_url, "login_hint": "x", "nonce": "n"}
    url = school.plugin.urls.platform_auth(lp_other_tenant)
    r = requests.get(url, params=params, headers={"Accept": "application/json"}, timeout=10)
    assert r.status_code == 400 and r.json()["code"] == "lti_auth_unknown_client"


def test_cli_add_list_show_update_remove(school: School, tool: TestTool, lp_cli: Any) -> None:
    slug = school.tenant.slug
    out = lp_cli("lti", "tools", "add", "--tenant", slug, "--name", "Lab", "--login-url",
                 tool.login_url, "--launch-url", tool.launch_url, "--jwks-url", tool.jwks_url,
                 "--custom", "who=$User.id", "--no-send-email", "--json")
    assert out.exit_code == 0, out.stdout + out.stderr
    import json

    added = json.loads(out.stdout)
    assert added["custom"] == {"who": "$User.id"} and added["send_email"] is False
    assert added["platform"]["issuer"].endswith(f"/lti/schools/{slug}")
    out = lp_cli("lti", "tools", "list", "--tenant", slug)
    assert out.exit_code == 0 and added["client_id"] in out.stdout
    out = lp_cli("lti", "tools", "update", "--tenant", slug, str(added["id"]), "--disabled")
    assert out.exit_code == 0, out.stdout + out.stderr
    out = lp_cli("lti", "tools", "show", "--tenant", slug, str(added["id"]), "--json")
    assert json.loads(out.stdout)["enabled"] is False
    out = lp_cli("lti", "tools", "remove", "--tenant", slug, str(added["id"]))
    assert out.exit_code == 0
    assert school.a.get(f"/lti/tools/{added['id']}").status_code == 404
