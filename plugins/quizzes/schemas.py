"""Request and response schemas of the quizzes routes (validation and OpenAPI in one place).

Two views of a question: ``QuestionOut`` (authors: with the answer and auto-accept rules) and
``StudentQuestionOut`` (students: prompt, options and points only). Student-facing responses are
built only from the latter, so a correct answer has no field to travel in.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import re2
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from learnplat.plugin import OMIT, Schema, Variant, Variants

from . import grading as g
from .api import QuizInfo

QuestionType = Literal["single_choice", "multiple_choice", "true_false", "short_text",
                       "numeric"]
Counted = Literal["best", "last"]
AttemptStatus = Literal["in_progress", "submitted", "graded"]
Release = Literal["none", "score", "full"]
ResultsPolicy = Literal["immediate", "score_only", "after_review", "after_date"]
_EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_ITEM: dict[str, Any] = {"items": {"type": "string", "minLength": 1, "maxLength": 1000}}

# The examples of the OpenAPI document: quiz 12, "Check your understanding", on module 8 of
# course 42 ("Introduction to Statistics"), a question of each type (301..305); student 1001's
# first attempt (55), whose short text answer instructor 1002 reviewed.
# (Lists of JSON objects typed list[Any]: pydantic's json_schema_extra takes JSON values.)
_QUESTIONS: list[Any] = [
    {"type": "single_choice", "prompt": "Which measure of central tendency is least affected "
     "by outliers?", "options": ["Mean", "Median", "Range"], "answer": 1, "points": 1.0},
    {"type": "multiple_choice", "prompt": "Which of these are measures of spread?",
     "options": ["Variance", "Mode", "Interquartile range", "Median"], "answer": [0, 2],
     "points": 2.0, "scoring": "partial"},
    {"type": "true_false", "prompt": "The mean and the median of a distribution are always "
     "equal.", "answer": False, "points": 1.0},
    {"type": "numeric", "prompt": "What is the mean of 2, 4, 6 and 8?", "answer": 5,
     "points": 1.0, "tolerance": 0.0},
    {"type": "short_text", "prompt": "Name the plot that shows a data set's median and "
     "quartiles.", "answer": "A box plot", "points": 1.0,
     "accept": ["box plot", "boxplot", "box-and-whisker plot"], "accept_regex": None,
     "case_sensitive": False},
]
_QUESTION_IDS = [301, 302, 303, 304, 305]
_SETTINGS_SHOWN = {"multiple_choice": ("scoring",), "numeric": ("tolerance",),
                   "short_text": ("accept", "accept_regex", "case_sensitive")}
# As authors see them (QuestionOut): with id and position, the settings of their type only.
_QUESTIONS_OUT: list[Any] = [
    {"id": qid, "position": n, "type": q["type"], "prompt": q["prompt"],
     "options": q.get("options", []), "answer": q["answer"], "points": q["points"],
     **{k: q[k] for k in _SETTINGS_SHOWN.get(q["type"], ())}}
    for n, (qid, q) in enumerate(zip(_QUESTION_IDS, _QUESTIONS, strict=True), start=1)]
_QUIZ: dict[str, Any] = {
    "id": 12, "course_id": 42, "module_id": 8, "title": "Check your understanding",
    "pass_mark": 70.0, "max_attempts": 3, "question_count": 5,
    "description": "Five questions on modules 6 and 7. You have 15 minutes and 3 attempts; "
                   "your best score counts.",
    "time_limit_seconds": 900, "counted": "best", "results": "immediate", "results_at": None,
    "total_points": 6.0}
_ATTEMPT_TIMES: dict[str, Any] = {"started_at": "2026-09-05T15:00:00Z",
                                  "submitted_at": "2026-09-05T15:12:41Z"}
_FEEDBACK = "Well done. Partial credit on question 2: the interquartile range is a spread too."
_REVIEW = "Right: a box-and-whisker plot is a box plot."


def _no_items() -> Any:
    return Field(default_factory=list, max_length=0, description="Not for this type.")


def _options() -> Any:
    return Field(min_length=2, max_length=20, json_schema_extra=_ITEM)


# What check_type accepts, per question type, for the OpenAPI document: (annotation, field)
# of the fields that differ from QuestionIn's. Not stated: an option index must be below
# the number of options (JSON Schema cannot compare two fields).
_OptionIndex = Annotated[int, Field(ge=0, le=19)]
_BY_TYPE: dict[str, tuple[str, dict[str, tuple[Any, Any]]]] = {
    "single_choice": ("A single choice question: `answer` is the index of the right option.", {
        "options": (list[str], _options()),
        "answer": (_OptionIndex, Field(description="The index of the right option.")),
        "accept": (list[str], _no_items()), "accept_regex": (None, None)}),
    "multiple_choice": ("A multiple choice question: `answer` lists the indices of the right "
                        "options.", {
        "options": (list[str], _options()),
        "answer": (list[_OptionIndex], Field(min_length=1, max_length=20,
                                             json_schema_extra={"uniqueItems": True})),
        "accept": (list[str], _no_items()), "accept_regex": (None, None)}),
    "true_false": ("A true or false question.", {
        "options": (list[str], _no_items()), "answer": (bool, ...),
        "accept": (list[str], _no_items()), "accept_regex": (None, None)}),
    "numeric": ("A question with a number for answer (`tolerance`: the accepted distance).", {
        "options": (list[str], _no_items()), "answer": (float, ...),
        "accept": (list[str], _no_items()), "accept_regex": (None, None)}),
    "short_text": ("A question answered in words: `accept` and `accept_regex` grade answers "
                   "automatically, others wait for an instructor; `answer` is an optional "
                   "model answer shown to reviewers.", {
        "options": (list[str], _no_items()),
        "answer": (str | None, Field(None, max_length=5000))}),
}


def _question_variants(new: bool) -> Variants:
    """The document's shapes of a question, one per type (`new`: a question to add, which
    has no id). pydantic takes no discriminator on Schema models (their mode="before"
    validators also see `type`): each variant says it with its `type` const."""
    return Variants(*(
        Variant(("New" if new else "") + "".join(part.title() for part in kind.split("_"))
                + "QuestionIn", doc, type=(Literal[kind], ...), **overrides,
                **({"id": OMIT} if new else {}))
        for kind, (doc, overrides) in _BY_TYPE.items()), keyword="oneOf", discriminator="type")


class QuestionIn(Schema):
    """A question. `answer` is an option index (single_choice), a list of option indices
    (multiple_choice), a boolean (true_false), a number (numeric) or an optional model answer
    shown to reviewers (short_text)."""

    # An example per question type (the first: the operation's example); each is one variant.
    model_config = ConfigDict(json_schema_extra={"examples": _QUESTIONS})

    id: int | None = Field(None, description="In a quiz update: keep this question's id.")
    type: QuestionType
    prompt: str = Field(min_length=1, max_length=5000)
    options: list[str] = Field(default_factory=list, max_length=20, json_schema_extra=_ITEM,
                               description="single_choice and multiple_choice only (2..20).")
    answer: Any = None
    points: float = Field(1.0, gt=0, le=1000)
    scoring: Literal["all_or_nothing", "partial"] = Field(
        "all_or_nothing", description="multiple_choice: partial credit gives each correct "
                                      "choice its share and takes one share per wrong choice.")
    tolerance: float = Field(0.0, ge=0, le=1e12, description="numeric: accepted distance.")
    accept: list[str] = Field(default_factory=list, max_length=50, json_schema_extra=_ITEM,
                              description="short_text: answers accepted automatically "
                                          "(white space and, unless case_sensitive, case "
                                          "ignored); others wait for an instructor.")
    accept_regex: str | None = Field(None, max_length=200,
                                     description="short_text: a full match is accepted.")
    case_sensitive: bool = False

    # On the wire `type` says which shape a question has: the document says so with a
    # discriminated union of one typed model per type, which generated clients turn into
    # classes. Validation stays check_type's, with its messages.
    documented_as = _question_variants(new=False)

    @field_validator("options", "accept")
    @classmethod
    def non_empty_items(cls, v: list[str]) -> list[str]:
        if any(not item or len(item) > 1000 for item in v):
            raise ValueError("each item is 1 to 1000 characters")
        return v

    @model_validator(mode="after")
    def check_type(self) -> QuestionIn:
        t, a, n = self.type, self.answer, len(self.options)
        if t in (g.SINGLE, g.MULTIPLE):
            if n < 2:
                raise ValueError(f"a {t} question needs at least 2 options")
        elif self.options:
            raise ValueError(f"a {t} question has no options")
        if t == g.SINGLE and not (_is_int(a) and 0 <= a < n):
            raise ValueError("answer must be the index of an option")
        if t == g.MULTIPLE and not (isinstance(a, list) and a and all(
                _is_int(i) and 0 <= i < n for i in a) and len(set(a)) == len(a)):
            raise ValueError("answer must be a list of distinct option indices (at least one)")
        if t == g.TRUE_FALSE and not isinstance(a, bool):
            raise ValueError("answer must be true or false")
        if t == g.NUMERIC and not g._is_number(a):
            raise ValueError("answer must be a finite number")
        if t == g.SHORT_TEXT:
            if a is not None and not (isinstance(a, str) and len(a) <= 5000 and "\x00" not in a):
                raise ValueError("answer must be text (a model answer for reviewers)")
            if self.accept_regex is not None:
                try:
                    g.compile_pattern(self.accept_regex, self.case_sensitive)
                except re2.error as exc:
                    reason = exc.args[0] if exc.args else exc
                    if isinstance(reason, bytes):
                        reason = reason.decode(errors="replace")
                    raise ValueError(f"accept_regex is not a valid RE2 pattern: {reason}"
                                     ) from None
        elif self.accept or self.accept_regex:
            raise ValueError("accept and accept_regex are for short_text questions")
        return self

    def stored(self) -> dict[str, Any]:
        """The question's settings as kept beside type, prompt, options, answer and points."""
        if self.type == g.MULTIPLE:
            return {"scoring": self.scoring}
        if self.type == g.NUMERIC:
            return {"tolerance": self.tolerance}
        if self.type == g.SHORT_TEXT:
            return {"accept": self.accept, "accept_regex": self.accept_regex,
                    "case_sensitive": self.case_sensitive}
        return {}


class NewQuestionIn(QuestionIn):
    """A question to add at the end of a quiz: it has no id yet."""

    documented_as = _question_variants(new=True)


def _results_at(v: dt.datetime | None) -> dt.datetime | None:
    if v is None:
        return None
    if v.tzinfo is None:  # a naive time is read as UTC
        v = v.replace(tzinfo=dt.UTC)
    v = v.astimezone(dt.UTC)
    if not _EARLIEST <= v < _LATEST:
        raise ValueError("must be between 2000 and 2200")
    return v


class _QuizFields(Schema):
    description: str = Field("", max_length=20_000)
    time_limit_seconds: int | None = Field(None, ge=10, le=7 * 86_400,
                                           description="From the start of an attempt.")
    max_attempts: int | None = Field(None, ge=1, le=1000, description="None: unlimited.")
    shuffle_questions: bool = False
    shuffle_options: bool = False
    counted: Counted = Field("best", description="Which graded attempt is the score.")
    results: ResultsPolicy = Field(
        "immediate", description="What a student sees after submitting: score and correct "
                                 "answers at once (immediate), the score only (score_only), "
                                 "everything once an instructor reviewed the attempt "
                                 "(after_review), or after `results_at` (after_date).")
    results_at: dt.datetime | None = None

    @field_validator("results_at")
    @classmethod
    def check_results_at(cls, v: dt.datetime | None) -> dt.datetime | None:
        return _results_at(v)


class QuizIn(_QuizFields):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        **{k: _QUIZ[k] for k in ("title", "description", "pass_mark", "time_limit_seconds",
                                 "max_attempts", "counted", "results", "results_at")},
        "shuffle_questions": False, "shuffle_options": True, "questions": _QUESTIONS}]})

    title: str = Field(min_length=1, max_length=200)
    pass_mark: float = Field(ge=0, le=100, description="Percent of the points to pass.")
    questions: list[QuestionIn] = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def check_policy(self) -> QuizIn:
        if self.results == "after_date" and self.results_at is None:
            raise ValueError("results_at is required with results 'after_date'")
        return self


class QuizPatch(Schema):
    """Fields to change; absent fields stay. `questions`, when given, is the whole new list in
    order: items with an `id` edit that question, items without add one, questions left out
    are removed."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "pass_mark": 75.0, "time_limit_seconds": 1200, "results": "after_review"}]})

    omit_not_null = ("title", "pass_mark", "shuffle_questions", "shuffle_options", "counted",
                     "results", "questions", "description")

    title: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=20_000)
    pass_mark: float | None = Field(None, ge=0, le=100)
    time_limit_seconds: int | None = Field(None, ge=10, le=7 * 86_400)
    max_attempts: int | None = Field(None, ge=1, le=1000)
    shuffle_questions: bool | None = None
    shuffle_options: bool | None = None
    counted: Counted | None = None
    results: ResultsPolicy | None = None
    results_at: dt.datetime | None = None
    questions: list[QuestionIn] | None = Field(None, min_length=1, max_length=1000)

    @field_validator("results_at")
    @classmethod
    def check_results_at(cls, v: dt.datetime | None) -> dt.datetime | None:
        return _results_at(v)

    @field_validator("title", "pass_mark", "shuffle_questions", "shuffle_options", "counted",
                     "results", "questions", "description")
    @classmethod
    def _not_null(cls, v: Any) -> Any:
        if v is None:
            raise ValueError("may be omitted but not null")
        return v


class QuestionOrderIn(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"question_ids": [303, 301, 302, 304, 305]}]})

    question_ids: list[int] = Field(min_length=1, max_length=1000,
                                    json_schema_extra={"uniqueItems": True},
                                    description="Every question id of the quiz, in order.")


_SETTINGS = ("scoring", "tolerance", "accept", "accept_regex", "case_sensitive")


class QuestionOut(BaseModel):
    """A question as its authors see it: the settings of its type only (`scoring` for
    multiple_choice, `tolerance` for numeric, `accept`, `accept_regex` and `case_sensitive`
    for short_text)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_QUESTIONS_OUT[1]]})

    id: int
    position: int
    type: QuestionType
    prompt: str
    options: list[str]
    answer: Any
    points: float
    scoring: str | None = None
    tolerance: float | None = None
    accept: list[str] | None = None
    accept_regex: str | None = None
    case_sensitive: bool | None = None

    @model_serializer(mode="wrap")
    def _own_settings(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        for name in _SETTINGS:
            if name not in self.model_fields_set:
                out.pop(name, None)
        return out


class _QuizShown(QuizInfo):
    """What authors and students both see of a quiz, beyond the contract's QuizInfo."""

    description: str
    time_limit_seconds: int | None
    counted: Counted
    results: ResultsPolicy
    results_at: dt.datetime | None
    total_points: float


class QuizOut(_QuizShown):
    """A quiz as its authors see it (with answers)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        **_QUIZ, "shuffle_questions": False, "shuffle_options": True, "version": 1,
        "questions": _QUESTIONS_OUT, "created_at": "2026-08-29T10:20:00Z",
        "updated_at": "2026-08-29T10:20:00Z"}]})

    shuffle_questions: bool
    shuffle_options: bool
    version: int = Field(description="Bumped by an edit once an attempt used the previous one.")
    questions: list[QuestionOut]
    created_at: dt.datetime
    updated_at: dt.datetime


class QuizStudentOut(_QuizShown):
    """A quiz as a student sees it before starting: no questions."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        **_QUIZ, "attempts_used": 1, "open_attempt_id": 55}]})

    attempts_used: int
    open_attempt_id: int | None


class QuizView(RootModel[QuizOut | QuizStudentOut]):
    """The full quiz for its authors; the summary for a student."""


# Student 1001's attempt 55: as taken (options in the quiz's order here), as graded, as
# reviewed.
_ANSWERS: dict[str, Any] = {"301": 1, "302": [0], "303": False, "304": 5,
                            "305": "a box-and-whisker diagram"}
_STUDENT_QUESTIONS: list[Any] = [
    {"id": q["id"], "type": q["type"], "prompt": q["prompt"], "points": q["points"],
     "options": [{"index": i, "text": text} for i, text in enumerate(q["options"])]}
    for q in _QUESTIONS_OUT]
_GRADES: list[tuple[float, str, str]] = [  # points, status, feedback per question
    (1.0, "correct", ""), (1.0, "partial", ""), (1.0, "correct", ""), (1.0, "correct", ""),
    (1.0, "correct", _REVIEW)]
_QUESTION_RESULTS: list[Any] = [
    {"question_id": q["id"], "prompt": q["prompt"], "type": q["type"],
     "max_points": q["points"], "points": points, "status": status, "feedback": feedback,
     "your_answer": _ANSWERS[str(q["id"])], "correct_answer": q["answer"]}
    for q, (points, status, feedback) in zip(_QUESTIONS_OUT, _GRADES, strict=True)]
_SUBMISSION_QUESTIONS: list[Any] = [
    {"question_id": q["id"], "type": q["type"], "prompt": q["prompt"],
     "max_points": q["points"], "points": points, "status": status,
     "auto": q["type"] != "short_text", "feedback": feedback,
     "answer": _ANSWERS[str(q["id"])], "model_answer": q["answer"]}
    for q, (points, status, feedback) in zip(_QUESTIONS_OUT, _GRADES, strict=True)]
_ATTEMPT_RESULT: dict[str, Any] = {
    "id": 55, "number": 1, "status": "graded", **_ATTEMPT_TIMES, "late": False,
    "released": "full", "percent": 83.33, "points": 5.0, "max_points": 6.0, "passed": True,
    "feedback": _FEEDBACK, "questions": _QUESTION_RESULTS}


class OptionOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"index": 1, "text": "Median"}]})

    index: int = Field(description="What an answer names (stable under shuffling).")
    text: str


class StudentQuestionOut(BaseModel):
    """A question as a student sees it while taking the quiz: never its answer."""

    model_config = ConfigDict(json_schema_extra={"examples": [_STUDENT_QUESTIONS[0]]})

    id: int
    type: QuestionType
    prompt: str
    points: float
    options: list[OptionOut]


class AttemptOut(BaseModel):
    """An attempt being taken: the questions (in this attempt's order) and what is saved."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 55, "quiz_id": 12, "number": 1, "status": "in_progress",
        "started_at": "2026-09-05T15:00:00Z", "deadline": "2026-09-05T15:15:00Z",
        "server_time": "2026-09-05T15:06:30Z", "questions": _STUDENT_QUESTIONS,
        "answers": {"301": 1, "302": [0]}}]})

    id: int
    quiz_id: int
    number: int
    status: AttemptStatus
    started_at: dt.datetime
    deadline: dt.datetime | None = Field(description="Submit before this (plus a short grace).")
    server_time: dt.datetime
    questions: list[StudentQuestionOut]
    answers: dict[str, Any] = Field(description="Saved answers, by question id.")


class AnswersIn(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"answers": {"303": False, "304": 5}}]})

    answers: dict[str, Any] = Field(max_length=1000,
                                    description="{question id: answer}; null clears one.")


class SubmitIn(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"answers": {"305": "a box-and-whisker diagram"}, "attempt_id": 55}]})

    answers: dict[str, Any] = Field(default_factory=dict, max_length=1000,
                                    description="{question id: answer}, merged over what the "
                                                "attempt saved.")
    attempt_id: int | None = Field(None, ge=1, le=2**31 - 1,
                                   description="The attempt to submit; default the caller's "
                                               "open attempt (or, before any attempt, a new "
                                               "one).")


class SavedOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "attempt_id": 55, "answers": {"301": 1, "302": [0], "303": False, "304": 5},
        "saved_at": {"301": "2026-09-05T15:02:10Z", "302": "2026-09-05T15:04:55Z",
                     "303": "2026-09-05T15:07:02Z", "304": "2026-09-05T15:07:02Z"}}]})

    attempt_id: int
    answers: dict[str, Any]
    saved_at: dict[str, dt.datetime]


class QuestionResultOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_QUESTION_RESULTS[1]]})

    question_id: int
    prompt: str
    type: QuestionType
    max_points: float
    points: float | None
    status: Literal["correct", "partial", "incorrect", "unanswered", "pending_review"]
    feedback: str
    your_answer: Any
    correct_answer: Any = Field(description="Only when the results policy shows answers.")


class AttemptResultOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_ATTEMPT_RESULT]})

    id: int
    number: int
    status: AttemptStatus
    started_at: dt.datetime
    submitted_at: dt.datetime | None
    late: bool
    released: Release = Field(
        description="What the results policy shows of this attempt now.")
    percent: float | None
    points: float | None
    max_points: float | None
    passed: bool | None
    feedback: str
    questions: list[QuestionResultOut] | None


class ResultOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "quiz_id": 12, "attempts_used": 1, "attempts_left": 2, "counted": "best",
        "score": 83.33, "passed": True, "attempt": _ATTEMPT_RESULT}]})

    quiz_id: int
    attempts_used: int
    attempts_left: int | None
    counted: Counted
    score: float | None = Field(description="The counted score (percent) when released.")
    passed: bool | None
    attempt: AttemptResultOut | None = Field(description="The latest submitted attempt.")


class AttemptSummaryOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 55, "number": 1, "status": "graded", **_ATTEMPT_TIMES, "late": False,
        "percent": 83.33, "passed": True}]})

    id: int
    number: int
    status: AttemptStatus
    started_at: dt.datetime
    submitted_at: dt.datetime | None
    late: bool
    percent: float | None
    passed: bool | None


class AttemptList(BaseModel):
    items: list[AttemptSummaryOut]


class SubmissionQuery(BaseModel):
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=1000, pattern=r"^[A-Za-z0-9_-]+$")
    status: Literal["needs_review", "all"] = "needs_review"


class SubmissionQuestionOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_SUBMISSION_QUESTIONS[4]]})

    question_id: int
    type: QuestionType
    prompt: str
    max_points: float
    points: float | None
    status: str
    auto: bool
    feedback: str
    answer: Any = Field(description="The student's answer.")
    model_answer: Any


class QuizSubmissionOut(BaseModel):
    """An attempt as the course's instructors see it."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 55, "quiz_id": 12, "version": 1, "user_id": 1001, "number": 1,
        "status": "graded", **_ATTEMPT_TIMES, "late": False, "needs_review": False,
        "pending": 0, "percent": 83.33, "points": 5.0, "max_points": 6.0, "passed": True,
        "feedback": _FEEDBACK, "reviewed_at": "2026-09-06T09:10:00Z",
        "questions": _SUBMISSION_QUESTIONS}]})

    id: int
    quiz_id: int
    version: int
    user_id: int
    number: int
    status: AttemptStatus
    started_at: dt.datetime
    submitted_at: dt.datetime | None
    late: bool
    needs_review: bool
    pending: int
    percent: float | None
    points: float | None
    max_points: float | None
    passed: bool | None
    feedback: str
    reviewed_at: dt.datetime | None
    questions: list[SubmissionQuestionOut]


class QuizSubmissionPage(BaseModel):
    items: list[QuizSubmissionOut]
    next_cursor: str | None


class GradeItem(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"points": 1.0, "feedback": _REVIEW}]})

    points: float = Field(ge=0, le=1000)
    feedback: str = Field("", max_length=5000)


class QuizGradeIn(Schema):
    """Grades of short_text answers by question id (again later: a regrade), and optional
    feedback on the whole attempt. With `results: after_review` a review with no grades
    releases the results."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "grades": {"305": {"points": 1.0, "feedback": _REVIEW}}, "feedback": _FEEDBACK}]})

    grades: dict[str, GradeItem] = Field(default_factory=dict, max_length=1000)
    feedback: str | None = Field(None, max_length=5000)
