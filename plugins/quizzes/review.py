"""Instructor review: the queue of submitted attempts, grading short_text answers with
feedback, regrading. Shares the quizzes service's locks and grading (services.py)."""

from __future__ import annotations

from learnplat.plugin import (
    Conflict,
    NotFound,
    PageQuery,
    Principal,
    ValidationFailed,
    api_timestamp,
    db,
    paginate,
    utcnow,
)

from . import grading as g
from . import views as v
from .models import Attempt, QuizVersion
from .schemas import QuizGradeIn, QuizSubmissionOut, QuizSubmissionPage, SubmissionQuery
from .services import REVIEW, QuizzesService, valid_id


class ReviewService:
    def __init__(self, quizzes: QuizzesService):
        self.quizzes = quizzes

    def submissions(self, principal: Principal, course_id: int, module_id: int, quiz_id: int,
                    query: SubmissionQuery) -> QuizSubmissionPage:
        with db.transaction():
            course = self.quizzes.courses.owned_course(course_id, principal, REVIEW)
            quiz = self.quizzes._quiz(course.id, module_id, quiz_id)
            q = Attempt.select(Attempt, QuizVersion).join(
                QuizVersion, on=(Attempt.version == QuizVersion.id), attr="version_row").where(
                (Attempt.quiz == quiz.id) & (Attempt.status != "in_progress"))
            if query.status == "needs_review":
                q = q.where(Attempt.needs_review == True)  # noqa: E712
            return QuizSubmissionPage(**paginate(
                q, [Attempt.id], PageQuery(limit=query.limit, cursor=query.cursor),
                lambda a: v.submission(a, a.version_row.questions, a.version_row.number)))

    def review(self, principal: Principal, course_id: int, module_id: int, quiz_id: int,
               attempt_id: int, body: QuizGradeIn) -> QuizSubmissionOut:
        """Grade short_text answers with feedback (again: a regrade) and release the attempt
        to a quiz whose results wait for review."""
        with db.transaction():
            course = self.quizzes.courses.owned_course(course_id, principal, REVIEW)
            quiz = self.quizzes._quiz(course.id, module_id, quiz_id)
            attempt = Attempt.get_or_none((Attempt.id == attempt_id)
                                          & (Attempt.quiz == quiz.id)) if valid_id(
                attempt_id) else None
            if attempt is None:
                raise NotFound("no such attempt")
            sq = self.quizzes._lock_student(quiz, attempt.user_id)
            attempt = Attempt.get_by_id(attempt.id)  # as of the lock
            if attempt.status == "in_progress":
                raise Conflict("this attempt is not submitted yet", code="not_submitted")
            version = self.quizzes._version_of(attempt)
            by_id = {str(q["id"]): q for q in version.questions}
            errors = []
            manual = dict(attempt.manual or {})
            now = api_timestamp(utcnow())  # shown in the attempt as the grade's "at"
            for key, item in body.grades.items():
                q = by_id.get(key)
                if q is None:
                    errors.append({"field": f"grades.{key}", "type": "unknown_question",
                                   "message": "no such question in this attempt"})
                elif q["type"] != g.SHORT_TEXT:
                    errors.append({"field": f"grades.{key}", "type": "not_short_text",
                                   "message": "only short_text answers are graded by hand"})
                elif item.points > float(q["points"]):
                    errors.append({"field": f"grades.{key}.points", "type": "too_many_points",
                                   "message": f"at most {q['points']:g} points"})
                else:
                    manual[key] = {"points": item.points, "feedback": item.feedback,
                                   "by": principal.user_id, "at": now}
            if errors:
                raise ValidationFailed(errors)
            attempt.manual = manual
            if body.feedback is not None:
                attempt.feedback = body.feedback
            self.quizzes._grade(quiz, sq, attempt, version, reviewer=principal.user_id)
            return v.submission(attempt, version.questions, version.number)
