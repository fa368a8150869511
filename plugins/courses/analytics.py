"""GET /courses/{id}/analytics: the courses plugin's own sections (ratings, modules, feedback)
merged with the sections other plugins compute through the course_analytics hook.

Every section here is one aggregate query; plugins are expected to answer the same way (no
per-enrollment loops), so a course with 100k enrollments stays cheap.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import peewee

from learnplat.plugin import Principal, merge_extras

from .models import FeedbackThread
from .schemas import AnalyticsOut

if TYPE_CHECKING:
    from .ratings import RatingService
    from .services import CoursesService

log = logging.getLogger(__name__)


def defaults() -> dict[str, Any]:
    """What the analytics say when no plugin answers for a section."""
    return {
        "enrollments": {"total": 0, "active": 0, "over_time": []},
        "completion_rate": None,
        "average_progress": None,
        "average_quiz_score": None,
        "drop_off": [],
    }


class AnalyticsService:
    def __init__(self, courses: CoursesService, ratings: RatingService):
        self.courses = courses
        self.ratings = ratings
        self.runtime = courses.runtime

    def for_course(self, principal: Principal, course_id: int) -> AnalyticsOut:
        """The answer of GET /courses/{id}/analytics: built as a document (plugins' sections
        merge into it key by key), then made the declared model once."""
        course = self.courses.owned(course_id, principal, "course.analytics", lock=False)
        out: dict[str, Any] = {"course_id": course.id, "status": course.status, **defaults()}
        modules = self.courses.list_modules(course.id)
        out["modules"] = [{"module_id": m.id, "title": m.title, "position": m.position}
                          for m in modules]
        out["ratings"] = self.ratings.summary(course.id)
        threads, messages = (FeedbackThread
                             .select(peewee.fn.COUNT(FeedbackThread.id),
                                     peewee.fn.SUM(FeedbackThread.message_count))
                             .where(FeedbackThread.course == course.id).tuples().get())
        out["feedback"] = {"threads": threads or 0, "messages": int(messages or 0)}
        for extra in self.runtime.hook.course_analytics(runtime=self.runtime,
                                                        course_id=course.id):
            if isinstance(extra, dict):
                merge_extras([extra], out, protected={"course_id", "status"})
            elif extra is not None:
                log.warning("course_analytics answered %r; expected a dict", type(extra))
        return AnalyticsOut.model_validate(out)
