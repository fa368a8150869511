"""Hooks the enrollment plugin publishes for other plugins (added by the core at start-up
because the plugin's hooks module names this module in its ``hookspecs`` attribute).
docs/enrollment.md documents each with its exact signature."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from learnplat.plugin import hookspec

if TYPE_CHECKING:
    from learnplat.plugin import Runtime


# -- lists: what other plugins add to enrollment lists --------------------------------------------


@hookspec
def enrollment_summaries(runtime: Runtime, course_ids: list[int], user_id: Any
                         ) -> dict[int, dict[str, Any]] | None:
    """Per-course summaries of one learner, shown as ``progress`` on each item of
    ``GET /courses/enrollments``.

    :param runtime: the process's Runtime.
    :param course_ids: the courses of one page of the learner's enrollments (at most 100,
        active and dropped alike).
    :param user_id: the learner.
    :return: ``{course_id: {key: value, ...}}`` for the courses the plugin knows about (others
        may be left out), or None. Values must be JSON-serialisable; the progress plugin
        answers ``{"percent": 0..100, "completed": bool, ...}``. The answers of every
        implementation are merged per course (later keys win); a course no one answers for
        gets ``progress: null``.

    Called once per page, inside the request's transaction and tenant: answer with a constant
    number of queries (e.g. one ``WHERE course_id IN (...)``), never one per course. Read-only.
    Since 0.1.
    """
