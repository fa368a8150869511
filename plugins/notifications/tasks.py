"""Background tasks of the notifications plugin (stable names: they are persisted in the
queue). Tenant-scoped tasks get the tenant id first and run in its transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from huey import crontab
from learnplat_courses.api import COURSES

from learnplat.plugin import NotFound, TaskSpec, each_tenant, tenant_context, utcnow

from .mail import DIGEST_TASK, SEND_TASK, Mailer
from .services import FANOUT_TASK
from .settings import NotificationsSettings

if TYPE_CHECKING:
    from learnplat.plugin import Runtime

    from .plugin import NotificationsPlugin

SCHEDULE_DIGESTS_TASK = "notifications.schedule_digests"
RELEASE_TASK = "notifications.module_released"
RECOVER_TASK = "notifications.recover"


def module_released(runtime: Runtime, course_id: int, module_id: int, event_id: int) -> None:
    """Announce a drip-released module when its release time comes (queued by the
    course.module_added.v1 handler), unless it was deleted, moved later or its course is no
    longer published."""
    plugin: NotificationsPlugin = runtime.plugin_of(__name__)
    courses = runtime.service(COURSES)
    course = courses.get_course(course_id)
    try:
        module = courses.get_module(course_id, module_id)
    except NotFound:
        return
    if course is None or course.status != "published":
        return
    if not module.is_released():
        # Moved later: come back then.
        assert module.release_at is not None
        runtime.queue.enqueue_for_tenant(
            RELEASE_TASK, course_id, module_id, event_id,
            delay=(module.release_at - utcnow()).total_seconds())
        return
    plugin.notifications.announce_module(course_id, module_id, module.title, module.kind,
                                         course.title, f"event:{event_id}")


def fan_out(runtime: Runtime, broadcast_id: int, after: int = 0) -> int:
    """Notify one page of a broadcast's audience (users above `after`); queues the next."""
    plugin: NotificationsPlugin = runtime.plugin_of(__name__)
    return plugin.notifications.fan_out(broadcast_id, after)


def _in_tenant(runtime: Runtime, tenant_id: int, fn: Any) -> Any:
    tenant = runtime.tenants.get_by_id(tenant_id)
    if tenant is None:
        return None
    with tenant_context(tenant):
        return fn()


def send_emails(runtime: Runtime, tenant_id: int) -> dict[str, int] | None:
    """Send the tenant's pending immediate emails within its rate limit. Not run in one
    transaction: each email is claimed and marked sent in its own (see Mailer.send_pending)."""
    return _in_tenant(runtime, tenant_id, Mailer(runtime).send_pending)


def send_digests(runtime: Runtime, tenant_id: int) -> dict[str, int] | None:
    """Send the tenant's daily digests (each user's in its own transactions)."""
    return _in_tenant(runtime, tenant_id, Mailer(runtime).send_digests)


def _recover(runtime: Runtime) -> dict[str, int]:
    plugin: NotificationsPlugin = runtime.plugin_of(__name__)
    return plugin.notifications.recover()


def recover(runtime: Runtime) -> dict[str, Any]:
    """Every minute and at each worker start, in every school: resume what a killed worker
    left behind (emails it was sending, a sender or a broadcast fan-out that stopped)."""
    return each_tenant(runtime, _recover, plugin="notifications").results


def schedule_digests(runtime: Runtime) -> int:
    """Hourly: queue the digest of every tenant whose digest hour (tenant setting
    notifications.digest_hour, else the [notifications] one) is now."""
    default = runtime.settings_of(NotificationsSettings).digest_hour
    hour = utcnow().hour
    queued = 0
    for tenant in runtime.tenants.list():
        if not tenant.enabled or not runtime.plugin_enabled("notifications", tenant):
            continue
        try:
            want = int(tenant.setting("notifications.digest_hour", default))
        except (TypeError, ValueError):
            want = default
        if want == hour:
            runtime.queue.enqueue(DIGEST_TASK, tenant.id)
            queued += 1
    return queued


def tasks() -> list[TaskSpec]:
    return [
        TaskSpec(FANOUT_TASK, fan_out),
        # Not tenant-scoped (they get the tenant id and commit email by email), retried by
        # nobody but themselves and the recovery sweep: a retry would only race them.
        TaskSpec(SEND_TASK, send_emails, tenant_scoped=False, retries=0),
        TaskSpec(DIGEST_TASK, send_digests, tenant_scoped=False, retries=0),
        TaskSpec(RECOVER_TASK, recover, tenant_scoped=False, retries=0,
                 periodic=crontab(minute="*"), at_start=True),
        TaskSpec(RELEASE_TASK, module_released),
        TaskSpec(SCHEDULE_DIGESTS_TASK, schedule_digests, tenant_scoped=False, retries=0,
                 periodic=crontab(minute="0")),
    ]


__all__: list[Any] = ["tasks"]
