"""What each audience sees of quizzes and attempts: authors (everything), students (never an
answer before the results policy releases it) and reviewers. Each answer is built once as the
Out model its route declares (schemas.py): what the OpenAPI document says is what is sent.
`question_dict` is the frozen form of a question kept in a quiz version (not an answer)."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from . import grading as g
from .models import Attempt, Question, Quiz
from .schemas import (
    AttemptOut,
    AttemptResultOut,
    AttemptStatus,
    AttemptSummaryOut,
    OptionOut,
    QuestionOut,
    QuestionResultOut,
    QuizOut,
    QuizStudentOut,
    QuizSubmissionOut,
    Release,
    StudentQuestionOut,
    SubmissionQuestionOut,
)

RELEASE_NONE: Release = "none"
RELEASE_SCORE: Release = "score"
RELEASE_FULL: Release = "full"


def released(quiz: Quiz, attempt: Attempt, now: dt.datetime) -> Release:
    """What the quiz's results policy lets the student see of `attempt` now: nothing, the
    score, or the score with each answer's grade and the correct answers. Nothing before an
    attempt is fully graded (and, with after_review, reviewed: grading waits for it)."""
    if attempt.status != "graded":
        return RELEASE_NONE
    if quiz.results == "score_only":
        return RELEASE_SCORE
    if quiz.results == "after_date" and (quiz.results_at is None or now < quiz.results_at):
        return RELEASE_NONE
    return RELEASE_FULL


def question_dict(q: Question) -> dict[str, Any]:
    """A question as frozen into a version (and shown to authors)."""
    return {"id": q.id, "position": q.position, "type": q.type, "prompt": q.prompt,
            "options": list(q.options or []), "answer": q.answer, "points": q.points,
            **(q.settings or {})}


def _quiz_meta(quiz: Quiz, questions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": quiz.id, "course_id": quiz.course_id, "module_id": quiz.module_id,
        "title": quiz.title, "description": quiz.description, "pass_mark": quiz.pass_mark,
        "time_limit_seconds": quiz.time_limit_seconds, "max_attempts": quiz.max_attempts,
        "counted": quiz.counted, "results": quiz.results, "results_at": quiz.results_at,
        "question_count": len(questions),
        "total_points": round(sum(float(q["points"]) for q in questions), 4),
    }


def author_quiz(quiz: Quiz, questions: list[dict[str, Any]]) -> QuizOut:
    return QuizOut(**_quiz_meta(quiz, questions), shuffle_questions=quiz.shuffle_questions,
                   shuffle_options=quiz.shuffle_options, version=quiz.version,
                   questions=[QuestionOut(**q) for q in questions],
                   created_at=quiz.created_at, updated_at=quiz.updated_at)


def student_quiz(quiz: Quiz, questions: list[dict[str, Any]], attempts_used: int,
                 open_attempt_id: int | None) -> QuizStudentOut:
    return QuizStudentOut(**_quiz_meta(quiz, questions), attempts_used=attempts_used,
                          open_attempt_id=open_attempt_id)


def student_question(q: dict[str, Any], option_order: list[int]) -> StudentQuestionOut:
    """Built field by field from the frozen question: what is not copied cannot leak."""
    options = list(q.get("options") or [])
    return StudentQuestionOut(id=q["id"], type=q["type"], prompt=q["prompt"],
                              points=q["points"],
                              options=[OptionOut(index=i, text=options[i])
                                       for i in option_order])


def attempt_view(attempt: Attempt, questions: list[dict[str, Any]], now: dt.datetime
                 ) -> AttemptOut:
    by_id = {q["id"]: q for q in questions}
    return AttemptOut(
        id=attempt.id, quiz_id=attempt.quiz_id, number=attempt.number,
        status=_status(attempt), started_at=attempt.started_at,
        deadline=attempt.deadline, server_time=now,
        questions=[student_question(by_id[qid], order) for qid, order in attempt.layout
                   if qid in by_id],
        answers=attempt.answers or {},
    )


def _status(attempt: Attempt) -> AttemptStatus:
    return cast(AttemptStatus, attempt.status)  # a CharField holding one of these


def attempt_summary(attempt: Attempt, release: Release) -> AttemptSummaryOut:
    shown = release != RELEASE_NONE
    return AttemptSummaryOut(id=attempt.id, number=attempt.number, status=_status(attempt),
                             started_at=attempt.started_at, submitted_at=attempt.submitted_at,
                             late=attempt.late, percent=attempt.percent if shown else None,
                             passed=attempt.passed if shown else None)


def attempt_result(attempt: Attempt, questions: list[dict[str, Any]], release: Release
                   ) -> AttemptResultOut:
    shown = release != RELEASE_NONE
    items = None
    if release == RELEASE_FULL:
        by_id = {q["id"]: q for q in questions}
        answers = attempt.answers or {}
        items = [QuestionResultOut(
            question_id=r["question_id"], prompt=by_id[r["question_id"]]["prompt"],
            type=by_id[r["question_id"]]["type"], max_points=r["max_points"],
            points=r["points"], status=r["status"], feedback=r["feedback"],
            your_answer=answers.get(str(r["question_id"])),
            correct_answer=by_id[r["question_id"]].get("answer"),
        ) for r in attempt.results if r["question_id"] in by_id]
    return AttemptResultOut(
        id=attempt.id, number=attempt.number, status=_status(attempt),
        started_at=attempt.started_at, submitted_at=attempt.submitted_at,
        late=attempt.late, released=release,
        percent=attempt.percent if shown else None,
        points=attempt.points if shown else None,
        max_points=attempt.max_points if shown else None,
        passed=attempt.passed if shown else None,
        feedback=attempt.feedback if shown else "",
        questions=items,
    )


def submission(attempt: Attempt, questions: list[dict[str, Any]], version: int
               ) -> QuizSubmissionOut:
    """An attempt as reviewers see it: every answer with its grade and the model answer."""
    results = {r["question_id"]: r for r in attempt.results or []}
    answers = attempt.answers or {}
    items = []
    for q in questions:
        r = results.get(q["id"], {})
        items.append(SubmissionQuestionOut(
            question_id=q["id"], type=q["type"], prompt=q["prompt"],
            max_points=q["points"], points=r.get("points"),
            status=r.get("status", "unanswered"), auto=r.get("auto", True),
            feedback=r.get("feedback", ""), answer=answers.get(str(q["id"])),
            model_answer=q.get("answer"),
        ))
    return QuizSubmissionOut(
        id=attempt.id, quiz_id=attempt.quiz_id, version=version,
        user_id=attempt.user_id, number=attempt.number, status=_status(attempt),
        started_at=attempt.started_at, submitted_at=attempt.submitted_at,
        late=attempt.late, needs_review=attempt.needs_review,
        pending=attempt.pending, percent=attempt.percent, points=attempt.points,
        max_points=attempt.max_points, passed=attempt.passed,
        feedback=attempt.feedback, reviewed_at=attempt.reviewed_at, questions=items,
    )


def frozen_questions(raw: list[dict[str, Any]]) -> list[g.Question]:
    return [g.Question.from_dict(q) for q in raw]
