"""Every hook a learnplat plugin can implement, in one module.

Hook families, by verb:

* ``register_*``: collected once at start-up into the registry; a duplicate name (two routes on
  one path, two permissions or tasks with one name) stops start-up and names both plugins.
* ``authenticate``: ``firstresult``, the one hook where a single answer is wanted.
* events: a plugin declares the events it records (``register_events``, typed payloads from its
  ``events.py``); after-the-fact reactions are registered with ``register_event_handlers`` and
  delivered from the outbox after commit, each handler isolated and retried (never a raw hook
  call inside the transaction).
* vetoes: a plugin declares the actions it asks about (``register_actions``); others register
  ``Veto``s for them (``register_vetoes``) that may refuse by raising
  ``learnplat.errors.Vetoed``.

Plugins write ``from learnplat import hookimpl``. A plugin may publish hookspecs of its own by
setting a module attribute ``hookspecs`` (a module or class of ``@hookspec`` functions) on the
module its entry point names; the core adds them before registering any implementation.
docs/plugins.md documents every spec below with its exact signature (a test checks it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from .auth import Principal
    from .contracts import Action, Event, ServiceKey, Veto
    from .gate import Credentials, RoundTrip
    from .outbound.sink import Sink
    from .registry import EventHandler, HealthCheck, Permission, Route, TaskSpec
    from .runtime import Runtime
    from .secret_keys import EncryptedAtRest
    from .seeding import Seed
    from .tenancy import TenantInfo

hookspec = pluggy.HookspecMarker("learnplat")
hookimpl = pluggy.HookimplMarker("learnplat")


# -- start-up: what a plugin contributes ---------------------------------------------------------


@hookspec
def register_models() -> list[type]:
    """Peewee model classes the plugin owns (on ``TenantModel`` when tenant-owned).

    Called once at start-up. The migrations in the plugin package's ``migrations/`` directory
    create their tables; on PostgreSQL every ``TenantModel`` table listed here gets a row-level
    security policy after ``learnplat migrate``. Since 0.1.
    """


@hookspec
def register_routes(runtime: Runtime) -> list[Route]:
    """HTTP routes: ``Route(path, resource)`` with a resource whose responders are declared
    with ``@endpoint`` (permission, input schema, output schema).

    :param runtime: the process's Runtime, to build resources with their services.
    Called once when the app is built; two plugins routing one path is a start-up error.
    Since 0.1.
    """


@hookspec
def register_permissions() -> list[Permission]:
    """Named permissions and the roles that hold them, e.g.
    ``Permission("course.update", "Edit a course", grants={"admin": "any", "instructor": "own"})``.

    A grant of ``"own"`` means the holder may act on objects they own; services check it with
    ``principal.require(permission, owner_id=...)``. Since 0.1.
    """


@hookspec
def register_tasks() -> list[TaskSpec]:
    """Background tasks (and periodic tasks) run by the Huey consumer.

    ``TaskSpec("courses.make_thumbnail", fn)``: the name is what is persisted in the queue and
    must never change. ``fn(runtime, *args)`` receives the Runtime and plain arguments (ids);
    tenant-scoped tasks (the default) take the tenant id first and run in its context and in a
    transaction. Since 0.1.
    """


@hookspec
def register_events() -> list[type[Event]]:
    """The events the plugin records: ``Event`` subclasses from its ``events.py``, each with
    its versioned ``name``, a docstring whose first line describes it, and typed fields.

    ``runtime.events.record()`` refuses an event type no loaded plugin declared; the events
    catalogue (``learnplat events list``, docs/events.md) is built from these. Since 0.2.
    """


@hookspec
def register_event_handlers() -> list[EventHandler]:
    """After-the-fact reactions: ``EventHandler(EnrollmentCreated, "notify", fn)`` (a declared
    Event type, or its versioned name for an event of a plugin you do not import).

    ``fn(runtime, event)`` runs after the recording transaction committed, in the event's tenant
    and in its own transaction; ``event.data`` is the typed payload (``event.payload`` the raw
    dict). It is retried with backoff when it raises and may see an event twice (``event.id`` is
    stable for idempotency). ``"*"`` subscribes to every event. A handler of an event no loaded
    plugin declares is a start-up warning. Since 0.1.
    """


@hookspec
def register_actions() -> list[Action]:
    """The vetoable actions the plugin asks about with ``runtime.before(ACTION, tenant,
    principal, **data)`` before it acts: ``Action("enrollment.create", "...", fields=(...))``.
    Since 0.2.
    """


@hookspec
def register_vetoes() -> list[Veto]:
    """``Veto(action, name, fn)``: ``fn(runtime, tenant, principal, data)`` runs inside the
    action's transaction before it happens and raises ``learnplat.errors.Vetoed(reason)`` to
    refuse it (nothing is then written). A veto of an action no loaded plugin declares is a
    start-up warning. Since 0.2.
    """


@hookspec
def register_services(runtime: Runtime) -> dict[ServiceKey[Any], Any]:
    """Objects a plugin exports on purpose for other plugins, under the ``ServiceKey`` of its
    ``api.py`` (``{COURSES: CoursesService(runtime)}``); ``runtime.service(COURSES)`` returns
    it, typed as the key's Protocol. An object missing a method or parameter of the Protocol
    stops start-up naming the plugin. Plugin settings are already filled
    (``runtime.settings_of(Model)``).

    This is how plugins use each other without importing each other's models. Since 0.1.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add click commands or groups to the ``learnplat`` command line. Since 0.1."""


@hookspec
def register_health_checks() -> list[HealthCheck]:
    """Extra readiness checks for ``GET /readyz``: ``HealthCheck(name, fn)``, fn(runtime) raises
    when not ready. Since 0.1.
    """


@hookspec
def register_encrypted_at_rest() -> list[EncryptedAtRest]:
    """What the plugin stores encrypted under ``app.secret_key``:
    ``EncryptedAtRest(name, scan, reencrypt)`` from ``learnplat.plugin``, where
    ``scan(runtime)`` returns a ``SecretScan`` (items, items only an old secret decrypts,
    items no secret in force decrypts) and ``reencrypt(runtime)`` rewrites the items with the
    current secret and returns how many it rewrote. Both run once per tenant, in its context
    and a transaction.

    ``learnplat serve``, ``learnplat worker`` and key commands refuse to start when an item
    cannot be decrypted with ``app.secret_key`` or ``app.old_secret_keys``;
    ``learnplat secrets reencrypt`` calls ``reencrypt``. Since 0.2.
    """


@hookspec
def register_sinks(runtime: Runtime) -> list[Sink]:
    """Kinds of destination the delivery engine sends to (``runtime.outbound``): ``Sink``
    instances from ``learnplat.plugin``, each with a unique ``name`` ("webhooks", "xapi"),
    its ``batch_size``, and the methods that build a request from queued messages
    (``request``), judge an answer (``verdict``) and hear that the engine disabled a
    destination (``disabled``).

    :param runtime: the process's Runtime, to build sinks with their services.
    Called once at start-up, after ``register_services``; two sinks with one name stop
    start-up naming both plugins. The engine calls a sink's methods in a worker, in the
    destination's school and inside a transaction. Since 0.2.
    """


@hookspec
def register_settings() -> dict[str, type]:
    """Pydantic models for the plugin's own configuration sections, by section name
    (``[courses]`` in TOML, ``LEARNPLAT_COURSES_<KEY>`` in the environment). Since 0.1.
    """


# -- lifecycle -----------------------------------------------------------------------------------


@hookspec
def startup(runtime: Runtime) -> None:
    """Called once the Runtime is fully built (plugins loaded, database connected). Since 0.1."""


@hookspec
def extend_openapi(document: dict[str, Any]) -> None:
    """Adjust the generated OpenAPI 3.1 document in place (extra tags, security schemes).
    Since 0.1.
    """


# -- requests ------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def authenticate(
    runtime: Runtime, credentials: Credentials, tenant: TenantInfo, round_trip: RoundTrip
) -> Principal | None:
    """Turn the caller's credentials into a Principal for ``tenant``.

    Called by the gate (learnplat.gate) for every transport alike (an HTTP request, a
    WebSocket handshake), inside the tenant and its unit of work, only when the caller presents
    credentials: ``credentials.authorization`` (``credentials.bearer`` is its bearer token) or
    ``credentials.cookies``. Return None when they are not yours; raise
    ``learnplat.errors.Unauthorized`` for a bad credential (a token of another tenant
    included). The first non-None answer wins; no answer to an authorization is a 401, no
    answer to cookies alone a visitor. Since 0.1.

    A plugin that reads the key-value store to authenticate (revocation lists, cached user
    state) reads it with ``round_trip(keys, user_id)``: the values of `keys`, read in the same
    round trip that charges the caller's rate limits to `user_id` (it raises
    ``learnplat.kv.StoreUnavailable`` when the store is down: answer from the database then).
    Without it the core charges the limits in a round trip of its own. Since 0.2.

    Changed in 0.2 (issue 25): takes the transport-neutral ``credentials`` and ``round_trip``
    instead of a ``falcon.Request`` (``req``) and its ``req.context.round_trip``.
    """


@hookspec(firstresult=True)
def provision_tenant_admin(
    runtime: Runtime, tenant: TenantInfo, email: str, password: str
) -> Any:
    """Create the first admin of a new tenant (``learnplat tenants create --admin-email``).

    Runs inside the tenant-creating transaction and tenant context; return the new user's id.
    Since 0.1.
    """


# -- data sets -----------------------------------------------------------------------------------


@hookspec
def seed_tenant(runtime: Runtime, seed: Seed) -> None:
    """Write this plugin's part of a generated data set into ``seed.tenant``, a new school (the
    benchmark's data set, ``learnplat tenants seed``'s demo school).

    Called once per school, after the plugins this one requires, inside the school's context
    and its one transaction (a part that raises leaves no part written). Read the sizes asked
    for with ``seed.size(name, default)`` and what earlier plugins made from ``seed.made``
    (each plugin documents its keys there); write with ``seed.bulk``/``seed.bulk_ids`` (the
    model's INSERT, many rows at once) or the plugin's services; draw every random choice
    from ``seed.rng`` (a run is deterministic); leave in ``seed.made`` what later plugins
    need, under keys prefixed with the plugin's name. Since 0.2.
    """
