"""learnplat as LTI platform, against a pylti1p3 tool (ltitool.py): launches of lti modules
whose claims the tool library validated, Deep Linking adding modules, and every refused step
(a page naming the check for browsers, problem+json otherwise, an audit entry)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import requests
from ltiplatformhelpers import HTML, JSON, School, launch, to_auth
from ltitool import Offer, TestTool, rsa_pem

from learnplat import db
from learnplat.tenancy import TenantInfo, tenant_context

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"


@pytest.fixture
def school(lp_runtime: Any, lp_client: Any, lp_tenant: TenantInfo, lti_plugin: Any,
           lti_base: str) -> School:
    return School(lp_runtime, lp_client, lp_tenant, lti_plugin)


@pytest.fixture
def tool() -> Iterator[TestTool]:
    t = TestTool().start()
    yield t
    t.stop()


@pytest.fixture
def browser() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def linked(school: School, tool: TestTool, **registration: Any) -> dict[str, Any]:
    reg = school.register(tool, custom={"who": "$User.id", "mail": "$Person.email.primary",
                                        "name": "$Person.name.full", "odd": "$No.such",
                                        "plain": "text"}, **registration)
    school.link(reg["id"], custom={"course": "$Context.title", "link": "$ResourceLink.id",
                                   "section": "$CourseSection.sourcedId"})
    return reg


def test_student_launch_claims_as_the_tool_validated_them(
        school: School, tool: TestTool, browser: requests.Session) -> None:
    reg = linked(school, tool, send_name=True, send_email=True)
    url = school.launch_url(school.s, module_id=school.module_ids[0])
    assert url.startswith(tool.login_url + "?")
    r = launch(browser, url)
    assert r.status_code == 200, r.text
    assert r.json() == {"launched": True}
    (claims,) = tool.launches
    assert claims["iss"] == school.plugin.urls.issuer(school.tenant)
    assert claims["aud"] == reg["client_id"]
    assert claims["sub"] == str(school.student.id)
    assert claims[LTI + "message_type"] == "LtiResourceLinkRequest"
    assert claims[LTI + "version"] == "1.3.0"
    assert claims[LTI + "deployment_id"] == reg["deployment_ids"][0]
    assert claims[LTI + "roles"] == [LEARNER]
    assert claims[LTI + "resource_link"] == {"id": str(school.module_ids[0]),
                                             "title": "Titration lab"}
    ctx = claims[LTI + "context"]
    assert ctx["id"] == str(school.course_id) and ctx["title"] == "Chemistry 101"
    assert ctx["type"] == ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"]
    assert claims[LTI + "tool_platform"]["product_family_code"] == "learnplat"
    assert claims[LTI + "launch_presentation"]["document_target"] == "iframe"
    assert claims["email"] == school.student.email
    assert claims["name"]
    assert claims[LTI + "custom"] == {
        "who": str(school.student.id), "mail": school.student.email, "name": claims["name"],
        "odd": "$No.such", "plain": "text", "course": "Chemistry 101",
        "link": str(school.module_ids[0]), "section": str(school.course_id)}


def test_owner_is_instructor_and_privacy_hides_name_and_email(
        school: School, tool: TestTool, browser: requests.Session) -> None:
    linked(school, tool, send_name=False, send_email=False)
    r = launch(browser, school.launch_url(school.t, module_id=school.module_ids[0]))
    assert r.status_code == 200, r.text
    (claims,) = tool.launches
    assert claims[LTI + "roles"] == [INSTRUCTOR]
    for hidden in ("name", "given_name", "family_name", "email"):
        assert hidden not in claims
    custom = claims[LTI + "custom"]
    assert custom["mail"] == "$Person.email.primary" and custom["name"] == "$Person.name.full"
    assert school.teacher.email not in str(claims)


def test_deep_linking_adds_lti_modules(school: School, tool: TestTool,
                                       browser: requests.Session) -> None:
    reg = school.register(tool)
    tool.offer = [Offer("Acid-base titration", tool.launch_url + "/acid",
                        {"experiment": "acid"}, 10),
                  Offer("Flame tests", tool.launch_url + "/flame")]
    url = school.launch_url(school.t, course_id=school.course_id, tool_id=reg["id"],
                            deep_linking=True)
    r = launch(browser, url)
    assert r.status_code == 200, r.text
    (claims,) = tool.launches
    assert claims[LTI + "message_type"] == "LtiDeepLinkingRequest"
    assert claims[LTI + "roles"] == [INSTRUCTOR]
    settings = claims[DL + "deep_linking_settings"]
    assert settings["accept_types"] == ["ltiResourceLink"]
    assert settings["deep_link_return_url"] == school.plugin.urls.deep_link_return(school.tenant)
    answer = browser.post(tool.deep_link["return_url"], data={"JWT": tool.deep_link["JWT"]},
                          headers=HTML, timeout=10)
    assert answer.status_code == 200, answer.text
    assert "Acid-base titration" in answer.text and "Flame tests" in answer.text
    r2 = school.t.get(f"/courses/{school.course_id}")
    titles = {m["title"]: m for m in r2.json["modules"]}
    acid = titles["Acid-base titration"]
    assert acid["kind"] == "lti"
    got = school.s.get(f"/courses/{school.course_id}/modules/{acid['id']}/lti")
    assert got.status_code == 200, got.text
    assert got.json["target_link_uri"] == tool.launch_url + "/acid"
    assert got.json["max_score"] == 10 and got.json["custom"] is None  # no secrets to learners
    assert school.t.get(f"/courses/{school.course_id}/modules/{acid['id']}/lti"
                        ).json["custom"] == {"experiment": "acid"}
    (entry,) = school.audit("lti.deep_link_added")
    assert len(entry["detail"]["module_ids"]) == 2
    # The added module launches with its own target and custom parameters.
    tool.launches.clear()
    r = launch(browser, school.launch_url(school.s, module_id=acid["id"]))
    assert r.status_code == 200, r.text
    assert tool.launches[0][LTI + "target_link_uri"] == tool.launch_url + "/acid"
    assert tool.launches[0][LTI + "custom"] == {"experiment": "acid"}
    # The same response again: refused (its nonce was used).
    again = browser.post(tool.deep_link["return_url"], data={"JWT": tool.deep_link["JWT"]},
                         headers=JSON, timeout=10)
    assert again.status_code == 400
    assert again.json()["code"] == "lti_dl_replayed"


def refused_page(r: requests.Response, code: str) -> None:
    assert r.status_code == 400, (r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith("text/html"), r.headers["content-type"]
    assert code in r.text, r.text[:1000]


def refused_problem(r: requests.Response, code: str) -> dict[str, Any]:
    assert r.status_code == 400, (r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == code and body["fix"], body
    return dict(body)


def auth(school: School, **params: str) -> str:
    return school.plugin.urls.platform_auth(school.tenant)


def good_params(school: School, reg: dict[str, Any], tool: TestTool, launch_url: str
                ) -> dict[str, str]:
    """The parameters pylti1p3 would send, from our launch_url's query."""
    from urllib.parse import parse_qs, urlsplit

    q = {k: v[0] for k, v in parse_qs(urlsplit(launch_url).query).items()}
    return {"scope": "openid", "response_type": "id_token", "response_mode": "form_post",
            "prompt": "none", "client_id": reg["client_id"], "redirect_uri": tool.launch_url,
            "login_hint": q["login_hint"], "lti_message_hint": q["lti_message_hint"],
            "nonce": "n-1", "state": "s-1"}


@pytest.mark.parametrize(("change", "code"), [
    ({"client_id": "lp-nobody"}, "lti_auth_unknown_client"),
    ({"redirect_uri": "http://127.0.0.1:9/elsewhere"}, "lti_auth_redirect_uri"),
    ({"scope": "profile"}, "lti_auth_scope"),
    ({"response_mode": "query"}, "lti_auth_response_mode"),
    ({"nonce": ""}, "lti_auth_nonce"),
    ({"login_hint": "made-up"}, "lti_auth_login_hint"),
    ({"lti_message_hint": "made-up"}, "lti_auth_message_hint"),
])
def test_auth_refusals_name_the_check(school: School, tool: TestTool, change: dict[str, str],
                                      code: str) -> None:
    reg = linked(school, tool)
    params = good_params(school, reg, tool,
                         school.launch_url(school.s, module_id=school.module_ids[0]))
    params.update(change)
    url = school.plugin.urls.platform_auth(school.tenant)
    refused_page(requests.get(url, params=params, headers=HTML, timeout=10), code)
    body = refused_problem(requests.post(url, data=params, headers=JSON, timeout=10), code)
    assert body["detail"]
    assert [e for e in school.audit("lti.launch_refused") if e["detail"]["code"] == code]


def test_bad_redirect_uri_page_says_how_to_fix(school: School, tool: TestTool,
                                               browser: requests.Session) -> None:
    # The tool's launch URL (where it wants the id_token) is not a registered redirect.
    reg = linked(school, tool, redirect_uris=[tool.base + "/other"])
    leg = to_auth(browser, school.launch_url(school.s, module_id=school.module_ids[0]))
    refused_page(leg.response, "lti_auth_redirect_uri")
    assert f"PATCH /lti/tools/{reg['id']}" in leg.response.text


def test_login_hint_is_single_use(school: School, tool: TestTool,
                                  browser: requests.Session) -> None:
    reg = linked(school, tool)
    url = school.launch_url(school.s, module_id=school.module_ids[0])
    params = good_params(school, reg, tool, url)
    auth_url = school.plugin.urls.platform_auth(school.tenant)
    first = requests.post(auth_url, data=params, headers=HTML, timeout=10)
    assert first.status_code == 200 and "id_token" in first.text
    refused_page(requests.post(auth_url, data=params, headers=HTML, timeout=10),
                 "lti_auth_launch_used")
    refused_problem(requests.post(auth_url, data=params, headers=JSON, timeout=10),
                    "lti_auth_launch_used")


def test_expired_launch_is_refused(school: School, tool: TestTool) -> None:
    from learnplat_lti.platform.models import LtiPlatformLaunch

    reg = linked(school, tool)
    params = good_params(school, reg, tool,
                         school.launch_url(school.s, module_id=school.module_ids[0]))
    with db.connection(), tenant_context(school.tenant), db.transaction():
        LtiPlatformLaunch.update(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(
            seconds=1)).execute()
    r = requests.post(school.plugin.urls.platform_auth(school.tenant), data=params,
                      headers=JSON, timeout=10)
    refused_problem(r, "lti_auth_launch_expired")
    assert [e for e in school.audit("lti.launch_refused")
            if e["detail"]["code"] == "lti_auth_launch_expired"]


def test_state_and_nonce_problems_are_caught_by_the_tool(
        school: School, tool: TestTool, browser: requests.Session) -> None:
    """The tool checks the state cookie and the nonce it sent; learnplat echoes both."""
    linked(school, tool)
    leg = to_auth(browser, school.launch_url(school.s, module_id=school.module_ids[0]))
    assert leg.fields is not None
    tampered = dict(leg.fields, state="not-the-state")
    r = browser.post(leg.action, data=tampered, timeout=10)
    assert r.status_code == 400 and "State" in r.text
    claims = jwt.decode(leg.fields["id_token"], options={"verify_signature": False})
    assert claims["nonce"]  # the tool's own nonce, echoed
    r = browser.post(leg.action, data=leg.fields, timeout=10)
    assert r.status_code == 200, r.text


def deep_link_request(school: School, tool: TestTool, browser: requests.Session
                      ) -> dict[str, Any]:
    reg = school.register(tool)
    tool.offer = [Offer("Acid-base titration", tool.launch_url)]
    r = launch(browser, school.launch_url(school.t, course_id=school.course_id,
                                          tool_id=reg["id"], deep_linking=True))
    assert r.status_code == 200, r.text
    return reg


def test_deep_link_response_signed_by_the_wrong_key(school: School, tool: TestTool,
                                                    browser: requests.Session) -> None:
    deep_link_request(school, tool, browser)
    good = jwt.decode(tool.deep_link["JWT"], options={"verify_signature": False})
    header = jwt.get_unverified_header(tool.deep_link["JWT"])
    forged = jwt.encode(good, rsa_pem()[0], algorithm="RS256", headers={"kid": header["kid"]})
    url = tool.deep_link["return_url"]
    refused_page(requests.post(url, data={"JWT": forged}, headers=HTML, timeout=10),
                 "lti_dl_bad_signature")
    refused_problem(requests.post(url, data={"JWT": forged}, headers=JSON, timeout=10),
                    "lti_dl_bad_signature")
    assert [e for e in school.audit("lti.launch_refused")
            if e["detail"]["code"] == "lti_dl_bad_signature"]
    # The real one is still accepted once; the data is then used.
    ok = requests.post(url, data={"JWT": tool.deep_link["JWT"]}, headers=HTML, timeout=10)
    assert ok.status_code == 200, ok.text
    assert school.audit("lti.deep_link_added")


def test_deep_link_data_must_match_a_pending_request(school: School, tool: TestTool,
                                                     browser: requests.Session) -> None:
    deep_link_request(school, tool, browser)
    claims = jwt.decode(tool.deep_link["JWT"], options={"verify_signature": False})
    claims[DL + "data"] = "forged"
    claims["nonce"] = "another"
    claims["iat"] = int(time.time())
    header = jwt.get_unverified_header(tool.deep_link["JWT"])
    token = jwt.encode(claims, tool.private_pem, algorithm="RS256", headers={"kid": header["kid"]})
    refused_problem(requests.post(tool.deep_link["return_url"], data={"JWT": token},
                                  headers=JSON, timeout=10), "lti_dl_data")


def test_locked_module_and_strangers_cannot_launch(school: School, tool: TestTool,
                                                   lp_other_tenant: TenantInfo) -> None:
    from learnplat_identity.testing import UserFactory

    linked(school, tool)
    outsider = UserFactory(school.runtime, school.tenant).make("student")
    r = school.client.as_(outsider.token, tenant=school.tenant).post(
        "/lti/launches", json={"module_id": school.module_ids[0]})
    assert r.status_code == 403, r.text
    other = UserFactory(school.runtime, lp_other_tenant).make("admin")
    c = school.client.as_(other.token, tenant=lp_other_tenant)
    assert c.post("/lti/launches", json={"module_id": school.module_ids[0]}).status_code == 404
    assert c.get(f"/courses/{school.course_id}/modules/{school.module_ids[0]}/lti"
                 ).status_code == 404
    assert c.post("/lti/launches", json={"course_id": school.course_id, "tool_id": 1,
                                         "deep_linking": True}).status_code == 404
    # A student may not ask for Deep Linking in the course.
    r = school.s.post("/lti/launches", json={"course_id": school.course_id, "tool_id": 1,
                                             "deep_linking": True})
    assert r.status_code in (403, 404), r.text


def test_disabled_tool_launches_nothing(school: School, tool: TestTool,
                                        browser: requests.Session) -> None:
    reg = linked(school, tool)
    url = school.launch_url(school.s, module_id=school.module_ids[0])  # begun while enabled
    assert school.a.patch(f"/lti/tools/{reg['id']}", json={"enabled": False}).status_code == 200
    r = school.s.post("/lti/launches", json={"module_id": school.module_ids[0]})
    assert r.status_code == 403 and r.json["code"] == "lti_tool_disabled"
    leg = to_auth(browser, url)
    refused_page(leg.response, "lti_auth_tool_disabled")
    assert tool.launches == []


def test_deep_linking_names_the_only_tool_and_checks_the_owner(
        school: School, tool: TestTool, browser: requests.Session) -> None:
    """With one enabled tool, tool_id may be left out; a tool registered by hand (public_jwk)
    has its response checked with that key."""
    school.register(tool, jwks_url="", public_jwk=tool.public_jwk())
    tool.offer = [Offer("Flame tests", tool.launch_url)]
    r = launch(browser, school.launch_url(school.t, course_id=school.course_id,
                                          deep_linking=True))
    assert r.status_code == 200, r.text
    ok = requests.post(tool.deep_link["return_url"], data={"JWT": tool.deep_link["JWT"]},
                       headers=HTML, timeout=10)
    assert ok.status_code == 200 and "Flame tests" in ok.text
    school.register(tool)  # two tools: name one
    r2 = school.t.post("/lti/launches", json={"course_id": school.course_id,
                                              "deep_linking": True})
    assert r2.status_code == 422 and "tool_id" in r2.text
