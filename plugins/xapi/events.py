"""The events the xAPI plugin turns into statements, by name (`EventHandler(..., optional=True,
payload=...)`): the quizzes, media and certificates plugins may not be installed, and the
progress plugin's video milestones are read the same way. Each model holds the fields a
statement needs (extra fields of the payload are ignored)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel

ENROLLMENT_CREATED = "enrollment.created.v1"
MODULE_COMPLETED = "progress.module_completed.v1"
VIDEO_PROGRESSED = "progress.video_progressed.v1"
QUIZ_SUBMITTED = "quiz.submitted.v1"
QUIZ_GRADED = "quiz.graded.v1"
ASSIGNMENT_SUBMITTED = "assignment.submitted.v1"
ASSIGNMENT_GRADED = "assignment.graded.v1"
COURSE_COMPLETED = "course.completed.v1"
CERTIFICATE_ISSUED = "certificate.issued.v1"


class Learner(BaseModel):
    course_id: int
    user_id: int


class EnrollmentCreatedPayload(Learner):
    enrollment_id: int


class ModuleCompletedPayload(Learner):
    module_id: int


class VideoProgressedPayload(Learner):
    module_id: int
    milestone: int  # 25 | 50 | 75 | 100
    percent: float
    duration_seconds: float | None = None


class QuizSubmittedPayload(Learner):
    module_id: int
    quiz_id: int
    attempt_id: int


class QuizGradedPayload(QuizSubmittedPayload):
    percent: float
    passed: bool


class AssignmentSubmittedPayload(BaseModel):
    """The media plugin names the learner `student_id`."""

    course_id: int
    module_id: int
    assignment_id: int
    submission_id: int
    student_id: int
    attempt: int = 1

    @property
    def user_id(self) -> int:
        return self.student_id


class AssignmentGradedPayload(AssignmentSubmittedPayload):
    points: int
    max_points: int


class CourseCompletedPayload(Learner):
    pass


class CertificateIssuedPayload(Learner):
    certificate_id: str
    issued_at: dt.datetime | None = None
