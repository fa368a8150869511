"""Background tasks of the media plugin (stable names: they are persisted in the queue)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from learnplat.plugin import TaskSpec

from .services import DELETE_TASK

if TYPE_CHECKING:
    from learnplat.plugin import Runtime


def delete_objects(runtime: Runtime, keys: list[str]) -> int:
    """The task: delete stored objects whose rows are gone (idempotent: a missing object is
    already deleted)."""
    storage = runtime.storage
    for key in keys:
        storage.delete(key)
    return len(keys)


def tasks() -> list[TaskSpec]:
    return [TaskSpec(DELETE_TASK, delete_objects, retries=5, retry_delay=30)]
