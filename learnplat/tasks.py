"""The task queue: one Huey instance per process, chosen from configuration at start.

Plugins never decorate with ``@huey.task`` (that binds an instance at import). They declare
``TaskSpec``s; ``TaskQueue`` registers them on the configured Huey (SqliteHuey by default,
RedisHuey with a Redis URL, immediate mode in unit tests) under stable names, and wraps each so
it opens a connection, enters its tenant and a transaction, and always gives the connection back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis
from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey
from huey.api import TaskWrapper

from . import db
from .registry import TaskSpec
from .tenancy import tenant_context

if TYPE_CHECKING:
    from .settings import Settings
    from .tenancy import TenantInfo

log = logging.getLogger(__name__)

# Huey keys its registry by "<function module>.<task name>"; a fixed module keeps the key equal to
# the declared name wherever the function lives, so moving code never orphans queued messages.
TASK_MODULE = "learnplat.task"


def build_huey(settings: Settings) -> Huey:
    if settings.queue.immediate:
        return MemoryHuey("learnplat", immediate=True, utc=True)
    if settings.redis.url:
        # Bounded like the process's client; the consumer's blocking pop waits 1 s, well
        # inside socket_timeout (at least 2 s below).
        pool = redis.ConnectionPool.from_url(
            settings.redis.url, socket_connect_timeout=settings.redis.connect_timeout,
            socket_timeout=max(settings.redis.socket_timeout, 2.0))
        return RedisHuey(settings.redis.prefix, connection_pool=pool, utc=True)
    path = settings.path(settings.queue.sqlite_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("learnplat", filename=str(path), utc=True)


class TaskQueue:
    """The registered tasks of a runtime, enqueued by name. `tenant_by_id` finds the tenant a
    tenant-scoped task was queued for."""

    def __init__(self, huey: Huey, tenant_by_id: Callable[[int], TenantInfo | None]):
        self.huey = huey
        self.tenant_by_id = tenant_by_id
        self.wrappers: dict[str, TaskWrapper] = {}

    def install(self, specs: dict[str, TaskSpec], runtime: Any) -> None:
        """Register `specs` on the Huey instance; each task function is called with `runtime`
        (the finished runtime, whose registry declared them) before its own arguments."""
        for spec in specs.values():
            fn = self._wrap(spec, runtime)
            options = {"retries": spec.retries, "retry_delay": spec.retry_delay,
                       "name": spec.name}
            if spec.periodic is not None:
                self.wrappers[spec.name] = self.huey.periodic_task(spec.periodic, **options)(fn)
            else:
                self.wrappers[spec.name] = self.huey.task(**options)(fn)

    def _wrap(self, spec: TaskSpec, runtime: Any) -> Callable[..., Any]:
        tenant_by_id = self.tenant_by_id

        def run(*args: Any, **kwargs: Any) -> Any:
            with db.connection():
                if not spec.tenant_scoped:
                    return spec.fn(runtime, *args, **kwargs)
                tenant_id, *rest = args
                tenant = tenant_by_id(tenant_id)
                if tenant is None:
                    log.warning("task %s: tenant %s is gone; dropping", spec.name, tenant_id)
                    return None
                with tenant_context(tenant), db.transaction():
                    return spec.fn(runtime, *rest, **kwargs)

        run.__module__ = TASK_MODULE
        run.__name__ = run.__qualname__ = spec.name
        run.__doc__ = spec.fn.__doc__
        return run

    def enqueue(self, name: str, *args: Any, delay: float | None = None, **kwargs: Any) -> None:
        """Queue task `name` after the current transaction commits (at once outside one), so a
        worker never looks for rows that are not committed yet."""
        wrapper = self.wrappers.get(name)
        if wrapper is None:
            raise KeyError(f"no task named {name!r}")

        def send() -> None:
            if delay:
                wrapper.schedule(args=args, kwargs=kwargs, delay=delay)
            else:
                wrapper(*args, **kwargs)

        db.on_commit(send)

    def enqueue_for_tenant(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Queue a tenant-scoped task for the current tenant."""
        from .tenancy import current_tenant

        self.enqueue(name, current_tenant().id, *args, **kwargs)

    def ping(self) -> None:
        self.huey.pending_count()
