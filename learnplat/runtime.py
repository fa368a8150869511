"""The Runtime: everything one learnplat process shares (settings, database, plugins, registry,
queue, event bus, storage, key-value store), built once at start by `create_runtime()`.

The web app, the worker and the CLI all start from a Runtime; nothing is built at import time.
"""

from __future__ import annotations

import logging
from typing import Any

import peewee
import pluggy
import redis
from pydantic import ValidationError

from . import core_plugin, db
from .auth import Principal
from .errors import Vetoed
from .events import EventBus
from .kv import KeyValueStore, make_store
from .plugins import PluginInfo, build_plugin_manager, collect
from .registry import Registry, StartupError
from .settings import ConfigError, Settings, load_settings
from .storage import Storage
from .tasks import TaskQueue, build_huey
from .tenancy import TenantInfo
from .tenants import TenantService

log = logging.getLogger(__name__)


class Runtime:
    settings: Settings
    pm: pluggy.PluginManager
    plugins: dict[str, PluginInfo]
    registry: Registry
    redis: redis.Redis | None
    kv: KeyValueStore
    queue: TaskQueue
    events: EventBus
    storage: Storage
    tenants: TenantService
    plugin_settings: dict[str, Any]
    database: peewee.Database  # what learnplat.db.database points at while this runtime runs
    secret_key: bytes

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def service(self, name: str) -> Any:
        """A service another plugin exports (register_services); KeyError when not loaded."""
        try:
            return self.registry.services[name]
        except KeyError:
            raise KeyError(f"no plugin provides the service {name!r}") from None

    def has_service(self, name: str) -> bool:
        return name in self.registry.services

    def before(self, action: str, tenant: TenantInfo, principal: Principal | None,
               **data: Any) -> None:
        """Run the before_action vetoes; raises Vetoed when a plugin refuses."""
        self.pm.hook.before_action(runtime=self, action=action, tenant=tenant,
                                   principal=principal, data=data)

    def plugin_enabled(self, plugin: str, tenant: TenantInfo | None) -> bool:
        return tenant is None or tenant.plugin_enabled(plugin)


def create_runtime(
    settings: Settings | None = None,
    plugins: list[tuple[str, Any]] | None = None,
    entry_points: bool = True,
) -> Runtime:
    """Build a Runtime. `plugins` adds (name, module) pairs beside the installed entry points
    (tests); `entry_points=False` loads only those (and the core)."""
    settings = settings or load_settings()
    pm, infos = build_plugin_manager(
        [("core", core_plugin), *(plugins or [])], entry_points=entry_points
    )
    rt = Runtime()
    rt.settings, rt.pm, rt.plugins = settings, pm, infos
    rt.secret_key = _secret_key(settings)
    rt.database = db.connect_database(settings)
    rt.redis = redis.Redis.from_url(settings.redis.url) if settings.redis.url else None
    rt.kv = make_store(rt.redis, settings.var_path, settings.redis.prefix)
    rt.tenants = TenantService(settings.tenancy.cache_seconds)
    rt.storage = Storage(settings)
    rt.events = EventBus(rt)
    rt.queue = TaskQueue(rt, build_huey(rt))
    rt.registry = collect(pm, rt)
    rt.plugin_settings = _plugin_settings(settings, rt.registry)
    rt.queue.install(rt.registry.tasks)
    pm.hook.startup(runtime=rt)
    return rt


def _secret_key(settings: Settings) -> bytes:
    """app.secret_key, or (development only) a random key kept in var/secret.key."""
    if settings.app.secret_key:
        if len(settings.app.secret_key) < 16:
            raise ConfigError("invalid setting app.secret_key: use at least 16 characters")
        return settings.app.secret_key.encode()
    import secrets

    path = settings.var_path / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        log.warning("app.secret_key is not set; generated one in %s (set it in production)", path)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip().encode()


def _plugin_settings(settings: Settings, registry: Registry) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for section, _values in settings.plugins.items():
        if section not in registry.settings_models:
            raise ConfigError(f"unknown settings section [{section}] (no plugin declares it; "
                              f"env LEARNPLAT_{section.upper()}_*)")
    for section, model in registry.settings_models.items():
        values = settings.plugins.get(section, {})
        for key in values:
            if key not in model.model_fields:
                raise ConfigError(f"unknown setting {section}.{key} "
                                  f"(env LEARNPLAT_{section.upper()}_{key.upper()})")
        try:
            out[section] = model(**values)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join([section, *map(str, first["loc"])])
            raise ConfigError(f"invalid setting {key}: {first['msg']}") from None
    return out


__all__ = ["Runtime", "StartupError", "Vetoed", "create_runtime"]
