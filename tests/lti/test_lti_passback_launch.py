"""Grade passback end to end with the tool half (engineer B1's launch and test platform,
tests/lti/ltiplatform.py): a learner launched from the platform with an AGS claim is linked
and enrolled, the launch stores their grade target; completing the course sends the grade to
the platform's score endpoint with a token it issued for our client assertion."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from learnplat_identity.testing import UserFactory
from ltiplatform import LEARNER, TestPlatform, ToolUrls, User

from learnplat import db
from learnplat.tenancy import TenantInfo


@pytest.fixture
def platform() -> Iterator[TestPlatform]:
    p = TestPlatform().start()
    yield p
    p.stop()


def test_a_launched_learners_grade_goes_back(lp_runtime: Any, lp_client: Any,
                                             lp_tenant: TenantInfo, lti_plugin: Any,
                                             lti_base: str, platform: TestPlatform) -> None:
    users = UserFactory(lp_runtime, lp_tenant)
    admin, teacher = users.make("admin"), users.make("instructor")
    a, t = lp_client.as_(admin.token), lp_client.as_(teacher.token)
    r = t.post("/courses", json={"title": "Introduction to Statistics"})
    assert r.status_code == 201, r.text
    course_id = r.json["id"]
    r = t.post(f"/courses/{course_id}/modules", json={"title": "Week 1"})
    assert r.status_code == 201, r.text
    module_id = r.json["id"]
    assert t.post(f"/courses/{course_id}/submit").status_code == 200
    assert a.post(f"/courses/{course_id}/approve").status_code == 200

    urls = lti_plugin.urls
    r = a.post("/lti/platforms", json=platform.registration_body(
        landing_url="http://127.0.0.1:9/landing"))
    assert r.status_code == 201, r.text
    platform.register_tool(ToolUrls(login_url=urls.tool_login(lp_tenant),
                                    launch_url=urls.tool_launch(lp_tenant),
                                    jwks_url=urls.jwks(lp_tenant)))
    lineitem = platform.lineitem_url("ctx-1", "li-9")
    result = platform.launch(
        User("u-ada", "Ada Lovelace", ""), [LEARNER],
        {"context_id": "ctx-1", "context_title": "Stats 101"}, {"resource_link_id": "rl-1"},
        target_link_uri=f"{urls.tool_launch(lp_tenant)}?course={course_id}",
        ags={"lineitems": platform.lineitems_url("ctx-1"), "lineitem": lineitem})
    assert result.status == 302, result.response.text[:500]
    r = lp_client.as_(None, tenant=lp_tenant).post(
        "/auth/oauth/exchange", json={"code": result.query()["code"]})
    assert r.status_code == 200, r.text
    ada = lp_client.as_(r.json["access_token"], tenant=lp_tenant)

    r = ada.post(f"/progress/{course_id}", json={"module_id": module_id, "completed": True})
    assert r.status_code == 200, r.text
    lp_runtime.events.dispatch_pending()
    with db.connection():
        lp_runtime.outbound.sweep()

    assert platform.scores, a.get("/lti/passbacks").json
    last = platform.scores[-1]
    assert last["token_valid"] and last["lineitem"] == "li-9"
    assert last["content_type"].startswith("application/vnd.ims.lis.v1.score+json")
    body = last["body"]
    assert body["userId"] == "u-ada" and body["scoreGiven"] == 100
    assert body["activityProgress"] == "Completed" and body["gradingProgress"] == "FullyGraded"
    log = a.get("/lti/passbacks", params={"course_id": course_id}).json["items"]
    assert log and all(e["status"] == "delivered" for e in log), log
    assert len(platform.token_requests) == 1
