"""Request and response schemas of the quizzes routes (validation and OpenAPI in one place).

Two views of a question: ``QuestionOut`` (authors: with the answer and auto-accept rules) and
``StudentQuestionOut`` (students: prompt, options and points only). Student-facing responses are
built only from the latter, so a correct answer has no field to travel in.
"""

from __future__ import annotations

import datetime as dt
import inspect
from typing import Annotated, Any, ClassVar, Literal, Union, cast

import re2
from pydantic import (
    BaseModel,
    Field,
    GetJsonSchemaHandler,
    RootModel,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    create_model,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from learnplat.plugin import Schema

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


class QuestionIn(Schema):
    """A question. `answer` is an option index (single_choice), a list of option indices
    (multiple_choice), a boolean (true_false), a number (numeric) or an optional model answer
    shown to reviewers (short_text)."""

    new: ClassVar[bool] = False  # NewQuestionIn: a question to add has no id yet

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

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        # On the wire `type` says which shape a question has: the document says so with a
        # discriminated union of one typed model per type (_doc_model), which generated
        # clients turn into classes. Validation stays check_type's, with its messages.
        union = _NEW_QUESTION_DOC if cls.new else _QUESTION_DOC
        refs = handler(union.core_schema)["anyOf"]
        # pydantic takes no discriminator on Schema models (their mode="before" validators
        # also see `type`): the members say it with their `type` const, mapped here.
        return {"title": cls.__name__, "description": inspect.cleandoc(cls.__doc__ or ""),
                "oneOf": refs, "discriminator": {"propertyName": "type", "mapping": dict(
                    zip(_BY_TYPE, (ref["$ref"] for ref in refs), strict=True))}}


class NewQuestionIn(QuestionIn):
    """A question to add at the end of a quiz: it has no id yet."""

    new = True


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


def _doc_model(kind: str, new: bool) -> type[Schema]:
    """The document's model of one question type (never used to validate)."""
    doc, overrides = _BY_TYPE[kind]
    fields: dict[str, Any] = {}
    for name, info in QuestionIn.model_fields.items():
        if name == "id" and new:
            continue
        if name == "type":
            fields[name] = (Literal[kind], ...)
        else:
            fields[name] = overrides.get(name, (info.annotation, info))
    name = "".join(part.title() for part in kind.split("_")) + "QuestionIn"
    return create_model(("New" if new else "") + name, __base__=Schema, __doc__=doc,
                        **fields)


# (A union of classes made at run time: a type only to pydantic, hence the casts.)
_QUESTION_DOC: TypeAdapter[Any] = TypeAdapter(cast(
    Any, Union[tuple(_doc_model(kind, False) for kind in _BY_TYPE)]))  # noqa: UP007
_NEW_QUESTION_DOC: TypeAdapter[Any] = TypeAdapter(cast(
    Any, Union[tuple(_doc_model(kind, True) for kind in _BY_TYPE)]))  # noqa: UP007


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
    question_ids: list[int] = Field(min_length=1, max_length=1000,
                                    json_schema_extra={"uniqueItems": True},
                                    description="Every question id of the quiz, in order.")


_SETTINGS = ("scoring", "tolerance", "accept", "accept_regex", "case_sensitive")


class QuestionOut(BaseModel):
    """A question as its authors see it: the settings of its type only (`scoring` for
    multiple_choice, `tolerance` for numeric, `accept`, `accept_regex` and `case_sensitive`
    for short_text)."""

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

    shuffle_questions: bool
    shuffle_options: bool
    version: int = Field(description="Bumped by an edit once an attempt used the previous one.")
    questions: list[QuestionOut]
    created_at: dt.datetime
    updated_at: dt.datetime


class QuizStudentOut(_QuizShown):
    """A quiz as a student sees it before starting: no questions."""

    attempts_used: int
    open_attempt_id: int | None


class QuizView(RootModel[QuizOut | QuizStudentOut]):
    """The full quiz for its authors; the summary for a student."""


class OptionOut(BaseModel):
    index: int = Field(description="What an answer names (stable under shuffling).")
    text: str


class StudentQuestionOut(BaseModel):
    """A question as a student sees it while taking the quiz: never its answer."""

    id: int
    type: QuestionType
    prompt: str
    points: float
    options: list[OptionOut]


class AttemptOut(BaseModel):
    """An attempt being taken: the questions (in this attempt's order) and what is saved."""

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
    answers: dict[str, Any] = Field(max_length=1000,
                                    description="{question id: answer}; null clears one.")


class SubmitIn(Schema):
    answers: dict[str, Any] = Field(default_factory=dict, max_length=1000,
                                    description="{question id: answer}, merged over what the "
                                                "attempt saved.")
    attempt_id: int | None = Field(None, ge=1, le=2**31 - 1,
                                   description="The attempt to submit; default the caller's "
                                               "open attempt (or, before any attempt, a new "
                                               "one).")


class SavedOut(BaseModel):
    attempt_id: int
    answers: dict[str, Any]
    saved_at: dict[str, dt.datetime]


class QuestionResultOut(BaseModel):
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
    quiz_id: int
    attempts_used: int
    attempts_left: int | None
    counted: Counted
    score: float | None = Field(description="The counted score (percent) when released.")
    passed: bool | None
    attempt: AttemptResultOut | None = Field(description="The latest submitted attempt.")


class AttemptSummaryOut(BaseModel):
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
    points: float = Field(ge=0, le=1000)
    feedback: str = Field("", max_length=5000)


class QuizGradeIn(Schema):
    """Grades of short_text answers by question id (again later: a regrade), and optional
    feedback on the whole attempt. With `results: after_review` a review with no grades
    releases the results."""

    grades: dict[str, GradeItem] = Field(default_factory=dict, max_length=1000)
    feedback: str | None = Field(None, max_length=5000)
