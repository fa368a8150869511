"""What plugins declare through the register_* hooks, and the registry that collects it.

Collection happens once at start-up. Every declaration remembers the plugin that made it, so
a clash (two routes on one path, two permissions or tasks with one name) is reported with both
plugin names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ROLES = ("admin", "instructor", "student")


class StartupError(Exception):
    """The plugins cannot be loaded together; the message names the plugin(s)."""


@dataclass
class Route:
    path: str
    resource: Any
    tenant_scoped: bool = True
    plugin: str = ""


@dataclass(frozen=True)
class Permission:
    """A named permission; `grants` maps a role to "any" or "own"."""

    name: str
    description: str
    grants: dict[str, str] = field(default_factory=dict)
    plugin: str = ""


@dataclass
class TaskSpec:
    name: str
    fn: Callable[..., Any]
    tenant_scoped: bool = True
    retries: int = 3
    retry_delay: int = 5
    periodic: Any = None  # a huey.crontab(...) validator for periodic tasks
    plugin: str = ""


@dataclass
class EventHandler:
    event: str  # a versioned event name, or "*"
    name: str
    fn: Callable[..., Any]
    plugin: str = ""

    @property
    def key(self) -> str:
        return f"{self.plugin}.{self.name}"


@dataclass
class HealthCheck:
    name: str
    fn: Callable[..., Any]
    plugin: str = ""


def _claim(seen: dict[str, str], kind: str, name: str, plugin: str) -> None:
    if name in seen:
        raise StartupError(
            f"duplicate {kind} {name!r}: declared by plugin {seen[name]!r} and plugin {plugin!r}"
        )
    seen[name] = plugin


@dataclass
class Registry:
    routes: list[Route] = field(default_factory=list)
    permissions: dict[str, Permission] = field(default_factory=dict)
    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    handlers: list[EventHandler] = field(default_factory=list)
    health_checks: list[HealthCheck] = field(default_factory=list)
    models: dict[str, list[type]] = field(default_factory=dict)
    services: dict[str, Any] = field(default_factory=dict)
    settings_models: dict[str, type] = field(default_factory=dict)
    _owners: dict[str, dict[str, str]] = field(default_factory=dict)
    _grants: dict[str, dict[str, str]] = field(default_factory=dict)
    _grants_size: int = -1

    def _seen(self, kind: str) -> dict[str, str]:
        return self._owners.setdefault(kind, {})

    def add_route(self, route: Route) -> None:
        from .http.routing import canonical_path

        _claim(self._seen("route"), "route", canonical_path(route.path), route.plugin)
        self.routes.append(route)

    def add_permission(self, perm: Permission) -> None:
        _claim(self._seen("permission"), "permission", perm.name, perm.plugin)
        for role, scope in perm.grants.items():
            if role not in ROLES or scope not in ("any", "own"):
                raise StartupError(
                    f"plugin {perm.plugin!r}: permission {perm.name!r} grants {role}={scope!r};"
                    f" roles are {ROLES}, scopes 'any' or 'own'"
                )
        self.permissions[perm.name] = perm

    def add_task(self, task: TaskSpec) -> None:
        _claim(self._seen("task"), "task", task.name, task.plugin)
        self.tasks[task.name] = task

    def add_handler(self, handler: EventHandler) -> None:
        _claim(self._seen("handler"), "event handler", handler.key, handler.plugin)
        self.handlers.append(handler)

    def add_service(self, name: str, service: Any, plugin: str) -> None:
        _claim(self._seen("service"), "service", name, plugin)
        self.services[name] = service

    def add_settings_model(self, section: str, model: type, plugin: str) -> None:
        _claim(self._seen("settings"), "settings section", section, plugin)
        self.settings_models[section] = model

    def handlers_for(self, event_name: str) -> list[EventHandler]:
        return [h for h in self.handlers if h.event in (event_name, "*")]

    def grants_for(self, role: str) -> dict[str, str]:
        """Permission name -> scope ("any" or "own") held by a role.

        Built once per role and shared (read-only): every authenticated request asks for it.
        """
        cached = self._grants.get(role)
        if cached is None or self._grants_size != len(self.permissions):
            if self._grants_size != len(self.permissions):
                self._grants.clear()
                self._grants_size = len(self.permissions)
            cached = {p.name: p.grants[role] for p in self.permissions.values()
                      if role in p.grants}
            self._grants[role] = cached
        return cached
