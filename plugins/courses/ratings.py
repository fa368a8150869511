"""Ratings: enrolled students rate a course 1..5 (one rating each, a repeat replaces it); the
instructor may reply. The course's rating_count/rating_sum change in the same transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import peewee

from learnplat.plugin import NotFound, PermissionDenied, Principal, current_tenant, db, utcnow

from . import events as ev
from .models import Course, Rating
from .services import valid_id

if TYPE_CHECKING:
    from .services import CoursesService


class RatingService:
    def __init__(self, courses: CoursesService):
        self.courses = courses
        self.runtime = courses.runtime

    def rate(self, principal: Principal, course_id: int, stars: int, comment: str
             ) -> tuple[Rating, bool]:
        """(rating, created). Only a student actively enrolled in the course may rate it."""
        with db.transaction():
            course = self.courses._visible(course_id, principal, lock=True)
            principal.require("course.rate")
            if self.courses.enrollment_status(course.id, principal.user_id) != "active":
                raise PermissionDenied("only students enrolled in this course may rate it",
                                       code="not_enrolled")
            self.runtime.before(ev.RATE, current_tenant(), principal,
                                course_id=course.id, stars=stars)
            rating, created, delta = self._upsert(course.id, principal.user_id, stars, comment)
            Course.update(rating_count=Course.rating_count + (1 if created else 0),
                          rating_sum=Course.rating_sum + delta).where(
                Course.id == course.id).execute()
            self.courses._event(ev.CourseRated, course, principal, rating_id=rating.id,
                                user_id=principal.user_id, stars=stars, replaced=not created)
        return rating, created

    def _upsert(self, course_id: int, user_id: Any, stars: int, comment: str
                ) -> tuple[Rating, bool, int]:
        """(rating, created, change of the stars sum)."""
        for _ in range(2):
            query = Rating.select().where((Rating.course == course_id)
                                          & (Rating.user_id == user_id))
            if db.is_postgres():
                query = query.for_update()
            existing = query.first()
            if existing is not None:
                delta = stars - existing.stars
                existing.stars, existing.comment, existing.updated_at = stars, comment, utcnow()
                existing.save()
                return existing, False, delta
            try:
                with db.database.atomic():  # a savepoint: losing a race must not abort us
                    rating = Rating.create(course=course_id, user_id=user_id, stars=stars,
                                           comment=comment)
                return rating, True, stars
            except peewee.IntegrityError:
                continue  # the same student's concurrent first rating won: replace it
        raise RuntimeError("rating upsert did not settle")  # pragma: no cover

    def page_query(self, principal: Principal | None, course_id: int
                   ) -> peewee.ModelSelect[Rating]:
        course = self.courses._visible(course_id, principal)
        return Rating.select().where(Rating.course == course.id)

    def reply(self, principal: Principal, course_id: int, rating_id: int, body: str) -> Rating:
        """The instructor's (or an admin's) public reply; an empty body removes it."""
        with db.transaction():
            course = self.courses.owned(course_id, principal, "course.reply", lock=False)
            rating = Rating.get_or_none((Rating.id == rating_id) & (Rating.course == course.id)
                                        ) if valid_id(rating_id) else None
            if rating is None:
                raise NotFound("no such rating on this course")
            rating.reply = body
            rating.reply_by = principal.user_id if body else None
            rating.replied_at = utcnow() if body else None
            rating.save()
            self.courses._event(ev.RatingReplied, course, principal,
                                rating_id=rating.id, user_id=rating.user_id)
        return rating

    def summary(self, course_id: int) -> dict[str, Any]:
        """Count, average and the distribution of stars, in one grouped query."""
        dist = {str(s): 0 for s in range(1, 6)}
        for stars, n in (Rating.select(Rating.stars, peewee.fn.COUNT(Rating.id))
                         .where(Rating.course == course_id).group_by(Rating.stars).tuples()):
            dist[str(stars)] = n
        count = sum(dist.values())
        total = sum(int(s) * n for s, n in dist.items())
        return {"count": count, "average": round(total / count, 2) if count else None,
                "distribution": dist}
