"""What plugins declare through the register_* hooks, and the registry that collects it.

Collection happens once at start-up. Every declaration remembers the plugin that made it, so
a clash (two routes on one path, two permissions or tasks with one name) is reported with both
plugin names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from .contracts import Action, Event, EventDecl, ServiceKey, Veto, conformance_problems, event_name
from .errors import ProblemCode

ROLES = ("admin", "instructor", "student")


class StartupError(Exception):
    """The plugins cannot be loaded together; the message names the plugin(s)."""


@dataclass
class Route:
    path: str
    resource: Any
    tenant_scoped: bool = True
    plugin: str = ""
    # The path field that names the school (``/lti/schools/{school}/...``): for URLs given to
    # other systems that send no X-Tenant and append their own query strings (an LTI peer).
    # The field is taken out of the responder's parameters; it names the school as X-Tenant
    # would (with ``tenancy.select_by = "host"`` it must name the Host's school).
    tenant_param: str = ""


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
    # Queued (without arguments) each time a `learnplat worker` starts: a recovery sweep that
    # finds work whose task died with a killed worker (Huey does not re-deliver those).
    at_start: bool = False


@dataclass
class EventHandler:
    """``EventHandler(CoursePublished, "notify", fn)``: `event` is a declared Event type (or
    its versioned name, for an event of a plugin you do not import; "*" for every event).

    An event given by name may come with `payload`: a pydantic model the handler declares
    with the fields it reads (the publisher's events module may not be importable). The bus
    then hands the handler ``event.data`` as an instance of it, parsed from the stored payload
    (extra fields ignored); a payload it cannot parse is a failed delivery, like a raising
    handler. Without `payload` a handler of a name gets ``event.data`` of the declared type
    when its publisher is loaded (else None) and reads ``event.payload``."""

    event: str | type[Event]
    name: str
    fn: Callable[..., Any]
    plugin: str = ""
    optional: bool = False  # the publisher is an optional plugin: no warning when absent
    payload: type[BaseModel] | None = None  # the consumer's model of a named event's payload

    def __post_init__(self) -> None:
        if self.payload is not None:
            if not (isinstance(self.event, str) and self.event != "*"):
                raise TypeError(f"event handler {self.name!r}: `payload` is for an event "
                                f"given by name; {self.event!r} brings its own type")
            if not (isinstance(self.payload, type) and issubclass(self.payload, BaseModel)):
                raise TypeError(f"event handler {self.name!r}: payload {self.payload!r} is "
                                "not a pydantic model class")
        self.event = event_name(self.event)

    @property
    def key(self) -> str:
        return f"{self.plugin}.{self.name}"


@dataclass
class HealthCheck:
    name: str
    fn: Callable[..., Any]
    plugin: str = ""


@dataclass(frozen=True)
class ProblemType:
    """One entry of the catalogue of problem types (``urn:learnplat:problem:<code>``): the
    statuses an answer with the code has, its title, what it means, and who declares it
    ("core" or the plugins; a code such as ``module_locked`` may be raised by several)."""

    code: str
    statuses: tuple[int, ...]
    title: str
    explanation: str
    declared_by: tuple[str, ...]

    def merged(self, other: ProblemType) -> ProblemType:
        """The same code declared again elsewhere: every status and declarer; the first
        explanation and title."""
        return ProblemType(
            self.code, tuple(sorted({*self.statuses, *other.statuses})),
            self.title or other.title, self.explanation or other.explanation,
            tuple(dict.fromkeys((*self.declared_by, *other.declared_by))))


_CODE_OK = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def problem_type(code: str, decl: ProblemCode, declared_by: str,
                 title_of: Callable[[int], str] = lambda status: "") -> ProblemType:
    """A catalogue entry from a declaration; StartupError for a malformed one."""
    if not _CODE_OK.match(code):
        raise StartupError(f"{declared_by!r} declares the problem code {code!r}: use lower "
                           "case letters, digits and _ (it is part of a URN and an anchor)")
    if not isinstance(decl, ProblemCode) or not decl.explanation.strip() or not all(
            isinstance(s, int) and 400 <= s <= 599 for s in decl.statuses):
        raise StartupError(f"{declared_by!r} declares the problem code {code!r} as {decl!r}: "
                           "give a ProblemCode(status 4xx/5xx, explanation)")
    statuses = tuple(sorted(set(decl.statuses)))
    # The title an answer has is its error class's: one per status when not declared.
    return ProblemType(code, statuses,
                       decl.title or " / ".join(dict.fromkeys(map(title_of, statuses))),
                       " ".join(decl.explanation.split()), (declared_by,))


def _claim(seen: dict[str, str], kind: str, name: str, plugin: str) -> None:
    if name in seen:
        raise StartupError(
            f"duplicate {kind} {name!r}: declared by plugin {seen[name]!r} and plugin {plugin!r}"
        )
    seen[name] = plugin


@dataclass(frozen=True)
class TenantSection:
    """A top-level section of a school's settings (``[settings.<name>]`` in
    tenants/<slug>.toml), the model that validates it and who declares it ("core" or a
    plugin's name: its ``Plugin.tenant_settings``)."""

    name: str
    model: type[BaseModel]
    owner: str


def tenant_sections(core: Mapping[str, type[BaseModel]],
                    plugins: list[tuple[str, Any]]) -> dict[str, TenantSection]:
    """The sections of a school's settings: the core's, then each plugin's
    ``tenant_settings`` (its section: ``tenant_settings_section`` or its name). A section two
    owners declare is a StartupError naming both, like any other clash."""
    seen: dict[str, str] = {}
    out: dict[str, TenantSection] = {}
    for name, model in core.items():
        _claim(seen, "tenant settings section", name, "core")
        out[name] = TenantSection(name, model, "core")
    for plugin, obj in plugins:
        declared = getattr(obj, "tenant_settings", None)
        if declared is None:
            continue
        if not (isinstance(declared, type) and issubclass(declared, BaseModel)):
            raise StartupError(f"plugin {plugin!r} declares tenant_settings = {declared!r}: "
                               "give a pydantic model class")
        section = getattr(obj, "tenant_settings_section", "") or plugin
        _claim(seen, "tenant settings section", section, plugin)
        out[section] = TenantSection(section, declared, plugin)
    return out


@dataclass
class Registry:
    routes: list[Route] = field(default_factory=list)
    permissions: dict[str, Permission] = field(default_factory=dict)
    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    handlers: list[EventHandler] = field(default_factory=list)
    health_checks: list[HealthCheck] = field(default_factory=list)
    models: dict[str, list[type]] = field(default_factory=dict)
    services: dict[str, Any] = field(default_factory=dict)
    service_keys: dict[str, ServiceKey[Any]] = field(default_factory=dict)
    events: dict[str, EventDecl] = field(default_factory=dict)
    actions: dict[str, Action] = field(default_factory=dict)
    vetoes: dict[str, list[Veto]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    settings_models: dict[str, type[BaseModel]] = field(default_factory=dict)
    # register_encrypted_at_rest: what learnplat.secret_keys checks and re-encrypts.
    encrypted_at_rest: list[Any] = field(default_factory=list)
    # The problem codes plugins declare (Plugin.problems), gathered at start-up; the core's
    # own join them in learnplat.http.problems.catalogue.
    problems: dict[str, ProblemType] = field(default_factory=dict)
    # register_sinks: the delivery engine's sinks by name (learnplat.outbound).
    sinks: dict[str, Any] = field(default_factory=dict)
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

    def add_service(self, key: ServiceKey[Any], service: Any, plugin: str) -> None:
        if not isinstance(key, ServiceKey):
            raise StartupError(
                f"plugin {plugin!r} registers a service under {key!r}: register it under a "
                "ServiceKey(name, Protocol) declared in the plugin's api.py")
        _claim(self._seen("service"), "service", key.name, plugin)
        problems = conformance_problems(key.protocol, service)
        if problems:
            raise StartupError(
                f"plugin {plugin!r}: service {key.name!r} ({type(service).__name__}) does not "
                f"satisfy {key.protocol.__name__}: {'; '.join(problems)}")
        self.services[key.name] = service
        self.service_keys[key.name] = key

    def add_event(self, event_type: type[Event], plugin: str) -> None:
        if not (isinstance(event_type, type) and issubclass(event_type, Event)
                and event_type.name):
            raise StartupError(f"plugin {plugin!r} declares {event_type!r} as an event: "
                               "declare a learnplat.plugin.Event subclass with a name")
        _claim(self._seen("event"), "event", event_type.name, plugin)
        self.events[event_type.name] = EventDecl(event_type.name, event_type, plugin,
                                                 event_type.description())

    def add_action(self, action: Action) -> None:
        _claim(self._seen("action"), "action", action.name, action.plugin)
        self.actions[action.name] = action

    def add_veto(self, veto: Veto) -> None:
        _claim(self._seen("veto"), "veto", veto.key, veto.plugin)
        self.vetoes.setdefault(veto.action_name, []).append(veto)

    def remove_veto(self, veto: Veto) -> None:
        """Undo add_veto (tests that add a veto for one test)."""
        self.vetoes[veto.action_name].remove(veto)
        self._seen("veto").pop(veto.key, None)

    def remove_event(self, name: str) -> None:
        """Undo add_event (tests that stand in for an optional publisher)."""
        del self.events[name]
        self._seen("event").pop(name, None)

    def check_wiring(self) -> list[str]:
        """Handlers of events and vetoes of actions that no loaded plugin declares, and
        handlers whose `payload` model requires a field the loaded publisher's event lacks.
        Warnings, not errors: a plugin may react to an optional plugin's events (notifications
        to quizzes) and must still start without it. `learnplat events list` shows them too."""
        out = []
        for h in self.handlers:
            if h.event != "*" and h.event not in self.events and not h.optional:
                out.append(f"plugin {h.plugin!r} handles {h.event!r}, which no loaded plugin "
                           "declares (register_events)")
            decl = self.events.get(event_name(h.event))
            if h.payload is not None and decl is not None:
                # The consumer's model reads a field the publisher's event does not have.
                missing = [n for n, f in h.payload.model_fields.items()
                           if f.is_required() and n not in decl.type.model_fields]
                if missing:
                    out.append(f"plugin {h.plugin!r} reads {', '.join(missing)} of "
                               f"{h.event!r} ({h.payload.__name__}), which plugin "
                               f"{decl.plugin!r} does not declare in {decl.type.__name__}")
        for action, vetoes in self.vetoes.items():
            if action not in self.actions:
                for v in vetoes:
                    out.append(f"plugin {v.plugin!r} vetoes {action!r}, which no loaded plugin "
                               "asks about (register_actions)")
        self.warnings = out
        return out

    def add_problems(self, plugin: str, declared: Mapping[str, ProblemCode],
                     title_of: Callable[[int], str] = lambda status: "") -> None:
        """Add a plugin's problem codes (its ``problems``); a code two plugins declare is one
        entry with both (they raise it for the same reason)."""
        for code, decl in declared.items():
            entry = problem_type(code, decl, plugin, title_of)
            known = self.problems.get(code)
            self.problems[code] = known.merged(entry) if known else entry

    def add_sink(self, sink: Any, plugin: str) -> None:
        from .outbound.sink import Sink

        name = getattr(sink, "name", "")
        if not isinstance(sink, Sink) or not name or not _CODE_OK.match(name):
            raise StartupError(f"plugin {plugin!r} registers {sink!r} as a sink: register a "
                               "learnplat.plugin.Sink instance whose name is lower case "
                               "letters, digits and _")
        if not isinstance(sink.batch_size, int) or sink.batch_size < 1:
            raise StartupError(f"plugin {plugin!r}: sink {name!r} has batch_size "
                               f"{sink.batch_size!r}; give a positive integer")
        _claim(self._seen("sink"), "sink", name, plugin)
        self.sinks[name] = sink

    def sink_plugin(self, name: str) -> str:
        """The plugin that registered sink `name` ("" when none did)."""
        return self._seen("sink").get(name, "")

    def add_settings_model(self, section: str, model: type[BaseModel], plugin: str) -> None:
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
