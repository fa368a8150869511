"""Authoring quizzes: create, read, update, delete, question edits, versions, validation,
permissions and tenant isolation."""

from __future__ import annotations

import copy

import pytest
from quizhelpers import CORRECT, QUESTIONS


def test_created_quiz_lists_questions_with_ids_and_answers(cast):
    quiz = cast.create_quiz(time_limit_seconds=600, max_attempts=3, counted="last",
                            results="score_only")
    assert quiz["pass_mark"] == 60 and quiz["max_attempts"] == 3
    assert (quiz["counted"], quiz["results"], quiz["time_limit_seconds"]) == (
        "last", "score_only", 600)
    q = quiz["questions"]
    assert [x["position"] for x in q] == [1, 2, 3, 4, 5]
    assert q[0]["answer"] == 1 and q[1]["answer"] == [0, 2] and q[1]["scoring"] == "partial"
    assert q[2]["answer"] is False and q[3]["tolerance"] == 0.005
    assert q[4]["accept"] == ["Zorblax-sentinel"]
    assert cast.t.get(quiz["path"]).json["questions"] == q
    assert cast.a.get(cast.quiz_path()).json["id"] == quiz["id"]  # admin; by module


def test_one_quiz_per_module(cast):
    quiz = cast.create_quiz()
    r = cast.t.post(cast.quiz_path(), json={"title": "Again", "pass_mark": 1,
                                            "questions": QUESTIONS[:1]})
    assert r.status_code == 409 and r.json["code"] == "quiz_exists"
    assert r.json["quiz_id"] == quiz["id"]


@pytest.mark.parametrize("question,field", [
    ({"type": "single_choice", "prompt": "p", "options": ["a", "b"], "answer": 2},
     "questions.0"),
    ({"type": "single_choice", "prompt": "p", "options": ["a"], "answer": 0}, "questions.0"),
    ({"type": "single_choice", "prompt": "p", "options": ["a", "b"], "answer": True},
     "questions.0"),
    ({"type": "multiple_choice", "prompt": "p", "options": ["a", "b"], "answer": []},
     "questions.0"),
    ({"type": "multiple_choice", "prompt": "p", "options": ["a", "b"], "answer": [1, 1]},
     "questions.0"),
    ({"type": "true_false", "prompt": "p", "answer": "yes"}, "questions.0"),
    ({"type": "true_false", "prompt": "p", "answer": True, "options": ["x", "y"]},
     "questions.0"),
    ({"type": "numeric", "prompt": "p", "answer": "3"}, "questions.0"),
    ({"type": "short_text", "prompt": "p", "accept_regex": "(a)\\1"}, "questions.0"),
    ({"type": "short_text", "prompt": "p", "accept": [" "]}, "questions.0.accept"),
    ({"type": "essay", "prompt": "p"}, "questions.0.type"),
    ({"type": "true_false", "prompt": "", "answer": True}, "questions.0.prompt"),
    ({"type": "true_false", "prompt": "p", "answer": True, "points": 0},
     "questions.0.points"),
    ({"type": "true_false", "prompt": "p", "answer": True, "secret": 1},
     "questions.0.secret"),
])
def test_invalid_questions_are_422_naming_the_field(cast, question, field):
    r = cast.t.post(cast.quiz_path(), json={"title": "Q", "pass_mark": 50,
                                            "questions": [question]})
    assert r.status_code == 422, r.text
    assert any(e["field"].startswith(field) for e in r.json["errors"]), r.json["errors"]
    # Nothing half-written: the module is not a quiz module.
    assert cast.t.get(cast.quiz_path()).status_code == 404
    assert cast.t.get(f"/courses/{cast.course_id}").json["modules"][0]["kind"] == "text"


@pytest.mark.parametrize("body,field", [
    ({"title": "Q", "pass_mark": 101}, "pass_mark"),
    ({"title": "Q", "pass_mark": 50, "results": "after_date"}, "body"),
    ({"title": "Q", "pass_mark": 50, "max_attempts": 0}, "max_attempts"),
    ({"title": "Q", "pass_mark": 50, "questions": []}, "questions"),
])
def test_invalid_quiz_fields(cast, body, field):
    body = {"questions": QUESTIONS[:1], **body}
    r = cast.t.post(cast.quiz_path(), json=body)
    assert r.status_code == 422, r.text
    fields = [e["field"] for e in r.json["errors"]]
    assert any(f == field or f.startswith(field) for f in fields) or field == "body", fields


def test_permissions_and_visibility(cast, lp_users, outsider, outsider_student):
    quiz = cast.create_quiz()
    other = cast.client.as_(lp_users.make("instructor").token)
    student = cast.enroll()
    body = {"title": "Mine", "pass_mark": 1, "questions": QUESTIONS[:1]}
    assert other.post(cast.quiz_path(1), json=body).status_code == 404  # not their course
    assert other.put(quiz["path"], json={"title": "x"}).status_code == 404
    assert other.delete(quiz["path"]).status_code == 404
    assert student.c.post(cast.quiz_path(1), json=body).status_code == 403
    assert student.c.put(quiz["path"], json={"title": "x"}).status_code == 403
    assert cast.client.get(quiz["path"]).status_code == 401
    # Another tenant sees nothing, not even with an admin token.
    for path in (quiz["path"], cast.quiz_path(), f"{quiz['path']}/submissions"):
        assert outsider.get(path).status_code == 404, path
    for path in (quiz["path"], f"{quiz['path']}/result", f"{quiz['path']}/attempts"):
        assert outsider_student.get(path).status_code == 404, path
    for path in ("attempts", "submit"):
        r = outsider_student.post(f"{quiz['path']}/{path}", json={"answers": {}})
        assert r.status_code == 404, path
    assert outsider.post(cast.quiz_path(1), json=body).status_code == 404
    assert outsider.put(quiz["path"], json={"title": "x"}).status_code == 404
    assert outsider.delete(quiz["path"]).status_code == 404


def test_wrong_course_or_module_is_404(cast, lp_users):
    quiz = cast.create_quiz()
    other_course = cast.t.post("/courses", json={"title": "Other"}).json["id"]
    m = cast.module_ids
    for path in (f"/courses/{other_course}/modules/{m[0]}/quiz/{quiz['id']}",
                 f"/courses/{cast.course_id}/modules/{m[1]}/quiz/{quiz['id']}",
                 f"/courses/{cast.course_id}/modules/{m[0]}/quiz/{quiz['id'] + 1000}",
                 f"/courses/{cast.course_id}/modules/{m[0]}/quiz/99999999999999999999",
                 f"/courses/{cast.course_id}/modules/99999999999999/quiz"):
        assert cast.t.get(path).status_code == 404, path
    body = {"title": "Q", "pass_mark": 1, "questions": QUESTIONS[:1]}
    assert cast.t.post(f"/courses/{cast.course_id}/modules/999999/quiz",
                       json=body).status_code == 404


def test_update_settings_and_questions(cast):
    quiz = cast.create_quiz()
    qs = quiz["questions"]
    new_list = [qs[2], {**qs[0], "prompt": "Capital of Italy?", "options": ["Rome", "Paris"],
                        "answer": 0},
                {"type": "true_false", "prompt": "New one", "answer": True}]
    for x in new_list:
        x.pop("position", None)
    r = cast.t.put(quiz["path"], json={"title": "Renamed", "pass_mark": 80,
                                       "questions": new_list})
    assert r.status_code == 200, r.text
    out = r.json
    assert out["title"] == "Renamed" and out["pass_mark"] == 80
    assert [x["id"] for x in out["questions"]][:2] == [qs[2]["id"], qs[0]["id"]]
    assert out["questions"][1]["prompt"] == "Capital of Italy?"
    assert out["questions"][2]["id"] not in quiz["qids"]
    assert out["version"] == 1  # no attempt used version 1: rewritten in place
    # Unknown ids and duplicates are refused.
    bad = [{**new_list[0], "id": 10**9}]
    r = cast.t.put(quiz["path"], json={"questions": bad})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "questions.0.id"
    r = cast.t.put(quiz["path"], json={"questions": [new_list[0], new_list[0]]})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "questions.1.id"
    r = cast.t.put(quiz["path"], json={"title": None})
    assert r.status_code == 422


def test_question_endpoints_add_edit_reorder_remove(cast):
    quiz = cast.create_quiz()
    p = f"{quiz['path']}/questions"
    r = cast.t.post(p, json={"type": "numeric", "prompt": "2+2", "answer": 4})
    assert r.status_code == 201, r.text
    added = r.json["questions"][-1]
    assert added["prompt"] == "2+2" and added["position"] == 6
    r = cast.t.put(f"{p}/{added['id']}", json={"type": "numeric", "prompt": "2+3",
                                               "answer": 5})
    assert r.status_code == 200 and r.json["questions"][-1]["answer"] == 5
    order = list(reversed([x["id"] for x in r.json["questions"]]))
    r = cast.t.put(f"{p}/order", json={"question_ids": order})
    assert r.status_code == 200 and [x["id"] for x in r.json["questions"]] == order
    r = cast.t.put(f"{p}/order", json={"question_ids": order[:-1]})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "question_ids"
    r = cast.t.delete(f"{p}/{added['id']}")
    assert r.status_code == 200 and added["id"] not in [x["id"] for x in r.json["questions"]]
    assert cast.t.delete(f"{p}/{added['id']}").status_code == 404
    assert cast.t.post(p, json={"id": 5, "type": "true_false", "prompt": "x",
                                "answer": True}).status_code == 422


def test_edit_after_attempts_makes_a_new_version_and_old_attempts_keep_theirs(cast):
    quiz = cast.create_quiz(results="immediate")
    s = cast.enroll()
    r = s.c.post(f"{quiz['path']}/submit", json={"answers": cast.answers(quiz, CORRECT)})
    assert r.json["score"] == 100
    # The author changes the key of question 0 and removes question 4.
    qs = copy.deepcopy(quiz["questions"][:4])
    qs[0]["answer"] = 0
    for x in qs:
        x.pop("position")
    r = cast.t.put(quiz["path"], json={"questions": qs})
    assert r.status_code == 200 and r.json["version"] == 2
    # The first attempt still reads as graded against version 1.
    res = s.c.get(f"{quiz['path']}/result").json
    assert res["score"] == 100
    assert len(res["attempt"]["questions"]) == 5
    assert res["attempt"]["questions"][0]["correct_answer"] == 1
    # A second student takes version 2.
    s2 = cast.enroll()
    r = s2.c.post(f"{quiz['path']}/submit", json={"answers": cast.answers(quiz, CORRECT)})
    assert r.status_code == 422  # question 4 is not in version 2
    assert r.json["errors"][0]["field"] == f"answers.{quiz['qids'][4]}"
    answers = cast.answers(quiz, {0: 0, 1: [0, 2], 2: False, 3: 3.14})
    r = s2.c.post(f"{quiz['path']}/submit", json={"answers": answers})
    assert r.status_code == 200 and r.json["score"] == 100
    sub = cast.t.get(f"{quiz['path']}/submissions?status=all").json["items"]
    assert sorted(x["version"] for x in sub) == [1, 2]


def test_delete_quiz(cast):
    quiz = cast.create_quiz()
    s = cast.enroll()
    s.c.post(f"{quiz['path']}/submit", json={"answers": {}})
    assert cast.t.delete(quiz["path"]).status_code == 204
    assert cast.t.get(quiz["path"]).status_code == 404
    assert s.c.get(f"{quiz['path']}/result").status_code == 404
    assert cast.t.get(f"/courses/{cast.course_id}").json["modules"][0]["kind"] == "text"
    cast.create_quiz()  # the module can take a new one


def test_removing_the_module_removes_its_quiz(cast, lp_runtime):
    quiz = cast.create_quiz()
    r = cast.t.delete(f"/courses/{cast.course_id}/modules/{cast.module_ids[0]}")
    assert r.status_code in (200, 204), r.text
    lp_runtime.events.dispatch_pending()
    from learnplat_quizzes.models import Quiz

    from learnplat import db
    from learnplat.tenancy import tenant_context

    with db.connection(), tenant_context(cast.users.tenant), db.transaction():
        assert Quiz.get_or_none(Quiz.id == quiz["id"]) is None
