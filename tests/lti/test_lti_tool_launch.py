"""learnplat as LTI tool, against an independent platform (lti1p3platform, ltiplatform.py):
platform registrations (API, CLI), launches that link, create and enroll accounts, Deep
Linking round trips, and every refused launch (a page for browsers, problem+json otherwise,
an audit entry)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from learnplat_identity.testing import UserFactory
from ltiplatform import DROP, INSTRUCTOR, LEARNER, TestPlatform, ToolUrls, User

from learnplat import db
from learnplat.tenancy import TenantInfo, tenant_context

LANDING = "http://127.0.0.1:9/landing"
DEPLOYMENT = "https://purl.imsglobal.org/spec/lti/claim/deployment_id"
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"


class School:
    """A school with a published course of two modules, its admin, and the LTI URLs the
    served app answers at."""

    def __init__(self, runtime: Any, client: Any, tenant: TenantInfo, plugin: Any):
        self.runtime, self.tenant, self.plugin = runtime, tenant, plugin
        self.client = client
        self.users = UserFactory(runtime, tenant)
        self.admin = self.users.make("admin")
        self.teacher = self.users.make("instructor")
        self.a = client.as_(self.admin.token, tenant=tenant)
        self.t = client.as_(self.teacher.token, tenant=tenant)
        r = self.t.post("/courses", json={"title": "Introduction to Statistics"})
        assert r.status_code == 201, r.text
        self.course_id = r.json["id"]
        self.module_ids = []
        for title in ("Week 1", "Week 2"):
            r = self.t.post(f"/courses/{self.course_id}/modules", json={"title": title})
            assert r.status_code == 201, r.text
            self.module_ids.append(r.json["id"])
        assert self.t.post(f"/courses/{self.course_id}/submit").status_code == 200
        assert self.a.post(f"/courses/{self.course_id}/approve").status_code == 200

    def urls(self) -> ToolUrls:
        u = self.plugin.urls
        return ToolUrls(login_url=u.tool_login(self.tenant), launch_url=u.tool_launch(self.tenant),
                        jwks_url=u.jwks(self.tenant))

    def target(self, module: bool = False) -> str:
        url = f"{self.plugin.urls.tool_launch(self.tenant)}?course={self.course_id}"
        return url + (f"&module={self.module_ids[0]}" if module else "")

    def register(self, platform: TestPlatform, **fields: Any) -> dict[str, Any]:
        r = self.a.post("/lti/platforms", json=platform.registration_body(
            landing_url=LANDING, **fields))
        assert r.status_code == 201, r.text
        platform.register_tool(self.urls())
        return dict(r.json)

    def enrolled(self) -> list[int]:
        """The course's active learners (EnrollmentAPI)."""
        from learnplat_enrollment.api import ENROLLMENT

        with self.runtime_ctx():
            return self.runtime.service(ENROLLMENT).active_user_ids(self.course_id)

    @contextlib.contextmanager
    def runtime_ctx(self) -> Iterator[None]:
        with db.connection(), tenant_context(self.tenant), db.transaction():
            yield

    def audit(self, action: str) -> list[dict[str, Any]]:
        r = self.a.get("/audit", params={"action": action, "limit": 100})
        assert r.status_code == 200, r.text
        return list(r.json["items"])

    def exchange(self, code: str) -> Any:
        r = self.client.as_(None, tenant=self.tenant).post("/auth/oauth/exchange",
                                                           json={"code": code})
        assert r.status_code == 200, r.text
        return self.client.as_(r.json["access_token"], tenant=self.tenant)

    def me(self, code: str) -> dict[str, Any]:
        r = self.exchange(code).get("/auth/profile")
        assert r.status_code == 200, r.text
        return dict(r.json)


@pytest.fixture
def school(lp_runtime: Any, lp_client: Any, lp_tenant: TenantInfo, lti_plugin: Any,
           lti_base: str) -> School:
    return School(lp_runtime, lp_client, lp_tenant, lti_plugin)


@pytest.fixture
def platform() -> Iterator[TestPlatform]:
    p = TestPlatform().start()
    yield p
    p.stop()


def learner_launch(platform: TestPlatform, school: School, sub: str = "u-1",
                   email: str = "", **kw: Any) -> Any:
    kw.setdefault("target_link_uri", school.target())
    return platform.launch(User(sub, "Ada Lovelace", email), [LEARNER],
                           {"context_id": "ctx-1", "context_title": "Stats 101"},
                           {"resource_link_id": "rl-1"}, **kw)


def refused(result: Any, code: str) -> None:
    """A refusal: 400-ish, the code in the page (browser) or in the problem."""
    assert 400 <= result.status < 600, (result.status, result.response.text[:500])
    body = result.response.text
    assert code in body, body[:1000]


# -- registrations ---------------------------------------------------------------------------


def test_registrations_crud_and_isolation(school: School, platform: TestPlatform,
                                          lp_client: Any, lp_other_tenant: TenantInfo,
                                          lp_runtime: Any) -> None:
    created = school.register(platform)
    assert created["tool"]["login_url"].endswith(f"/lti/schools/{school.tenant.slug}/tool/login")
    assert created["tool"]["launch_url"] == school.urls().launch_url
    pid = created["id"]
    again = school.a.post("/lti/platforms", json=platform.registration_body())
    assert again.status_code == 409 and again.json["code"] == "lti_platform_exists"
    r = school.a.patch(f"/lti/platforms/{pid}", json={"deployment_ids": ["a", "b"]})
    assert r.status_code == 200 and r.json["deployment_ids"] == ["a", "b"]
    assert school.a.patch(f"/lti/platforms/{pid}", json={"name": None}).status_code == 422
    bad = school.a.post("/lti/platforms", json={**platform.registration_body(client_id="x"),
                                                "jwks_url": "ftp://nowhere"})
    assert bad.status_code == 422
    assert [p["id"] for p in school.a.get("/lti/platforms").json["items"]] == [pid]
    # Students may not; another school sees nothing.
    student = school.users.make("student")
    assert lp_client.as_(student.token, tenant=school.tenant).get(
        "/lti/platforms").status_code == 403
    other_admin = UserFactory(lp_runtime, lp_other_tenant).make("admin")
    other = lp_client.as_(other_admin.token, tenant=lp_other_tenant)
    assert other.get(f"/lti/platforms/{pid}").status_code == 404
    assert other.patch(f"/lti/platforms/{pid}", json={"name": "x"}).status_code == 404
    assert other.delete(f"/lti/platforms/{pid}").status_code == 404
    assert other.get("/lti/platforms").json["items"] == []
    assert school.a.delete(f"/lti/platforms/{pid}").status_code == 204
    assert school.a.get(f"/lti/platforms/{pid}").status_code == 404


def test_cli(school: School, platform: TestPlatform, lp_cli: Any) -> None:
    slug = school.tenant.slug
    r = lp_cli("lti", "platforms", "add", "--tenant", slug, "--name", "Moodle",
               "--issuer", platform.issuer, "--client-id", platform.client_id,
               "--deployment-id", "d1", "--auth-login-url", platform.auth_login_url,
               "--token-url", platform.token_url, "--jwks-url", platform.jwks_url, "--json")
    assert r.exit_code == 0, r.stderr + r.stdout
    assert '"login_url"' in r.stdout
    listed = lp_cli("lti", "platforms", "list", "--tenant", slug)
    assert platform.issuer in listed.stdout
    pid = school.a.get("/lti/platforms").json["items"][0]["id"]
    r = lp_cli("lti", "platforms", "update", str(pid), "--tenant", slug, "--disabled")
    assert r.exit_code == 0, r.stderr + r.stdout
    assert school.a.get(f"/lti/platforms/{pid}").json["enabled"] is False
    assert "client_id" in lp_cli("lti", "platforms", "show", str(pid), "--tenant", slug).stdout
    assert lp_cli("lti", "platforms", "remove", str(pid), "--tenant", slug).exit_code == 0
    assert school.a.get("/lti/platforms").json["items"] == []


# -- launches ------------------------------------------------------------------------------------


def test_first_launch_creates_links_and_enrolls_then_reuses(school: School,
                                                           platform: TestPlatform) -> None:
    school.register(platform)
    lineitem = platform.lineitem_url("ctx-1", "7")
    first = learner_launch(platform, school, email="ada@example.org",
                           ags={"lineitems": platform.lineitems_url("ctx-1"),
                                "lineitem": lineitem})
    assert first.status == 302, first.response.text
    assert first.location.startswith(LANDING)
    q = first.query()
    assert q["course_id"] == str(school.course_id) and "module_id" not in q
    me = school.me(q["code"])
    assert me["email"] == "ada@example.org" and me["role"] == "student"
    api = school.exchange(learner_launch(platform, school).query()["code"])
    r = api.get(f"/courses/{school.course_id}")
    assert r.status_code == 200, r.text
    assert school.enrolled() == [me["id"]]
    # The second launch reused the account (one student enrolled, same id).
    again = school.me(learner_launch(platform, school).query()["code"])
    assert again["id"] == me["id"]
    with school.runtime_ctx():
        from learnplat_lti.models import GradeTarget

        targets = list(GradeTarget.select())
    assert [(t.user_id, t.lineitem_url, t.course_id) for t in targets] == [
        (me["id"], lineitem, school.course_id)]
    assert school.audit("lti.account_linked")
    logins = [e for e in school.audit("login.succeeded") if e["detail"].get("method") == "lti"]
    assert len(logins) == 3


def test_module_target_and_custom_course(school: School, platform: TestPlatform) -> None:
    school.register(platform)
    r = learner_launch(platform, school, target_link_uri=school.target(module=True))
    assert r.query()["module_id"] == str(school.module_ids[0])
    # A platform that launches one URL names the course in a custom parameter.
    r = learner_launch(platform, school, target_link_uri=school.urls().launch_url,
                       custom={"course_id": str(school.course_id)})
    assert r.status == 302 and r.query()["course_id"] == str(school.course_id)


def test_same_sub_other_platform_and_same_email_never_link(school: School,
                                                           platform: TestPlatform) -> None:
    school.register(platform)
    other = TestPlatform().start()
    try:
        school.register(other)
        a = school.me(learner_launch(platform, school, sub="same").query()["code"])
        b = school.me(learner_launch(other, school, sub="same").query()["code"])
        assert a["id"] != b["id"]
    finally:
        other.stop()
    # An e-mail an account has already: a new account with a placeholder address.
    existing = school.users.make("student", email="taken@example.org")
    c = school.me(learner_launch(platform, school, sub="other-user",
                                 email="taken@example.org").query()["code"])
    assert c["id"] != existing.id
    assert c["email"].startswith("lti-") and c["email"].endswith(".example")


def test_instructor_role_not_enrolled(school: School, platform: TestPlatform) -> None:
    school.register(platform)
    r = platform.launch(User("t-1", "Grace Hopper"), [INSTRUCTOR], {"context_id": "c"},
                        {"resource_link_id": "rl"}, target_link_uri=school.target())
    assert r.status == 302, r.response.text
    assert school.me(r.query()["code"])["role"] == "instructor"
    assert school.enrolled() == []


def test_deep_linking_round_trip(school: School, platform: TestPlatform) -> None:
    school.register(platform)
    picker = platform.launch(User("t-2", "Grace"), [INSTRUCTOR], {"context_id": "c"}, None,
                             deep_linking={"data": "opaque-123"})
    assert picker.status == 200, picker.response.text
    assert "Introduction to Statistics" in picker.response.text
    item = f"module:{school.course_id}:{school.module_ids[1]}"
    r = platform.deep_link_choose(picker, item)
    assert r.status_code == 200, (r.text, platform.deep_link_errors)
    [items] = platform.deep_links
    assert items[0]["type"] == "ltiResourceLink"
    assert items[0]["url"] == school.target() + f"&module={school.module_ids[1]}"
    assert items[0]["lineItem"]["scoreMaximum"] == 100
    # The placed link launches a learner into that module.
    launched = learner_launch(platform, school, target_link_uri=items[0]["url"])
    assert launched.query()["module_id"] == str(school.module_ids[1])
    # The ticket works once.
    again = platform.deep_link_choose(picker, item)
    assert again.status_code == 400 and "lti_deep_link_ticket" in again.text
    # A learner may not place content.
    learner = platform.launch(User("s-9"), [LEARNER], {"context_id": "c"}, None,
                              deep_linking={})
    refused(learner, "lti_deep_linking_forbidden")


def test_deep_link_response_carries_data(school: School, platform: TestPlatform,
                                         lti_plugin: Any) -> None:
    school.register(platform)
    picker = platform.launch(User("t-3"), [INSTRUCTOR], {"context_id": "c"}, None,
                             deep_linking={"data": "echo-me"})
    from ltiplatform import read_form

    form = read_form(picker.response.text)
    import requests

    r = requests.post(form.action, data={**form.fields, "item": f"course:{school.course_id}"},
                      timeout=10)
    answer = read_form(r.text)
    claims = jwt.decode(answer.fields["JWT"], options={"verify_signature": False})
    assert claims["iss"] == platform.client_id and claims["aud"] == platform.issuer
    assert claims["https://purl.imsglobal.org/spec/lti-dl/claim/data"] == "echo-me"
    assert claims[DEPLOYMENT] == platform.deployment_id
    assert answer.action == platform.deep_link_return_url


def test_roster_shows_lti_enrollments(school: School, platform: TestPlatform) -> None:
    school.register(platform)
    assert learner_launch(platform, school).status == 302
    roster = school.t.get(f"/courses/{school.course_id}/students")
    assert roster.status_code == 200, roster.text
    assert roster.json["items"][0]["source"] == "lti"


# -- refusals ------------------------------------------------------------------------------------


def test_tampered_expired_missing_and_forged(school: School, platform: TestPlatform) -> None:
    school.register(platform)

    def tamper(fields: dict[str, str]) -> None:
        head, body, sig = fields["id_token"].split(".")
        fields["id_token"] = ".".join((head, body[:-4] + ("AAAA" if body[-4:] != "AAAA"
                                                          else "BBBB"), sig))

    refused(learner_launch(platform, school, tamper=tamper), "lti_bad_signature")
    from ltiplatform import new_rsa_pem

    refused(learner_launch(platform, school, sign_with=new_rsa_pem()), "lti_bad_signature")
    refused(learner_launch(platform, school, expires_in=-300), "lti_expired")
    refused(learner_launch(platform, school,
                           overrides={"https://purl.imsglobal.org/spec/lti/claim/roles": DROP}),
            "lti_missing_claim")
    refused(learner_launch(platform, school, overrides={DEPLOYMENT: "not-registered"}),
            "lti_deployment_not_registered")
    refused(learner_launch(platform, school,
                           target_link_uri=school.target().replace(
                               f"course={school.course_id}", "course=999999")),
            "lti_unknown_target")
    codes = {e["detail"]["code"] for e in school.audit("lti.launch_refused")}
    assert {"lti_bad_signature", "lti_expired", "lti_missing_claim",
            "lti_deployment_not_registered", "lti_unknown_target"} <= codes


def test_unknown_issuer_client_and_deployment(school: School, platform: TestPlatform) -> None:
    platform.register_tool(school.urls())  # learnplat does not know this platform
    r = learner_launch(platform, school)
    refused(r, "lti_unknown_issuer")
    assert r.response.headers["Content-Type"].startswith("text/html")
    school.register(platform, client_id="someone-else")
    refused(learner_launch(platform, school), "lti_unknown_client")
    pid = school.a.get("/lti/platforms").json["items"][0]["id"]
    school.a.patch(f"/lti/platforms/{pid}", json={"client_id": platform.client_id,
                                                   "deployment_ids": ["other"]})
    r = learner_launch(platform, school, accept="application/json")
    refused(r, "lti_deployment_not_registered")
    assert r.response.headers["Content-Type"].startswith("application/problem+json")
    problem = r.response.json()
    assert f"PATCH /lti/platforms/{pid}" in problem["fix"]


def test_replays_and_state(school: School, platform: TestPlatform) -> None:
    school.register(platform)
    seen: dict[str, str] = {}
    first = learner_launch(platform, school, tamper=lambda f: seen.update(f))
    assert first.status == 302
    # The same form posted again: the state is used.
    refused(platform.post_launch(first.launch_url, seen), "lti_state_mismatch")
    # The old id_token with a fresh state: its nonce was used.
    from ltiplatform import PendingLaunch

    fresh = platform.login(PendingLaunch(User("u-1"), [LEARNER], None, {"resource_link_id":
                                         "rl"}, school.target()))
    _, fields = platform.authorize(fresh.headers["Location"])
    refused(platform.post_launch(first.launch_url, {**seen, "state": fields["state"]}),
            "lti_replayed_nonce")
    # An unknown state.
    refused(platform.post_launch(first.launch_url, {**seen, "state": "nope"}),
            "lti_state_mismatch")


def test_other_school_cannot_complete_or_see(school: School, platform: TestPlatform,
                                            lp_runtime: Any, lp_client: Any,
                                            lp_other_tenant: TenantInfo,
                                            lti_plugin: Any) -> None:
    school.register(platform)
    other_launch = lti_plugin.urls.tool_launch(lp_other_tenant)
    other_login = lti_plugin.urls.tool_login(lp_other_tenant)
    seen: dict[str, str] = {}

    def capture(fields: dict[str, str]) -> None:
        seen.update(fields)
        fields["state"] = "burnt"  # do not complete it here

    learner_launch(platform, school, tamper=capture)
    # This school's login state cannot complete a launch at the other school's path...
    refused(platform.post_launch(other_launch, seen), "lti_state_mismatch")
    # ...and the other school does not know the platform at all.
    from ltiplatform import PendingLaunch

    r = platform.login(PendingLaunch(User("u"), [LEARNER], None, None, school.target()),
                       login_url=other_login)
    assert r.status_code == 400 and "lti_unknown_issuer" in r.text


def test_login_post_and_missing_params(school: School, platform: TestPlatform) -> None:
    school.register(platform)
    from ltiplatform import PendingLaunch

    r = platform.login(PendingLaunch(User("u"), [LEARNER], None, {"resource_link_id": "x"},
                                     school.target()), method="POST")
    assert r.status_code == 302
    q = r.headers["Location"]
    for part in ("response_mode=form_post", "prompt=none", "scope=openid",
                 f"client_id={platform.client_id}"):
        assert part in q
    r = platform.login(PendingLaunch(User("u"), [LEARNER], None, None, school.target()),
                       iss="")
    assert r.status_code == 400 and "lti_bad_request" in r.text


def test_no_landing_url(school: School, platform: TestPlatform) -> None:
    r = school.a.post("/lti/platforms", json=platform.registration_body())
    platform.register_tool(school.urls())
    result = learner_launch(platform, school)
    refused(result, "lti_no_landing_url")
    assert f"/lti/platforms/{r.json['id']}" in result.response.text



def test_dropped_learner_is_enrolled_again(school: School, platform: TestPlatform) -> None:
    school.register(platform)
    first = learner_launch(platform, school)
    assert first.status == 302
    # The learner drops the course through the API (the enrollment's source is "lti").
    dropped = school.exchange(first.query()["code"]).delete(
        f"/courses/{school.course_id}/enroll")
    assert dropped.status_code == 200 and dropped.json["source"] == "lti", dropped.text
    assert school.enrolled() == []
    again = learner_launch(platform, school)
    assert again.status == 302
    assert len(school.enrolled()) == 1


def test_garbage_disabled_and_platform_error(school: School, platform: TestPlatform) -> None:
    pid = school.register(platform)["id"]

    def garbage(fields: dict[str, str]) -> None:
        fields["id_token"] = "not-a-jwt"

    refused(learner_launch(platform, school, tamper=garbage), "lti_bad_signature")
    launch_url = school.urls().launch_url
    refused(platform.post_launch(launch_url, {"error": "login_required", "state": "x"}),
            "lti_platform_error")
    refused(platform.post_launch(launch_url, {"state": "x"}), "lti_bad_request")
    school.a.patch(f"/lti/platforms/{pid}", json={"enabled": False})
    r = learner_launch(platform, school)
    assert r.status == 403 and "lti_platform_disabled" in r.response.text


def test_test_platform_token_and_score_endpoints(school: School, platform: TestPlatform,
                                                 lti_plugin: Any) -> None:
    """What engineer B2's passback relies on: the test platform's token endpoint takes a
    client assertion signed with the school's key, and its score endpoint records scores."""
    import requests

    school.register(platform)
    with school.runtime_ctx():
        assertion = lti_plugin.keys.sign({
            "iss": platform.client_id, "sub": platform.client_id, "aud": platform.token_url,
            "jti": "j-1"})
    r = requests.post(platform.token_url, data={
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
        "scope": "https://purl.imsglobal.org/spec/lti-ags/scope/score"}, timeout=10)
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    score = {"userId": "u-1", "scoreGiven": 80, "scoreMaximum": 100,
             "activityProgress": "Completed", "gradingProgress": "FullyGraded",
             "timestamp": "2026-12-08T02:00:00Z"}
    r = requests.post(platform.lineitem_url("ctx-1", "7") + "/scores", json=score,
                      headers={"Authorization": f"Bearer {token}",
                               "Content-Type": "application/vnd.ims.lis.v1.score+json"},
                      timeout=10)
    assert r.status_code == 204
    assert platform.scores[0]["body"] == score
    assert platform.scores[0]["authorization"] == f"Bearer {token}"
    assert platform.scores[0]["token_valid"] is True
