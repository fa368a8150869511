"""Background tasks of the quizzes plugin (stable names: they are persisted in the queue)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from huey import crontab

from learnplat.plugin import TaskSpec, db, tenant_context

if TYPE_CHECKING:
    from learnplat.plugin import Runtime

    from .plugin import QuizzesPlugin

CLOSE_TASK = "quizzes.close_expired"


def close_expired(runtime: Runtime) -> dict[str, int]:
    """Every minute: in each enabled tenant, close the attempts left open past their time
    limit and grace (graded late with what they saved). Returns {tenant slug: closed}."""
    plugin: QuizzesPlugin = runtime.plugin_of(__name__)
    svc = plugin.quizzes
    closed: dict[str, int] = {}
    with db.connection():
        tenants = runtime.tenants.list()
    for tenant in tenants:
        if not tenant.enabled or not tenant.plugin_enabled("quizzes"):
            continue
        with db.connection(), tenant_context(tenant):
            n = svc.close_expired()
        if n:
            closed[tenant.slug] = n
    return closed


def tasks() -> list[TaskSpec]:
    return [TaskSpec(CLOSE_TASK, close_expired, tenant_scoped=False, retries=0,
                     periodic=crontab(minute="*"))]
