"""Background tasks of the progress plugin (stable names: they are persisted in the queue)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from huey import crontab

from learnplat.plugin import TaskSpec

if TYPE_CHECKING:
    from learnplat.plugin import Runtime

    from .plugin import ProgressPlugin

FLUSH_TASK = "progress.flush_heartbeats"


def flush_heartbeats(runtime: Runtime) -> dict[str, Any]:
    """Write Redis-held playback state to the database (every heartbeat_flush_seconds)."""
    plugin: ProgressPlugin = runtime.plugin_of(__name__)
    svc = plugin.progress
    if svc.store is None or not svc.store.due():
        return {}
    return svc.flush_heartbeats()


def tasks() -> list[TaskSpec]:
    # Every minute is Huey's finest schedule; longer intervals are gated in HeartbeatStore.due.
    return [TaskSpec(FLUSH_TASK, flush_heartbeats, tenant_scoped=False, retries=0,
                     periodic=crontab(minute="*"))]
