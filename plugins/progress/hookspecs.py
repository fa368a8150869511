"""Hooks the progress plugin publishes for other plugins (added by the core at start-up because
the plugin's hooks module names this module in its ``hookspecs`` attribute)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from learnplat.plugin import hookspec

if TYPE_CHECKING:
    from learnplat.plugin import Runtime


@hookspec
def progress_extras(runtime: Runtime, course_id: int, user_id: Any) -> dict[str, Any] | None:
    """Extra top-level keys for GET /progress/{course_id} as seen by the student `user_id`
    (e.g. the quizzes plugin adds ``quizzes`` with the student's scores). Return None to add
    nothing. Keys the progress plugin sets itself (``course_id``, ``percent``, ``completed``,
    ``modules``, ...) cannot be overridden. Called in the request's tenant and transaction.
    Since 0.1."""
