"""Correct answers never reach a student before the results policy allows: every response a
student gets (course detail, modules, progress, quiz, attempts, saves, submit, result, errors)
is scanned for answer fields and for the distinctive answer values of the quiz."""

from __future__ import annotations

from typing import Any

import pytest
from quizhelpers import QUESTIONS

# Keys that carry an answer or its rules; the student's own answers travel under "answers" or
# "your_answer" and are not secrets.
SECRET_KEYS = {"answer", "correct_answer", "accept", "accept_regex", "model_answer",
               "tolerance", "scoring", "case_sensitive"}
SECRET_VALUES = ("zorblax-sentinel", "zorblax-model-answer", "3.14159")
GRADE_STATUSES = {"correct", "incorrect", "partial"}


def walk(value: Any, path: str = "") -> list[tuple[str, Any]]:
    out = [(path, value)]
    if isinstance(value, dict):
        for k, v in value.items():
            out += walk(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += walk(v, f"{path}[{i}]")
    return out


def leaks(doc: Any, release: str, what: str = "") -> list[str]:
    """What in `doc` (the answer to `what`) a student may not see when the policy releases
    `release`. Scores: in quiz responses and the progress document's quizzes section."""
    found = []
    for path, value in walk(doc):
        key = path.rsplit(".", 1)[-1]
        if key in SECRET_KEYS and release != "full":
            found.append(path)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            text = str(value).lower()
            if any(s in text for s in SECRET_VALUES) and release != "full":
                found.append(f"{path}={value!r}")
        if key == "status" and value in GRADE_STATUSES and release != "full":
            found.append(f"{path}={value!r}")
        if key in ("percent", "score", "points", "passed") and value is not None and (
                release == "none" and ("/quiz" in what or ".quizzes" in path)
                and "questions[" not in path):
            found.append(f"{path}={value!r}")
    return found


class Recorder:
    """A student's client that keeps every JSON response it receives."""

    def __init__(self, client: Any):
        self.client = client
        self.seen: list[tuple[str, int, Any]] = []

    def __getattr__(self, method: str) -> Any:
        def call(path: str, **kw: Any) -> Any:
            r = getattr(self.client, method)(path, **kw)
            body = r.json if r.text else None
            self.seen.append((f"{method.upper()} {path}", r.status_code, body))
            return r

        return call


def student_session(cast: Any, quiz: dict[str, Any], rec: Recorder) -> None:
    """Everything a student does around a quiz, wrong requests included."""
    cid, mid = cast.course_id, cast.module_ids[0]
    rec.get(f"/courses/{cid}")
    rec.get(f"/courses/{cid}/modules")
    rec.get(f"/progress/{cid}")
    rec.get(cast.quiz_path())
    rec.get(quiz["path"])
    a = rec.post(f"{quiz['path']}/attempts").json
    rec.get(f"{quiz['path']}/attempts/{a['id']}")
    ans = f"{quiz['path']}/attempts/{a['id']}/answers"
    qids = [str(q) for q in quiz["qids"]]
    rec.put(ans, json={"answers": {qids[0]: 0, qids[4]: "a guess"}})
    rec.put(ans, json={"answers": {qids[0]: 9}})  # 422
    rec.put(ans, json={"answers": {"424242": 1}})  # 422
    rec.post(f"{quiz['path']}/submit", json={"answers": {qids[3]: "pi"}})  # 422
    rec.get(f"{quiz['path']}/result")  # before submitting
    rec.post(f"{quiz['path']}/submit", json={"answers": {qids[2]: True, qids[3]: 3.0}})
    rec.post(f"{quiz['path']}/submit", json={"attempt_id": a["id"], "answers": {}})  # 409
    rec.put(ans, json={"answers": {qids[0]: 1}})  # 409
    rec.get(f"{quiz['path']}/result")
    rec.get(f"{quiz['path']}/attempts")
    rec.get(f"/progress/{cid}")
    rec.get(f"/courses/{cid}")
    rec.get(f"/courses/{cid}/modules/{mid}/quiz/{quiz['id']}/submissions")  # 403
    rec.post(f"{quiz['path']}/attempts/{a['id']}/grade", json={"grades": {}})  # 403


@pytest.mark.parametrize("policy", ["score_only", "after_review", "after_date"])
def test_nothing_leaks_under_withholding_policies(cast, policy, lp_runtime):
    extra = {"results_at": "2199-01-01T00:00:00Z"} if policy == "after_date" else {}
    quiz = cast.create_quiz(results=policy, max_attempts=1, **extra)
    rec = Recorder(cast.enroll().c)
    student_session(cast, quiz, rec)
    lp_runtime.events.dispatch_pending()
    rec.get(f"/progress/{cast.course_id}")
    statuses = [status for _, status, _ in rec.seen]
    assert 422 in statuses and 409 in statuses and 403 in statuses  # errors were scanned
    release = "score" if policy == "score_only" else "none"
    problems = {what: leaks(body, release, what) for what, _, body in rec.seen}
    assert not {k: v for k, v in problems.items() if v}


def test_immediate_policy_shows_answers_only_after_submitting(cast):
    quiz = cast.create_quiz(results="immediate", max_attempts=1,
                            questions=[q for q in QUESTIONS if q["type"] != "short_text"])
    rec = Recorder(cast.enroll().c)
    # Reuse the session with a quiz of 4 questions: qids[4] does not exist, so the first save
    # is a 422 here; the point is what the answers look like before the submit.
    quiz["qids"].append(999_999)
    student_session(cast, quiz, rec)
    submitted = next(i for i, (what, status, _) in enumerate(rec.seen)
                     if what.endswith("/submit") and status == 200)
    before = {what: leaks(body, "none", what) for what, _, body in rec.seen[:submitted]
              if not what.endswith("/result")}
    assert not {k: v for k, v in before.items() if v}
    after = rec.seen[submitted][2]
    assert after["attempt"]["released"] == "full"
    assert after["attempt"]["questions"][0]["correct_answer"] == 1
