"""Concurrent submits against a real gunicorn (several processes and threads): one attempt is
graded once, and racing first submits never make two attempts."""

from __future__ import annotations

import threading
from collections import Counter

import requests
from learnplat_quizzes.models import Attempt, StudentQuiz
from quizhelpers import CORRECT

from learnplat import db
from learnplat.models import OutboxEvent
from learnplat.tenancy import tenant_context


def _race(n: int, fn) -> list[object]:
    barrier = threading.Barrier(n, timeout=30)
    results: list[object] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results.append(fn(i))
        except Exception as exc:  # reported by the caller's assertions
            results.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _graded_events(tenant, user_id: int) -> Counter:
    with db.connection(), tenant_context(tenant), db.transaction():
        return Counter(e.name for e in OutboxEvent.select().where(
            (OutboxEvent.tenant_id == tenant.id) & OutboxEvent.name.startswith("quiz."))
            if e.payload["user_id"] == user_id)


def test_two_concurrent_submits_of_one_attempt_grade_once(lp_live_server, cast, lp_tenant):
    quiz = cast.create_quiz(max_attempts=3)
    students = [cast.enroll() for _ in range(3)]
    for s in students:
        a = s.c.post(f"{quiz['path']}/attempts").json
        s.attempt_id = a["id"]

    def submit(i: int) -> requests.Response:
        s = students[i // 2]
        return requests.post(
            f"{lp_live_server}{quiz['path']}/submit", timeout=60,
            json={"attempt_id": s.attempt_id, "answers": cast.answers(quiz, CORRECT)},
            headers={"Authorization": f"Bearer {s.token}", "X-Tenant": lp_tenant.slug})

    results = _race(2 * len(students), submit)
    assert all(isinstance(r, requests.Response) for r in results), results
    for i, s in enumerate(students):
        mine = [r for r in results if r.request.headers["Authorization"].endswith(s.token)]
        assert sorted(r.status_code for r in mine) == [200, 409], [r.text for r in mine]
        conflict = next(r for r in mine if r.status_code == 409)
        assert conflict.json()["code"] == "already_submitted", i
        events = _graded_events(lp_tenant, s.id)
        assert events["quiz.graded.v1"] == 1 and events["quiz.passed.v1"] == 1, events
        assert events["quiz.submitted.v1"] == 1, events


def test_racing_first_submits_make_one_attempt(lp_live_server, cast, lp_tenant):
    quiz = cast.create_quiz(max_attempts=5)
    s = cast.enroll()

    def submit(i: int) -> requests.Response:
        return requests.post(
            f"{lp_live_server}{quiz['path']}/submit", timeout=60,
            json={"answers": cast.answers(quiz, CORRECT)},
            headers={"Authorization": f"Bearer {s.token}", "X-Tenant": lp_tenant.slug})

    results = _race(4, submit)
    assert all(isinstance(r, requests.Response) for r in results), results
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 409, 409, 409], [r.text for r in results]
    assert {r.json()["code"] for r in results if r.status_code == 409} == {"no_open_attempt"}
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        attempts = list(Attempt.select().where(Attempt.user_id == s.id))
        standing = StudentQuiz.get(StudentQuiz.user_id == s.id)
    assert len(attempts) == 1 and standing.attempts == 1
    assert _graded_events(lp_tenant, s.id)["quiz.graded.v1"] == 1


def test_an_edit_racing_a_start_never_rewrites_the_started_version(cast, monkeypatch):
    """The edit waits for the start's transaction (its share lock on the version, and on
    PostgreSQL also the key-share locks its new attempt's foreign keys take), then sees the
    attempt and freezes the change into version 2; the attempt keeps version 1's questions."""
    from learnplat_quizzes.services import QuizzesService

    quiz = cast.create_quiz()
    s = cast.enroll()
    started, proceed = threading.Event(), threading.Event()
    original = QuizzesService._new_attempt

    def paused(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        started.set()
        proceed.wait(20)  # inside the start's transaction, holding its locks
        return out

    monkeypatch.setattr(QuizzesService, "_new_attempt", paused)
    changed = [dict(q) for q in quiz["questions"]]
    for q in changed:
        q.pop("position")
    changed[0]["answer"] = 2
    results: dict[str, object] = {}
    a = threading.Thread(target=lambda: results.update(
        start=s.c.post(f"{quiz['path']}/attempts")))
    b = threading.Thread(target=lambda: results.update(
        edit=cast.t.put(quiz["path"], json={"questions": changed})))
    a.start()
    assert started.wait(20)
    b.start()
    b.join(1.0)
    assert b.is_alive(), "the edit did not wait for the start"
    proceed.set()
    a.join(30)
    b.join(30)
    start, edit = results["start"], results["edit"]
    assert start.status_code == 201 and edit.status_code == 200, (start.text, edit.text)
    assert edit.json["version"] == 2
    r = s.c.post(f"{quiz['path']}/submit", json={"answers": cast.answers(quiz, {0: 1})})
    [q0] = [q for q in r.json["attempt"]["questions"] if q["question_id"] == quiz["qids"][0]]
    assert q0["correct_answer"] == 1 and q0["status"] == "correct"
