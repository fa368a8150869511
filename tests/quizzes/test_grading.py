"""grading.py: the pure grading function and the answer checks, example by example and by
property (hypothesis)."""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from learnplat_quizzes import grading as g
from learnplat_quizzes.grading import ManualGrade, Question


def q(qid: int = 1, type: str = "single_choice", points: float = 1.0, **kw) -> Question:
    defaults = {"single_choice": {"options": ("a", "b", "c"), "answer": 1},
                "multiple_choice": {"options": ("a", "b", "c", "d"), "answer": [0, 2]},
                "true_false": {"answer": True},
                "numeric": {"answer": 10.0},
                "short_text": {"answer": None}}[type]
    return Question(id=qid, type=type, prompt="?", points=points, **{**defaults, **kw})


def one(question: Question, answer, manual=None) -> g.QuestionResult:
    return g.grade([question], {str(question.id): answer}, 50,
                   {question.id: manual} if manual else None).results[0]


# -- each type ------------------------------------------------------------------------------------


@pytest.mark.parametrize("answer,status,points", [
    (1, "correct", 2.0), (0, "incorrect", 0.0), (True, "incorrect", 0.0),  # bool is not 1
    ("1", "incorrect", 0.0), (None, "unanswered", 0.0)])
def test_single_choice(answer, status, points):
    r = one(q(type="single_choice", points=2), answer)
    assert (r.status, r.points, r.auto) == (status, points, True)


@pytest.mark.parametrize("answer,status,points", [
    ([0, 2], "correct", 4.0), ([2, 0], "correct", 4.0), ([0], "incorrect", 0.0),
    ([0, 1, 2], "incorrect", 0.0), ([], "unanswered", 0.0), (0, "incorrect", 0.0)])
def test_multiple_choice_all_or_nothing(answer, status, points):
    r = one(q(type="multiple_choice", points=4), answer)
    assert (r.status, r.points) == (status, points)


@pytest.mark.parametrize("answer,status,points", [
    ([0, 2], "correct", 4.0), ([0], "partial", 2.0), ([0, 1], "incorrect", 0.0),
    ([0, 1, 2], "partial", 2.0), ([1, 3], "incorrect", 0.0), ([0, 1, 2, 3], "incorrect", 0.0)])
def test_multiple_choice_partial(answer, status, points):
    r = one(q(type="multiple_choice", points=4, scoring="partial"), answer)
    assert (r.status, r.points) == (status, points)


@pytest.mark.parametrize("answer,status", [
    (True, "correct"), (False, "incorrect"), (1, "incorrect"), ("true", "incorrect")])
def test_true_false(answer, status):
    assert one(q(type="true_false"), answer).status == status


@pytest.mark.parametrize("answer,status", [
    (10, "correct"), (10.5, "correct"), (9.5, "correct"), (10.51, "incorrect"),
    (float("nan"), "incorrect"), (True, "incorrect"), ("10", "incorrect")])
def test_numeric_with_tolerance(answer, status):
    assert one(q(type="numeric", tolerance=0.5), answer).status == status


def test_numeric_exact_survives_float_arithmetic():
    assert one(q(type="numeric", answer=0.3), 0.1 + 0.2).status == "correct"
    assert one(q(type="numeric", answer=0.3), 0.30001).status == "incorrect"


def test_short_text_waits_for_review_unless_auto_accepted():
    question = q(type="short_text", points=3, accept=("Paris", "City of Light"),
                 accept_regex=r"par[iy]s?")
    pending = one(question, "Lutetia")
    assert (pending.status, pending.points, pending.auto) == ("pending_review", None, False)
    assert one(question, "  city   of light ").status == "correct"
    assert one(question, "PARY").status == "correct"  # regex, case-insensitive
    assert one(question, "   ").status == "unanswered"
    sensitive = q(type="short_text", accept=("Paris",), case_sensitive=True)
    assert one(sensitive, "paris").status == "pending_review"


def test_short_text_manual_grade_replaces_rules():
    question = q(type="short_text", points=3, accept=("Paris",))
    r = one(question, "Paris", ManualGrade(1.5, "half"))
    assert (r.status, r.points, r.feedback, r.auto) == ("partial", 1.5, "half", False)
    assert one(question, "x", ManualGrade(99)).points == 3  # clamped to the question
    assert one(question, "x", ManualGrade(0)).status == "incorrect"


def test_catastrophic_regex_runs_in_linear_time():
    # (a+)+b backtracks for ages in Python's re on "aaaa...a"; RE2 answers at once.
    question = q(type="short_text", accept_regex=r"(a+)+b")
    started = time.perf_counter()
    assert one(question, "a" * 5000).status == "pending_review"
    assert one(question, "a" * 5000 + "b").status == "correct"
    assert time.perf_counter() - started < 1.0


# -- the whole attempt ----------------------------------------------------------------------------


def test_grade_totals_and_pass_mark():
    qs = [q(1, points=2), q(2, type="true_false", points=2)]
    result = g.grade(qs, {"1": 1, "2": False}, pass_mark=50)
    assert (result.points, result.max_points, result.percent, result.passed) == (2, 4, 50, True)
    assert g.grade(qs, {"1": 1, "2": False}, pass_mark=50.01).passed is False
    assert g.grade(qs, {}, pass_mark=0).passed is True  # a pass mark of 0 passes anyone


def test_pending_short_text_leaves_pass_undecided():
    qs = [q(1), q(2, type="short_text")]
    result = g.grade(qs, {"1": 1, "2": "essay"}, pass_mark=10)
    assert (result.pending, result.passed, result.complete) == (1, None, False)
    done = g.grade(qs, {"1": 1, "2": "essay"}, 10, {2: ManualGrade(1)})
    assert (done.pending, done.passed, done.percent) == (0, True, 100)


def test_unknown_answers_are_ignored_by_grade_and_refused_by_check():
    qs = [q(1)]
    assert g.grade(qs, {"1": 1, "999": 0}, 50).percent == 100
    errors = g.check_answers(qs, {"999": 0, "1": "x"})
    assert [(e["field"], e["type"]) for e in errors] == [
        ("answers.999", "unknown_question"), ("answers.1", "wrong_answer_type")]


@pytest.mark.parametrize("question,answer,ok", [
    (q(type="single_choice"), 2, True), (q(type="single_choice"), 3, False),
    (q(type="single_choice"), -1, False), (q(type="single_choice"), True, False),
    (q(type="single_choice"), 1.0, False),
    (q(type="multiple_choice"), [0, 3], True), (q(type="multiple_choice"), [], True),
    (q(type="multiple_choice"), [0, 0], False), (q(type="multiple_choice"), [4], False),
    (q(type="multiple_choice"), 1, False),
    (q(type="true_false"), False, True), (q(type="true_false"), 0, False),
    (q(type="numeric"), 1e300, True), (q(type="numeric"), float("inf"), False),
    (q(type="numeric"), "3", False), (q(type="numeric"), False, False),
    (q(type="short_text"), "text", True), (q(type="short_text"), 5, False),
    (q(type="short_text"), "x" * 5001, False), (q(type="short_text"), "a\x00", False),
    (q(type="true_false"), None, True),
])
def test_answer_problem(question, answer, ok):
    problem = g.answer_problem(question, answer)
    assert (problem is None) is ok, problem


def test_answer_problem_never_quotes_the_answer():
    secret = q(type="single_choice", options=("x", "y", "zz-secret"), answer=2)
    for wrong in ("a", 7, [1], None, 2.5):
        assert "zz-secret" not in (g.answer_problem(secret, wrong) or "")
        assert "answer" not in (g.answer_problem(secret, wrong) or "").replace(
            "answer ", "")


# -- properties -----------------------------------------------------------------------------------

answers_any = st.one_of(st.none(), st.booleans(), st.integers(-3, 8),
                        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
                        st.lists(st.integers(-1, 6), max_size=6))


@st.composite
def questions(draw, qid: int = 1) -> Question:
    kind = draw(st.sampled_from(g.TYPES))
    points = draw(st.floats(0.25, 100, allow_nan=False))
    n = draw(st.integers(2, 6))
    options = tuple(f"o{i}" for i in range(n))
    if kind == g.SINGLE:
        return Question(qid, kind, "?", points, options, draw(st.integers(0, n - 1)))
    if kind == g.MULTIPLE:
        correct = draw(st.sets(st.integers(0, n - 1), min_size=1))
        return Question(qid, kind, "?", points, options, sorted(correct),
                        scoring=draw(st.sampled_from(["all_or_nothing", "partial"])))
    if kind == g.TRUE_FALSE:
        return Question(qid, kind, "?", points, answer=draw(st.booleans()))
    if kind == g.NUMERIC:
        return Question(qid, kind, "?", points, answer=draw(st.floats(-1e6, 1e6)),
                        tolerance=draw(st.floats(0, 10)))
    # As the schema allows: accept items are not blank.
    return Question(qid, kind, "?", points, accept=tuple(draw(st.lists(
        st.text(min_size=1, max_size=8).filter(lambda t: t.split()), max_size=3))))


@st.composite
def quizzes(draw) -> list[Question]:
    n = draw(st.integers(1, 8))
    return [draw(questions(qid=i + 1)) for i in range(n)]


def correct_answer(question: Question):
    if question.type == g.SHORT_TEXT:
        return question.accept[0] if question.accept else None
    return question.answer


@settings(max_examples=300, deadline=None)
@given(quizzes(), st.data(), st.floats(0, 100))
def test_any_answers_score_within_bounds(qs, data, pass_mark):
    answers = {str(x.id): data.draw(answers_any) for x in qs}
    result = g.grade(qs, answers, pass_mark)
    assert 0 <= result.points <= result.max_points + 1e-4
    assert 0 <= result.percent <= 100
    # Totals are rounded to 4 decimals.
    assert math.isclose(result.max_points, sum(x.points for x in qs), abs_tol=1e-4)
    for r, x in zip(result.results, qs, strict=True):
        assert r.points is None or 0 <= r.points <= x.points + 1e-9
    assert result.pending == sum(r.points is None for r in result.results)
    assert (result.passed is None) == (result.pending > 0)
    assert g.grade(qs, answers, pass_mark) == result  # deterministic


@settings(max_examples=200, deadline=None)
@given(quizzes())
def test_correct_answers_score_full_marks(qs):
    answers = {str(x.id): correct_answer(x) for x in qs}
    manual = {x.id: ManualGrade(x.points) for x in qs
              if x.type == g.SHORT_TEXT and not x.accept}
    result = g.grade(qs, answers, 100, manual)
    assert result.percent == 100 and result.passed is True


@settings(max_examples=200, deadline=None)
@given(quizzes(), st.floats(0, 100))
def test_no_answers_score_zero(qs, pass_mark):
    result = g.grade(qs, {}, pass_mark)
    assert result.points == 0 and result.pending == 0
    assert result.passed is (pass_mark == 0)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_multiple_choice_order_free_and_wrong_choices_never_help(data):
    question = data.draw(questions().filter(lambda x: x.type == g.MULTIPLE))
    n = len(question.options)
    chosen = data.draw(st.lists(st.integers(0, n - 1), unique=True))
    base = one(question, chosen).points
    assert one(question, list(reversed(chosen))).points == base
    wrong = [i for i in range(n) if i not in question.answer and i not in chosen]
    if wrong:
        assert one(question, [*chosen, wrong[0]]).points <= base


@settings(max_examples=200, deadline=None)
@given(quizzes(), st.data())
def test_checked_answers_have_no_problems_and_grade_the_same(qs, data):
    """Whatever passes check_answers is graded; what fails it is named by question id."""
    answers = {str(x.id): data.draw(answers_any) for x in qs}
    errors = g.check_answers(qs, answers)
    bad = {e["field"].split(".", 1)[1] for e in errors}
    assert bad == {k for k, a in answers.items()
                   if g.answer_problem(next(x for x in qs if str(x.id) == k), a)}


def test_a_pass_mark_that_underflows_still_needs_points():
    """Found by hypothesis: 5e-324 * max_points underflowed to 0, and 0 points passed."""
    question = q(type="true_false", points=0.5)
    assert g.grade([question], {}, 5e-324).passed is False
    assert g.grade([question], {"1": True}, 5e-324).passed is True
    assert g.grade([question], {}, 0).passed is True
