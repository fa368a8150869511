"""Instructor review of short_text answers, regrading, the events the plugin records, and what
it adds to progress and analytics through their hooks."""

from __future__ import annotations

from quizhelpers import CORRECT


def _events(recorder, name):
    return [e for e in recorder.events if e.name == name]


def test_passing_completes_the_module_in_progress_end_to_end(cast, lp_runtime,
                                                             event_recorder):
    quiz = cast.create_quiz()
    s = cast.enroll()
    assert s.c.get(f"/progress/{cast.course_id}").json["modules"][0]["completed"] is False
    r = s.c.post(f"{quiz['path']}/submit", json={"answers": cast.answers(quiz, CORRECT)})
    assert r.json["passed"] is True
    lp_runtime.events.dispatch_pending()
    [passed] = _events(event_recorder, "quiz.passed.v1")
    assert passed.payload["course_id"] == cast.course_id
    assert passed.payload["module_id"] == cast.module_ids[0]
    assert passed.payload["user_id"] == s.id
    [graded] = _events(event_recorder, "quiz.graded.v1")
    assert graded.payload["percent"] == 100 and graded.payload["passed"] is True
    assert graded.payload["regraded"] is False
    # The progress plugin consumed quiz.passed.v1 and completed the module.
    doc = s.c.get(f"/progress/{cast.course_id}").json
    assert doc["modules"][0]["completed"] is True
    assert doc["modules"][0]["completed_source"] == "quiz"
    assert doc["percent"] == 50
    # ... and shows the quiz score through progress_extras.
    assert doc["quizzes"] == [{"quiz_id": quiz["id"], "module_id": cast.module_ids[0],
                               "title": "Quiz", "attempts": 1, "score": 100.0,
                               "passed": True}]
    deliveries = [e for e in event_recorder.events if e.name == "progress.module_completed.v1"]
    assert deliveries and deliveries[0].payload["source"] == "quiz"


def test_failing_does_not_complete_and_passing_is_announced_once(cast, lp_runtime,
                                                                 event_recorder):
    quiz = cast.create_quiz(max_attempts=5)
    s = cast.enroll()
    wrong = {0: 0, 1: [1], 2: True, 3: 1.0}
    for answers in (wrong, CORRECT, CORRECT):
        s.c.post(f"{quiz['path']}/attempts")
        s.c.post(f"{quiz['path']}/submit", json={"answers": cast.answers(quiz, answers)})
    lp_runtime.events.dispatch_pending()
    assert len(_events(event_recorder, "quiz.graded.v1")) == 3
    assert len(_events(event_recorder, "quiz.passed.v1")) == 1
    assert _events(event_recorder, "quiz.passed.v1")[0].payload["attempt_id"] != 0


def test_analytics_average_quiz_score(cast, lp_runtime):
    a = cast.t.get(f"/courses/{cast.course_id}/analytics").json
    assert a["average_quiz_score"] is None  # no quiz yet: the default stays
    quiz = cast.create_quiz(max_attempts=3)
    s1, s2 = cast.enroll(), cast.enroll()
    s1.c.post(f"{quiz['path']}/submit", json={"answers": cast.answers(quiz, CORRECT)})
    # 2 of 8 points: 25 %; then a second attempt at 100 % counts (best).
    s2.c.post(f"{quiz['path']}/submit", json={"answers": cast.answers(quiz, {0: 1})})
    a = cast.t.get(f"/courses/{cast.course_id}/analytics").json
    assert a["average_quiz_score"] == 62.5
    assert a["quizzes"] == [{"quiz_id": quiz["id"], "module_id": cast.module_ids[0],
                             "title": "Quiz", "graded_students": 2, "average_score": 62.5,
                             "pass_rate": 0.5}]
    s2.c.post(f"{quiz['path']}/attempts")
    s2.c.post(f"{quiz['path']}/submit", json={"answers": cast.answers(quiz, CORRECT)})
    a = cast.a.get(f"/courses/{cast.course_id}/analytics").json
    assert a["average_quiz_score"] == 100


def test_short_text_review_grade_and_regrade(cast, lp_runtime, event_recorder):
    quiz = cast.create_quiz(results="immediate")
    s = cast.enroll()
    answers = {**CORRECT, 4: "a zebra with stripes"}  # not auto-accepted
    r = s.c.post(f"{quiz['path']}/submit", json={"answers": cast.answers(quiz, answers)})
    res = r.json
    assert res["attempt"]["status"] == "submitted" and res["attempt"]["released"] == "none"
    assert res["score"] is None and res["attempt"]["percent"] is None
    lp_runtime.events.dispatch_pending()
    [submitted] = _events(event_recorder, "quiz.submitted.v1")
    assert submitted.payload["needs_review"] is True
    assert _events(event_recorder, "quiz.graded.v1") == []
    # The instructor's review queue.
    page = cast.t.get(f"{quiz['path']}/submissions").json
    [sub] = page["items"]
    assert sub["user_id"] == s.id and sub["pending"] == 1 and sub["needs_review"] is True
    text_q = sub["questions"][4]
    assert text_q["answer"] == "a zebra with stripes"
    assert text_q["model_answer"] == "Zorblax-model-answer"
    assert text_q["status"] == "pending_review"
    qid = str(quiz["qids"][4])
    grade = f"{quiz['path']}/attempts/{sub['id']}/grade"
    # Only short_text answers, within their points.
    r = cast.t.post(grade, json={"grades": {str(quiz["qids"][0]): {"points": 1}}})
    assert r.status_code == 422 and r.json["errors"][0]["field"].startswith("grades.")
    r = cast.t.post(grade, json={"grades": {qid: {"points": 3}}})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == f"grades.{qid}.points"
    r = cast.t.post(grade, json={"grades": {"777777": {"points": 1}}})
    assert r.status_code == 422
    r = cast.t.post(grade, json={"grades": {qid: {"points": 1, "feedback": "Half right"}},
                                 "feedback": "Good work"})
    assert r.status_code == 200, r.text
    assert r.json["status"] == "graded" and r.json["points"] == 7
    assert cast.t.get(f"{quiz['path']}/submissions").json["items"] == []
    res = s.c.get(f"{quiz['path']}/result").json
    assert res["score"] == 87.5 and res["attempt"]["feedback"] == "Good work"
    assert res["attempt"]["questions"][4]["feedback"] == "Half right"
    assert res["attempt"]["questions"][4]["status"] == "partial"
    # Regrade: full points.
    r = cast.t.post(grade, json={"grades": {qid: {"points": 2, "feedback": "On reflection"}}})
    assert r.json["percent"] == 100
    assert s.c.get(f"{quiz['path']}/result").json["score"] == 100
    lp_runtime.events.dispatch_pending()
    graded = _events(event_recorder, "quiz.graded.v1")
    assert [(e.payload["reviewed"], e.payload["regraded"]) for e in graded] == [
        (True, False), (True, True)]
    assert len(_events(event_recorder, "quiz.passed.v1")) == 1
    # Reviewers are the owner and admins only.
    other = cast.client.as_(cast.users.make("instructor").token)
    assert other.get(f"{quiz['path']}/submissions").status_code == 404
    assert other.post(grade, json={"grades": {}}).status_code == 404
    assert s.c.post(grade, json={"grades": {}}).status_code == 403


def test_after_review_policy_waits_for_the_instructor(cast, lp_runtime, event_recorder):
    quiz = cast.create_quiz(results="after_review")
    s = cast.enroll()
    r = s.c.post(f"{quiz['path']}/submit", json={"answers": cast.answers(quiz, CORRECT)})
    assert r.json["attempt"]["status"] == "submitted" and r.json["score"] is None
    [sub] = cast.t.get(f"{quiz['path']}/submissions").json["items"]
    assert sub["pending"] == 0 and sub["needs_review"] is True and sub["percent"] == 100
    r = cast.t.post(f"{quiz['path']}/attempts/{sub['id']}/grade", json={})
    assert r.status_code == 200 and r.json["status"] == "graded"
    res = s.c.get(f"{quiz['path']}/result").json
    assert res["score"] == 100 and res["attempt"]["released"] == "full"
    lp_runtime.events.dispatch_pending()
    assert len(_events(event_recorder, "quiz.passed.v1")) == 1


def test_grading_an_open_attempt_is_409(cast):
    quiz = cast.create_quiz()
    s = cast.enroll()
    a = s.c.post(f"{quiz['path']}/attempts").json
    r = cast.t.post(f"{quiz['path']}/attempts/{a['id']}/grade", json={"grades": {}})
    assert r.status_code == 409 and r.json["code"] == "not_submitted"
    assert cast.t.post(f"{quiz['path']}/attempts/99999999/grade",
                       json={"grades": {}}).status_code == 404


def test_events_are_declared_for_the_catalogue(lp_runtime):
    events = lp_runtime.registry.events
    for name in ("quiz.passed.v1", "quiz.graded.v1", "quiz.submitted.v1"):
        assert events[name].plugin == "quizzes"
    fields = dict(events["quiz.passed.v1"].type.fields_summary())
    assert {"course_id", "module_id", "user_id"} <= set(fields)


def test_openapi_documents_the_routes(lp_client):
    doc = lp_client.get("/openapi.json").json
    base = "/courses/{course_id}/modules/{module_id}/quiz"
    assert "post" in doc["paths"][base]
    assert "post" in doc["paths"][f"{base}/{{quiz_id}}/submit"]
    assert "get" in doc["paths"][f"{base}/{{quiz_id}}/result"]
    assert "get" in doc["paths"][f"{base}/{{quiz_id}}/submissions"]
