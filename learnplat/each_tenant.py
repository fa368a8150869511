"""Run a piece of work once in every enabled tenant: the body of a periodic task (or an
operator's command) that is not about one school but about all of them.

    def cleanup(runtime):                      # runs in one tenant: also a tenant-scoped task
        Note.delete().where(Note.expires_at < utcnow()).execute()

    def cleanup_everywhere(runtime):           # TaskSpec(..., tenant_scoped=False, periodic=...)
        each_tenant(runtime, cleanup, plugin="notes")

A function rather than ``for tenant in ...:`` because a for-loop cannot catch what its body
raises, and one school's failure must neither stop nor roll back the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import db
from .tenancy import TenantInfo, tenant_context

if TYPE_CHECKING:
    from .runtime import Runtime

log = logging.getLogger(__name__)


@dataclass
class EachTenantResult:
    """What `each_tenant` did: each tenant's return value, and each failure, by slug."""

    results: dict[str, Any] = field(default_factory=dict)
    failed: dict[str, BaseException] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # the plugin is disabled there

    @property
    def ok(self) -> bool:
        return not self.failed


def each_tenant(runtime: Runtime, fn: Callable[..., Any], *args: Any, plugin: str | None = None,
                **kwargs: Any) -> EachTenantResult:
    """Call ``fn(runtime, *args, **kwargs)`` once per enabled tenant, in slug order, each call
    inside that tenant's context (``current_tenant()``) and its own transaction: the calling
    convention of a tenant-scoped task, so one function can be both.

    A call that raises is logged with the tenant's slug and rolled back; the other tenants
    still run and keep their commits. With `plugin`, tenants that disabled that plugin are
    skipped (pass your plugin's name: a school that switched it off expects it to do nothing).
    Opens a connection when none is open (inside a task one already is).
    """
    outcome = EachTenantResult()
    name = getattr(fn, "__qualname__", repr(fn))
    with db.connection():
        tenants: list[TenantInfo] = [t for t in runtime.tenants.list() if t.enabled]
        for tenant in tenants:
            if plugin is not None and not tenant.plugin_enabled(plugin):
                outcome.skipped.append(tenant.slug)
                continue
            try:
                with tenant_context(tenant), db.transaction():
                    outcome.results[tenant.slug] = fn(runtime, *args, **kwargs)
            except Exception as exc:  # logged and kept: the next tenant must still run
                log.exception("%s failed in tenant %s (id %s)", name, tenant.slug, tenant.id)
                outcome.failed[tenant.slug] = exc
    return outcome
