"""Every hook implementation of the sample plugin (the module its entry point names)."""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import click
import falcon
import peewee
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
    Principal,
    Route,
    ServiceKey,
    TaskSpec,
    TenantModel,
    UTCDateTimeField,
    Veto,
    Vetoed,
    endpoint,
    hookimpl,
    paginate,
    utcnow,
)

from . import specs

hookspecs = specs  # published for other plugins; learnplat adds them before registering
requires = ("core",)



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

    def __init__(self, runtime: Any):
        self.runtime = runtime
        self.started = False

    def greet(self) -> str:
        base = self.runtime.plugin_settings["sample"].greeting
        extra = self.runtime.hook.sample_decorate_greeting(greeting=base)
        return " ".join([base, *extra])


class Bookmarks:
    def __init__(self, runtime: Any):
        self.runtime = runtime

    @endpoint(permission=PUBLIC, query=PageQuery, response=BookmarkPage, tags=("sample",))
    def on_get(self, req: falcon.Request, resp: falcon.Response, *, query: PageQuery) -> Any:
        """List bookmarks."""
        return paginate(Bookmark.select(), [Bookmark.id], query,
                        lambda b: {"id": b.id, "url": b.url})

    @endpoint(permission="sample.bookmark.create", body=BookmarkIn, response=BookmarkOut,
              status=201, tags=("sample",))
    def on_post(self, req: falcon.Request, resp: falcon.Response, *, body: BookmarkIn) -> Any:
        """Add a bookmark."""
        ctx = req.context
        self.runtime.before(CREATE, ctx.tenant, ctx.principal, url=body.url)
        row = Bookmark.create(url=body.url)
        self.runtime.events.record(BookmarkCreated(bookmark_id=row.id))
        self.runtime.queue.enqueue_for_tenant("sample.count_bookmarks")
        return {"id": row.id, "url": row.url}


class Hello:
    def __init__(self, runtime: Any):
        self.runtime = runtime

    @endpoint(permission=PUBLIC, tags=("sample",))
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> Any:
        """A greeting from the sample service."""
        return {"greeting": self.runtime.service(GREETER).greet()}


def count_bookmarks(runtime: Any) -> int:
    """Tenant-scoped task: store the tenant's bookmark count in the key-value store."""
    from learnplat.tenancy import current_tenant

    n = Bookmark.select().count()
    runtime.kv.set(f"sample:count:{current_tenant().id}", str(n))
    return n


def heartbeat(runtime: Any) -> None:
    runtime.kv.set("sample:heartbeat", "1")


def on_created(runtime: Any, event: EventMessage[BookmarkCreated]) -> None:
    runtime.kv.set(f"sample:event:{event.id}", f"{event.name} {event.data.bookmark_id}")


@hookimpl
def register_models() -> list[type]:
    return [Bookmark]


@hookimpl
def register_routes(runtime: Any) -> list[Route]:
    return [Route("/sample/bookmarks", Bookmarks(runtime)),
            Route("/sample/hello", Hello(runtime), tenant_scoped=False)]


@hookimpl
def register_permissions() -> list[Permission]:
    return [Permission("sample.bookmark.create", "Add a bookmark",
                       grants={"admin": "any", "instructor": "any", "student": "any"})]


@hookimpl
def register_tasks() -> list[TaskSpec]:
    from huey import crontab

    return [TaskSpec("sample.count_bookmarks", count_bookmarks),
            TaskSpec("sample.heartbeat", heartbeat, tenant_scoped=False,
                     periodic=crontab(minute="*/5"))]


@hookimpl
def register_events() -> list[type[Event]]:
    return [BookmarkCreated]


@hookimpl
def register_actions() -> list[Action]:
    return [CREATE]


@hookimpl
def register_event_handlers() -> list[EventHandler]:
    return [EventHandler(BookmarkCreated, "remember", on_created)]


def refuse_blocked(runtime: Any, tenant: Any, principal: Any, data: dict[str, Any]) -> None:
    if "blocked.example" in data.get("url", ""):
        raise Vetoed("bookmarks to blocked.example are not allowed")


@hookimpl
def register_vetoes() -> list[Veto]:
    return [Veto(CREATE, "blocked_domains", refuse_blocked)]


@hookimpl
def register_services(runtime: Any) -> dict[ServiceKey[Any], Any]:
    return {GREETER: Greeter(runtime)}


@hookimpl
def register_commands(cli: click.Group) -> None:
    @cli.group()
    def sample() -> None:
        """The sample plugin's commands."""

    @sample.command()
    @click.option("--name", default="world")
    def hello(name: str) -> None:
        """Say hello."""
        click.echo(f"hello {name} from learnplat-sample")


@hookimpl
def register_health_checks() -> list[HealthCheck]:
    return [HealthCheck("sample", lambda runtime: runtime.service(GREETER))]


@hookimpl
def register_settings() -> dict[str, type]:
    return {"sample": SampleSettings}


@hookimpl
def startup(runtime: Any) -> None:
    greeter = runtime.service(GREETER)
    assert isinstance(greeter, Greeter)
    greeter.started = True


@hookimpl
def extend_openapi(document: dict[str, Any]) -> None:
    document.setdefault("tags", []).append(
        {"name": "sample", "description": "Bookmarks (learnplat-sample)"})


@hookimpl(tryfirst=True)
def authenticate(runtime: Any, req: falcon.Request, tenant: Any) -> Principal | None:
    """Accepts ``Bearer sample:<tenant id>:<role>`` (a stand-in for a real identity plugin)."""
    scheme, _, token = (req.auth or "").partition(" ")
    if scheme.lower() != "bearer" or not token.startswith("sample:"):
        return None
    _, tenant_id, role = token.split(":")
    return Principal(user_id=0, tenant_id=int(tenant_id), role=role,
                     grants=runtime.registry.grants_for(role))


@hookimpl
def sample_decorate_greeting(greeting: str) -> str:
    return "from the sample hookspec"
