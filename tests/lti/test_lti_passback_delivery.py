"""Grades back to a platform (learnplat as LTI tool): a learner with grade targets works
through a course; the platform (lti1p3platform on loopback) issues a token for our client
assertion, checked with our JWKS fetched over HTTP, and receives each score through its AGS
score service. Refused tokens, 5xx, 400 and 401 answers, the token cache, redelivery, the
passbacks' log per role and per school, the command line, the admins told when the engine
gives up on a platform."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from ltipassbackhelpers import CLIENT_ID, ISSUER, PlatformPeer, running_platform

from learnplat import db
from learnplat.tenancy import tenant_context

SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
QUESTIONS = [{"type": "single_choice", "prompt": "Mean of 2, 4 and 6?",
              "options": ["3", "4", "5"], "answer": 1, "points": 1}]


class School:
    """A published course of two modules (the second with a quiz), its owner, an admin, a
    platform registration and a learner launched from it (their grade targets)."""

    def __init__(self, client: Any, users: Any, runtime: Any, tenant: Any, peer: PlatformPeer):
        self.client, self.users, self.runtime, self.tenant = client, users, runtime, tenant
        self.peer = peer
        self.teacher = users.make("instructor")
        self.admin = users.make("admin")
        self.t, self.a = client.as_(self.teacher.token), client.as_(self.admin.token)
        r = self.t.post("/courses", json={"title": "Introduction to Statistics"})
        assert r.status_code == 201, r.text
        self.course_id = r.json["id"]
        self.module_ids = []
        for title in ("Week 1 reading", "Week 2 quiz"):
            r = self.t.post(f"/courses/{self.course_id}/modules", json={"title": title})
            assert r.status_code == 201, r.text
            self.module_ids.append(r.json["id"])
        assert self.t.post(f"/courses/{self.course_id}/submit").status_code == 200
        assert self.a.post(f"/courses/{self.course_id}/approve").status_code == 200
        path = f"/courses/{self.course_id}/modules/{self.module_ids[1]}/quiz"
        r = self.t.post(path, json={"title": "Week 2 quiz", "pass_mark": 60,
                                    "questions": copy.deepcopy(QUESTIONS)})
        assert r.status_code == 201, r.text
        self.quiz = r.json
        self.quiz_path = f"{path}/{self.quiz['id']}"
        from learnplat_lti.models import PlatformRegistration

        with self.ctx():
            self.platform_id = PlatformRegistration.insert(
                name="Northfield Canvas", issuer=ISSUER, client_id=CLIENT_ID,
                deployment_ids=["dep-1"], auth_login_url=f"{peer.base}/auth",
                token_url=peer.token_url, jwks_url=f"{peer.base}/jwks").execute()

    def ctx(self) -> Any:
        class _Ctx:
            def __enter__(s) -> None:
                s.stack = [db.connection(), tenant_context(self.tenant), db.transaction()]
                for c in s.stack:
                    c.__enter__()

            def __exit__(s, *exc: Any) -> None:
                for c in reversed(s.stack):
                    c.__exit__(*exc)

        return _Ctx()

    def learner(self, name: str, sub: str, lineitem: int = 1, module_lineitem: int | None = None,
                query: str = "") -> Any:
        """A learner enrolled and launched from the platform: a course-level grade target
        (and one for the quiz module), as the tool's launch stores them."""
        from learnplat_lti.models import GradeTarget

        s = self.users.make("student", name=name)
        s.c = self.client.as_(s.token)
        assert s.c.post(f"/courses/{self.course_id}/enroll").status_code == 201
        with self.ctx():
            s.target = GradeTarget.insert(
                platform=self.platform_id, user_id=s.id, sub=sub, course_id=self.course_id,
                module_id=None, resource_link_id=f"rl-course-{sub}", deployment_id="dep-1",
                lineitem_url=self.peer.lineitem(lineitem, query),
                lineitems_url=f"{self.peer.base}/lineitems", scopes=[SCORE_SCOPE]).execute()
            if module_lineitem is not None:
                GradeTarget.insert(
                    platform=self.platform_id, user_id=s.id, sub=sub,
                    course_id=self.course_id, module_id=self.module_ids[1],
                    resource_link_id=f"rl-quiz-{sub}", deployment_id="dep-1",
                    lineitem_url=self.peer.lineitem(module_lineitem),
                    scopes=[SCORE_SCOPE]).execute()
        return s

    def complete(self, s: Any, module: int) -> None:
        r = s.c.post(f"/progress/{self.course_id}",
                     json={"module_id": self.module_ids[module], "completed": True})
        assert r.status_code == 200, r.text

    def take_quiz(self, s: Any, right: bool) -> None:
        assert s.c.post(f"{self.quiz_path}/attempts").status_code == 201
        answer = {str(self.quiz["questions"][0]["id"]): 1 if right else 0}
        r = s.c.post(f"{self.quiz_path}/submit", json={"answers": answer})
        assert r.status_code == 200, r.text

    def settle(self) -> None:
        """Deliver the events (their handlers queue scores; the engine's task sends them
        inline after commit: tests run tasks immediately), and what comes due."""
        self.runtime.events.dispatch_pending()
        with db.connection():
            self.runtime.outbound.sweep()

    def later(self, seconds: float) -> None:
        """The engine's clock moved on (a retry comes due), and what is due sent."""
        outbound = self.runtime.outbound
        now = outbound.now()
        outbound.now = lambda: now + dt.timedelta(seconds=seconds)
        self.settle()

    def log(self, client: Any = None, **query: Any) -> list[dict[str, Any]]:
        r = (client or self.a).get("/lti/passbacks", params={"limit": 200, **query})
        assert r.status_code == 200, r.text
        return list(r.json["items"])


@pytest.fixture
def peer(lti_base: str, lp_tenant: Any) -> Iterator[PlatformPeer]:
    yield from running_platform(f"{lti_base}/lti/schools/{lp_tenant.slug}/jwks")


@pytest.fixture
def school(lp_client: Any, lp_users: Any, lp_runtime: Any, lp_tenant: Any, peer: PlatformPeer
           ) -> Iterator[School]:
    clock = lp_runtime.outbound.now
    yield School(lp_client, lp_users, lp_runtime, lp_tenant, peer)
    lp_runtime.outbound.now = clock


def test_progress_and_completion_reach_the_platform(school: School, peer: PlatformPeer
                                                     ) -> None:
    ada = school.learner("Ada Lovelace", "sub-ada", lineitem=7, query="type=course")
    school.complete(ada, 0)
    school.settle()
    assert len(peer.scores) == 1, school.log()
    first = peer.scores[0]
    # POST <lineitem>/scores, /scores before the query string; the score media type.
    assert first.lineitem == "7" and first.content_type.startswith(
        "application/vnd.ims.lis.v1.score+json")
    assert first.score["userId"] == "sub-ada" and first.score["scoreGiven"] == 50
    assert first.score["scoreMaximum"] == 100
    assert first.score["activityProgress"] == "InProgress"
    assert first.score["gradingProgress"] == "Pending"
    assert first.score["timestamp"].endswith("Z")
    # The bearer token is one the platform issued, for an assertion it checked (with our
    # JWKS fetched from the served app): iss = sub = client id, aud = its token URL.
    assert first.token in peer.tokens
    (claims,) = peer.assertions
    assert claims["iss"] == claims["sub"] == CLIENT_ID and claims["aud"] == peer.token_url

    school.take_quiz(ada, right=True)  # passing completes the second module: the course
    school.settle()
    last = peer.scores[-1].score
    assert last["scoreGiven"] == 100 and last["activityProgress"] == "Completed"
    assert last["gradingProgress"] == "FullyGraded"
    # One token for every delivery: cached until shortly before it expires, encrypted.
    assert peer.token_requests == 1 and len(peer.scores) >= 3
    sink = school.runtime.outbound.sinks()["lti"]
    with school.ctx():
        stored = school.runtime.kv.get(sink.tokens.key(school.platform_id, CLIENT_ID,
                                                       peer.token_url))
    assert stored and peer.tokens[0] not in stored

    log = school.log()
    assert log and all(e["status"] == "delivered" and e["last_status"] == 200 for e in log)
    assert {e["event_type"] for e in log} >= {"progress.module_completed.v1",
                                              "course.completed.v1"}
    assert all(e["user_id"] == ada.id and e["course_id"] == school.course_id for e in log)
    # Paged, newest first.
    r = school.a.get("/lti/passbacks", params={"limit": 1})
    assert [e["id"] for e in r.json["items"]] == [log[0]["id"]] and r.json["next_cursor"]
    r = school.a.get("/lti/passbacks", params={"limit": 1, "before": r.json["next_cursor"]})
    assert [e["id"] for e in r.json["items"]] == [log[1]["id"]]
    # The platform fetched our keys over HTTP (the served app's JWKS) to check the assertion.
    jwks = school.a.get(f"/lti/schools/{school.tenant.slug}/jwks").json
    fetched = peer.config.get_registration().get_tool_key_set()
    assert fetched and {k["kid"] for k in fetched["keys"]} == {k["kid"] for k in jwks["keys"]}

    # An event handled again (a redelivered event) adds nothing: one passback per target
    # and event.
    from learnplat_lti.passback.services import COURSE_COMPLETED, Learner, PassbackService

    from learnplat.plugin import EventMessage

    (done,) = [e for e in log if e["event_type"] == COURSE_COMPLETED]
    svc = PassbackService(school.runtime.plugin(_plugin_class()))
    with school.ctx():
        svc.on_course_completed(EventMessage(
            id=done["event_id"], name=COURSE_COMPLETED, tenant_id=school.tenant.id,
            payload={}, created_at=dt.datetime.now(dt.UTC), attempt=2,
            data=Learner(course_id=school.course_id, user_id=ada.id)))
    assert len(school.log()) == len(log)


def _plugin_class() -> Any:
    from learnplat_lti.plugin import LtiPlugin

    return LtiPlugin


def test_a_quiz_grade_goes_to_the_modules_line_item(school: School, peer: PlatformPeer
                                                    ) -> None:
    bob = school.learner("Bob Bernoulli", "sub-bob", lineitem=1, module_lineitem=2)
    school.complete(bob, 0)
    school.take_quiz(bob, right=False)
    school.take_quiz(bob, right=True)  # passing completes the module: its grade stands
    school.settle()
    to_quiz = [s.score for s in peer.scores if s.lineitem == "2"]
    assert [(s["scoreGiven"], s["comment"]) for s in to_quiz] == [(0, "Not passed"),
                                                                  (100, "Passed")]
    assert all(s["userId"] == "sub-bob" and s["gradingProgress"] == "FullyGraded"
               and s["activityProgress"] == "Completed" for s in to_quiz)
    to_course = [s.score for s in peer.scores if s.lineitem == "1"]
    assert to_course[-1]["scoreGiven"] == 100 and to_course[-1]["activityProgress"] == (
        "Completed")
    mine = school.log(user_id=bob.id)
    assert any(e["module_id"] == school.module_ids[1] for e in mine)


def test_a_refused_token_is_recorded_and_retried(school: School, peer: PlatformPeer) -> None:
    peer.refuse_tokens = True
    ada = school.learner("Ada Lovelace", "sub-ada")
    school.complete(ada, 0)
    school.settle()
    (entry,) = school.log()
    assert entry["status"] == "pending" and entry["attempts"] == 1 and not peer.scores
    assert entry["last_error"].startswith("token endpoint answered 401")
    assert "invalid_client" in entry["last_error"]
    detail = school.a.get(f"/lti/passbacks/{entry['id']}").json
    assert "invalid_client" in (detail["attempts_log"][0]["error"] or "")
    peer.refuse_tokens = False
    school.later(3600)
    (entry,) = school.log()
    assert entry["status"] == "delivered" and entry["attempts"] == 2, entry
    assert len(peer.scores) == 1


def test_a_5xx_then_success(school: School, peer: PlatformPeer) -> None:
    peer.score_statuses = [503]
    ada = school.learner("Ada Lovelace", "sub-ada")
    school.complete(ada, 0)
    school.settle()
    (entry,) = school.log()
    assert entry["status"] == "pending" and entry["last_status"] == 503
    school.later(3600)
    (entry,) = school.log()
    assert entry["status"] == "delivered" and entry["attempts"] == 2
    assert peer.token_requests == 1  # the token was still good


def test_a_401_drops_the_token_and_retries_with_a_new_one(school: School, peer: PlatformPeer
                                                          ) -> None:
    peer.score_statuses = [401]
    ada = school.learner("Ada Lovelace", "sub-ada")
    school.complete(ada, 0)
    school.settle()
    (entry,) = school.log()
    assert entry["status"] == "pending" and entry["last_status"] == 401
    school.later(3600)
    (entry,) = school.log()
    assert entry["status"] == "delivered" and peer.token_requests == 2


def test_a_rejected_score_is_shown_and_redelivered(school: School, peer: PlatformPeer,
                                                   event_recorder: Any) -> None:
    peer.score_statuses = [400]
    ada = school.learner("Ada Lovelace", "sub-ada")
    school.complete(ada, 0)
    school.settle()
    (entry,) = school.log(school.t, status="failed")  # the instructor sees it
    assert entry["last_status"] == 400 and entry["attempts"] == 1
    detail = school.t.get(f"/lti/passbacks/{entry['id']}").json
    assert "chosen by the test" in detail["attempts_log"][0]["answer"]
    assert detail["score"]["userId"] == "sub-ada"
    r = school.t.post(f"/lti/passbacks/{entry['id']}/redeliver")
    assert r.status_code == 200, r.text
    school.settle()
    (entry,) = school.log()
    assert entry["status"] == "delivered" and entry["attempts"] == 2
    assert len(peer.scores) == 1
    # Each outcome is an event (webhooks see it): failed (400), then delivered.
    school.runtime.events.dispatch_pending()
    settled = [e.data for e in event_recorder.events if e.name == "lti.passback_settled.v1"]
    assert [(d.passback_id, d.status, d.http_status, d.attempts) for d in settled] == [
        (entry["id"], "failed", 400, 1), (entry["id"], "delivered", 200, 2)]
    assert settled[0].error == "HTTP 400" and settled[1].error is None
    assert (settled[1].user_id, settled[1].course_id) == (ada.id, school.course_id)
    assert settled[1].score_maximum == 100 and settled[1].module_id is None


def test_a_registration_switched_off_cancels_what_waits(school: School, peer: PlatformPeer
                                                        ) -> None:
    from learnplat_lti.models import PlatformRegistration

    peer.score_statuses = [503]
    ada = school.learner("Ada Lovelace", "sub-ada")
    school.complete(ada, 0)
    school.settle()
    with school.ctx():
        PlatformRegistration.update(enabled=False).where(
            PlatformRegistration.id == school.platform_id).execute()
    school.later(3600)
    (entry,) = school.log()
    assert entry["status"] == "cancelled" and len(peer.scores) == 0
    # Nor are new scores made for it.
    school.take_quiz(ada, right=True)
    school.settle()
    assert len(school.log()) == 1


def test_who_sees_which_passbacks(school: School, peer: PlatformPeer, lp_client: Any,
                                  lp_runtime: Any, lp_other_tenant: Any) -> None:
    ada = school.learner("Ada Lovelace", "sub-ada")
    school.complete(ada, 0)
    school.settle()
    (entry,) = school.log()
    one = f"/lti/passbacks/{entry['id']}"
    # The course's owner sees it, by course too; another instructor of the school does not.
    assert [e["id"] for e in school.log(school.t, course_id=school.course_id)] == [entry["id"]]
    other = school.users.make("instructor")
    oc = school.client.as_(other.token)
    assert school.log(oc) == [] and school.log(oc, course_id=school.course_id) == []
    assert oc.get(one).status_code == 404 and oc.post(f"{one}/redeliver").status_code == 404
    # A learner may not read passbacks at all.
    assert ada.c.get("/lti/passbacks").status_code == 403
    assert ada.c.get(one).status_code == 403
    # Another school's admin and instructor see nothing.
    from learnplat_identity.testing import UserFactory

    for role in ("admin", "instructor"):
        u = UserFactory(lp_runtime, lp_other_tenant).make(role)
        c = lp_client.as_(u.token, tenant=lp_other_tenant)
        assert c.get("/lti/passbacks").json["items"] == []
        assert c.get(one).status_code == 404
        assert c.post(f"{one}/redeliver").status_code == 404
    # Bad input is a 4xx problem.
    assert school.a.get("/lti/passbacks", params={"status": "lost"}).status_code in (400, 422)
    assert school.a.get("/lti/passbacks", params={"limit": 0}).status_code in (400, 422)
    assert school.a.get("/lti/passbacks/999999999").status_code == 404


def test_the_command_line(school: School, peer: PlatformPeer, lp_cli: Any) -> None:
    peer.score_statuses = [400]
    ada = school.learner("Ada Lovelace", "sub-ada")
    school.complete(ada, 0)
    school.settle()
    (entry,) = school.log()
    slug = school.tenant.slug
    r = lp_cli("lti", "passbacks", "list", "--tenant", slug, "--status", "failed", "--json")
    assert r.exit_code == 0 and f'"id": {entry["id"]}' in r.stdout, r.stdout + r.stderr
    r = lp_cli("lti", "passbacks", "show", "--tenant", slug, str(entry["id"]))
    assert r.exit_code == 0 and "attempt\t" in r.stdout and "400" in r.stdout, r.stdout
    r = lp_cli("lti", "passbacks", "redeliver", "--tenant", slug, str(entry["id"]))
    assert r.exit_code == 0 and "queued again" in r.stdout, r.stdout + r.stderr
    school.settle()
    assert school.log()[0]["status"] == "delivered"
    r = lp_cli("lti", "passbacks", "show", "--tenant", slug, "999999999")
    assert r.exit_code != 0


def test_a_platform_the_engine_gives_up_on(school: School, peer: PlatformPeer) -> None:
    """The engine disables the platform's destination (failing for days): the passbacks
    show it, the admins are told; an admin's redelivery switches it on again."""
    from learnplat_lti.passback.sink import SINK, LtiPassbackSink

    peer.score_statuses = [503]
    ada = school.learner("Ada Lovelace", "sub-ada")
    school.complete(ada, 0)
    school.settle()
    (entry,) = school.log()
    outbound = school.runtime.outbound
    sink = outbound.sinks()[SINK]
    assert isinstance(sink, LtiPassbackSink)
    with school.ctx():
        info = outbound.disable(SINK, str(school.platform_id), "no success for 72 hours")
        sink.disabled(info, "no success for 72 hours")
    (entry,) = school.log()
    assert entry["platform_disabled_at"] and "72 hours" in entry["platform_disabled_reason"]
    notes = school.a.get("/notifications").json["items"]
    assert any(n["kind"] == "lti_passback_disabled" for n in notes), notes
    r = school.a.post(f"/lti/passbacks/{entry['id']}/redeliver")
    assert r.status_code == 200, r.text
    school.settle()
    (entry,) = school.log()
    assert entry["status"] == "delivered" and entry["platform_disabled_at"] is None


def test_what_a_platform_answer_means(lti_plugin: Any) -> None:
    from learnplat_lti.passback.sink import LtiPassbackSink, scores_url

    from learnplat.plugin import Answer, Verdict

    sink = LtiPassbackSink(lti_plugin)
    for status, verdict in ((200, Verdict.DELIVERED), (201, Verdict.DELIVERED),
                            (409, Verdict.DELIVERED), (400, Verdict.REJECTED),
                            (404, Verdict.REJECTED), (422, Verdict.REJECTED),
                            (403, Verdict.RETRY), (429, Verdict.RETRY), (500, Verdict.RETRY),
                            (None, Verdict.RETRY)):
        assert sink.verdict(Answer(status=status, latency_ms=1.0), []) is verdict, status
    assert scores_url("https://lms.example/li/7?type=x") == "https://lms.example/li/7/scores?type=x"
    assert scores_url("https://lms.example/li/7/") == "https://lms.example/li/7/scores"
