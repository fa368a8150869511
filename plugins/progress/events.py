"""Events the progress plugin records and consumes (versioned names; never renamed).

Recorded (payloads):
  progress.module_completed.v1  {course_id, module_id, user_id, source: manual|video|quiz}
  progress.module_reset.v1      {course_id, module_id, user_id, source}  (un-completed)
  progress.milestone.v1         {course_id, user_id, percent, milestone: 50}   once/enrollment
  course.completed.v1           {course_id, user_id, percent, completed_at}    once/enrollment
Consumed:
  quiz.passed.v1                {course_id, module_id, user_id}  completes the module
  enrollment.created.v1 / enrollment.dropped.v1  mirror the enrollment's status
"""

from __future__ import annotations

MODULE_COMPLETED = "progress.module_completed.v1"
MODULE_RESET = "progress.module_reset.v1"
MILESTONE = "progress.milestone.v1"
COURSE_COMPLETED = "course.completed.v1"
QUIZ_PASSED = "quiz.passed.v1"
ENROLLMENT_CREATED = "enrollment.created.v1"
ENROLLMENT_DROPPED = "enrollment.dropped.v1"
