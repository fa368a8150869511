"""Feedback and questions: a student opens a thread to the course's instructor; the student,
the instructor and admins reply. Nobody else sees the thread (404, not 403)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import peewee

from learnplat.plugin import NotFound, Principal, current_tenant, db, utcnow

from . import events as ev
from .models import Course, FeedbackMessage, FeedbackThread
from .services import valid_id

if TYPE_CHECKING:
    from .services import CoursesService


class FeedbackService:
    def __init__(self, courses: CoursesService):
        self.courses = courses
        self.runtime = courses.runtime

    @staticmethod
    def _staff(principal: Principal, course: Course) -> bool:
        return principal.can("course.feedback.answer", owner_id=course.owner_id)

    def open_thread(self, principal: Principal, course_id: int, subject: str, body: str
                    ) -> tuple[FeedbackThread, FeedbackMessage]:
        with db.transaction():
            course = self.courses._visible(course_id, principal)
            principal.require("course.feedback.ask")
            self.runtime.before(ev.FEEDBACK, current_tenant(), principal,
                                course_id=course.id)
            now = utcnow()
            thread = FeedbackThread.create(course=course.id, student_id=principal.user_id,
                                           subject=subject, message_count=1, created_at=now,
                                           last_message_at=now)
            message = FeedbackMessage.create(thread=thread.id, author_id=principal.user_id,
                                             body=body, created_at=now)
            self.courses._event(ev.FeedbackOpened, course, principal,
                                thread_id=thread.id, student_id=principal.user_id,
                                subject=subject)
        return thread, message

    def threads(self, principal: Principal, course_id: int
                ) -> peewee.ModelSelect[FeedbackThread]:
        """The caller's threads on the course; the instructor and admins see all of them."""
        course = self.courses._visible(course_id, principal)
        query = FeedbackThread.select().where(FeedbackThread.course == course.id)
        if not self._staff(principal, course):
            query = query.where(FeedbackThread.student_id == principal.user_id)
        return query

    def thread(self, principal: Principal, course_id: int, thread_id: int
               ) -> tuple[Course, FeedbackThread]:
        course = self.courses._visible(course_id, principal)
        thread = FeedbackThread.get_or_none((FeedbackThread.id == thread_id)
                                            & (FeedbackThread.course == course.id)
                                            ) if valid_id(thread_id) else None
        if thread is None or not (thread.student_id == principal.user_id
                                  or self._staff(principal, course)):
            raise NotFound("no such feedback thread")
        return course, thread

    def messages(self, thread: FeedbackThread) -> list[FeedbackMessage]:
        return list(FeedbackMessage.select().where(FeedbackMessage.thread == thread.id)
                    .order_by(FeedbackMessage.id))

    def reply(self, principal: Principal, course_id: int, thread_id: int, body: str
              ) -> FeedbackMessage:
        with db.transaction():
            course, thread = self.thread(principal, course_id, thread_id)
            now = utcnow()
            message = FeedbackMessage.create(thread=thread.id, author_id=principal.user_id,
                                             body=body, created_at=now)
            FeedbackThread.update(message_count=FeedbackThread.message_count + 1,
                                  last_message_at=now).where(
                FeedbackThread.id == thread.id).execute()
            self.courses._event(ev.FeedbackReplied, course, principal,
                                thread_id=thread.id, message_id=message.id,
                                student_id=thread.student_id)
        return message
