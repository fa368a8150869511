"""The sample plugin's object: every hook it implements, as methods, and its service once the
runtime is built (the class its entry point names)."""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import click
import falcon
import peewee
from huey import crontab
from pydantic import BaseModel, ConfigDict, Field

from learnplat.plugin import (
    PUBLIC,
    Action,
    Event,
    EventHandler,
    EventMessage,
    HealthCheck,
    PageQuery,
    Permission,
    Plugin,
    Principal,
    Route,
    Runtime,
    Seed,
    ServiceKey,
    TaskSpec,
    TenantInfo,
    TenantModel,
    UTCDateTimeField,
    Veto,
    Vetoed,
    current_tenant,
    endpoint,
    hookimpl,
    paginate,
    utcnow,
)

from . import specs


class BookmarkCreated(Event):
    """Someone added a bookmark."""
    name: ClassVar[str] = "sample.bookmark.created.v1"
    bookmark_id: int


CREATE = Action("sample.bookmark.create", "Someone adds a bookmark", ("url",))


class GreeterAPI(Protocol):
    def greet(self) -> str:
        """A greeting, decorated by the sample hookspec's implementations."""


GREETER: ServiceKey[GreeterAPI] = ServiceKey("sample.greeter", GreeterAPI)


class Bookmark(TenantModel):
    url = peewee.CharField(max_length=500)
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "sample_bookmark"


class SampleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    greeting: str = "hello"


class BookmarkIn(BaseModel):
    url: str = Field(min_length=1, max_length=500)


class BookmarkOut(BaseModel):
    id: int
    url: str


class BookmarkPage(BaseModel):
    items: list[BookmarkOut]
    next_cursor: str | None = None


class Greeter:
    """The service this plugin exports to others."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.started = False

    def greet(self) -> str:
        base = self.runtime.settings_of(SampleSettings).greeting
        extra = self.runtime.hook.sample_decorate_greeting(greeting=base)
        return " ".join([base, *extra])


class Bookmarks:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    @endpoint(permission=PUBLIC, query=PageQuery, response=BookmarkPage, tags=("sample",))
    def on_get(self, req: falcon.Request, resp: falcon.Response, *, query: PageQuery) -> Any:
        """List bookmarks."""
        return BookmarkPage(**paginate(Bookmark.select(), [Bookmark.id], query,
                                       lambda b: BookmarkOut(id=b.id, url=b.url)))

    @endpoint(permission="sample.bookmark.create", body=BookmarkIn, response=BookmarkOut,
              status=201, tags=("sample",))
    def on_post(self, req: falcon.Request, resp: falcon.Response, *, body: BookmarkIn) -> Any:
        """Add a bookmark."""
        ctx = req.context
        self.runtime.before(CREATE, ctx.tenant, ctx.principal, url=body.url)
        row = Bookmark.create(url=body.url)
        self.runtime.events.record(BookmarkCreated(bookmark_id=row.id))
        self.runtime.queue.enqueue_for_tenant("sample.count_bookmarks")
        return BookmarkOut(id=row.id, url=row.url)


class Hello:
    def __init__(self, greeter: Greeter):
        self.greeter = greeter

    @endpoint(permission=PUBLIC, tags=("sample",))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> Any:
        """A greeting from the sample service."""
        return {"greeting": self.greeter.greet()}


def count_bookmarks(runtime: Runtime) -> int:
    """Tenant-scoped task: store the tenant's bookmark count in the key-value store."""
    n = Bookmark.select().count()
    runtime.kv.set(f"sample:count:{current_tenant().id}", str(n))
    return n


def heartbeat(runtime: Runtime) -> None:
    """Global periodic task. It finds its plugin's object by class (a task module that must
    not import the class uses ``runtime.plugin_of(__name__)``)."""
    plugin = runtime.plugin(SamplePlugin)
    runtime.kv.set("sample:heartbeat", "1" if plugin.greeter.started else "0")


def on_created(runtime: Runtime, event: EventMessage[BookmarkCreated]) -> None:
    runtime.kv.set(f"sample:event:{event.id}", f"{event.name} {event.data.bookmark_id}")


def refuse_blocked(runtime: Runtime, tenant: TenantInfo, principal: Principal | None,
                   data: dict[str, Any]) -> None:
    if "blocked.example" in data.get("url", ""):
        raise Vetoed("bookmarks to blocked.example are not allowed")


class SamplePlugin(Plugin):
    """Bookmarks per school, exercising every hook (the class its entry point names)."""

    requires = ("core",)
    hookspecs = specs  # published for other plugins; learnplat adds them before registering
    greeter: Greeter  # built by register_services

    @hookimpl
    def register_models(self) -> list[type]:
        return [Bookmark]

    @hookimpl
    def register_settings(self) -> dict[str, type]:
        return {"sample": SampleSettings}

    @hookimpl
    def register_services(self, runtime: Runtime) -> dict[ServiceKey[Any], Any]:
        self.greeter = Greeter(runtime)
        return {GREETER: self.greeter}

    @hookimpl
    def register_routes(self, runtime: Runtime) -> list[Route]:
        return [Route("/sample/bookmarks", Bookmarks(runtime)),
                Route("/sample/hello", Hello(self.greeter), tenant_scoped=False)]

    @hookimpl
    def register_permissions(self) -> list[Permission]:
        return [Permission("sample.bookmark.create", "Add a bookmark",
                           grants={"admin": "any", "instructor": "any", "student": "any"})]

    @hookimpl
    def register_tasks(self) -> list[TaskSpec]:
        return [TaskSpec("sample.count_bookmarks", count_bookmarks),
                TaskSpec("sample.heartbeat", heartbeat, tenant_scoped=False,
                         periodic=crontab(minute="*/5"))]

    @hookimpl
    def register_events(self) -> list[type[Event]]:
        return [BookmarkCreated]

    @hookimpl
    def register_actions(self) -> list[Action]:
        return [CREATE]

    @hookimpl
    def register_event_handlers(self) -> list[EventHandler]:
        return [EventHandler(BookmarkCreated, "remember", on_created)]

    @hookimpl
    def register_vetoes(self) -> list[Veto]:
        return [Veto(CREATE, "blocked_domains", refuse_blocked)]

    @hookimpl
    def register_commands(self, cli: click.Group) -> None:
        @cli.group()
        def sample() -> None:
            """The sample plugin's commands."""

        @sample.command()
        @click.option("--name", default="world")
        def hello(name: str) -> None:
            """Say hello."""
            click.echo(f"hello {name} from learnplat-sample")

    @hookimpl
    def register_health_checks(self) -> list[HealthCheck]:
        return [HealthCheck("sample", lambda runtime: self.greeter)]

    @hookimpl
    def startup(self, runtime: Runtime) -> None:
        self.greeter.started = True

    @hookimpl
    def extend_openapi(self, document: dict[str, Any]) -> None:
        document.setdefault("tags", []).append(
            {"name": "sample", "description": "Bookmarks (learnplat-sample)"})

    @hookimpl(tryfirst=True)
    def authenticate(self, runtime: Runtime, credentials: Any, tenant: TenantInfo
                     ) -> Principal | None:
        """Accepts ``Bearer sample:<tenant id>:<role>`` (a stand-in for a real identity
        plugin)."""
        token = credentials.bearer or ""
        if not token.startswith("sample:"):
            return None
        _, tenant_id, role = token.split(":")
        return Principal(user_id=0, tenant_id=int(tenant_id), role=role,
                         grants=runtime.registry.grants_for(role))

    @hookimpl
    def sample_decorate_greeting(self, greeting: str) -> str:
        return "from the sample hookspec"

    @hookimpl
    def seed_tenant(self, seed: Seed) -> None:
        """`bookmarks` (3) bookmarks in a generated school."""
        seed.bulk(Bookmark, [{"url": f"https://example.org/seeded/{n}"}
                             for n in range(seed.size("bookmarks", 3))])
