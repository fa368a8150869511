"""Finding, loading and checking plugins (built-in and third-party alike, by entry point)."""

from __future__ import annotations

import importlib.metadata
import inspect
import logging
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy
from pydantic import ValidationError

from . import hookspecs
from .contracts import Plugin
from .registry import Registry, StartupError
from .settings import ConfigError, Settings

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "learnplat.plugins"


@dataclass(frozen=True)
class PluginInfo:
    name: str
    module: str
    version: str
    location: str
    requires: tuple[str, ...]

    @property
    def migrations_dir(self) -> Path:
        return Path(self.location).parent / "migrations"


def _load_entry_points() -> list[tuple[str, Any, str]]:
    found = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:
            raise StartupError(f"plugin {ep.name!r} ({ep.value}) failed to load: {exc!r}") from exc
        version = ep.dist.version if ep.dist else "0"
        found.append((ep.name, instantiate(ep.name, obj), version))
    return found


def instantiate(name: str, obj: Any) -> Any:
    """What pluggy registers: a Plugin subclass becomes its one object for this plugin
    manager (so each Runtime has its own); a module or an object is registered as it is."""
    if isinstance(obj, type) and issubclass(obj, Plugin):
        try:
            instance = obj()
        except Exception as exc:
            raise StartupError(f"plugin {name!r}: {obj.__name__}() failed: {exc!r}") from exc
        instance.name = name
        return instance
    if isinstance(obj, Plugin):
        obj.name = obj.name or name
    return obj


def _info(name: str, obj: Any, version: str) -> PluginInfo:
    module = obj if isinstance(obj, ModuleType) else inspect.getmodule(obj)
    location = getattr(module, "__file__", None) or "<memory>"
    return PluginInfo(
        name=name,
        module=getattr(module, "__name__", repr(obj)),
        version=version,
        location=str(location),
        requires=tuple(getattr(obj, "requires", ())),
    )


def build_plugin_manager(
    extra: list[tuple[str, Any]] | None = None, entry_points: bool = True
) -> tuple[pluggy.PluginManager, dict[str, PluginInfo]]:
    """Load plugins from the entry-point group plus `extra` (name, module) pairs (tests)."""
    pm = pluggy.PluginManager("learnplat")
    pm.add_hookspecs(hookspecs)
    candidates = _load_entry_points() if entry_points else []
    from . import __version__

    candidates += [(name, instantiate(name, obj), __version__) for name, obj in (extra or [])]
    infos: dict[str, PluginInfo] = {}
    for name, obj, version in candidates:
        if name in infos:
            raise StartupError(f"two plugins are named {name!r}: {infos[name].module} and {obj!r}")
        if specs := getattr(obj, "hookspecs", None):
            pm.add_hookspecs(specs)
        infos[name] = _info(name, obj, version)
    for name, obj, _ in candidates:
        try:
            pm.register(obj, name=name)
        except Exception as exc:
            raise StartupError(f"plugin {name!r} cannot be registered: {exc}") from exc
    for info in infos.values():
        missing = [r for r in info.requires if r not in infos]
        if missing:
            raise StartupError(
                f"plugin {info.name!r} requires {', '.join(map(repr, missing))}, not installed"
            )
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        raise StartupError(f"plugin {name!r}: {exc}") from exc
    return pm, infos


def _call_each(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
    """Call every implementation of a register_* hook, keeping which plugin answered what.

    A plugin raising here stops start-up with a message naming it.
    """
    results = []
    hook = getattr(pm.hook, hook_name)
    for impl in hook.get_hookimpls():
        args = {k: v for k, v in kwargs.items() if k in impl.argnames}
        try:
            value = impl.function(**args)
        except Exception as exc:
            raise StartupError(
                f"plugin {impl.plugin_name!r} failed in {hook_name}: {exc!r}"
            ) from exc
        if value is not None:
            results.append((impl.plugin_name, value))
    return results


def collect(pm: pluggy.PluginManager, runtime: Any) -> Registry:
    """Build the Registry from every plugin's register_* hooks (services and routes need the
    runtime, so this runs after the runtime's shared parts exist)."""
    reg = Registry()
    runtime.registry = reg  # routes may look up services registered just before them
    for plugin, models in _call_each(pm, "register_models"):
        reg.models[plugin] = list(models)
    for plugin, perms in _call_each(pm, "register_permissions"):
        for perm in perms:
            reg.add_permission(_owned(perm, plugin))
    for plugin, tasks in _call_each(pm, "register_tasks"):
        for task in tasks:
            reg.add_task(_owned(task, plugin))
    for plugin, event_types in _call_each(pm, "register_events"):
        for event_type in event_types:
            reg.add_event(event_type, plugin)
    for plugin, actions in _call_each(pm, "register_actions"):
        for action in actions:
            reg.add_action(_owned(action, plugin))
    for plugin, handlers in _call_each(pm, "register_event_handlers"):
        for handler in handlers:
            reg.add_handler(_owned(handler, plugin))
    for plugin, vetoes in _call_each(pm, "register_vetoes"):
        for veto in vetoes:
            reg.add_veto(_owned(veto, plugin))
    for plugin, checks in _call_each(pm, "register_health_checks"):
        for check in checks:
            reg.health_checks.append(_owned(check, plugin))
    for plugin, encrypted in _call_each(pm, "register_encrypted_at_rest"):
        for decl in encrypted:
            reg.encrypted_at_rest.append(_owned(decl, plugin))
    for plugin, sections in _call_each(pm, "register_settings"):
        for section, model in sections.items():
            reg.add_settings_model(section, model, plugin)
    # Settings are filled before services are built, so a service reads them in __init__.
    runtime.plugin_settings = load_plugin_settings(runtime.settings, reg)
    for plugin, services in _call_each(pm, "register_services", runtime=runtime):
        for name, service in services.items():
            reg.add_service(name, service, plugin)
    for plugin, sinks in _call_each(pm, "register_sinks", runtime=runtime):
        for sink in sinks:
            reg.add_sink(sink, plugin)
    for plugin, routes in _call_each(pm, "register_routes", runtime=runtime):
        for route in routes:
            reg.add_route(_owned(route, plugin))
    for warning in reg.check_wiring():
        log.warning("%s", warning)
    return reg


def load_plugin_settings(settings: Settings, registry: Registry) -> dict[str, Any]:
    """Each declared settings section validated from the configuration (defaults when the
    configuration says nothing); an unknown section or key is a ConfigError naming it."""
    out: dict[str, Any] = {}
    for section in settings.plugins:
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


def _owned(decl: Any, plugin: str) -> Any:
    if not getattr(decl, "plugin", ""):
        try:
            decl.plugin = plugin
        except AttributeError:  # frozen dataclass
            object.__setattr__(decl, "plugin", plugin)
    return decl
