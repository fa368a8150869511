"""Learning events as xAPI statements, sent to a real LRS (Ralph on loopback) and read back
from it: verbs, actor forms, parent, registration, scores, stable ids (delivered twice: one
statement), every statement valid for two xAPI model libraries nobody here wrote; the LRS
configuration API, the delivery log and redelivery; another school sees nothing."""

from __future__ import annotations

import copy
import hashlib
import uuid
from typing import Any

import pytest
from xapihelpers import PASSWORD, USER, Ralph, tincan_check

from learnplat import db
from learnplat.models import utcnow
from learnplat.tenancy import tenant_context

HOME = "https://northfield.example.edu"
ADL = "http://adlnet.gov/expapi/verbs/"
QUESTIONS = [{"type": "single_choice", "prompt": "Mean of 2, 4 and 6?",
              "options": ["3", "4", "5"], "answer": 1, "points": 1}]


class School:
    """A published course of two modules (the first a quiz) made through the API."""

    def __init__(self, client: Any, users: Any, runtime: Any, tenant: Any):
        self.client, self.users, self.runtime, self.tenant = client, users, runtime, tenant
        self.teacher = users.make("instructor")
        self.admin = users.make("admin")
        self.t, self.a = client.as_(self.teacher.token), client.as_(self.admin.token)
        r = self.t.post("/courses", json={"title": "Introduction to Statistics"})
        assert r.status_code == 201, r.text
        self.course_id = r.json["id"]
        self.module_ids = []
        for title in ("Week 1 quiz", "Week 2 video"):
            r = self.t.post(f"/courses/{self.course_id}/modules", json={"title": title})
            assert r.status_code == 201, r.text
            self.module_ids.append(r.json["id"])
        assert self.t.post(f"/courses/{self.course_id}/submit").status_code == 200
        assert self.a.post(f"/courses/{self.course_id}/approve").status_code == 200
        path = f"/courses/{self.course_id}/modules/{self.module_ids[0]}/quiz"
        r = self.t.post(path, json={"title": "Week 1 quiz", "pass_mark": 60,
                                    "questions": copy.deepcopy(QUESTIONS)})
        assert r.status_code == 201, r.text
        self.quiz = r.json
        self.quiz_path = f"{path}/{self.quiz['id']}"

    def configure(self, ralph: Ralph, **fields: Any) -> Any:
        body = {"endpoint": ralph.base, "key": USER, "secret": PASSWORD,
                "home_page": HOME, **fields}
        r = self.a.put("/xapi/lrs", json=body)
        assert r.status_code == 200, r.text
        return r.json

    def learner(self, name: str) -> Any:
        s = self.users.make("student", name=name)
        s.c = self.client.as_(s.token)
        assert s.c.post(f"/courses/{self.course_id}/enroll").status_code == 201
        return s

    def take_quiz(self, s: Any, right: bool) -> None:
        assert s.c.post(f"{self.quiz_path}/attempts").status_code == 201
        answer = {str(self.quiz["questions"][0]["id"]): 1 if right else 0}
        r = s.c.post(f"{self.quiz_path}/submit", json={"answers": answer})
        assert r.status_code == 200, r.text
        assert r.json["passed"] is right

    def video(self, s: Any, milestone: int) -> None:
        """The progress plugin's video milestone event, recorded as its heartbeat path does
        (the heartbeats themselves are tested in tests/progress)."""
        from learnplat_progress.events import VideoProgressed

        with db.connection(), tenant_context(self.tenant), db.transaction():
            self.runtime.events.record(VideoProgressed(
                course_id=self.course_id, module_id=self.module_ids[1], user_id=s.id,
                milestone=milestone, percent=float(milestone), duration_seconds=600.0))

    def complete(self, s: Any, module: int) -> None:
        r = s.c.post(f"/progress/{self.course_id}",
                     json={"module_id": self.module_ids[module], "completed": True})
        assert r.status_code == 200, r.text

    def settle(self) -> None:
        """Deliver the events (their handlers queue statements; the engine's task sends them
        inline after commit: tests run tasks immediately)."""
        self.runtime.events.dispatch_pending()
        with db.connection():
            for _ in range(5):
                pending = self.log(status="pending")
                if not pending:
                    return
                self.runtime.outbound.sweep()

    def log(self, **query: Any) -> list[dict[str, Any]]:
        r = self.a.get("/xapi/statements", params={"limit": 200, **query})
        assert r.status_code == 200, r.text
        return list(r.json["items"])


@pytest.fixture
def school(lp_client, lp_users, lp_runtime, lp_tenant) -> School:
    return School(lp_client, lp_users, lp_runtime, lp_tenant)


def by_verb(statements: list[dict[str, Any]], verb: str) -> list[dict[str, Any]]:
    return [s for s in statements if s["verb"]["id"].endswith("/" + verb)]


def test_a_learners_path_reaches_the_lrs(school: School, ralph: Ralph) -> None:
    lrs = school.configure(ralph)
    assert lrs["actor"] == "account" and lrs["home_page"] == HOME and lrs["secret_set"]
    assert "secret" not in lrs and PASSWORD not in str(lrs)
    ada, bob = school.learner("Ada Lovelace"), school.learner("Bob Bernoulli")
    school.take_quiz(ada, right=True)
    school.take_quiz(bob, right=False)
    for mark in (25, 50):
        school.video(ada, mark)
    school.complete(ada, 1)  # the quiz completed module 0: the course is completed
    school.settle()

    log = school.log()
    assert log and all(e["status"] == "delivered" for e in log), [
        (e["verb"], e["status"], e["last_status"], e["last_error"]) for e in log]
    ids = {e["statement_id"] for e in log}
    mine = [s for s in ralph.statements() if s["id"] in ids]
    assert len(mine) == len(ids) == len(log)

    course_iri = f"{HOME}/courses/{school.course_id}"
    quiz_iri = f"{HOME}/quizzes/{school.quiz['id']}"
    ada_actor = {"objectType": "Agent", "account": {"homePage": HOME, "name": str(ada.id)}}

    def of(user: Any, verb: str) -> list[dict[str, Any]]:
        return [s for s in by_verb(mine, verb)
                if s["actor"].get("account", {}).get("name") == str(user.id)]

    # registered: the course itself, one registration per enrollment
    (reg,) = of(ada, "registered")
    assert reg["object"]["id"] == course_iri
    assert reg["object"]["definition"]["name"] == {"en-US": "Introduction to Statistics"}
    assert reg["object"]["definition"]["type"] == "http://adlnet.gov/expapi/activities/course"
    assert "contextActivities" not in reg["context"]
    registration = reg["context"]["registration"]
    assert uuid.UUID(registration).version == 5
    (bob_reg,) = of(bob, "registered")
    assert bob_reg["context"]["registration"] != registration
    # every statement of Ada's carries her registration; module-level ones the course as parent
    for s in [s for s in mine if s["actor"] == ada_actor]:
        assert s["context"]["registration"] == registration, s
        assert s["context"]["platform"] == "learnplat" and s["context"]["language"] == "en-US"
        assert s["actor"] == ada_actor
        if s["object"]["id"] != course_iri:
            assert s["context"]["contextActivities"]["parent"][0]["id"] == course_iri
        assert "stored" in s and "authority" in s  # the LRS's own
    # quiz: attempted, then passed (Ada) / failed (Bob) with the score
    (attempted,) = of(ada, "attempted")
    assert attempted["object"]["id"] == quiz_iri
    (passed,) = of(ada, "passed")
    assert passed["result"]["success"] is True and passed["result"]["completion"] is True
    assert passed["result"]["score"] == {"scaled": 1.0, "raw": 100.0, "min": 0, "max": 100}
    (failed,) = of(bob, "failed")
    assert failed["result"]["success"] is False
    assert failed["result"]["score"]["scaled"] == 0.0
    # video milestones: progressed, with cmi5's progress and the video's length
    progressed = sorted(of(ada, "progressed"),
                        key=lambda s: s["result"]["extensions"][
                            "https://w3id.org/xapi/cmi5/result/extensions/progress"])
    assert [s["result"]["extensions"]["https://w3id.org/xapi/cmi5/result/extensions/progress"]
            for s in progressed] == [25, 50]
    assert progressed[0]["object"]["definition"]["type"] == \
        "https://w3id.org/xapi/video/activity-type/video"
    assert progressed[0]["context"]["extensions"][
        "https://w3id.org/xapi/video/extensions/length"] == 600.0
    # completed: both modules (the quiz's by passing it) and the course
    completed = of(ada, "completed")
    objects = sorted(s["object"]["id"] for s in completed)
    assert objects == sorted([course_iri] + [f"{course_iri}/modules/{m}"
                                             for m in school.module_ids])
    # the timestamps are the events' times, not the LRS's
    assert all(s["timestamp"].endswith("Z") for s in mine)

    # Valid for Open edX's models and for Ralph's strict ones.
    for s in mine:
        tincan_check(s)
    assert ralph.validate_strictly(mine) == []

    # Sent again (a redelivery of everything): the LRS still holds one statement per id.
    r = school.a.post("/xapi/statements/redeliver", json={
        "since": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z",
        "statuses": ["delivered"]})
    assert r.status_code == 200, r.text
    assert r.json["redelivered"] == len(log)
    school.settle()
    again = [s for s in ralph.statements() if s["id"] in ids]
    assert len(again) == len(ids)
    log2 = school.log()
    assert all(e["status"] == "delivered" and e["attempts"] == 2 for e in log2), log2


def test_mbox_sha1sum_actor_and_stable_ids(school: School, ralph: Ralph, xapi_service,
                                           lp_runtime, lp_tenant) -> None:
    school.configure(ralph, actor="mbox_sha1sum")
    ada = school.learner("Ada Lovelace")
    school.settle()
    (entry,) = [e for e in school.log() if e["event_type"] == "enrollment.created.v1"]
    (stored,) = [s for s in ralph.statements() if s["id"] == entry["statement_id"]]
    digest = hashlib.sha1(f"mailto:{ada.email.lower()}".encode()).hexdigest()
    assert stored["actor"] == {"objectType": "Agent", "mbox_sha1sum": digest}
    assert ada.email not in str(stored)
    tincan_check(stored)
    assert ralph.validate_strictly([stored]) == []

    # The handler run again for the same event (a redelivered event) queues nothing more.
    from learnplat_xapi.events import EnrollmentCreatedPayload
    from learnplat_xapi.services import HANDLERS

    from learnplat.events import EventMessage

    build = next(b for e, _, _, b in HANDLERS if e == "enrollment.created.v1")
    payload = {"enrollment_id": 1, "course_id": school.course_id, "user_id": ada.id}
    message = EventMessage(id=entry["event_id"], name="enrollment.created.v1",
                           tenant_id=lp_tenant.id, payload=payload, created_at=utcnow(),
                           attempt=2, data=EnrollmentCreatedPayload(**payload))
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        xapi_service.handle(build, message, enrollment_id=1)
    assert len(school.log()) == 1


def test_lrs_api_validation_and_switching_off(school: School, ralph: Ralph) -> None:
    a = school.a
    r = a.get("/xapi/lrs")
    assert r.status_code == 404 and r.json["code"] == "lrs_not_configured"
    # the secret is required the first time
    r = a.put("/xapi/lrs", json={"endpoint": ralph.base, "key": USER})
    assert r.status_code == 422 and "secret" in r.text
    r = a.put("/xapi/lrs", json={"endpoint": "http://10.1.2.3/xapi", "key": USER,
                                 "secret": "x"})
    assert r.status_code == 422 and r.json["code"] == "unsafe_url"
    r = a.put("/xapi/lrs", json={"endpoint": ralph.base, "key": USER, "secret": "x",
                                 "actor": "openid"})
    assert r.status_code == 422
    r = a.get("/xapi/statements", params={"since": "2026-02-01T00:00:00Z",
                                         "until": "2026-01-01T00:00:00Z"})
    assert r.status_code == 404  # nothing configured yet
    assert a.get("/xapi/lrs").status_code == 404  # nothing half-written
    # a default home page when none is given
    r = a.put("/xapi/lrs", json={"endpoint": ralph.base, "key": USER, "secret": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json["home_page"].startswith(("http://", "https://"))
    # wrong credentials: the LRS answers 401, the statement waits (retried)
    school.configure(ralph, secret="wrong")
    school.learner("Ada Lovelace")
    school.runtime.events.dispatch_pending()
    (entry,) = school.log()
    assert entry["status"] == "pending" and entry["last_status"] == 401, entry
    detail = a.get(f"/xapi/statements/{entry['id']}").json
    assert detail["attempts_log"][0]["status"] == 401
    assert detail["statement"]["id"] == entry["statement_id"]
    # the admin fixes the secret (omitted: the stored one is kept) and sends it again
    lrs = school.configure(ralph)
    assert lrs["key"] == USER
    r = a.post(f"/xapi/statements/{entry['id']}/redeliver")
    assert r.status_code == 200, r.text
    school.settle()
    (entry,) = school.log()
    assert entry["status"] == "delivered" and entry["attempts"] == 2
    assert any(s["id"] == entry["statement_id"] for s in ralph.statements())
    # switched off: nothing is queued for new events
    r = a.put("/xapi/lrs", json={"endpoint": ralph.base, "key": USER, "enabled": False})
    assert r.status_code == 200 and r.json["enabled"] is False
    school.learner("Bob Bernoulli")
    school.runtime.events.dispatch_pending()
    assert len(school.log()) == 1
    r = a.get("/xapi/statements", params={"since": "2026-02-01T00:00:00Z",
                                         "until": "2026-01-01T00:00:00Z"})
    assert r.status_code == 422
    # removed: the log goes with it
    assert a.delete("/xapi/lrs").status_code == 204
    assert a.get("/xapi/lrs").status_code == 404
    assert a.get("/xapi/statements").status_code == 404


def test_students_and_instructors_may_not(school: School, ralph: Ralph) -> None:
    school.configure(ralph)
    s = school.learner("Ada Lovelace")
    for c in (s.c, school.t):
        assert c.get("/xapi/lrs").status_code == 403
        assert c.get("/xapi/statements").status_code == 403
        assert c.put("/xapi/lrs", json={"endpoint": ralph.base, "key": "k",
                                        "secret": "s"}).status_code == 403


def test_another_school_sees_nothing(school: School, ralph: Ralph, lp_client, lp_runtime,
                                     lp_other_tenant) -> None:
    school.configure(ralph)
    school.learner("Ada Lovelace")
    school.settle()
    (entry,) = school.log()
    from learnplat_identity.testing import UserFactory

    other = UserFactory(lp_runtime, lp_other_tenant).make("admin")
    c = lp_client.as_(other.token, tenant=lp_other_tenant)
    assert c.get("/xapi/lrs").status_code == 404
    assert c.get("/xapi/statements").status_code == 404
    assert c.get(f"/xapi/statements/{entry['id']}").status_code == 404
    assert c.post(f"/xapi/statements/{entry['id']}/redeliver").status_code == 404
    assert c.delete("/xapi/lrs").status_code == 404
    # its own LRS set, it still sees none of the first school's statements
    r = c.put("/xapi/lrs", json={"endpoint": ralph.base, "key": USER, "secret": PASSWORD,
                                 "home_page": "https://other.example.edu"})
    assert r.status_code == 200, r.text
    assert c.get("/xapi/statements").json["items"] == []
    assert c.get(f"/xapi/statements/{entry['id']}").status_code == 404
    assert c.post(f"/xapi/statements/{entry['id']}/redeliver").status_code == 404
    assert school.a.get("/xapi/lrs").json["home_page"] == HOME


def test_the_command_line(school: School, ralph: Ralph, lp_cli, lp_tenant) -> None:
    slug = lp_tenant.slug
    r = lp_cli("xapi", "show", "--tenant", slug)
    assert r.exit_code != 0 and "no learning record store" in (r.stdout + r.stderr)
    r = lp_cli("xapi", "configure", "--tenant", slug, "--endpoint", ralph.base, "--key", USER,
               "--secret", PASSWORD, "--actor", "mbox_sha1sum", "--home-page", HOME, "--json")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert '"actor": "mbox_sha1sum"' in r.stdout and PASSWORD not in r.stdout
    school.learner("Ada Lovelace")
    school.settle()
    r = lp_cli("xapi", "statements", "--tenant", slug, "--json")
    assert r.exit_code == 0 and '"status": "delivered"' in r.stdout, r.stdout + r.stderr
    entry = school.log()[0]
    r = lp_cli("xapi", "redeliver", "--tenant", slug, "--id", str(entry["id"]))
    assert r.exit_code == 0 and "1 statements queued again" in r.stdout, r.stdout + r.stderr
    r = lp_cli("xapi", "redeliver", "--tenant", slug)
    assert r.exit_code != 0
    r = lp_cli("xapi", "disable", "--tenant", slug)
    assert r.exit_code == 0
    r = lp_cli("xapi", "show", "--tenant", slug)
    assert "enabled\tFalse" in r.stdout


def test_what_an_lrs_answer_means(xapi_service) -> None:
    """The sink's reading of answers (docs/xapi.md, "Batches, answers and retries")."""
    import datetime as dt

    from learnplat_xapi.services import XapiSink

    from learnplat.plugin import Answer, MessageInfo, Verdict

    def message(n: int) -> MessageInfo:
        return MessageInfo(id=n, destination_id=1, sink="xapi", ref="lrs", key=str(n),
                           event_id=n, event_type="quiz.graded.v1", payload={}, status="pending",
                           attempts=0, created_at=dt.datetime.now(dt.UTC), next_attempt_at=None,
                           last_attempt_at=None, delivered_at=None, last_status=None,
                           last_error=None)

    sink = XapiSink(xapi_service)
    one, three = [message(1)], [message(1), message(2), message(3)]

    def verdict(status: int | None, batch: list[MessageInfo]) -> Verdict:
        return sink.verdict(Answer(status=status, latency_ms=1.0,
                                   error=None if status else "timeout"), batch)

    assert verdict(200, three) is Verdict.DELIVERED
    assert verdict(204, one) is Verdict.DELIVERED
    assert verdict(409, one) is Verdict.DELIVERED  # already stored: ours, from a lost answer
    assert verdict(409, three) is Verdict.SPLIT  # which one: each is sent again alone
    assert verdict(400, one) is Verdict.REJECTED
    assert verdict(400, three) is Verdict.SPLIT
    assert verdict(410, three) is Verdict.GONE
    for status in (401, 403, 429, 500, 503, None):
        assert verdict(status, three) is Verdict.RETRY


def test_an_lrs_that_says_gone_is_switched_off_and_admins_told(school: School, lp_runtime
                                                                ) -> None:
    """A 410 from the LRS (a real server on loopback): the engine disables it, the plugin
    switches it off and notifies the school's admins; the statement failed, redeliverable."""
    import http.server
    import threading

    from learnplat.testing import free_port

    class Gone(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(410)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Gone)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        r = school.a.put("/xapi/lrs", json={
            "endpoint": f"http://127.0.0.1:{server.server_address[1]}/xapi", "key": USER,
            "secret": PASSWORD, "home_page": HOME})
        assert r.status_code == 200, r.text
        school.learner("Ada Lovelace")
        school.runtime.events.dispatch_pending()
    finally:
        server.shutdown()
        server.server_close()
    lrs = school.a.get("/xapi/lrs").json
    assert lrs["enabled"] is False
    assert "410" in lrs["delivery"]["disabled_reason"]
    (entry,) = school.log()
    assert entry["status"] == "failed" and entry["last_status"] == 410
    notes = school.a.get("/notifications").json["items"]
    assert any(n["kind"] == "lrs_disabled" for n in notes), notes
