"""learnplat's LTI Advantage services (token endpoint, AGS 2.0, NRPS 2.0) called by
pylti1p3's own service clients over HTTP, with the claims a real launch gave the tool; the
scores stored, the module completed, the instructors' list; every refusal of the token
endpoint and of the services; another school sees nothing."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from learnplat_identity.testing import UserFactory
from learnplat_progress.api import PROGRESS
from ltiadvantagehelpers import (
    AGS,
    NRPS,
    SCOPE_LINEITEM,
    SCOPE_NRPS,
    SCOPE_RESULT,
    SCOPE_SCORE,
    ags,
    assertion,
    nrps,
    setup,
    token,
    token_request,
)
from ltiplatformhelpers import School
from ltitool import TestTool, rsa_pem
from pylti1p3.exception import LtiServiceException
from pylti1p3.grade import Grade
from pylti1p3.lineitem import LineItem

from learnplat import db
from learnplat.tenancy import TenantInfo, tenant_context

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


def grade(user_id: int, given: float | None, activity: str, grading: str,
          when: dt.datetime | None = None) -> Grade:
    stamp = (when or dt.datetime.now(dt.UTC)).isoformat()
    g = (Grade().set_user_id(str(user_id)).set_timestamp(stamp)
         .set_activity_progress(activity).set_grading_progress(grading))
    if given is not None:
        g.set_score_given(given).set_score_maximum(10)
    return g


def completed(school: School, user_id: int) -> int:
    with tenant_context(school.tenant), db.transaction(write=False):
        summary = school.runtime.service(PROGRESS).summary(school.course_id, user_id)
    return 0 if summary is None else int(summary.as_dict()["completed_modules"])


def test_launch_claims_and_scores_complete_the_module(school: School, tool: TestTool,
                                                      lp_cli: Any) -> None:
    _reg, claims = setup(school, tool)
    endpoint = claims[AGS]
    assert endpoint["lineitems"] == school.plugin.urls.lineitems(school.course_id, school.tenant)
    assert set(endpoint["scope"]) == {SCOPE_LINEITEM, SCOPE_SCORE, SCOPE_RESULT}
    assert claims[NRPS] == {"context_memberships_url":
                            school.plugin.urls.memberships(school.course_id, school.tenant),
                            "service_versions": ["2.0"]}
    service = ags(tool, claims)
    item = service.get_lineitem()  # the module's default line item
    assert item.get_resource_link_id() == str(school.module_ids[0])
    assert item.get_score_maximum() == 10 and item.get_label() == "Titration lab"
    sid = school.student.id
    service.put_grade(grade(sid, 4, "InProgress", "Pending"))
    school.runtime.events.dispatch_pending()
    assert completed(school, sid) == 0  # neither Completed nor FullyGraded yet
    service.put_grade(grade(sid, 8, "Completed", "FullyGraded"))
    school.runtime.events.dispatch_pending()
    assert completed(school, sid) == 1
    r = school.s.get(f"/progress/{school.course_id}")
    assert r.status_code == 200, r.text
    mod = next(m for m in r.json["modules"] if m["module_id"] == school.module_ids[0])
    assert mod["completed"] and mod["completed_source"] == "lti"
    grades = service.get_grades()
    assert [(g["userId"], g["resultScore"], g["resultMaximum"]) for g in grades] == [
        (str(sid), 8, 10)]
    # An older timestamp than the last score is refused (AGS 2.0), nothing stored.
    with pytest.raises(LtiServiceException) as exc:
        service.put_grade(grade(sid, 1, "Completed", "FullyGraded",
                                dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)))
    assert exc.value.response.status_code == 409
    # Every score is kept: the instructor sees both, newest first; the student nothing.
    r = school.t.get("/lti/scores", params={"course_id": school.course_id})
    assert r.status_code == 200, r.text
    assert [s["score_given"] for s in r.json["items"]] == [8, 4]
    assert r.json["items"][0]["activity_progress"] == "Completed"
    r = school.t.get("/lti/scores", params={"course_id": school.course_id, "limit": 1})
    assert len(r.json["items"]) == 1 and r.json["next_cursor"]
    assert school.a.get("/lti/scores", params={"course_id": school.course_id,
                                               "user_id": sid}).json["items"]
    assert school.s.get("/lti/scores", params={"course_id": school.course_id}
                        ).status_code == 403
    other = school.users.make("instructor")
    r = school.client.as_(other.token, tenant=school.tenant).get(
        "/lti/scores", params={"course_id": school.course_id})
    assert r.status_code in (403, 404)
    # The course's analytics: the average score per lti module.
    r = school.t.get(f"/courses/{school.course_id}/analytics")
    assert r.status_code == 200, r.text
    assert r.json["lti"]["modules"] == [{"module_id": school.module_ids[0], "learners": 1,
                                             "average_score": 0.8}]
    out = lp_cli("lti", "scores", "--course", str(school.course_id), "--tenant",
                 school.tenant.slug, "--json")
    assert out.exit_code == 0, out.stderr
    assert [s["score_given"] for s in json.loads(out.stdout)] == [8, 4]


def test_lineitems_created_listed_paged_and_scoped_to_the_course(
        school: School, tool: TestTool) -> None:
    reg, claims = setup(school, tool)
    service = ags(tool, claims)
    made = service.find_or_create_lineitem(
        LineItem().set_label("Quiz 1").set_score_maximum(5).set_tag("quiz")
        .set_resource_id("q1"))
    assert made.get_id().startswith(claims[AGS]["lineitems"] + "/")
    assert service.find_lineitem_by_tag("quiz").get_id() == made.get_id()
    bearer = {"Authorization": f"Bearer {token(tool, SCOPE_LINEITEM)}"}
    url = claims[AGS]["lineitems"]
    r = requests.get(url, params={"limit": 1}, headers=bearer, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(
        "application/vnd.ims.lis.v2.lineitemcontainer+json")
    assert len(r.json()) == 1 and 'rel="next"' in r.headers["link"]
    assert len(service.get_lineitems()) == 2  # pylti1p3 follows the Link
    r = requests.get(url, params={"resource_link_id": str(school.module_ids[0])},
                     headers=bearer, timeout=10)
    assert [i["resourceLinkId"] for i in r.json()] == [str(school.module_ids[0])]
    r = requests.put(made.get_id(), json={"label": "Quiz one", "scoreMaximum": 6},
                     headers={**bearer, "Content-Type":
                              "application/vnd.ims.lis.v2.lineitem+json"}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["label"] == "Quiz one"
    # A line item through another course's URL (the tool is not used there): 404.
    r = school.t.post("/courses", json={"title": "Other"})
    other = r.json["id"]
    lineitem_id = made.get_id().rsplit("/", 1)[-1]
    wrong = made.get_id().replace(f"/contexts/{school.course_id}/", f"/contexts/{other}/")
    r = requests.get(wrong, headers=bearer, timeout=10)
    assert r.status_code == 404 and r.json()["code"] == "lti_ags_no_context"
    # The other course launches the tool too: the line item is still not one of its own.
    r = school.t.post(f"/courses/{other}/modules", json={"title": "Lab"})
    assert r.status_code == 201, r.text
    r = school.t.put(f"/courses/{other}/modules/{r.json['id']}/lti",
                     json={"tool_id": reg["id"]})
    assert r.status_code == 200, r.text
    r = requests.get(wrong, headers=bearer, timeout=10)
    assert r.status_code == 404 and r.json()["code"] == "lti_ags_no_lineitem"
    r = requests.get(f"{url}/99999999", headers=bearer, timeout=10)
    assert r.status_code == 404 and r.json()["code"] == "lti_ags_no_lineitem"
    r = requests.delete(made.get_id(), headers=bearer, timeout=10)
    assert r.status_code == 204
    assert requests.get(made.get_id(), headers=bearer, timeout=10).status_code == 404
    assert lineitem_id


def test_nrps_pages_roles_and_privacy(school: School, tool: TestTool) -> None:
    more = [school.users.make("student") for _ in range(3)]
    for u in more:
        c = school.client.as_(u.token, tenant=school.tenant)
        assert c.post(f"/courses/{school.course_id}/enroll").status_code == 201
    reg, claims = setup(school, tool, send_name=False, send_email=False)
    service = nrps(tool, claims)
    first, nxt = service.get_members_page(
        claims[NRPS]["context_memberships_url"] + "?limit=2")
    assert len(first) == 2 and nxt
    members = service.get_members()
    ids = {m["user_id"]: m for m in members}
    assert set(ids) == {str(school.teacher.id), str(school.student.id),
                        *(str(u.id) for u in more)}
    assert ids[str(school.teacher.id)]["roles"] == [INSTRUCTOR]
    assert ids[str(school.student.id)]["roles"] == [LEARNER]
    assert all("name" not in m and "email" not in m for m in members)
    assert ids[str(school.student.id)]["user_id"] == tool.launches[-1]["sub"]
    bearer = {"Authorization": f"Bearer {token(tool, SCOPE_NRPS)}"}
    r = requests.get(claims[NRPS]["context_memberships_url"], params={"role": "Instructor"},
                     headers=bearer, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(
        "application/vnd.ims.lti-nrps.v2.membershipcontainer+json")
    assert [m["user_id"] for m in r.json()["members"]] == [str(school.teacher.id)]
    # With the registration's consent, name and email are sent.
    school.a.patch(f"/lti/tools/{reg['id']}", json={"send_name": True, "send_email": True})
    r = requests.get(claims[NRPS]["context_memberships_url"], headers=bearer, timeout=10)
    got = {m["user_id"]: m for m in r.json()["members"]}
    assert got[str(school.student.id)]["email"] == school.student.email
    assert got[str(school.student.id)]["name"]


def test_token_endpoint_refusals(school: School, tool: TestTool) -> None:
    reg = school.register(tool, scopes=[SCOPE_SCORE])
    school.link(reg["id"])
    url = school.plugin.urls.platform_token(school.tenant)

    def refused(r: requests.Response, status: int, error: str, code: str) -> None:
        assert r.status_code == status, r.text
        body = r.json()
        assert (body["error"], body["code"]) == (error, code), body
        assert r.headers["cache-control"] == "no-store"

    ok = token_request(url, assertion(tool))
    assert ok.status_code == 200, ok.text
    assert ok.json()["token_type"] == "Bearer" and ok.json()["expires_in"] == 3600
    assert ok.json()["scope"] == SCOPE_SCORE
    other_key, _ = rsa_pem()
    refused(token_request(url, assertion(tool, key=other_key)), 401, "invalid_client",
            "lti_token_bad_assertion")
    a = assertion(tool)
    assert token_request(url, a).status_code == 200
    refused(token_request(url, a), 400, "invalid_grant", "lti_token_replayed")
    refused(token_request(url, assertion(tool, aud="https://elsewhere.example/token")), 400,
            "invalid_grant", "lti_token_wrong_audience")
    # The issuer is an accepted audience too.
    assert token_request(url, assertion(tool, aud=school.plugin.urls.issuer(school.tenant))
                         ).status_code == 200
    refused(token_request(url, assertion(tool, exp=1_000_000, iat=999_000)), 400,
            "invalid_grant", "lti_token_expired")
    refused(token_request(url, assertion(tool, iss="nobody", sub="nobody")), 401,
            "invalid_client", "lti_token_unknown_client")
    refused(token_request(url, assertion(tool), scope=SCOPE_NRPS), 400, "invalid_scope",
            "lti_token_scope")
    refused(token_request(url, assertion(tool, jti=None)), 400, "invalid_grant",
            "lti_token_claims")
    r = requests.post(url, data={"grant_type": "password", "client_assertion_type": "x",
                                 "client_assertion": "x"}, timeout=10)
    refused(r, 400, "unsupported_grant_type", "lti_token_grant_type")
    # Disabled: its assertions are refused as an unknown client.
    school.a.patch(f"/lti/tools/{reg['id']}", json={"enabled": False})
    refused(token_request(url, assertion(tool)), 401, "invalid_client",
            "lti_token_unknown_client")


def test_bearer_refusals_and_other_school(school: School, tool: TestTool,
                                          lp_other_tenant: TenantInfo) -> None:
    _reg, claims = setup(school, tool, scopes=[SCOPE_LINEITEM, SCOPE_SCORE])
    lineitems = claims[AGS]["lineitems"]
    r = requests.get(lineitems, timeout=10)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    r = requests.get(lineitems, headers={"Authorization": "Bearer nonsense"}, timeout=10)
    assert r.status_code == 401 and r.json()["code"] == "lti_ags_token"
    # A learnplat user's token is not an LTI access token.
    r = requests.get(lineitems, headers={"Authorization": f"Bearer {school.admin.token}"},
                     timeout=10)
    assert r.status_code == 401
    # A token without the scope: 403 (the score scope does not read line items' results).
    bearer = {"Authorization": f"Bearer {token(tool, SCOPE_SCORE)}"}
    r = requests.get(claims[AGS]["lineitem"] + "/results", headers=bearer, timeout=10)
    assert r.status_code == 403 and r.json()["code"] == "lti_ags_scope"
    # NRPS was not granted by the registration: the launch has no NRPS claim.
    assert NRPS not in claims
    # The same token through another school's path: unknown there.
    other = lp_other_tenant.slug
    wrong = lineitems.replace(f"/schools/{school.tenant.slug}/", f"/schools/{other}/")
    r = requests.get(wrong, headers={"Authorization": bearer["Authorization"]}, timeout=10)
    assert r.status_code == 401
    # The other school's token endpoint does not know the tool.
    url = school.plugin.urls.platform_token(lp_other_tenant)
    r = token_request(url, assertion(tool, aud=url))
    assert r.status_code == 401 and r.json()["code"] == "lti_token_unknown_client"
    # Another school's admin sees no scores of this course.
    admin = UserFactory(school.runtime, lp_other_tenant).make("admin")
    r = school.client.as_(admin.token, tenant=lp_other_tenant).get(
        "/lti/scores", params={"course_id": school.course_id})
    assert r.status_code == 404
    # A score for someone who is not a learner of the course.
    service = ags(tool, claims)
    with pytest.raises(LtiServiceException) as exc:
        service.put_grade(grade(school.teacher.id, 1, "Completed", "FullyGraded"))
    assert exc.value.response.status_code == 422
