"""Falcon resources of the quizzes plugin: thin, they validate (through @endpoint), call the
service and shape the answer. Paths hang under /courses/{course_id}/modules/{module_id}/quiz."""

from __future__ import annotations

from typing import Any

import falcon

from learnplat.plugin import NotFound, ValidationFailed, conditional, dump, endpoint

from . import views as v
from .models import Quiz
from .review import ReviewService
from .schemas import (
    AnswersIn,
    AttemptList,
    AttemptOut,
    NewQuestionIn,
    QuestionIn,
    QuestionOrderIn,
    QuizGradeIn,
    QuizIn,
    QuizOut,
    QuizPatch,
    QuizSubmissionOut,
    QuizSubmissionPage,
    QuizView,
    ResultOut,
    SavedOut,
    SubmissionQuery,
    SubmitIn,
)
from .services import AUTHOR, QuizzesService, utcnow


class _Resource:
    def __init__(self, service: QuizzesService):
        self.service = service

    def _author(self, quiz: Quiz) -> QuizOut:
        return v.author_quiz(quiz, self.service.questions(quiz))


class QuizModule(_Resource):
    """/courses/{id}/modules/{moduleId}/quiz"""

    @endpoint(permission="quiz.read", response=QuizView, errors=(403, 404), etag=True,
              summary="The module's quiz: with answers for its authors, a summary for students")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int,
               module_id: int) -> Any:
        return self.service.view(req.context.principal, course_id, module_id, None)

    @endpoint(permission=AUTHOR, body=QuizIn, response=QuizOut, status=201, errors=(404, 409),
              summary="Create the module's quiz (owner instructor, admin); the module becomes "
                      "a quiz module")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int,
                module_id: int, *, body: QuizIn) -> Any:
        """Answers list each question with its `id`: submissions key answers by those ids.
        409 `quiz_exists` when the module already has one."""
        return self._author(self.service.create(req.context.principal, course_id, module_id,
                                                body))


class QuizItem(_Resource):
    """/courses/{id}/modules/{moduleId}/quiz/{quizId}"""

    @endpoint(permission="quiz.read", response=QuizView, errors=(403, 404), etag=True,
              summary="A quiz: with answers for its authors, a summary for students")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int,
               module_id: int, quiz_id: int) -> Any:
        return self.service.view(req.context.principal, course_id, module_id, quiz_id)

    def _precondition(self, req: falcon.Request, course_id: int, module_id: int,
                      quiz_id: int) -> Any:
        """If-Match against what GET answers this caller (the same service call)."""
        return conditional.precondition(req, lambda: dump(self.service.view(
            req.context.principal, course_id, module_id, quiz_id)))

    @endpoint(permission=AUTHOR, body=QuizPatch, response=QuizOut, errors=(404,), etag=True,
              summary="Edit a quiz; attempts already made stay graded against their version")
    def on_put(self, req: falcon.Request, resp: falcon.Response, course_id: int,
               module_id: int, quiz_id: int, *, body: QuizPatch) -> Any:
        """With `If-Match: <ETag of your GET of the quiz>`: 412 when it changed since."""
        out = self._author(self.service.update(
            req.context.principal, course_id, module_id, quiz_id, body,
            precondition=self._precondition(req, course_id, module_id, quiz_id)))
        conditional.send_etag(resp, dump(out))  # an author's GET answers this same body
        return out

    @endpoint(permission=AUTHOR, status=204, errors=(404,), etag=True,
              summary="Delete a quiz and its attempts; the module becomes a text module")
    def on_delete(self, req: falcon.Request, resp: falcon.Response, course_id: int,
                  module_id: int, quiz_id: int) -> Any:
        self.service.delete(req.context.principal, course_id, module_id, quiz_id,
                            precondition=self._precondition(req, course_id, module_id, quiz_id))


class QuestionCollection(_Resource):
    """/courses/{id}/modules/{moduleId}/quiz/{quizId}/questions"""

    @endpoint(permission=AUTHOR, body=NewQuestionIn, response=QuizOut, status=201,
              errors=(404,), summary="Add a question at the end")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int,
                module_id: int, quiz_id: int, *, body: NewQuestionIn) -> Any:
        if body.id is not None:
            raise ValidationFailed.field("id", "a new question has no id", "forbidden")
        quiz = self.service.edit_questions(req.context.principal, course_id, module_id,
                                           quiz_id, lambda qs: [*qs, body])
        return self._author(quiz)


class QuestionOrder(_Resource):
    """/courses/{id}/modules/{moduleId}/quiz/{quizId}/questions/order"""

    @endpoint(permission=AUTHOR, body=QuestionOrderIn, response=QuizOut, errors=(404,),
              summary="Put the questions in a new order (every id, once)")
    def on_put(self, req: falcon.Request, resp: falcon.Response, course_id: int,
               module_id: int, quiz_id: int, *, body: QuestionOrderIn) -> Any:
        def reorder(qs: list[QuestionIn]) -> list[QuestionIn]:
            by_id = {q.id: q for q in qs if q.id is not None}  # stored: each has its id
            if sorted(body.question_ids) != sorted(by_id):
                raise ValidationFailed.field("question_ids",
                                             "must list every question of the quiz once",
                                             "mismatch")
            return [by_id[qid] for qid in body.question_ids]

        return self._author(self.service.edit_questions(
            req.context.principal, course_id, module_id, quiz_id, reorder))


class QuestionItem(_Resource):
    """/courses/{id}/modules/{moduleId}/quiz/{quizId}/questions/{questionId}"""

    def _edit(self, req: falcon.Request, course_id: int, module_id: int, quiz_id: int,
              question_id: int, replacement: QuestionIn | None) -> Quiz:
        def edit(qs: list[QuestionIn]) -> list[QuestionIn]:
            if not any(q.id == question_id for q in qs):
                raise _no_question()
            if replacement is None:
                return [q for q in qs if q.id != question_id]
            new = replacement.model_copy(update={"id": question_id})
            return [new if q.id == question_id else q for q in qs]

        return self.service.edit_questions(req.context.principal, course_id, module_id,
                                           quiz_id, edit)

    @endpoint(permission=AUTHOR, body=QuestionIn, response=QuizOut, errors=(404,),
              summary="Replace a question (it keeps its id and place)")
    def on_put(self, req: falcon.Request, resp: falcon.Response, course_id: int,
               module_id: int, quiz_id: int, question_id: int, *, body: QuestionIn) -> Any:
        return self._author(self._edit(req, course_id, module_id, quiz_id, question_id, body))

    @endpoint(permission=AUTHOR, response=QuizOut, errors=(404,),
              summary="Remove a question")
    def on_delete(self, req: falcon.Request, resp: falcon.Response, course_id: int,
                  module_id: int, quiz_id: int, question_id: int) -> Any:
        return self._author(self._edit(req, course_id, module_id, quiz_id, question_id, None))


def _no_question() -> NotFound:
    return NotFound("no such question in this quiz")


class AttemptCollection(_Resource):
    """/courses/{id}/modules/{moduleId}/quiz/{quizId}/attempts"""

    @endpoint(permission="quiz.take", response=AttemptList, errors=(403, 404),
              summary="The caller's attempts of a quiz")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int,
               module_id: int, quiz_id: int) -> Any:
        return AttemptList(items=self.service.attempts(req.context.principal, course_id,
                                                       module_id, quiz_id))

    @endpoint(permission="quiz.take", response=AttemptOut, status=201, also=(200,),
              errors=(403, 404, 409),
              summary="Start an attempt (201), or get the open one (200); 409 past the "
                      "maximum attempts")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int,
                module_id: int, quiz_id: int) -> Any:
        """The time limit runs from the start, on the server's clock: `deadline` and
        `server_time` let a client show the time left. Questions come without answers, in this
        attempt's order; options carry their `index`, which is what an answer names."""
        attempt, questions, created = self.service.start(req.context.principal, course_id,
                                                         module_id, quiz_id)
        if not created:
            resp.status = 200
        return v.attempt_view(attempt, questions, utcnow())


class AttemptItem(_Resource):
    """/courses/{id}/modules/{moduleId}/quiz/{quizId}/attempts/{attemptId}"""

    @endpoint(permission="quiz.take", response=AttemptOut, errors=(403, 404),
              summary="One of the caller's attempts: its questions (no answers) and what it saved")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int,
               module_id: int, quiz_id: int, attempt_id: int) -> Any:
        attempt, questions = self.service.attempt(req.context.principal, course_id, module_id,
                                                  quiz_id, attempt_id)
        return v.attempt_view(attempt, questions, utcnow())


class AttemptAnswers(_Resource):
    """/courses/{id}/modules/{moduleId}/quiz/{quizId}/attempts/{attemptId}/answers"""

    @endpoint(permission="quiz.take", body=AnswersIn, response=SavedOut,
              errors=(403, 404, 409),
              summary="Save answers while taking the quiz (merged; null clears one)")
    def on_put(self, req: falcon.Request, resp: falcon.Response, course_id: int,
               module_id: int, quiz_id: int, attempt_id: int, *, body: AnswersIn) -> Any:
        """422 names each unknown question id or answer of the wrong type (`answers.<id>`);
        409 `time_up` past the time limit and its grace, `already_submitted` after submit."""
        a = self.service.save(req.context.principal, course_id, module_id, quiz_id,
                              attempt_id, body.answers)
        return SavedOut(attempt_id=a.id, answers=a.answers, saved_at=a.saved_at)


class Submit(_Resource):
    """/courses/{id}/modules/{moduleId}/quiz/{quizId}/submit"""

    @endpoint(permission="quiz.take", body=SubmitIn, response=ResultOut,
              errors=(403, 404, 409),
              summary="Submit an attempt: graded at once where it can be; the result as the "
                      "results policy allows")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int,
                module_id: int, quiz_id: int, *, body: SubmitIn) -> Any:
        """`answers` ({question id: answer}) are merged over what the attempt saved. Without
        `attempt_id` the caller's open attempt is submitted (before any attempt, one is
        started and submitted at once). 422 names each unknown question id or wrong answer
        type; 409 `already_submitted` for an attempt submitted before (never graded twice),
        `no_open_attempt`, `max_attempts_reached`. Past the time limit and its grace the
        attempt is graded with what it saved in time and flagged `late`."""
        return self.service.submit(req.context.principal, course_id, module_id, quiz_id,
                                   body.answers, body.attempt_id)


class Result(_Resource):
    """/courses/{id}/modules/{moduleId}/quiz/{quizId}/result"""

    @endpoint(permission="quiz.take", response=ResultOut, errors=(403, 404), etag=True,
              summary="The caller's score and latest attempt, as the results policy allows")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int,
               module_id: int, quiz_id: int) -> Any:
        """`attempt.released` says what the policy shows now: `none` (waiting for review or
        the results date), `score`, or `full` (each answer's grade and the correct answers)."""
        return self.service.result(req.context.principal, course_id, module_id, quiz_id)


class _Review:
    def __init__(self, review: ReviewService):
        self.review = review


class Submissions(_Review):
    """/courses/{id}/modules/{moduleId}/quiz/{quizId}/submissions"""

    @endpoint(permission="quiz.review", query=SubmissionQuery, response=QuizSubmissionPage,
              errors=(404,),
              summary="Submitted attempts (default: those needing review), oldest first")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int,
               module_id: int, quiz_id: int, *, query: SubmissionQuery) -> Any:
        return self.review.submissions(req.context.principal, course_id, module_id, quiz_id,
                                        query)


class AttemptGrade(_Review):
    """/courses/{id}/modules/{moduleId}/quiz/{quizId}/attempts/{attemptId}/grade"""

    @endpoint(permission="quiz.review", body=QuizGradeIn, response=QuizSubmissionOut,
              errors=(404, 409),
              summary="Grade short_text answers with feedback, or regrade (owner, admin)")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int,
                module_id: int, quiz_id: int, attempt_id: int, *, body: QuizGradeIn) -> Any:
        """`grades` by question id; points up to the question's. The attempt is graded once
        no answer waits (the student learns it through quiz.graded.v1); a graded attempt is
        regraded."""
        return self.review.review(req.context.principal, course_id, module_id, quiz_id,
                                   attempt_id, body)
