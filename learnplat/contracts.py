"""The seams between plugins: typed services, declared events and declared vetoable actions.

A plugin that offers something to other plugins says so in two modules of its package:

* ``api.py``: a ``typing.Protocol`` for its service, the frozen dataclasses that cross the
  boundary, and a ``ServiceKey`` naming both. Other plugins call
  ``runtime.service(COURSES)`` and get a ``CoursesAPI``, checked by type checkers and IDEs.
  At start-up the object a plugin registers under a key must have every method of the key's
  Protocol with every parameter of it; otherwise start-up stops naming the plugin.
* ``events.py``: one ``Event`` subclass per event it records (a frozen pydantic model whose
  ``name`` is the versioned event name and whose docstring's first line describes it), and the
  ``Action`` names it asks vetoes about (``runtime.before(ACTION, ...)``).

Nothing here imports a plugin: the core knows plugins only through what they register.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar, overload

from pydantic import BaseModel, ConfigDict

from .errors import ProblemCode

T = TypeVar("T")


# -- services ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceKey(Generic[T]):
    """Names a service and the Protocol it satisfies: ``COURSES = ServiceKey("courses",
    CoursesAPI)``. ``runtime.service(COURSES)`` is then typed ``CoursesAPI``."""

    name: str
    # A plain `type`, not `type[T]`: mypy refuses a Protocol where `type[T]` is expected
    # (type-abstract, python/mypy#4717); T comes from the annotated constant
    # (`COURSES: ServiceKey[CoursesAPI] = ServiceKey("courses", CoursesAPI)`).
    protocol: type

    def __str__(self) -> str:
        return self.name


class Record(BaseModel):
    """Plain frozen data that crosses a plugin boundary (what an ``api.py`` service returns:
    ``CourseInfo``), and the base of the response model that shows it: ``class
    CourseOut(CourseInfo)`` in ``schemas.py`` adds only what the HTTP answer shows beyond it,
    so each field is declared once. Immutable and hashable like a frozen dataclass; values are
    validated when one is made."""

    model_config = ConfigDict(frozen=True)


class Sibling(Generic[T]):
    """A service's attribute that is another plugin's service, ``courses = Sibling(COURSES)``
    in the class body: typed as the key's Protocol and resolved through the instance's
    ``runtime`` at each access (services are built one plugin after another, so a sibling may
    not exist yet when this service is built)."""

    def __init__(self, key: ServiceKey[T]):
        self.key = key

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Sibling[T]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> Sibling[T] | T:
        if obj is None:
            return self
        runtime: Any = getattr(obj, "runtime")  # noqa: B009  (any service holding a runtime)
        service: T = runtime.service(self.key)
        return service


class Plugin:
    """A plugin's one object: its name and what it requires, its hooks as methods, and (once
    the runtime is built) its services as attributes.

    An entry point in the ``learnplat.plugins`` group names the class
    (``enrollment = learnplat_enrollment.plugin:EnrollmentPlugin``); the loader makes one
    instance per plugin manager, so each Runtime has its own. Hooks are methods marked
    ``@hookimpl``, called with the arguments their spec names (``register_services(self,
    runtime)``). `runtime` is set as the runtime is built, before any ``register_*`` hook
    that builds it runs; the command line loads plugins for their commands without a runtime,
    so ``register_commands`` must not use it.

    ``runtime.plugin(EnrollmentPlugin)`` returns the object, typed: a plugin's tasks and
    commands get their services from it. A module with ``@hookimpl`` functions still loads
    (the older form), but has no object to hold services.
    """

    #: The names of the plugins this one needs (start-up fails naming the missing one).
    requires: ClassVar[tuple[str, ...]] = ()
    #: A module or class of hookspecs this plugin publishes for others to implement.
    hookspecs: ClassVar[Any] = None
    #: What the plugin's operations are for, in a sentence or two: the description of its
    #: group (its OpenAPI tag) on the reference page, /docs. Empty: the class docstring.
    description: ClassVar[str] = ""
    #: The problem codes the plugin's answers may carry beyond the core's (raised as
    #: ``Conflict("...", code="email_taken")`` or by its own LearnplatError subclass):
    #: ``{"email_taken": ProblemCode(409, "An account with this email exists ...")}``. The
    #: reference page lists each (/docs#problem-<code>); under ``server.check_responses`` (on
    #: in tests) an answer with a code no one declares is a defect (a 500).
    problems: ClassVar[Mapping[str, ProblemCode]] = {}
    #: The model of the plugin's own section of a school's settings (``[settings.<name>]`` in
    #: tenants/<slug>.toml, read with ``tenant.setting("<name>.key")``): a pydantic model with
    #: ``extra="forbid"``, every field optional (None: the plugin's default applies) and
    #: described. ``learnplat tenants apply`` validates the section against it before it
    #: stores anything, so a wrong value is refused there, not a 500 later; a key the model
    #: does not declare is refused (a typo), and so is a section no one declares.
    #: None: the plugin reads no tenant settings.
    tenant_settings: ClassVar[type[BaseModel] | None] = None
    #: The section `tenant_settings` describes, when it is not the plugin's name (identity's
    #: is ``oauth``: ``settings.oauth.providers.<name>``).
    tenant_settings_section: ClassVar[str] = ""

    #: The Runtime this object belongs to, set before register_services runs. A plain
    #: attribute, not a property: pluggy reads every attribute of a plugin while registering it.
    runtime: Any

    def __init__(self) -> None:
        self.name = ""  # the entry point's name, set by the loader

    def __getattr__(self, attr: str) -> Any:
        # Only called when `attr` is missing: say why `runtime` is not there yet.
        if attr == "runtime":
            raise AttributeError(
                f"plugin {self.name or type(self).__name__!r} has no runtime yet: only hooks "
                "from register_services on may use it")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {attr!r}")

    def bind(self, runtime: Any) -> None:
        """Called by the core as the runtime is built, before any hook that takes it."""
        self.runtime = runtime

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def protocol_members(protocol: type) -> dict[str, Any]:
    """The public attributes a Protocol declares (its own and its Protocol bases')."""
    members: dict[str, Any] = {}
    for klass in reversed(protocol.__mro__):
        if klass is object or not getattr(klass, "_is_protocol", False):
            continue
        if klass.__name__ in ("Protocol", "Generic"):
            continue
        for name, value in vars(klass).items():
            if not name.startswith("_"):
                members[name] = value
        for name in getattr(klass, "__annotations__", {}):
            if not name.startswith("_"):
                members.setdefault(name, None)
    return members


def conformance_problems(protocol: type, impl: Any) -> list[str]:
    """What `impl` lacks to satisfy `protocol`: missing attributes or methods, and methods
    that do not accept a parameter the Protocol's method declares."""
    problems = []
    for name, declared in protocol_members(protocol).items():
        if not hasattr(type(impl), name) and not hasattr(impl, name):
            problems.append(f"missing {name}")
            continue
        if not callable(declared) or isinstance(declared, (staticmethod, classmethod)):
            continue
        actual = getattr(impl, name)
        if not callable(actual):
            problems.append(f"{name} is not a method")
            continue
        problems += [f"{name}() {p}" for p in _signature_problems(declared, actual)]
    return problems


def _signature_problems(declared: Any, actual: Any) -> list[str]:
    try:
        want = list(inspect.signature(declared).parameters.values())[1:]  # without self
        have = inspect.signature(actual).parameters
    except (TypeError, ValueError):
        return []
    kinds = {p.kind for p in have.values()}
    problems = []
    for p in want:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name not in have and inspect.Parameter.VAR_KEYWORD not in kinds:
            problems.append(f"has no parameter {p.name!r}")
        elif p.name in have and p.default is not p.empty and have[p.name].default is p.empty:
            problems.append(f"requires {p.name!r}, which the contract makes optional")
    for name, p in have.items():
        if (p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                and name not in {w.name for w in want}):
            problems.append(f"requires {name!r}, which the contract does not pass")
    return problems


# -- events --------------------------------------------------------------------------------------


class Event(BaseModel):
    """Base class of a declared event payload.

    ::

        class CoursePublished(Event):
            \"\"\"An admin approved a course; it is now in the catalogue.\"\"\"
            name: ClassVar[str] = "course.published.v1"
            course_id: int
            owner_id: int

    Record one with ``runtime.events.record(CoursePublished(course_id=1, owner_id=2))``.
    Payloads are stored as JSON; fields are plain data (ids, strings, numbers, datetimes),
    never model objects. A version's fields never change meaning or disappear: a breaking
    change is a new name (``.v2``). Fields added later need a default, so that events recorded
    before the change still parse.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")
    name: ClassVar[str] = ""
    #: Whether the event leaves learnplat (webhooks, xAPI): False for plumbing between plugins
    #: that means nothing outside (a thumbnail's storage key is ready).
    published: ClassVar[bool] = True
    #: Fields that stay inside learnplat (storage keys and the like): left out of the payload
    #: that leaves it, and of its documented schema.
    internal_fields: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def public_fields(cls) -> list[str]:
        """The fields a published event carries out of learnplat, in declaration order."""
        return [f for f in cls.model_fields if f not in cls.internal_fields]

    @classmethod
    def public_payload(cls, payload: Mapping[str, Any]) -> dict[str, Any]:
        """What of a stored payload leaves learnplat: the public fields it holds (an older
        event may lack a field added since: it is left out, not invented)."""
        public = cls.public_fields()
        return {k: payload[k] for k in public if k in payload}

    @classmethod
    def public_schema(cls) -> dict[str, Any]:
        """The JSON schema (draft 2020-12, OpenAPI 3.1) of `public_payload`: the model's own
        schema without the internal fields, titled and described by the event."""
        schema = cls.model_json_schema(mode="serialization")
        for f in cls.internal_fields:
            schema.get("properties", {}).pop(f, None)
            if f in schema.get("required", []):
                schema["required"].remove(f)
        schema["title"] = cls.__name__
        schema["description"] = cls.description()
        return schema

    @classmethod
    def description(cls) -> str:
        doc = inspect.getdoc(cls) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    @classmethod
    def fields_summary(cls) -> list[tuple[str, str]]:
        """(field, type) pairs for the events catalogue."""
        out = []
        for fname, info in cls.model_fields.items():
            ann = info.annotation
            text = getattr(ann, "__name__", None) if isinstance(ann, type) else None
            out.append((fname, text or str(ann).replace("typing.", "")
                        .replace("datetime.datetime", "datetime")))
        return out


E = TypeVar("E", bound=Event)


@dataclass(frozen=True)
class Action:
    """A vetoable action a plugin asks about with ``runtime.before(ACTION, ...)`` before it
    acts; the keyword data it passes is listed in `fields` for the catalogue."""

    name: str
    description: str
    fields: tuple[str, ...] = ()
    plugin: str = ""

    def __str__(self) -> str:
        return self.name


@dataclass
class Veto:
    """``Veto(ENROLL, "course_full", fn)``: ``fn(runtime, tenant, principal, data)`` runs
    inside the action's transaction before it happens and raises
    ``learnplat.errors.Vetoed(reason)`` to refuse it."""

    action: str | Action
    name: str
    fn: Any
    plugin: str = ""

    @property
    def action_name(self) -> str:
        return self.action if isinstance(self.action, str) else self.action.name

    @property
    def key(self) -> str:
        return f"{self.plugin}.{self.name}"


@dataclass(frozen=True)
class EventDecl:
    """An event as the catalogue knows it: who publishes it and its payload type."""

    name: str
    type: type[Event]
    plugin: str
    description: str = ""
    handlers: tuple[str, ...] = field(default=())


def event_name(event: str | type[Event]) -> str:
    if isinstance(event, str):
        return event
    if isinstance(event, type) and issubclass(event, Event) and event.name:
        return event.name
    raise TypeError(f"not an event name or a declared Event type: {event!r}")
