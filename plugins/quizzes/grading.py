"""Grading: a pure function of a quiz version's questions, a student's answers and the
instructor's manual grades. No database, no clock: the same inputs always give the same result,
which is what lets an attempt be regraded and lets the rules be tested exhaustively.

Answers are keyed by question id (as a string, the JSON object key); an answer of the wrong
type is never an error here (``check_answers`` refuses those at the door): it scores zero.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import re2

SINGLE, MULTIPLE, TRUE_FALSE, SHORT_TEXT, NUMERIC = (
    "single_choice", "multiple_choice", "true_false", "short_text", "numeric")
TYPES = (SINGLE, MULTIPLE, TRUE_FALSE, SHORT_TEXT, NUMERIC)
MAX_TEXT = 5000  # characters of a short_text answer


@dataclass(frozen=True)
class Question:
    """One question as frozen in a quiz version (what grading needs, and the prompt)."""

    id: int
    type: str
    prompt: str
    points: float
    options: tuple[str, ...] = ()
    answer: Any = None  # index | [indices] | bool | number | model answer text (short_text)
    scoring: str = "all_or_nothing"  # multiple_choice: all_or_nothing | partial
    tolerance: float = 0.0  # numeric: |given - answer| <= tolerance is correct
    accept: tuple[str, ...] = ()  # short_text: exact answers accepted automatically
    accept_regex: str | None = None  # short_text: a full match is accepted automatically
    case_sensitive: bool = False  # short_text auto-accept

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Question:
        return cls(id=int(d["id"]), type=d["type"], prompt=d.get("prompt", ""),
                   points=float(d["points"]), options=tuple(d.get("options") or ()),
                   answer=d.get("answer"), scoring=d.get("scoring") or "all_or_nothing",
                   tolerance=float(d.get("tolerance") or 0.0),
                   accept=tuple(d.get("accept") or ()), accept_regex=d.get("accept_regex"),
                   case_sensitive=bool(d.get("case_sensitive", False)))


@dataclass(frozen=True)
class ManualGrade:
    """An instructor's grade of one short_text answer."""

    points: float
    feedback: str = ""


@dataclass(frozen=True)
class QuestionResult:
    question_id: int
    max_points: float
    points: float | None  # None: waiting for an instructor
    status: str  # correct | partial | incorrect | unanswered | pending_review
    auto: bool  # graded by the rules (False: by an instructor, or waiting for one)
    feedback: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"question_id": self.question_id, "max_points": self.max_points,
                "points": self.points, "status": self.status, "auto": self.auto,
                "feedback": self.feedback}


@dataclass(frozen=True)
class Grade:
    points: float  # awarded so far (pending questions count 0)
    max_points: float
    percent: float  # 0..100, rounded to 2 decimals
    passed: bool | None  # None while any answer waits for review
    pending: int  # answers waiting for an instructor
    results: tuple[QuestionResult, ...] = field(default=())

    @property
    def complete(self) -> bool:
        return self.pending == 0


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(float(v)))


def _norm(text: str, case_sensitive: bool) -> str:
    text = " ".join(text.split())
    return text if case_sensitive else text.casefold()


def auto_accepts(q: Question, text: str) -> bool:
    """Whether a short_text answer matches one of the question's auto-accept rules."""
    given = _norm(text, q.case_sensitive)
    if given and any(given == _norm(a, q.case_sensitive) for a in q.accept):
        return True
    if q.accept_regex:
        return compile_pattern(q.accept_regex, q.case_sensitive).fullmatch(
            text.strip()) is not None
    return False


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: str, case_sensitive: bool = False) -> Any:
    """An instructor's auto-accept pattern, compiled with RE2: matching takes linear time
    whatever the pattern, so a student's answer cannot make a worker backtrack for minutes
    (docs/decisions/0500-re2-for-auto-accept-patterns.md). Raises re2.error when RE2 refuses
    the pattern (backreferences, lookarounds)."""
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = case_sensitive
    return re2.compile(pattern, options)


def _fraction(q: Question, given: Any) -> float:
    """Share of the question's points an automatically gradable answer earns, 0..1."""
    if q.type == SINGLE:
        return 1.0 if _is_int(given) and given == q.answer else 0.0
    if q.type == TRUE_FALSE:
        return 1.0 if isinstance(given, bool) and given is q.answer else 0.0
    if q.type == NUMERIC:
        if not _is_number(given) or not _is_number(q.answer):
            return 0.0
        # A relative epsilon, so that 0.1 + 0.2 is 0.3 with a tolerance of 0.
        slack = q.tolerance + 1e-9 * max(1.0, abs(float(q.answer)))
        return 1.0 if abs(float(given) - float(q.answer)) <= slack else 0.0
    if q.type == MULTIPLE:
        if not isinstance(given, list) or not all(_is_int(i) for i in given):
            return 0.0
        chosen, correct = set(given), set(q.answer or ())
        if not correct:
            return 0.0
        if q.scoring == "partial":
            # Each correct choice earns its share; each wrong choice takes one share back.
            right, wrong = len(chosen & correct), len(chosen - correct)
            return max(0.0, (right - wrong) / len(correct))
        return 1.0 if chosen == correct else 0.0
    return 0.0


def _answered(given: Any) -> bool:
    return given is not None and given != [] and given != ""


def grade_question(q: Question, given: Any, manual: ManualGrade | None = None
                   ) -> QuestionResult:
    if q.type == SHORT_TEXT:
        if manual is not None:
            pts = min(max(manual.points, 0.0), q.points)
            status = ("correct" if pts >= q.points else "incorrect" if pts == 0
                      else "partial")
            return QuestionResult(q.id, q.points, pts, status, False, manual.feedback)
        if not isinstance(given, str) or not given.strip():
            return QuestionResult(q.id, q.points, 0.0, "unanswered", True)
        if auto_accepts(q, given):
            return QuestionResult(q.id, q.points, q.points, "correct", True)
        return QuestionResult(q.id, q.points, None, "pending_review", False)
    if not _answered(given):
        return QuestionResult(q.id, q.points, 0.0, "unanswered", True)
    frac = _fraction(q, given)
    if frac >= 1.0:
        return QuestionResult(q.id, q.points, q.points, "correct", True)
    if frac <= 0.0:
        return QuestionResult(q.id, q.points, 0.0, "incorrect", True)
    # Rounded down, so that partial credit never adds up past the question's points.
    return QuestionResult(q.id, q.points, math.floor(q.points * frac * 1e4) / 1e4, "partial",
                          True)


def grade(questions: Sequence[Question], answers: Mapping[str, Any], pass_mark: float,
          manual: Mapping[int, ManualGrade] | None = None) -> Grade:
    """Grade `answers` ({question id as str: answer}) against `questions`. Answers for
    questions not in the list are ignored; missing answers score zero. `manual` holds the
    instructor's grades of short_text answers (they replace the auto-accept rules)."""
    manual = manual or {}
    results = tuple(grade_question(q, answers.get(str(q.id)), manual.get(q.id))
                    for q in questions)
    max_points = round(sum(q.points for q in questions), 4)
    points = round(sum(r.points or 0.0 for r in results), 4)
    pending = sum(1 for r in results if r.points is None)
    percent = round(100.0 * points / max_points, 2) if max_points > 0 else 0.0
    percent = min(100.0, max(0.0, percent))
    # A relative epsilon absorbs float error (3 of 7 points against a pass mark of 300/7).
    needed = pass_mark * max_points * (1 - 1e-9)
    if pass_mark > 0 and needed <= 0:
        # A pass mark so small (5e-324) that the product underflows to 0 still asks for more
        # than nothing: 0 points would pass it otherwise.
        needed = math.ulp(0.0)
    passed = None if pending else points * 100.0 >= needed
    return Grade(points, max_points, percent, passed, pending, results)


# -- validating a submission ----------------------------------------------------------------------


def answer_problem(q: Question, given: Any) -> str | None:
    """Why `given` is not an answer of the right type for `q` (None when it is). The message
    never quotes the correct answer."""
    if given is None:
        return None  # explicitly unanswered
    n = len(q.options)
    if q.type == SINGLE:
        if not _is_int(given):
            return "expected an option index (an integer)"
        if not 0 <= given < n:
            return f"option index out of range (0..{n - 1})"
    elif q.type == MULTIPLE:
        if not isinstance(given, list) or not all(_is_int(i) for i in given):
            return "expected a list of option indices (integers)"
        if len(set(given)) != len(given):
            return "option indices must not repeat"
        if any(not 0 <= i < n for i in given):
            return f"option index out of range (0..{n - 1})"
    elif q.type == TRUE_FALSE:
        if not isinstance(given, bool):
            return "expected true or false"
    elif q.type == NUMERIC:
        if not _is_number(given):
            return "expected a finite number"
    elif q.type == SHORT_TEXT:
        if not isinstance(given, str):
            return "expected text"
        if len(given) > MAX_TEXT:
            return f"at most {MAX_TEXT} characters"
        if "\x00" in given:
            return "must not contain NUL characters"
    return None


def check_answers(questions: Sequence[Question], answers: Mapping[str, Any]
                  ) -> list[dict[str, str]]:
    """422 error entries ({field, message, type}) for unknown question ids and answers of the
    wrong type, each naming the question as ``answers.<id>``."""
    by_id = {str(q.id): q for q in questions}
    errors = []
    for key, given in answers.items():
        q = by_id.get(key)
        if q is None:
            errors.append({"field": f"answers.{key}", "message": "no such question in this quiz",
                           "type": "unknown_question"})
            continue
        problem = answer_problem(q, given)
        if problem:
            errors.append({"field": f"answers.{key}", "message": problem,
                           "type": "wrong_answer_type"})
    return errors
