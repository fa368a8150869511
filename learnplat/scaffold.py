"""`learnplat plugins new NAME`: a third-party plugin package to start from.

The generated package is what docs/plugins.md walks through: a setup file with the entry
point, `api.py` (the service contract), `events.py` (the event it records), one model with its
migration, one permission, routes to create and list, a tenant task, a CLI command, a handler
for the courses plugin's CoursePublished event, and tests on the shipped fixtures. A test in
this repository generates it, installs it with pip and runs its tests.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from string import Template

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,30}$")

FILES: dict[str, str] = {
    "pyproject.toml": """\
[build-system]
requires = ["setuptools>=68", "wheel"]
build-backend = "setuptools.build_meta"
""",
    "setup.cfg": """\
[metadata]
name = learnplat-$name
version = 0.1.0
description = The $name plugin for learnplat

[options]
python_requires = >=3.11
packages = learnplat_$name
install_requires =
    learnplat

[options.package_data]
learnplat_$name = migrations/*.py

[options.entry_points]
learnplat.plugins =
    $name = learnplat_$name.hooks
""",
    "README.md": """\
# learnplat-$name

A learnplat plugin. `pip install -e .` in learnplat's environment, then `learnplat migrate`;
`pytest` runs its tests (`LEARNPLAT_TEST_BACKEND=postgres` with `LEARNPLAT_TEST_DATABASE_URL`
and `LEARNPLAT_TEST_REDIS_URL` for PostgreSQL + Redis).
""",
    "learnplat_$name/__init__.py": '"""The $name plugin for learnplat."""\n',
    "learnplat_$name/api.py": '''\
"""What the $name plugin offers other plugins: ``runtime.service(${upper})``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from learnplat.plugin import ServiceKey


@dataclass(frozen=True)
class ItemInfo:
    id: int
    title: str


class ${camel}API(Protocol):
    def create(self, title: str) -> ItemInfo:
        """Add an item in the current tenant (inside a transaction)."""

    def count(self) -> int:
        """How many items the current tenant has."""


${upper}: ServiceKey[${camel}API] = ServiceKey("$name", ${camel}API)
''',
    "learnplat_$name/events.py": '''\
"""Events the $name plugin records (versioned names, never renamed)."""

from __future__ import annotations

from typing import ClassVar

from learnplat.plugin import Event


class ItemCreated(Event):
    """An item was added."""
    name: ClassVar[str] = "$name.item_created.v1"
    item_id: int
    title: str
''',
    "learnplat_$name/hooks.py": '''\
"""The $name plugin: items per school, added by hand or when a course is published."""

from typing import Any

import click
import peewee
from learnplat_courses.events import CoursePublished

import learnplat.plugin as lp

from .api import ${upper}, ItemInfo
from .events import ItemCreated

requires = ("courses",)


class Item(lp.TenantModel):  # table ${name}_item; every query is scoped to the school
    title = peewee.CharField(max_length=200)
    created_at = lp.UTCDateTimeField(default=lp.utcnow)


class ItemIn(lp.Schema):  # unknown fields are a 422
    title: str = lp.Field(min_length=1, max_length=200)


class ${camel}Service:  # what other plugins get from runtime.service(${upper})
    def __init__(self, runtime: Any):
        self.runtime = runtime

    def create(self, title: str) -> ItemInfo:
        item = Item.create(title=title)
        self.runtime.events.record(ItemCreated(item_id=item.id, title=title))
        return ItemInfo(item.id, item.title)

    def count(self) -> int:
        return Item.select().count()


class Items:
    def __init__(self, runtime: Any):
        self.runtime = runtime

    @lp.endpoint(permission=lp.AUTHENTICATED, query=lp.PageQuery)
    def on_get(self, req: Any, resp: Any, *, query: lp.PageQuery) -> Any:
        """The school's items, newest first."""
        return lp.paginate(Item.select(), [Item.id.desc()], query,
                           lambda i: {"id": i.id, "title": i.title})

    @lp.endpoint(permission="$name.create", body=ItemIn, status=201)
    def on_post(self, req: Any, resp: Any, *, body: ItemIn) -> Any:
        """Add an item."""
        item = self.runtime.service(${upper}).create(body.title)
        return {"id": item.id, "title": item.title}


def count_items(runtime: Any) -> int:
    """A tenant task: runs in the tenant's context and in a transaction."""
    return runtime.service(${upper}).count()


def on_course_published(runtime: Any, event: lp.EventMessage[CoursePublished]) -> None:
    runtime.service(${upper}).create(f"New course: {event.data.title}")


@lp.hookimpl
def register_models() -> list[type]:
    return [Item]


@lp.hookimpl
def register_events() -> list[type[lp.Event]]:
    return [ItemCreated]


@lp.hookimpl
def register_permissions() -> list[lp.Permission]:
    return [lp.Permission("$name.create", "Add items", {"admin": "any", "instructor": "any"})]


@lp.hookimpl
def register_services(runtime: Any) -> dict[lp.ServiceKey[Any], Any]:
    return {${upper}: ${camel}Service(runtime)}


@lp.hookimpl
def register_routes(runtime: Any) -> list[lp.Route]:
    return [lp.Route("/$name/items", Items(runtime))]


@lp.hookimpl
def register_tasks() -> list[lp.TaskSpec]:
    return [lp.TaskSpec("$name.count_items", count_items)]


@lp.hookimpl
def register_event_handlers() -> list[lp.EventHandler]:
    return [lp.EventHandler(CoursePublished, "announce", on_course_published)]


@lp.hookimpl
def register_commands(cli: click.Group) -> None:
    @lp.tenant_command(cli, "$name-count")
    def count(runtime: Any, tenant: Any) -> None:
        """How many items a school has."""
        click.echo(runtime.service(${upper}).count())
''',
    "learnplat_$name/migrations/__init__.py": "",
    "learnplat_$name/migrations/0001_initial.py": '''\
"""$name: the item table."""
from peewee import *
from learnplat.models import UTCDateTimeField


def up(migrator, db):
    class Tenant(Model):
        class Meta:
            database = db
            table_name = 'learnplat_tenant'

    class Item(Model):
        tenant = ForeignKeyField(Tenant, on_delete='CASCADE', column_name='tenant_id')
        title = CharField(max_length=200)
        created_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = '${name}_item'
    db.create_tables([Item])
''',
    "tests/test_$name.py": '''\
"""The $name plugin, through learnplat's shipped pytest fixtures."""

from learnplat_courses.events import CoursePublished
from learnplat_$name.api import ${upper}

from learnplat.plugin import db, tenant_context


def test_create_list_and_other_tenant_sees_nothing(lp_client, lp_users, lp_other_tenant):
    teacher = lp_users.make("instructor").token
    r = lp_client.as_(teacher).post("/$name/items", json={"title": "first"})
    assert r.status_code == 201
    assert lp_client.as_(teacher).get("/$name/items").json["items"] == [r.json]
    assert lp_client.as_(teacher).post("/$name/items", json={"title": ""}).status_code == 422
    student = lp_users.make("student").token
    assert lp_client.as_(student).post("/$name/items", json={"title": "x"}).status_code == 403
    outsider = lp_users.make("admin", tenant=lp_other_tenant).token
    assert lp_client.as_(outsider, lp_other_tenant).get("/$name/items").json["items"] == []


def test_the_count_command(lp_cli, lp_client, lp_users, lp_tenant):
    teacher = lp_users.make("instructor").token
    lp_client.as_(teacher).post("/$name/items", json={"title": "one"})
    result = lp_cli("$name-count", "--tenant", lp_tenant.slug)
    assert result.exit_code == 0 and result.stdout.strip() == "1"


def test_a_published_course_adds_an_item(lp_runtime, lp_tenant, event_recorder):
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        lp_runtime.events.record(CoursePublished(
            course_id=1, owner_id=2, status="published", title="Algebra", action="approve",
            from_status="pending_review"))
    lp_runtime.events.dispatch_pending()
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        assert lp_runtime.service(${upper}).count() == 1
    assert "$name.item_created.v1" in event_recorder.names()
''',
}


class ScaffoldError(ValueError):
    pass


def render(name: str) -> dict[str, str]:
    """Relative path -> text of every file of a plugin named `name`."""
    if not NAME_RE.match(name) or keyword.iskeyword(name):
        raise ScaffoldError(f"plugin name {name!r}: use 2-31 lower-case letters, digits or _, "
                            "starting with a letter")
    values = {"name": name, "upper": name.upper(),
              "camel": "".join(p.capitalize() for p in name.split("_"))}
    return {Template(path).substitute(values): Template(text).substitute(values)
            for path, text in FILES.items()}


def write(name: str, directory: Path) -> list[Path]:
    """Write the plugin under `directory` (which must not exist or be empty)."""
    files = render(name)
    if directory.exists() and any(directory.iterdir()):
        raise ScaffoldError(f"{directory} exists and is not empty")
    written = []
    for rel, text in files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
