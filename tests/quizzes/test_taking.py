"""Taking a quiz: attempts on the server's clock, saving, submitting, results policies, bad
input, attempt limits."""

from __future__ import annotations

import datetime as dt

import pytest
from quizhelpers import CORRECT, QUESTIONS


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    import learnplat_quizzes.resources as resources
    import learnplat_quizzes.services as services

    c = Clock()
    monkeypatch.setattr(services, "utcnow", c)
    monkeypatch.setattr(resources, "utcnow", c)
    return c


def test_start_returns_questions_without_answers_and_is_idempotent(cast):
    quiz = cast.create_quiz(time_limit_seconds=300)
    s = cast.enroll()
    r = s.c.post(f"{quiz['path']}/attempts")
    assert r.status_code == 201, r.text
    a = r.json
    assert a["number"] == 1 and a["status"] == "in_progress"
    started = dt.datetime.fromisoformat(a["started_at"])
    assert dt.datetime.fromisoformat(a["deadline"]) - started == dt.timedelta(seconds=300)
    assert [q["id"] for q in a["questions"]] == quiz["qids"]
    assert a["questions"][0] == {"id": quiz["qids"][0], "type": "single_choice",
                                 "prompt": "Capital of France?", "points": 2.0,
                                 "options": [{"index": 0, "text": "Lyon"},
                                             {"index": 1, "text": "Paris"},
                                             {"index": 2, "text": "Nice"}]}
    # Starting again while one is open returns it (200), no second attempt.
    again = s.c.post(f"{quiz['path']}/attempts")
    assert again.status_code == 200 and again.json["id"] == a["id"]
    assert s.c.get(f"{quiz['path']}/attempts/{a['id']}").json["id"] == a["id"]
    summary = s.c.get(quiz["path"]).json
    assert summary["attempts_used"] == 1 and summary["open_attempt_id"] == a["id"]
    assert "questions" not in summary


def test_shuffled_attempts_keep_option_indices(cast):
    qs = [{"type": "single_choice", "prompt": f"Q{i}", "options": [f"o{j}" for j in range(6)],
           "answer": 3} for i in range(8)]
    quiz = cast.create_quiz(questions=qs, shuffle_questions=True, shuffle_options=True,
                            max_attempts=10)
    s = cast.enroll()
    orders = set()
    for _ in range(4):
        a = s.c.post(f"{quiz['path']}/attempts").json
        orders.add(tuple(q["id"] for q in a["questions"]))
        assert sorted(q["id"] for q in a["questions"]) == sorted(quiz["qids"])
        for q in a["questions"]:
            assert sorted(o["index"] for o in q["options"]) == list(range(6))
            assert all(o["text"] == f"o{o['index']}" for o in q["options"])
        r = s.c.post(f"{quiz['path']}/submit",
                     json={"answers": {str(i): 3 for i in quiz["qids"]}})
        assert r.json["attempt"]["percent"] == 100  # indices name options, not places
    assert len(orders) > 1  # 4 draws of 8! orders: equal by chance with p < 1e-13


def test_save_as_you_go_then_submit_merges(cast):
    quiz = cast.create_quiz()
    s = cast.enroll()
    a = s.c.post(f"{quiz['path']}/attempts").json
    ans = f"{quiz['path']}/attempts/{a['id']}/answers"
    r = s.c.put(ans, json={"answers": cast.answers(quiz, {0: 1, 1: [0]})})
    assert r.status_code == 200, r.text
    assert set(r.json["saved_at"]) == {str(quiz["qids"][0]), str(quiz["qids"][1])}
    r = s.c.put(ans, json={"answers": cast.answers(quiz, {1: [0, 2], 2: None})})
    assert r.json["answers"] == cast.answers(quiz, {0: 1, 1: [0, 2]})
    assert s.c.get(f"{quiz['path']}/attempts/{a['id']}").json["answers"] == r.json["answers"]
    r = s.c.post(f"{quiz['path']}/submit", json={"answers": cast.answers(quiz, {2: False})})
    assert r.status_code == 200
    res = r.json["attempt"]
    assert [q["status"] for q in res["questions"]] == [
        "correct", "correct", "correct", "unanswered", "unanswered"]
    assert res["points"] == 5 and res["max_points"] == 8
    assert s.c.put(ans, json={"answers": {}}).status_code == 409


def test_submit_without_starting_is_one_attempt_and_twice_is_409(cast, lp_runtime,
                                                                  event_recorder):
    quiz = cast.create_quiz(max_attempts=2)
    s = cast.enroll()
    r = s.c.post(f"{quiz['path']}/submit", json={"answers": cast.answers(quiz, CORRECT)})
    assert r.status_code == 200 and r.json["attempts_used"] == 1
    attempt_id = r.json["attempt"]["id"]
    again = s.c.post(f"{quiz['path']}/submit", json={"answers": cast.answers(quiz, CORRECT)})
    assert again.status_code == 409 and again.json["code"] == "no_open_attempt"
    named = s.c.post(f"{quiz['path']}/submit", json={"attempt_id": attempt_id,
                                                     "answers": {}})
    assert named.status_code == 409 and named.json["code"] == "already_submitted"
    assert s.c.get(f"{quiz['path']}/attempts").json["items"][0]["id"] == attempt_id
    assert len(s.c.get(f"{quiz['path']}/attempts").json["items"]) == 1
    lp_runtime.events.dispatch_pending()
    assert event_recorder.names().count("quiz.graded.v1") == 1


def test_max_attempts_409(cast):
    quiz = cast.create_quiz(max_attempts=2)
    s = cast.enroll()
    for _ in range(2):
        assert s.c.post(f"{quiz['path']}/attempts").status_code == 201
        assert s.c.post(f"{quiz['path']}/submit", json={"answers": {}}).status_code == 200
    r = s.c.post(f"{quiz['path']}/attempts")
    assert r.status_code == 409 and r.json["code"] == "max_attempts_reached"
    res = s.c.get(f"{quiz['path']}/result").json
    assert res["attempts_used"] == 2 and res["attempts_left"] == 0


@pytest.mark.parametrize("index,answer,message", [
    (0, "Paris", "option index"), (0, 7, "out of range"), (0, True, "option index"),
    (1, [0, 0], "repeat"), (1, 2, "list"), (2, "false", "true or false"),
    (3, "3.14", "number"), (4, 42, "text"), (4, "x" * 5001, "5000")])
def test_wrong_answer_types_are_422_naming_the_question(cast, index, answer, message):
    quiz = cast.create_quiz()
    s = cast.enroll()
    qid = quiz["qids"][index]
    r = s.c.post(f"{quiz['path']}/submit", json={"answers": {str(qid): answer}})
    assert r.status_code == 422, r.text
    assert r.json["errors"][0]["field"] == f"answers.{qid}"
    assert message in r.json["errors"][0]["message"]
    # Nothing written: the attempt the submit would have started does not exist.
    assert s.c.get(f"{quiz['path']}/attempts").json["items"] == []


def test_unknown_question_ids_are_422(cast):
    quiz = cast.create_quiz()
    other = cast.create_quiz(module=1)
    s = cast.enroll()
    for key in (str(other["qids"][0]), "abc", "99999999999999999999"):
        r = s.c.post(f"{quiz['path']}/submit", json={"answers": {key: 1}})
        assert r.status_code == 422 and r.json["errors"][0]["field"] == f"answers.{key}"
    r = s.c.post(f"{quiz['path']}/submit", json={"answers": [1, 2]})
    assert r.status_code == 422


def test_time_limit_late_submission_uses_answers_saved_in_time(cast, clock, lp_runtime):
    quiz = cast.create_quiz(time_limit_seconds=60)
    s = cast.enroll()
    a = s.c.post(f"{quiz['path']}/attempts").json
    ans = f"{quiz['path']}/attempts/{a['id']}/answers"
    assert s.c.put(ans, json={"answers": cast.answers(quiz, {0: 1})}).status_code == 200
    clock.tick(60 + 20)  # past the limit, within the 30 s grace: still on time
    assert s.c.put(ans, json={"answers": cast.answers(quiz, {2: False})}).status_code == 200
    clock.tick(20)  # past the grace
    r = s.c.put(ans, json={"answers": cast.answers(quiz, {3: 3.14})})
    assert r.status_code == 409 and r.json["code"] == "time_up"
    r = s.c.post(f"{quiz['path']}/submit", json={"answers": cast.answers(quiz, CORRECT)})
    assert r.status_code == 200
    res = r.json["attempt"]
    assert res["late"] is True
    assert [q["status"] for q in res["questions"]][:4] == [
        "correct", "unanswered", "correct", "unanswered"]
    assert res["points"] == 3


def test_submit_within_grace_is_on_time(cast, clock):
    quiz = cast.create_quiz(time_limit_seconds=60)
    s = cast.enroll()
    s.c.post(f"{quiz['path']}/attempts")
    clock.tick(85)
    r = s.c.post(f"{quiz['path']}/submit", json={"answers": cast.answers(quiz, CORRECT)})
    assert r.json["attempt"]["late"] is False and r.json["score"] == 100


def test_an_expired_open_attempt_is_closed_when_a_new_one_starts(cast, clock):
    quiz = cast.create_quiz(time_limit_seconds=60, max_attempts=3)
    s = cast.enroll()
    first = s.c.post(f"{quiz['path']}/attempts").json
    clock.tick(3600)
    r = s.c.post(f"{quiz['path']}/attempts")
    assert r.status_code == 201 and r.json["number"] == 2
    items = s.c.get(f"{quiz['path']}/attempts").json["items"]
    assert items[0]["id"] == first["id"] and items[0]["late"] and items[0]["status"] == "graded"


def test_results_policies(cast, clock):
    s = cast.enroll()
    score_only = cast.create_quiz(module=0, results="score_only")
    r = s.c.post(f"{score_only['path']}/submit",
                 json={"answers": cast.answers(score_only, CORRECT)}).json
    assert r["score"] == 100 and r["attempt"]["released"] == "score"
    assert r["attempt"]["questions"] is None
    later = (clock.now + dt.timedelta(days=1)).isoformat()
    after_date = cast.create_quiz(module=1, results="after_date", results_at=later)
    r = s.c.post(f"{after_date['path']}/submit",
                 json={"answers": cast.answers(after_date, CORRECT)}).json
    assert r["score"] is None and r["attempt"]["released"] == "none"
    assert r["attempt"]["percent"] is None and r["attempt"]["questions"] is None
    assert r["attempt"]["status"] == "graded"
    clock.tick(86_401)
    r = s.c.get(f"{after_date['path']}/result").json
    assert r["score"] == 100 and r["attempt"]["released"] == "full"
    assert r["attempt"]["questions"][0]["correct_answer"] == 1


def test_students_must_be_enrolled_and_module_released(cast, lp_users):
    quiz = cast.create_quiz()
    stranger = cast.client.as_(lp_users.make("student").token)
    r = stranger.post(f"{quiz['path']}/attempts")
    assert r.status_code == 403 and r.json["code"] == "not_enrolled"
    assert stranger.get(quiz["path"]).status_code == 403
    assert cast.t.post(f"{quiz['path']}/attempts").status_code == 403  # instructors author
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).isoformat()
    r = cast.t.put(f"/courses/{cast.course_id}/modules/{cast.module_ids[1]}",
                   json={"release_at": future})
    assert r.status_code == 200, r.text
    locked = cast.create_quiz(module=1)
    s = cast.enroll()
    r = s.c.post(f"{locked['path']}/attempts")
    assert r.status_code == 409 and r.json["code"] == "module_locked"
    assert r.json["reason"] == "not_released"


def test_a_prerequisite_locks_the_quiz_until_completed(cast):
    m0, m1 = cast.module_ids
    r = cast.t.put(f"/courses/{cast.course_id}/modules/{m1}", json={"prerequisite_id": m0})
    assert r.status_code == 200, r.text
    quiz = cast.create_quiz(module=1)
    s = cast.enroll()
    r = s.c.post(f"{quiz['path']}/submit", json={"answers": {}})
    assert r.status_code == 409 and r.json["reason"] == "prerequisite"
    assert r.json["prerequisite_id"] == m0
    r = s.c.post(f"/progress/{cast.course_id}", json={"module_id": m0, "completed": True})
    assert r.status_code == 200, r.text
    assert s.c.post(f"{quiz['path']}/submit", json={"answers": {}}).status_code == 200


def test_attempts_of_other_students_are_404(cast):
    quiz = cast.create_quiz()
    s1, s2 = cast.enroll(), cast.enroll()
    a = s1.c.post(f"{quiz['path']}/attempts").json
    assert s2.c.get(f"{quiz['path']}/attempts/{a['id']}").status_code == 404
    r = s2.c.put(f"{quiz['path']}/attempts/{a['id']}/answers", json={"answers": {}})
    assert r.status_code == 404
    r = s2.c.post(f"{quiz['path']}/submit", json={"attempt_id": a["id"], "answers": {}})
    assert r.status_code == 404


def test_counted_attempt_best_or_last(cast):
    best = cast.create_quiz(module=0, counted="best", max_attempts=3, questions=QUESTIONS[:1])
    last = cast.create_quiz(module=1, counted="last", max_attempts=3, questions=QUESTIONS[:1])
    s = cast.enroll()
    for quiz in (best, last):
        for answer in (1, 0):  # right, then wrong
            s.c.post(f"{quiz['path']}/attempts")
            s.c.post(f"{quiz['path']}/submit",
                     json={"answers": {str(quiz["qids"][0]): answer}})
    assert s.c.get(f"{best['path']}/result").json["score"] == 100
    r = s.c.get(f"{last['path']}/result").json
    assert r["score"] == 0 and r["passed"] is False
    assert r["attempt"]["number"] == 2


def test_abandoned_attempts_are_closed_by_the_periodic_task(cast, clock, lp_runtime,
                                                            lp_tenant, event_recorder):
    from learnplat_quizzes.tasks import CLOSE_TASK, close_expired

    assert CLOSE_TASK in lp_runtime.registry.tasks
    quiz = cast.create_quiz(time_limit_seconds=60)
    s, fresh = cast.enroll(), cast.enroll()
    a = s.c.post(f"{quiz['path']}/attempts").json
    s.c.put(f"{quiz['path']}/attempts/{a['id']}/answers",
            json={"answers": cast.answers(quiz, {0: 1})})
    clock.tick(60 + 31)
    fresh.c.post(f"{quiz['path']}/attempts")  # started now: not expired
    assert close_expired(lp_runtime).get(lp_tenant.slug) == 1
    res = s.c.get(f"{quiz['path']}/result").json
    assert res["attempt"]["id"] == a["id"] and res["attempt"]["late"] is True
    assert res["attempt"]["status"] == "graded" and res["attempt"]["points"] == 2
    assert close_expired(lp_runtime).get(lp_tenant.slug) is None  # nothing left to close
    assert fresh.c.get(f"{quiz['path']}/attempts").json["items"][0]["status"] == "in_progress"
    lp_runtime.events.dispatch_pending()
    [graded] = [e for e in event_recorder.events if e.name == "quiz.graded.v1"]
    assert graded.payload["late"] is True and graded.payload["user_id"] == s.id
