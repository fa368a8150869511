"""The current tenant: set explicitly by the request middleware, a task or a CLI command.

There is no default: code that touches tenant-owned models with no tenant set fails loudly
(`NoTenant`) instead of silently reading another school's rows.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from . import db


class NoTenant(RuntimeError):
    """Tenant-owned data was touched outside tenant_context()."""


@dataclass(frozen=True)
class TenantInfo:
    """An immutable snapshot of a tenant, safe to cache and share between threads."""

    id: int
    slug: str
    name: str
    domains: tuple[str, ...] = ()
    enabled: bool = True
    disabled_plugins: frozenset[str] = frozenset()
    settings: dict[str, Any] = field(default_factory=dict)

    def plugin_enabled(self, plugin: str) -> bool:
        return plugin not in self.disabled_plugins

    def setting(self, path: str, default: Any = None) -> Any:
        """A tenant setting by dotted path, e.g. tenant.setting("cors.origins", [])."""
        node: Any = self.settings
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node


_current: contextvars.ContextVar[TenantInfo | None] = contextvars.ContextVar(
    "learnplat_tenant", default=None
)


def current_tenant() -> TenantInfo:
    tenant = _current.get()
    if tenant is None:
        raise NoTenant("no tenant in this context: wrap the code in tenant_context(tenant)")
    return tenant


def current_tenant_id() -> int | None:
    tenant = _current.get()
    return tenant.id if tenant else None


@contextmanager
def tenant_context(tenant: TenantInfo) -> Iterator[TenantInfo]:
    """Act for `tenant` inside the block (tasks, CLI, event handlers)."""
    token = _current.set(tenant)
    db.apply_tenant(tenant.id)
    try:
        yield tenant
    except BaseException:
        # The transaction may be aborted; re-apply lazily instead of issuing SQL now.
        _current.reset(token)
        db.forget_tenant()
        raise
    _current.reset(token)
    db.apply_tenant(current_tenant_id())
