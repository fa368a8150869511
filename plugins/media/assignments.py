"""Assignments: an owner gives a module an assignment (instructions, due date, points);
enrolled students hand in a file (streamed and type-checked like every upload) and may
resubmit until the due date or until it is graded; the owner downloads and grades them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import peewee

from learnplat.plugin import (
    Conflict,
    NotFound,
    PageQuery,
    PermissionDenied,
    Principal,
    db,
    paginate,
    utcnow,
)

from . import events as ev
from .models import Assignment, MediaObject, Submission
from .schemas import AssignmentOut, AssignmentSubmissionOut, AssignmentSubmissionPage
from .services import MANAGE, MediaService

GRADE = "assignment.grade"


def assignment_out(a: Assignment) -> AssignmentOut:
    return AssignmentOut(id=a.id, course_id=a.course_id, module_id=a.module_id,
                         instructions=a.instructions, due_at=a.due_at,
                         max_points=a.max_points, created_at=a.created_at,
                         updated_at=a.updated_at)


def submission_out(s: Submission, media: MediaObject | None = None) -> AssignmentSubmissionOut:
    return AssignmentSubmissionOut(id=s.id, assignment_id=s.assignment_id, course_id=s.course_id,
                         module_id=s.module_id, student_id=s.student_id, attempt=s.attempt,
                         status=s.status, points=s.points, feedback=s.feedback,
                         submitted_at=s.submitted_at, graded_at=s.graded_at,
                         filename=media.filename if media else "",
                         content_type=media.content_type if media else "",
                         size=media.size if media else 0,
                         sha256=media.sha256 if media else "")


class AssignmentService:
    def __init__(self, media: MediaService):
        self.media = media
        self.runtime = media.runtime

    def _assignment(self, course_id: int, module_id: int) -> Assignment:
        a = Assignment.get_or_none((Assignment.course_id == course_id)
                                   & (Assignment.module_id == module_id))
        if a is None:
            raise NotFound("this module has no assignment")
        return a

    # -- the owner ---------------------------------------------------------------------------

    def define(self, principal: Principal, course_id: int, module_id: int, instructions: str,
               due_at: dt.datetime | None, max_points: int) -> Assignment:
        with db.transaction():
            self.media.courses.owned_course(course_id, principal, MANAGE)
            self.media.courses.get_module(course_id, module_id)
            a = Assignment.get_or_none((Assignment.course_id == course_id)
                                       & (Assignment.module_id == module_id))
            if a is None:
                a = Assignment(course_id=course_id, module_id=module_id)
            graded = a.id is not None and Submission.select().where(
                (Submission.assignment == a.id) & (Submission.points > max_points)).exists()
            if graded:
                raise Conflict("some submissions have more points than that", code="points")
            a.instructions, a.due_at, a.max_points = instructions, due_at, max_points
            a.updated_at = utcnow()
            a.save()
            self.media.courses.set_module_kind(course_id, module_id, "assignment")
        return a

    def submissions(self, principal: Principal, course_id: int, module_id: int,
                    page: PageQuery) -> AssignmentSubmissionPage:
        self.media.courses.owned_course(course_id, principal, GRADE)
        a = self._assignment(course_id, module_id)
        query = Submission.select().where(Submission.assignment == a.id)
        result = paginate(query, [Submission.id], page)
        rows: list[Submission] = result["items"]
        media = {m.id: m for m in MediaObject.select().where(
            MediaObject.id.in_([s.media_id for s in rows]))}
        return AssignmentSubmissionPage(
            items=[submission_out(s, media.get(s.media_id)) for s in rows],
            next_cursor=result["next_cursor"])

    def _submission(self, course_id: int, module_id: int, submission_id: int) -> Submission:
        a = self._assignment(course_id, module_id)
        s = Submission.get_or_none((Submission.id == submission_id)
                                   & (Submission.assignment == a.id)) \
            if 0 < submission_id < 2**31 else None
        if s is None:
            raise NotFound("no such submission")
        return s

    def grade(self, principal: Principal, course_id: int, module_id: int, submission_id: int,
              points: int, feedback: str) -> tuple[Submission, MediaObject | None]:
        with db.transaction():
            self.media.courses.owned_course(course_id, principal, GRADE)
            a = self._assignment(course_id, module_id)
            s = self._submission(course_id, module_id, submission_id)
            if points > a.max_points:
                raise Conflict(f"at most {a.max_points} points", code="points")
            s.points, s.feedback, s.status = points, feedback, "graded"
            s.grader_id, s.graded_at = principal.user_id, utcnow()
            s.save()
            self.runtime.events.record(ev.AssignmentGraded(
                assignment_id=a.id, submission_id=s.id, course_id=course_id,
                module_id=module_id, student_id=s.student_id, points=points,
                max_points=a.max_points, grader_id=principal.user_id))
        return s, MediaObject.get_or_none(MediaObject.id == s.media_id)

    def file_url(self, principal: Principal, course_id: int, module_id: int,
                 submission_id: int | None, base_url: str) -> tuple[str, dt.datetime]:
        """The owner (or an admin) downloads any submission; a student their own."""
        if submission_id is None:
            s = self.own(principal, course_id, module_id)
        else:
            self.media.courses.owned_course(course_id, principal, GRADE)
            s = self._submission(course_id, module_id, submission_id)
        row = MediaObject.get_or_none(MediaObject.id == s.media_id)
        if row is None:
            raise NotFound("the submitted file is gone")
        return self.media.signed_url(row, int(principal.user_id), base_url)

    # -- students ----------------------------------------------------------------------------

    def view(self, principal: Principal, course_id: int, module_id: int) -> Assignment:
        self.media.check_can_watch(principal, course_id, module_id)
        return self._assignment(course_id, module_id)

    def own(self, principal: Principal, course_id: int, module_id: int) -> Submission:
        self.media.check_can_watch(principal, course_id, module_id)
        a = self._assignment(course_id, module_id)
        s = Submission.get_or_none((Submission.assignment == a.id)
                                   & (Submission.student_id == principal.user_id))
        if s is None:
            raise NotFound("you have not handed anything in yet")
        return s

    def _check_open(self, principal: Principal, course_id: int, module_id: int) -> Assignment:
        self.media.enrollment.require_active(course_id, principal)
        module = self.media.courses.get_module(course_id, module_id)
        if not module.is_released():
            raise PermissionDenied("this module is not released yet", code="not_released")
        a = self._assignment(course_id, module_id)
        if a.due_at is not None and utcnow() > a.due_at:
            raise Conflict("the due date has passed", code="past_due", due_at=a.due_at)
        done = Submission.get_or_none((Submission.assignment == a.id)
                                      & (Submission.student_id == principal.user_id))
        if done is not None and done.status == "graded":
            raise Conflict("this submission is graded; it cannot be replaced", code="graded")
        return a

    def check_can_submit(self, principal: Principal, course_id: int, module_id: int) -> None:
        """Refuse before reading the body."""
        with db.transaction(write=False):
            self._check_open(principal, course_id, module_id)

    def submit(self, principal: Principal, course_id: int, module_id: int, stream: Any,
               filename: str | None, finish: Callable[[], None] | None = None
               ) -> tuple[Submission, MediaObject, bool]:
        got, name = self.media.receive("submission", course_id, module_id, stream, filename,
                                       finish, tag=f"u{principal.user_id}-")
        try:
            return self._record(principal, course_id, module_id, got, name)
        except BaseException:
            self.runtime.storage.discard(got.key)
            raise

    def _record(self, principal: Principal, course_id: int, module_id: int, got: Any,
                name: str) -> tuple[Submission, MediaObject, bool]:
        with db.transaction():
            a = self._check_open(principal, course_id, module_id)  # again: time has passed
            media = MediaObject.create(
                kind="submission", course_id=course_id, module_id=module_id, key=got.key,
                filename=name, content_type=got.content_type, size=got.size,
                sha256=got.sha256, uploader_id=principal.user_id)
            s = Submission.get_or_none((Submission.assignment == a.id)
                                       & (Submission.student_id == principal.user_id))
            first = s is None
            if s is None:
                s = Submission(assignment=a.id, course_id=course_id, module_id=module_id,
                               student_id=principal.user_id, media_id=media.id, attempt=1)
            else:
                old = MediaObject.get_or_none(MediaObject.id == s.media_id)
                if old is not None:
                    self.media.retire([old], principal)
                s.media_id, s.attempt = media.id, s.attempt + 1
                s.submitted_at = utcnow()
            try:
                with db.transaction():  # a savepoint: PostgreSQL stays usable after it
                    s.save()
            except peewee.IntegrityError:  # the same student's first hand-in, twice at once
                raise Conflict("another submission arrived at the same time; try again",
                               code="concurrent_submission") from None
            self.runtime.events.record(ev.AssignmentSubmitted(
                assignment_id=a.id, submission_id=s.id, course_id=course_id,
                module_id=module_id, student_id=principal.user_id, attempt=s.attempt,
                media_id=media.id))
        return s, media, first
