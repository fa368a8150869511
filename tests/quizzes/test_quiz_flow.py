"""The quiz life cycle through the API: author, take, submit, result."""

from __future__ import annotations

from quizhelpers import CORRECT


def test_create_take_submit_result(cast):
    quiz = cast.create_quiz()
    assert [q["type"] for q in quiz["questions"]] == [
        "single_choice", "multiple_choice", "true_false", "numeric", "short_text"]
    assert all(isinstance(q["id"], int) for q in quiz["questions"])
    assert quiz["total_points"] == 8 and quiz["version"] == 1
    course = cast.t.get(f"/courses/{cast.course_id}").json
    assert course["modules"][0]["kind"] == "quiz"
    s = cast.enroll()
    r = s.c.post(f"{quiz['path']}/attempts")
    assert r.status_code == 201, r.text
    r = s.c.post(f"{quiz['path']}/submit", json={"answers": cast.answers(quiz, CORRECT)})
    assert r.status_code == 200, r.text
    assert r.json["score"] == 100 and r.json["passed"] is True
    assert r.json["attempt"]["released"] == "full"
    assert s.c.get(f"{quiz['path']}/result").json == r.json
