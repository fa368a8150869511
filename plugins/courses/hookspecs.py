"""Hooks the courses plugin publishes for other plugins (added by the core at start-up because
the plugin's hooks module names this module in its ``hookspecs`` attribute).

All are called in the request's tenant and transaction; implementations read their own tables
and must not write. Documented in docs/courses.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from learnplat.plugin import hookspec

if TYPE_CHECKING:
    from learnplat.plugin import Principal, Runtime


@hookspec
def course_detail_extras(runtime: Runtime, course_id: int, principal: Principal | None
                         ) -> dict[str, Any] | None:
    """Extra keys for GET /courses/{id} as seen by `principal` (e.g. the progress plugin adds
    ``progress`` for an enrolled student). Return None to add nothing. Keys that the course
    document already has (id, status, modules...) cannot be replaced. Since 0.1.

    Since 0.2 the page of a published course is kept per caller when every implementation is
    marked ``@cacheable_detail_extras`` (learnplat_courses.api): such an implementation bumps
    ``LEARNER_GENERATION`` for the user whenever its extras change for them (or
    ``CATALOGUE_GENERATION`` when they change for every caller), and calls
    ``valid_until(deadline)`` while it runs when the clock or other users will change them."""


@hookspec
def course_analytics(runtime: Runtime, course_id: int) -> dict[str, Any] | None:
    """Sections of GET /courses/{id}/analytics computed by other plugins, merged into the
    answer (dicts key by key, other values replace). Known sections: ``enrollments``
    ``{total, active, over_time: [{date, count}]}``, ``completion_rate`` (0..1),
    ``average_progress`` (0..100), ``average_quiz_score`` (0..100), ``drop_off``
    ``[{module_id, learners}]``. Compute them with aggregate queries: a course may have 100k
    enrollments. Called only for the owner or an admin. Since 0.1."""


@hookspec(firstresult=True)
def course_enrollment_status(runtime: Runtime, course_id: int, user_id: Any) -> str | None:
    """"active", "dropped" or None for a user in a course (the enrollment plugin answers);
    used for ratings (active only) and access to archived courses. Since 0.1."""


@hookspec
def course_has_learners(runtime: Runtime, course_id: int) -> bool | None:
    """True when a course has enrollments (or other learner records) that deletion would
    destroy; deleting such a course archives it instead. Since 0.1."""
