"""Quizzes: authoring (versioned question sets), taking (attempts on the server's clock),
grading (grading.py, pure) and instructor review. No Falcon; resources and event handlers call
it. Other plugins are reached through their api modules only.

Concurrency: every change to one student's attempts of one quiz first locks that student's
StudentQuiz row (``_lock_student``): PostgreSQL ``SELECT ... FOR UPDATE``, SQLite the write lock
taken at ``BEGIN IMMEDIATE``. Two submits of one attempt therefore run one after the other; the
second finds the attempt submitted (409) and nothing is graded twice.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import peewee
from learnplat_courses.api import COURSES, CourseInfo
from learnplat_enrollment.api import ENROLLMENT
from learnplat_progress.api import PROGRESS

from learnplat.plugin import (
    Conflict,
    NotFound,
    Principal,
    Sibling,
    ValidationFailed,
    api_timestamp,
    db,
    utcnow,
)

from . import events as ev
from . import grading as g
from . import views as v
from .api import QuizInfo, QuizScore
from .models import Attempt, Question, Quiz, QuizVersion, StudentQuiz
from .schemas import (
    AttemptSummaryOut,
    Counted,
    QuestionIn,
    QuizIn,
    QuizOut,
    QuizPatch,
    QuizStudentOut,
    ResultOut,
)
from .settings import QuizzesSettings

if TYPE_CHECKING:
    from learnplat.plugin import Runtime

M = TypeVar("M", bound=peewee.Model)
MAX_ID = 2**31 - 1
AUTHOR, TAKE, REVIEW = "quiz.author", "quiz.take", "quiz.review"
QUIZ_FIELDS = ("title", "description", "pass_mark", "time_limit_seconds", "max_attempts",
               "shuffle_questions", "shuffle_options", "counted", "results", "results_at")


def valid_id(value: Any) -> bool:
    """Whether `value` can be a row id (ids from URLs may be any integer: 404, not overflow)."""
    return isinstance(value, int) and 0 < value <= MAX_ID


def _for_update(query: peewee.ModelSelect[M]) -> peewee.ModelSelect[M]:
    return query.for_update() if db.is_postgres() else query


class QuizzesService:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime  # shared across requests: no per-request state

    courses = Sibling(COURSES)
    enrollment = Sibling(ENROLLMENT)

    @property
    def settings(self) -> QuizzesSettings:
        return self.runtime.settings_of(QuizzesSettings)

    # -- contract (api.py) -----------------------------------------------------------------------

    def quiz_of_module(self, course_id: int, module_id: int) -> QuizInfo | None:
        quiz = Quiz.get_or_none((Quiz.course_id == course_id) & (Quiz.module_id == module_id))
        if quiz is None:
            return None
        count = Question.select().where((Question.quiz == quiz.id)
                                        & (Question.removed == False)).count()  # noqa: E712
        return QuizInfo(id=quiz.id, course_id=quiz.course_id, module_id=quiz.module_id,
                        title=quiz.title, pass_mark=quiz.pass_mark,
                        max_attempts=quiz.max_attempts, question_count=count)

    def scores(self, course_id: int, user_id: int) -> list[QuizScore]:
        rows = (StudentQuiz.select(StudentQuiz, Quiz)
                .join(Quiz, on=(StudentQuiz.quiz == Quiz.id), attr="quiz_row")
                .where((StudentQuiz.course_id == course_id) & (StudentQuiz.user_id == user_id))
                .order_by(Quiz.module_id))
        now = utcnow()
        out = []
        for sq in rows:
            quiz = sq.quiz_row
            shown = sq.percent is not None and not (
                quiz.results == "after_date" and (quiz.results_at is None
                                                  or now < quiz.results_at))
            out.append(QuizScore(quiz_id=quiz.id, module_id=quiz.module_id, title=quiz.title,
                                 attempts=sq.attempts, percent=sq.percent if shown else None,
                                 passed=sq.passed if shown else None, passed_at=sq.passed_at))
        return out

    def average_score(self, course_id: int) -> float | None:
        avg = (StudentQuiz.select(peewee.fn.AVG(StudentQuiz.percent))
               .where((StudentQuiz.course_id == course_id) & StudentQuiz.percent.is_null(False))
               .scalar())
        return None if avg is None else round(float(avg), 2)

    def quiz_stats(self, course_id: int) -> list[dict[str, Any]]:
        """Per quiz of a course: students graded, mean score, pass rate (one grouped query)."""
        passed = peewee.fn.SUM(peewee.Case(None, [(StudentQuiz.passed == True, 1)], 0))  # noqa: E712
        rows = (Quiz.select(Quiz.id, Quiz.module_id, Quiz.title,
                            peewee.fn.COUNT(StudentQuiz.id).alias("students"),
                            peewee.fn.AVG(StudentQuiz.percent).alias("average"),
                            passed.alias("passed"))
                .join(StudentQuiz, peewee.JOIN.LEFT_OUTER,
                      on=((StudentQuiz.quiz == Quiz.id) & StudentQuiz.percent.is_null(False)))
                .where(Quiz.course_id == course_id)
                .group_by(Quiz.id, Quiz.module_id, Quiz.title).order_by(Quiz.id).dicts())
        return [{"quiz_id": r["id"], "module_id": r["module_id"], "title": r["title"],
                 "graded_students": r["students"],
                 "average_score": None if r["average"] is None else round(float(r["average"]), 2),
                 "pass_rate": round(int(r["passed"] or 0) / r["students"], 4) if r["students"]
                 else None} for r in rows]

    # -- authoring -------------------------------------------------------------------------------

    def _owned_quiz(self, principal: Principal, course_id: int, module_id: int,
                    quiz_id: int | None, permission: str = AUTHOR) -> tuple[CourseInfo, Quiz]:
        course = self.courses.owned_course(course_id, principal, permission)
        quiz = self._quiz(course.id, module_id, quiz_id, lock=True)
        return course, quiz

    def _quiz(self, course_id: int, module_id: int, quiz_id: int | None,
              lock: bool = False) -> Quiz:
        if not valid_id(module_id) or (quiz_id is not None and not valid_id(quiz_id)):
            raise NotFound("no such quiz")
        query = Quiz.select().where((Quiz.course_id == course_id)
                                    & (Quiz.module_id == module_id))
        if quiz_id is not None:
            query = query.where(Quiz.id == quiz_id)
        quiz = (_for_update(query) if lock else query).first()
        if quiz is None:
            raise NotFound("no such quiz")
        return quiz

    def questions(self, quiz: Quiz) -> list[dict[str, Any]]:
        """The quiz's questions as they are now (with answers), in order."""
        rows = Question.select().where((Question.quiz == quiz.id)
                                       & (Question.removed == False)).order_by(  # noqa: E712
            Question.position, Question.id)
        return [v.question_dict(q) for q in rows]

    def create(self, principal: Principal, course_id: int, module_id: int, body: QuizIn
               ) -> Quiz:
        with db.transaction():
            course = self.courses.owned_course(course_id, principal, AUTHOR)
            module = self.courses.get_module(course.id, module_id)
            existing = Quiz.get_or_none(Quiz.module_id == module.id)
            if existing is not None:
                raise Conflict("this module already has a quiz", code="quiz_exists",
                               quiz_id=existing.id)
            self._check_count(body.questions)
            fields = body.model_dump(include=set(QUIZ_FIELDS))
            quiz = Quiz.create(course_id=course.id, module_id=module.id, version=1, **fields)
            self._replace_questions(quiz, body.questions)
            self._freeze(quiz)
            self.courses.set_module_kind(course.id, module.id, "quiz")
            return quiz

    def update(self, principal: Principal, course_id: int, module_id: int, quiz_id: int,
               patch: QuizPatch, precondition: Callable[[], None] | None = None) -> Quiz:
        """`precondition` (an If-Match check) runs once the course and quiz rows are locked,
        before anything is written."""
        with db.transaction():
            _, quiz = self._owned_quiz(principal, course_id, module_id, quiz_id)
            if precondition is not None:
                precondition()
            changes = patch.model_dump(exclude_unset=True, include=set(QUIZ_FIELDS))
            for name, value in changes.items():
                setattr(quiz, name, value)
            if quiz.results == "after_date" and quiz.results_at is None:
                raise ValidationFailed.field("results_at",
                                             "required with results 'after_date'", "missing")
            if patch.questions is not None:
                self._check_count(patch.questions)
                self._replace_questions(quiz, patch.questions)
            quiz.updated_at = utcnow()
            quiz.save()
            if patch.questions is not None or "pass_mark" in changes:
                self._freeze(quiz)
            return quiz

    def delete(self, principal: Principal, course_id: int, module_id: int, quiz_id: int,
               precondition: Callable[[], None] | None = None) -> None:
        """Delete a quiz with its attempts; the module becomes a text module again."""
        with db.transaction():
            _, quiz = self._owned_quiz(principal, course_id, module_id, quiz_id)
            if precondition is not None:
                precondition()
            self._delete_quizzes(Quiz.id == quiz.id)
            self.courses.set_module_kind(course_id, module_id, "text")

    def _delete_quizzes(self, where: Any) -> int:
        # Children first: cascades are the database's on PostgreSQL, not always on SQLite.
        ids = [q.id for q in Quiz.select(Quiz.id).where(where)]
        if not ids:
            return 0
        for model in (StudentQuiz, Attempt, QuizVersion, Question):
            model.delete().where(model.quiz.in_(ids)).execute()
        return Quiz.delete().where(Quiz.id.in_(ids)).execute()

    def edit_questions(self, principal: Principal, course_id: int, module_id: int,
                       quiz_id: int, edit: Any) -> Quiz:
        """Apply `edit(list of QuestionIn) -> list of QuestionIn` to the quiz's questions."""
        with db.transaction():
            _, quiz = self._owned_quiz(principal, course_id, module_id, quiz_id)
            current = [QuestionIn.model_validate(
                {k: val for k, val in q.items() if k != "position"})
                for q in self.questions(quiz)]
            new = edit(current)
            self._check_count(new)
            self._replace_questions(quiz, new)
            quiz.updated_at = utcnow()
            quiz.save()
            self._freeze(quiz)
            return quiz

    def _check_count(self, items: list[QuestionIn]) -> None:
        limit = self.settings.max_questions
        if len(items) > limit:
            raise ValidationFailed.field("questions", f"at most {limit} questions", "too_long")

    def _replace_questions(self, quiz: Quiz, items: list[QuestionIn]) -> None:
        existing = {q.id: q for q in Question.select().where(
            (Question.quiz == quiz.id) & (Question.removed == False))}  # noqa: E712
        seen: set[int] = set()
        errors = []
        for i, item in enumerate(items):
            if item.id is None:
                continue
            if item.id not in existing:
                errors.append({"field": f"questions.{i}.id",
                               "message": "no such question in this quiz", "type": "unknown"})
            elif item.id in seen:
                errors.append({"field": f"questions.{i}.id", "message": "listed twice",
                               "type": "duplicate"})
            seen.add(item.id)
        if errors:
            raise ValidationFailed(errors)
        gone = [qid for qid in existing if qid not in seen]
        if gone:
            Question.update(removed=True).where(Question.id.in_(gone)).execute()
        for position, item in enumerate(items, start=1):
            fields = {"position": position, "type": item.type, "prompt": item.prompt,
                      "options": item.options, "answer": item.answer, "points": item.points,
                      "settings": item.stored()}
            if item.id is None:
                Question.create(quiz=quiz.id, **fields)
            else:
                Question.update(**fields).where(Question.id == item.id).execute()

    def _freeze(self, quiz: Quiz) -> None:
        """Copy the questions into the current version while no attempt uses it; once one
        does, into a new version (attempts keep being graded against what they took).

        Starting an attempt holds a share lock on its version until it commits; the FOR UPDATE
        here waits for those, and the check that follows (a new statement: READ COMMITTED sees
        what they committed) finds their attempts. A start that comes later waits for this
        transaction and then reads the version as it left it."""
        questions = self.questions(quiz)
        current = _for_update(QuizVersion.select().where(
            (QuizVersion.quiz == quiz.id) & (QuizVersion.number == quiz.version))).first()
        if current is not None and not Attempt.select().where(
                Attempt.version == current.id).exists():
            QuizVersion.update(questions=questions, pass_mark=quiz.pass_mark,
                               created_at=utcnow()).where(
                QuizVersion.id == current.id).execute()
            return
        number = quiz.version + 1 if current is not None else quiz.version
        QuizVersion.create(quiz=quiz.id, number=number, pass_mark=quiz.pass_mark,
                           questions=questions)
        if number != quiz.version:
            Quiz.update(version=number).where(Quiz.id == quiz.id).execute()
            quiz.version = number

    def _version(self, quiz: Quiz, number: int | None = None) -> QuizVersion:
        return QuizVersion.get((QuizVersion.quiz == quiz.id)
                               & (QuizVersion.number == (number or quiz.version)))

    # -- reading ---------------------------------------------------------------------------------

    def view(self, principal: Principal, course_id: int, module_id: int,
             quiz_id: int | None) -> QuizOut | QuizStudentOut:
        """The quiz for its authors (with answers); its summary for an enrolled student."""
        course = self.courses.visible_course(course_id, principal)
        quiz = self._quiz(course.id, module_id, quiz_id)
        if principal.can(AUTHOR, owner_id=course.owner_id):
            return v.author_quiz(quiz, self.questions(quiz))
        self.enrollment.require_active(course.id, principal)
        version = self._version(quiz)
        attempts = list(Attempt.select(Attempt.id, Attempt.status).where(
            (Attempt.quiz == quiz.id) & (Attempt.user_id == principal.user_id)))
        open_ids = [a.id for a in attempts if a.status == "in_progress"]
        return v.student_quiz(quiz, version.questions, len(attempts),
                              open_ids[0] if open_ids else None)

    # -- taking ----------------------------------------------------------------------------------

    def _taking(self, principal: Principal, course_id: int, module_id: int, quiz_id: int
                ) -> Quiz:
        principal.require(TAKE)
        self.enrollment.require_active(course_id, principal)
        quiz = self._quiz(course_id, module_id, quiz_id)
        # The progress plugin owns module locks (release date, prerequisite); without it, only
        # the release date applies.
        if self.runtime.has_service(PROGRESS):
            reason = self.runtime.service(PROGRESS).lock_reason(course_id, module_id,
                                                                principal.user_id)
        else:
            reason = None if self.courses.get_module(course_id, module_id).is_released() else (
                "not_released")
        if reason is None:
            return quiz
        module = self.courses.get_module(course_id, module_id)
        if reason == "not_released":
            raise Conflict("this module is not released yet", code="module_locked",
                           reason=reason, release_at=api_timestamp(module.release_at)
                           if module.release_at else None)
        raise Conflict("complete the prerequisite module first", code="module_locked",
                       reason=reason, prerequisite_id=module.prerequisite_id)

    def _lock_student(self, quiz: Quiz, user_id: int) -> StudentQuiz:
        StudentQuiz.insert(quiz=quiz.id, course_id=quiz.course_id, user_id=user_id
                           ).on_conflict_ignore().execute()
        return _for_update(StudentQuiz.select().where(
            (StudentQuiz.quiz == quiz.id) & (StudentQuiz.user_id == user_id))).get()

    def _expired(self, attempt: Attempt, now: dt.datetime) -> bool:
        return attempt.deadline is not None and now > self._cutoff(attempt)

    def _cutoff(self, attempt: Attempt) -> dt.datetime:
        assert attempt.deadline is not None
        return attempt.deadline + dt.timedelta(seconds=self.settings.grace_seconds)

    def _open_attempt(self, quiz: Quiz, user_id: int) -> Attempt | None:
        return Attempt.select().where(
            (Attempt.quiz == quiz.id) & (Attempt.user_id == user_id)
            & (Attempt.status == "in_progress")).order_by(Attempt.number.desc()).first()

    def start(self, principal: Principal, course_id: int, module_id: int, quiz_id: int
              ) -> tuple[Attempt, list[dict[str, Any]], bool]:
        """Start an attempt (the time limit runs from now), or return the open one. An open
        attempt past its time limit is closed first (graded late with what it saved)."""
        with db.transaction():
            quiz = self._taking(principal, course_id, module_id, quiz_id)
            sq = self._lock_student(quiz, principal.user_id)
            now = utcnow()
            current = self._open_attempt(quiz, principal.user_id)
            if current is not None and not self._expired(current, now):
                return current, self._version_of(current).questions, False
            if current is not None:
                self._submit(quiz, sq, current, {}, now)
            attempt, version = self._new_attempt(quiz, sq, now)
            return attempt, version.questions, True

    def _new_attempt(self, quiz: Quiz, sq: StudentQuiz, now: dt.datetime
                     ) -> tuple[Attempt, QuizVersion]:
        if quiz.max_attempts is not None and sq.attempts >= quiz.max_attempts:
            raise Conflict(f"all {quiz.max_attempts} attempts are used",
                           code="max_attempts_reached", max_attempts=quiz.max_attempts)
        # A share lock (not a counter: every student's start would queue on one hot row), so
        # that an edit cannot rewrite this version in place while the attempt is being made.
        query = QuizVersion.select().where((QuizVersion.quiz == quiz.id)
                                           & (QuizVersion.number == quiz.version))
        version = (query.for_update("FOR SHARE") if db.is_postgres() else query).get()
        if not version.questions:
            raise Conflict("this quiz has no questions", code="empty_quiz")
        rng = random.Random(secrets.randbits(64))
        order = []
        for q in version.questions:
            options = list(range(len(q.get("options") or [])))
            if quiz.shuffle_options:
                rng.shuffle(options)
            order.append([q["id"], options])
        if quiz.shuffle_questions:
            rng.shuffle(order)
        deadline = (now + dt.timedelta(seconds=quiz.time_limit_seconds)
                    if quiz.time_limit_seconds else None)
        attempt = Attempt.create(quiz=quiz.id, version=version.id, course_id=quiz.course_id,
                                 user_id=sq.user_id, number=sq.attempts + 1, started_at=now,
                                 deadline=deadline, layout=order)
        StudentQuiz.update(attempts=StudentQuiz.attempts + 1, updated_at=now).where(
            StudentQuiz.id == sq.id).execute()
        sq.attempts += 1
        return attempt, version

    def _version_of(self, attempt: Attempt) -> QuizVersion:
        return QuizVersion.get(QuizVersion.id == attempt.version_id)

    def _own_attempt(self, quiz: Quiz, user_id: int, attempt_id: int) -> Attempt:
        attempt = Attempt.get_or_none((Attempt.id == attempt_id) & (Attempt.quiz == quiz.id)
                                      & (Attempt.user_id == user_id)) if valid_id(
            attempt_id) else None
        if attempt is None:
            raise NotFound("no such attempt")
        return attempt

    def attempt(self, principal: Principal, course_id: int, module_id: int, quiz_id: int,
                attempt_id: int) -> tuple[Attempt, list[dict[str, Any]]]:
        quiz = self._taking(principal, course_id, module_id, quiz_id)
        attempt = self._own_attempt(quiz, principal.user_id, attempt_id)
        return attempt, self._version_of(attempt).questions

    def attempts(self, principal: Principal, course_id: int, module_id: int, quiz_id: int
                 ) -> list[AttemptSummaryOut]:
        quiz = self._taking(principal, course_id, module_id, quiz_id)
        now = utcnow()
        rows = Attempt.select().where((Attempt.quiz == quiz.id)
                                      & (Attempt.user_id == principal.user_id)
                                      ).order_by(Attempt.number)
        return [v.attempt_summary(a, v.released(quiz, a, now)) for a in rows]

    def save(self, principal: Principal, course_id: int, module_id: int, quiz_id: int,
             attempt_id: int, answers: dict[str, Any]) -> Attempt:
        """Save answers as the student goes (null clears one); 409 once the time is up."""
        with db.transaction():
            quiz = self._taking(principal, course_id, module_id, quiz_id)
            self._lock_student(quiz, principal.user_id)
            attempt = self._own_attempt(quiz, principal.user_id, attempt_id)
            if attempt.status != "in_progress":
                raise Conflict("this attempt is submitted", code="already_submitted",
                               attempt_id=attempt.id)
            now = utcnow()
            if self._expired(attempt, now):
                raise Conflict("the time limit of this attempt has passed", code="time_up",
                               attempt_id=attempt.id)
            questions = v.frozen_questions(self._version_of(attempt).questions)
            errors = g.check_answers(questions, answers)
            if errors:
                raise ValidationFailed(errors)
            merged, saved_at = dict(attempt.answers or {}), dict(attempt.saved_at or {})
            for key, value in answers.items():
                if value is None:
                    merged.pop(key, None)
                    saved_at.pop(key, None)
                else:
                    merged[key], saved_at[key] = value, api_timestamp(now)  # shown as saved_at
            Attempt.update(answers=merged, saved_at=saved_at).where(
                Attempt.id == attempt.id).execute()
            attempt.answers, attempt.saved_at = merged, saved_at
            return attempt

    def submit(self, principal: Principal, course_id: int, module_id: int, quiz_id: int,
               answers: dict[str, Any], attempt_id: int | None) -> ResultOut:
        """Submit an attempt and grade what can be graded at once; answers the result the
        policy allows. A second submit of one attempt is a 409, never a second grading."""
        with db.transaction():
            quiz = self._taking(principal, course_id, module_id, quiz_id)
            sq = self._lock_student(quiz, principal.user_id)
            now = utcnow()
            if attempt_id is not None:
                attempt = self._own_attempt(quiz, principal.user_id, attempt_id)
            else:
                found = self._open_attempt(quiz, principal.user_id)
                if found is None and sq.attempts:
                    raise Conflict("no attempt is open: start a new attempt first",
                                   code="no_open_attempt")
                # The contract's one-step flow: submitting before any attempt starts one.
                attempt = found or self._new_attempt(quiz, sq, now)[0]
            if attempt.status != "in_progress":
                raise Conflict("this attempt is already submitted", code="already_submitted",
                               attempt_id=attempt.id)
            self._submit(quiz, sq, attempt, answers, now)
            return self._result(quiz, principal.user_id)

    def _submit(self, quiz: Quiz, sq: StudentQuiz, attempt: Attempt, answers: dict[str, Any],
                now: dt.datetime) -> None:
        version = self._version_of(attempt)
        questions = v.frozen_questions(version.questions)
        errors = g.check_answers(questions, answers)
        if errors:
            raise ValidationFailed(errors)
        late = self._expired(attempt, now)
        saved = dict(attempt.answers or {})
        if late:
            # Only what was saved before the limit (plus grace) counts.
            cutoff = self._cutoff(attempt)
            saved = {k: val for k, val in saved.items()
                     if dt.datetime.fromisoformat((attempt.saved_at or {}).get(
                         k, "1970-01-01T00:00:00+00:00")) <= cutoff}
        else:
            for key, value in answers.items():
                if value is None:
                    saved.pop(key, None)
                else:
                    saved[key] = value
        attempt.answers, attempt.submitted_at, attempt.late = saved, now, late
        self._grade(quiz, sq, attempt, version, reviewer=None)
        self.runtime.events.record(ev.QuizSubmitted(
            course_id=quiz.course_id, module_id=quiz.module_id, quiz_id=quiz.id,
            attempt_id=attempt.id, user_id=attempt.user_id, late=late,
            needs_review=attempt.needs_review))

    def _grade(self, quiz: Quiz, sq: StudentQuiz, attempt: Attempt, version: QuizVersion,
               reviewer: int | None) -> None:
        """(Re)grade an attempt from its answers and manual grades, store it, and when it is
        complete update the student's counted score and record the events."""
        manual = {int(k): g.ManualGrade(float(m["points"]), m.get("feedback", ""))
                  for k, m in (attempt.manual or {}).items()}
        result = g.grade(v.frozen_questions(version.questions), attempt.answers or {},
                         version.pass_mark, manual)
        was_graded = attempt.status == "graded"
        now = utcnow()
        if reviewer is not None:
            attempt.reviewed_at, attempt.reviewed_by = now, reviewer
        waits = result.pending > 0 or (quiz.results == "after_review"
                                       and attempt.reviewed_at is None)
        attempt.results = [r.as_dict() for r in result.results]
        attempt.points, attempt.max_points = result.points, result.max_points
        attempt.percent, attempt.passed = result.percent, result.passed
        attempt.pending, attempt.needs_review = result.pending, waits
        attempt.status = "submitted" if waits else "graded"
        if not waits:
            attempt.graded_at = now
        attempt.save()
        if waits:
            return
        self._count(quiz, sq, now)
        self.runtime.events.record(ev.QuizGraded(
            course_id=quiz.course_id, module_id=quiz.module_id, quiz_id=quiz.id,
            attempt_id=attempt.id, user_id=attempt.user_id, percent=result.percent,
            passed=bool(result.passed), late=attempt.late, reviewed=reviewer is not None,
            regraded=was_graded))
        if result.passed and sq.passed_at is None:
            StudentQuiz.update(passed_at=now).where(StudentQuiz.id == sq.id).execute()
            sq.passed_at = now
            self.runtime.events.record(ev.QuizPassed(
                course_id=quiz.course_id, module_id=quiz.module_id, user_id=attempt.user_id,
                quiz_id=quiz.id, attempt_id=attempt.id, percent=result.percent))

    def _count(self, quiz: Quiz, sq: StudentQuiz, now: dt.datetime) -> None:
        """The student's counted score: their best graded attempt or their last one."""
        graded = Attempt.select(Attempt.id, Attempt.percent, Attempt.passed).where(
            (Attempt.quiz == quiz.id) & (Attempt.user_id == sq.user_id)
            & (Attempt.status == "graded"))
        if quiz.counted == "last":
            graded = graded.order_by(Attempt.number.desc())
        else:
            graded = graded.order_by(Attempt.percent.desc(), Attempt.number)
        best = graded.first()
        if best is None:
            return
        StudentQuiz.update(counted_attempt_id=best.id, percent=best.percent,
                           passed=best.passed, updated_at=now).where(
            StudentQuiz.id == sq.id).execute()

    def result(self, principal: Principal, course_id: int, module_id: int, quiz_id: int
               ) -> ResultOut:
        """The caller's standing and latest submitted attempt, as far as the policy allows."""
        quiz = self._taking(principal, course_id, module_id, quiz_id)
        return self._result(quiz, principal.user_id)

    def _result(self, quiz: Quiz, user_id: int) -> ResultOut:
        now = utcnow()
        sq = StudentQuiz.get_or_none((StudentQuiz.quiz == quiz.id)
                                     & (StudentQuiz.user_id == user_id))
        used = sq.attempts if sq else 0
        latest = Attempt.select().where(
            (Attempt.quiz == quiz.id) & (Attempt.user_id == user_id)
            & (Attempt.status != "in_progress")).order_by(Attempt.number.desc()).first()
        score = passed = None
        # The counted attempt is graded by definition: only the policy decides.
        if sq is not None and sq.counted_attempt_id is not None and v.released(
                quiz, Attempt(status="graded"), now) != v.RELEASE_NONE:
            score, passed = sq.percent, sq.passed
        attempt = None
        if latest is not None:
            release = v.released(quiz, latest, now)
            # The questions (one more query) only when the answer shows them.
            questions = (self._version_of(latest).questions if release == v.RELEASE_FULL
                         else [])
            attempt = v.attempt_result(latest, questions, release)
        return ResultOut(quiz_id=quiz.id, attempts_used=used,
                         attempts_left=(max(0, quiz.max_attempts - used)
                                        if quiz.max_attempts is not None else None),
                         counted=cast(Counted, quiz.counted), score=score, passed=passed,
                         attempt=attempt)

    def close_expired(self, limit: int = 500) -> int:
        """Close attempts left open past their time limit and grace (the student never
        submitted): each is graded late with what it saved, like a late submit. In the current
        tenant; one transaction per attempt, under the student's lock."""
        cutoff = utcnow() - dt.timedelta(seconds=self.settings.grace_seconds)
        # In a transaction: that is where the tenant is applied to PostgreSQL's RLS.
        with db.transaction(write=False):
            ids = [a.id for a in Attempt.select(Attempt.id).where(
                (Attempt.status == "in_progress") & (Attempt.deadline < cutoff)
            ).order_by(Attempt.id).limit(limit)]
        closed = 0
        for attempt_id in ids:
            with db.transaction():
                found = Attempt.get_or_none(Attempt.id == attempt_id)
                if found is None:
                    continue
                quiz = Quiz.get_by_id(found.quiz_id)
                sq = self._lock_student(quiz, found.user_id)
                attempt = Attempt.get_by_id(attempt_id)  # as of the lock
                now = utcnow()
                if attempt.status != "in_progress" or not self._expired(attempt, now):
                    continue  # the student submitted meanwhile
                self._submit(quiz, sq, attempt, {}, now)
                closed += 1
        return closed

    # -- other plugins' events -------------------------------------------------------------------

    def forget_module(self, module_id: int) -> int:
        with db.transaction():
            return self._delete_quizzes(Quiz.module_id == module_id)

    def forget_course(self, course_id: int) -> int:
        with db.transaction():
            return self._delete_quizzes(Quiz.course_id == course_id)
