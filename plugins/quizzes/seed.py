"""The quizzes plugin's part of a generated data set (its ``seed_tenant`` hook).

One quiz per course with a quiz module (``courses.modules``): 20 questions of every type
(`sample_quiz`). The run's first one is made by the quizzes service (as the course's owner);
the others are its copies (quiz, questions and frozen version written in bulk). Then, for an
``attempt_share`` (0.3) of the enrollments (``enrollment.pairs``) whose course has a quiz,
one graded attempt (one of 4 answer sets per quiz, graded once by the plugin's own grading
function) and the student's standing in the quiz.

Leaves in ``seed.made``: ``quizzes.by_course`` (course id -> (module id, quiz id)),
``quizzes.questions`` (quiz id -> its frozen questions, as a student's attempt sees them) and
``quizzes.attempted`` (the (user id, course id) pairs with an attempt).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from . import grading, views
from .models import Attempt, Question, Quiz, QuizVersion, StudentQuiz
from .schemas import QuizIn

if TYPE_CHECKING:
    import datetime as dt

    from learnplat.plugin import Seed

    from .services import QuizzesService


def sample_quiz() -> dict[str, Any]:
    """A quiz body (POST .../quiz): 20 questions of every type (4 each); the short_text ones
    auto-accept "paris"."""
    qs: list[dict[str, Any]] = []
    for i in range(4):
        qs += [
            {"type": "single_choice", "prompt": f"S{i}", "options": ["a", "b", "c", "d"],
             "answer": i % 4, "points": 1},
            {"type": "multiple_choice", "prompt": f"M{i}", "options": ["a", "b", "c", "d"],
             "answer": [0, 2], "points": 2, "scoring": "partial"},
            {"type": "true_false", "prompt": f"T{i}", "answer": i % 2 == 0},
            {"type": "numeric", "prompt": f"N{i}", "answer": 3.14, "tolerance": 0.01},
            {"type": "short_text", "prompt": f"X{i}", "accept": ["paris"],
             "accept_regex": "par[iy]s?"},
        ]
    return {"title": "Sample quiz", "pass_mark": 60, "questions": qs}


def sample_answers(questions: list[dict[str, Any]], rng: random.Random) -> dict[str, Any]:
    """Random answers to `sample_quiz`'s questions (with their ids), some right, some not."""
    out: dict[str, Any] = {}
    for q in questions:
        t = q["type"]
        out[str(q["id"])] = (rng.randrange(4) if t == "single_choice"
                             else rng.sample(range(4), rng.randint(1, 3))
                             if t == "multiple_choice"
                             else rng.random() < 0.5 if t == "true_false"
                             else round(3.14 + rng.uniform(-0.02, 0.02), 3) if t == "numeric"
                             else rng.choice(["Paris", "pary", "London"]))
    return out


class _Made:
    """A school's quizzes as they are made: by course, and each one's version and questions."""

    def __init__(self) -> None:
        self.by_course: dict[int, tuple[int, int]] = {}
        self.version: dict[int, int] = {}
        self.questions: dict[int, list[dict[str, Any]]] = {}
        self.pass_mark: dict[int, float] = {}

    def add(self, cid: int, mid: int, qid: int, vid: int, questions: list[dict[str, Any]],
            pass_mark: float) -> None:
        self.by_course[cid] = (mid, qid)
        self.version[qid], self.questions[qid], self.pass_mark[qid] = vid, questions, pass_mark


def seed_tenant(service: QuizzesService, seed: Seed) -> None:
    quiz_module = {cid: mid for cid, modules in seed.made["courses.modules"].items()
                   for mid, kind in modules if kind == "quiz"}
    made = _Made()
    targets = sorted(quiz_module)
    if targets and "quizzes.template" not in seed.shared:
        first = targets.pop(0)
        seed.shared["quizzes.template"] = _made_by_the_service(service, seed, first,
                                                               quiz_module[first], made)
    if targets:
        _copies(seed, [(cid, quiz_module[cid]) for cid in targets], made)
    _attempts(seed, made)
    seed.made["quizzes.by_course"] = made.by_course
    seed.made["quizzes.questions"] = made.questions


def _made_by_the_service(service: QuizzesService, seed: Seed, cid: int, mid: int,
                         made: _Made) -> dict[str, Any]:
    course = service.courses.get_course(cid)
    if course is None:  # the courses plugin's part made it, in this school
        raise LookupError(f"the seeded course {cid} is not there")
    quiz = service.create(seed.principal(course.owner_id, "instructor"), cid, mid,
                          QuizIn(**sample_quiz()))
    version = QuizVersion.get(QuizVersion.quiz == quiz.id)
    made.add(cid, mid, quiz.id, version.id, version.questions, quiz.pass_mark)
    seed.rows["quizzes"] += 1
    seed.rows["quiz_questions"] += len(version.questions)
    return {"quiz": Quiz.select().where(Quiz.id == quiz.id).dicts().get(),
            "questions": list(Question.select().where(Question.quiz == quiz.id)
                              .order_by(Question.position).dicts()),
            "frozen": version.questions}


def _copies(seed: Seed, targets: list[tuple[int, int]], made: _Made) -> None:
    """Copies of the run's template quiz for `targets` ((course id, module id) pairs)."""
    tpl = seed.shared["quizzes.template"]
    keep = {k: v for k, v in tpl["quiz"].items() if k not in ("id", "tenant")}
    qids = seed.bulk_ids(Quiz, [{**keep, "course_id": cid, "module_id": mid,
                                 "created_at": seed.now, "updated_at": seed.now}
                                for cid, mid in targets], kind="quizzes")
    n = len(tpl["questions"])
    new_ids = seed.bulk_ids(Question, [
        {**{k: v for k, v in q.items() if k not in ("id", "tenant", "quiz")}, "quiz": qid}
        for qid in qids for q in tpl["questions"]], kind="quiz_questions")
    position = {q["id"]: k for k, q in enumerate(tpl["questions"])}
    frozen = {qid: [dict(q, id=new_ids[j * n + position[q["id"]]]) for q in tpl["frozen"]]
              for j, qid in enumerate(qids)}
    pass_mark = tpl["quiz"]["pass_mark"]
    vids = seed.bulk_ids(QuizVersion, [{"quiz": qid, "number": 1, "pass_mark": pass_mark,
                                        "questions": frozen[qid], "created_at": seed.now}
                                       for qid in qids], kind="quiz_versions")
    for (cid, mid), qid, vid in zip(targets, qids, vids, strict=True):
        made.add(cid, mid, qid, vid, frozen[qid], pass_mark)


def _attempts(seed: Seed, made: _Made) -> None:
    """One graded attempt for a share of the enrollments whose course has a quiz."""
    share = seed.size("attempt_share", 0.3)
    variants: dict[int, list[tuple[dict[str, Any], grading.Grade, list[Any]]]] = {}
    picked: list[tuple[int, int, int, dt.datetime, grading.Grade]] = []
    rows: list[dict[str, Any]] = []
    for uid, cid, when in seed.made.get("enrollment.pairs", []):
        if cid not in made.by_course or seed.rng.random() >= share:
            continue
        qid = made.by_course[cid][1]
        if qid not in variants:
            variants[qid] = _graded_answer_sets(made, qid)
        answers, result, layout = seed.rng.choice(variants[qid])
        picked.append((uid, cid, qid, when, result))
        rows.append({"quiz": qid, "version": made.version[qid], "course_id": cid,
                     "user_id": uid, "number": 1, "status": "graded", "started_at": when,
                     "layout": layout, "answers": answers, "saved_at": {}, "manual": {},
                     "results": [r.as_dict() for r in result.results], "submitted_at": when,
                     "late": False, "points": result.points, "max_points": result.max_points,
                     "percent": result.percent, "passed": result.passed, "pending": 0,
                     "needs_review": False, "graded_at": when})
    ids = seed.bulk_ids(Attempt, rows, kind="quiz_attempts")
    seed.bulk(StudentQuiz, [
        {"quiz": qid, "course_id": cid, "user_id": uid, "attempts": 1,
         "counted_attempt_id": aid, "percent": result.percent, "passed": result.passed,
         "passed_at": when if result.passed else None, "updated_at": when}
        for aid, (uid, cid, qid, when, result) in zip(ids, picked, strict=True)],
        kind="student_quizzes")
    seed.made["quizzes.attempted"] = {(uid, cid) for uid, cid, _, _, _ in picked}


def _graded_answer_sets(made: _Made, qid: int) -> list[tuple[dict[str, Any], grading.Grade,
                                                            list[Any]]]:
    """4 answer sets of a quiz, each graded once by the plugin's grading function."""
    raw = made.questions[qid]
    frozen = views.frozen_questions(raw)
    layout = [[q["id"], list(range(len(q.get("options") or [])))] for q in raw]
    return [(answers, grading.grade(frozen, answers, made.pass_mark[qid]), layout)
            for answers in (sample_answers(raw, random.Random(qid * 10 + k))
                            for k in range(4))]
