"""The Runtime: everything one learnplat process shares (settings, database, plugins, registry,
queue, event bus, storage, key-value store), built once at start by `create_runtime()`.

The web app, the worker and the CLI all start from a Runtime; nothing is built at import time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

import peewee
import pluggy
import redis
from pydantic import BaseModel

from . import core_plugin, db
from .answers import AnswerCache, GenerationWriter
from .auth import Principal
from .contracts import Action, Plugin, ServiceKey
from .errors import Vetoed
from .events import EventBus
from .kv import KeyValueStore, make_store
from .outbound.engine import Outbound
from .plugins import PluginInfo, build_plugin_manager, collect
from .ratelimit import Limiter
from .registry import Registry, StartupError
from .secret_keys import secrets_in_force
from .settings import ConfigError, Settings, load_settings
from .storage import Storage
from .tasks import TaskQueue, build_huey
from .tenancy import TenantInfo
from .tenants import TenantService

log = logging.getLogger(__name__)
T = TypeVar("T")
S = TypeVar("S", bound=BaseModel)  # a plugin's settings model
P = TypeVar("P", bound=Plugin)


@dataclass(kw_only=True, eq=False, repr=False)
class Runtime:
    """What one process shares, built by `create_runtime()` from finished parts, each built
    with only what it uses. The registry and the plugins' settings come last: plugins build
    their services and routes with the runtime (learnplat.plugins.collect fills them)."""

    settings: Settings
    pm: pluggy.PluginManager
    plugins: dict[str, PluginInfo]
    secret_key: bytes
    # app.secret_key first, then app.old_secret_keys: the current one encrypts and signs, all
    # of them decrypt and verify (an overlap while the secret is rotated).
    secret_keys: tuple[bytes, ...]
    database: peewee.Database  # what learnplat.db.database points at while this runtime runs
    redis: redis.Redis | None
    kv: KeyValueStore
    limits: Limiter
    answers: AnswerCache
    generations: GenerationWriter
    tenants: TenantService
    storage: Storage
    queue: TaskQueue
    events: EventBus
    # The delivery engine of webhooks, xAPI... (learnplat.outbound): its sinks come from
    # the plugins' register_sinks.
    outbound: Outbound
    registry: Registry = field(default_factory=Registry)
    plugin_settings: dict[str, Any] = field(default_factory=dict)

    @property
    def hook(self) -> Any:
        return self.pm.hook

    @overload
    def service(self, key: ServiceKey[T]) -> T: ...
    @overload
    def service(self, key: str) -> Any: ...

    def service(self, key: ServiceKey[T] | str) -> T | Any:
        """The service a plugin registered under `key` (declared in that plugin's api.py):
        ``runtime.service(COURSES)`` is a ``CoursesAPI``. KeyError when no loaded plugin
        provides it (declare ``requires`` or check ``has_service``). A bare name also works,
        untyped, for operators and tests."""
        try:
            return self.registry.services[str(key)]
        except KeyError:
            raise KeyError(f"no plugin provides the service {str(key)!r}") from None

    @overload
    def plugin(self, kind: type[P]) -> P: ...
    @overload
    def plugin(self, kind: str) -> Any: ...

    def plugin(self, kind: type[P] | str) -> P | Any:
        """A loaded plugin's object, by its class (typed: ``runtime.plugin(EnrollmentPlugin)``
        is an ``EnrollmentPlugin``) or by its name. KeyError when it is not loaded."""
        if isinstance(kind, str):
            found = self.pm.get_plugin(kind)
            if found is None:
                raise KeyError(f"no plugin named {kind!r} is loaded")
            return found
        for obj in self.pm.get_plugins():
            if isinstance(obj, kind):
                return obj
        raise KeyError(f"no loaded plugin is a {kind.__name__}")

    def plugin_of(self, module: str) -> Any:
        """The plugin object whose package holds `module` (``plugin_of(__name__)`` in a
        plugin's command or task module): how the core hands a command its plugin without
        the module importing the plugin's class (which imports it: a circle)."""
        package = module.partition(".")[0]
        for obj in self.pm.get_plugins():
            if isinstance(obj, Plugin) and type(obj).__module__.partition(".")[0] == package:
                return obj
        raise KeyError(f"no loaded plugin object in the package {package!r}")

    def has_service(self, key: ServiceKey[Any] | str) -> bool:
        return str(key) in self.registry.services

    def settings_of(self, model: type[S]) -> S:
        """A plugin's settings section by its model: ``runtime.settings_of(NotesSettings)``;
        filled (defaults included) before register_services runs."""
        # Hot paths ask on every request: a dict by model, rebuilt when a plugin declares one.
        models = self.registry.settings_models
        cached = self.__dict__.get("_section_of")
        if cached is None or cached[0] is not models or len(cached[1]) != len(models):
            cached = self.__dict__["_section_of"] = (
                models, {m: sec for sec, m in models.items()})
        section = cached[1].get(model)
        if section is None:
            raise KeyError(f"no plugin declares the settings model {model.__name__}")
        value: S = self.plugin_settings[section]
        return value

    def before(self, action: Action | str, tenant: TenantInfo, principal: Principal | None,
               **data: Any) -> None:
        """Ask every veto of `action` (declared with register_actions) whether it may happen;
        raises Vetoed when one refuses. Runs inside the caller's transaction."""
        name = str(action)
        if name not in self.registry.actions:
            raise RuntimeError(f"action {name!r} is not declared (register_actions)")
        for veto in self.registry.vetoes.get(name, ()):
            if tenant is not None and not tenant.plugin_enabled(veto.plugin):
                continue
            veto.fn(self, tenant, principal, data)

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
    secret_key = _secret_key(settings)
    secret_keys = secrets_in_force(secret_key, settings.app.old_secret_keys)
    database = db.connect_database(settings)
    client = redis_client(settings)
    kv = make_store(client, settings.var_path, settings.redis.prefix)
    tenants = TenantService(settings.tenancy.cache_seconds)
    storage = Storage(settings)
    queue = TaskQueue(build_huey(settings), tenants.get_by_id)
    runtime: Runtime | None = None

    def finished() -> Runtime:
        # The event bus is built before the runtime it belongs to and asks for it only when
        # it records or delivers (after start-up): its handlers take the runtime, and the
        # registry that names them is collected once the runtime exists.
        assert runtime is not None, "the runtime is still being built"
        return runtime

    runtime = Runtime(
        settings=settings, pm=pm, plugins=infos, secret_key=secret_key,
        secret_keys=secret_keys, database=database, redis=client, kv=kv,
        limits=Limiter(settings.limits, kv),
        answers=AnswerCache(settings.server.answer_cache_entries,
                            settings.server.answer_cache_seconds),
        generations=GenerationWriter(kv), tenants=tenants, storage=storage, queue=queue,
        events=EventBus(settings.events, queue, tenants.get_by_id, finished),
        outbound=Outbound(settings.outbound, queue, tenants.get_by_id, finished),
    )
    for obj in pm.get_plugins():  # each plugin object belongs to this runtime
        if isinstance(obj, Plugin):
            obj.bind(runtime)
    # From now on a school's settings are checked against the sections the runtime's plugins
    # declare (Plugin.tenant_settings), whichever path writes them.
    tenants.bind_plugins(pm)
    runtime.registry = collect(pm, runtime)
    queue.install(runtime.registry.tasks, runtime)
    pm.hook.startup(runtime=runtime)
    return runtime


def redis_client(settings: Settings) -> redis.Redis | None:
    """The process's Redis client, every call bounded by redis.connect_timeout and
    redis.socket_timeout (a Redis that stops answering must not hold a request forever)."""
    if not settings.redis.url:
        return None
    return redis.Redis.from_url(settings.redis.url, **redis_timeouts(settings))


def redis_timeouts(settings: Settings) -> dict[str, float]:
    return {"socket_connect_timeout": settings.redis.connect_timeout,
            "socket_timeout": settings.redis.socket_timeout}


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


__all__ = ["Runtime", "StartupError", "Vetoed", "create_runtime"]
