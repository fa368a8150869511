"""Background tasks of the certificates plugin (stable names: they are persisted in the queue)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from huey import crontab

from learnplat.plugin import TaskSpec, each_tenant

from .services import ISSUE_TASK, REGENERATE_TASK, REQUEUE_TASK, PublicUrlNotSet

if TYPE_CHECKING:
    from learnplat.plugin import Runtime

    from .plugin import CertificatesPlugin

log = logging.getLogger(__name__)


def issue_certificate(runtime: Runtime, certificate_id: int) -> str:
    """Render, store and sign one certificate (in its tenant's transaction); idempotent."""
    plugin: CertificatesPlugin = runtime.plugin_of(__name__)
    try:
        return plugin.certificates.issue(certificate_id)
    except PublicUrlNotSet as exc:
        # Not a failure to retry at once: the row stays pending, and the recovery sweep
        # queues it again every pending_retry_seconds, so it is issued once the URL is set.
        log.error("certificate %s not issued: %s", certificate_id, exc.detail)
        return "public_url_not_set"


def regenerate_course(runtime: Runtime, tenant_id: int, job_id: int) -> None:
    """Re-render every issued certificate of a course, in batches of their own transactions."""
    plugin: CertificatesPlugin = runtime.plugin_of(__name__)
    tenant = runtime.tenants.get_by_id(tenant_id)
    if tenant is not None:
        plugin.certificates.run_regeneration(tenant, job_id)


def _requeue(runtime: Runtime) -> int:
    plugin: CertificatesPlugin = runtime.plugin_of(__name__)
    return int(plugin.certificates.requeue_stale())


def requeue_pending(runtime: Runtime) -> dict[str, int]:
    """Every minute and at each worker start: in every school, queue again the certificates
    whose issuing task was lost (pending for over pending_retry_seconds)."""
    return each_tenant(runtime, _requeue, plugin="certificates").results


def tasks() -> list[TaskSpec]:
    return [
        TaskSpec(ISSUE_TASK, issue_certificate, retries=5, retry_delay=10),
        # Not tenant-scoped: it enters the tenant itself and commits batch by batch.
        TaskSpec(REGENERATE_TASK, regenerate_course, tenant_scoped=False, retries=2),
        TaskSpec(REQUEUE_TASK, requeue_pending, tenant_scoped=False, retries=0,
                 periodic=crontab(minute="*"), at_start=True),
    ]
