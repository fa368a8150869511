"""`learnplat plugins new NAME`: a third-party plugin package to start from.

The generated package is what docs/plugins.md walks through: a setup file whose entry point
names the plugin's class, `api.py` (the service contract), `events.py` (the event it records),
one model with its migration, its service, routes to create and list, a tenant task
(`tasks.py`), a CLI command (`cli.py`), and `plugin.py`, the plugin object: one permission, a
handler for the courses plugin's CoursePublished event, every hook as a method and the service
as an attribute. It imports the core only through ``learnplat.plugin`` and has no import circle
(``python -m learnplat.boundaries`` passes on it); tests on the shipped fixtures. The model is
named by the author (``--model Bookmark``; ``Item`` by default) so that its class, table,
migration, event, routes and task agree from the start instead of after a rename. A test in
this repository generates one, installs it with pip and runs its tests.
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
    $name = learnplat_$name.plugin:${camel}Plugin
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

from typing import Protocol

from learnplat.plugin import Record, ServiceKey


class ${Model}Info(Record):  # frozen data; also the routes' answer (resources.py)
    id: int
    title: str


class ${camel}API(Protocol):
    def create(self, title: str) -> ${Model}Info:
        """Add ${a_model} in the current tenant (inside a transaction)."""

    def count(self) -> int:
        """How many ${models_words} the current tenant has."""


${upper}: ServiceKey[${camel}API] = ServiceKey("$name", ${camel}API)
''',
    "learnplat_$name/events.py": '''\
"""Events the $name plugin records (versioned names, never renamed)."""

from __future__ import annotations

from typing import ClassVar

from learnplat.plugin import Event


class ${Model}Created(Event):
    """${A_model} was added."""
    name: ClassVar[str] = "$name.${model}_created.v1"
    ${model}_id: int
    title: str
''',
    "learnplat_$name/models.py": '''\
"""The $name plugin's tables."""

import peewee

import learnplat.plugin as lp


class ${Model}(lp.TenantModel):  # table ${name}_${model}; every query is scoped to the school
    title = peewee.CharField(max_length=200)
    created_at = lp.UTCDateTimeField(default=lp.utcnow)
''',
    "learnplat_$name/services.py": '''\
"""The $name plugin's service: what its routes, command and task do, and what other plugins
get from ``runtime.service(${upper})``."""

from __future__ import annotations

import learnplat.plugin as lp

from .api import ${Model}Info
from .events import ${Model}Created
from .models import ${Model}


class ${camel}Service:
    def __init__(self, runtime: lp.Runtime):
        self.runtime = runtime

    def create(self, title: str) -> ${Model}Info:
        row = ${Model}.create(title=title)
        self.runtime.events.record(${Model}Created(${model}_id=row.id, title=title))
        return ${model}_info(row)

    def count(self) -> int:
        return ${Model}.select().count()


def ${model}_info(row: ${Model}) -> ${Model}Info:
    return ${Model}Info(id=row.id, title=row.title)
''',
    "learnplat_$name/resources.py": '''\
"""The $name plugin's routes: GET and POST /$name/${models_path}."""

from typing import Any

import learnplat.plugin as lp

from .api import ${Model}Info
from .models import ${Model}
from .services import ${camel}Service, ${model}_info


class ${Model}In(lp.Schema):  # unknown fields are a 422
    title: str = lp.Field(min_length=1, max_length=200)


class ${Model}Page(lp.Page[${Model}Info]):  # a page's one shape: returned, and in /openapi.json
    pass


class ${Models}:
    def __init__(self, service: ${camel}Service):
        self.service = service

    @lp.endpoint(permission=lp.AUTHENTICATED, query=lp.PageQuery, response=${Model}Page)
    def on_get(self, req: Any, resp: Any, *, query: lp.PageQuery) -> ${Model}Page:
        """The school's ${models_words}, newest first."""
        return ${Model}Page(**lp.paginate(${Model}.select(), [${Model}.id.desc()], query,
                                          ${model}_info))

    @lp.endpoint(permission="$name.create", body=${Model}In, status=201, response=${Model}Info)
    def on_post(self, req: Any, resp: Any, *, body: ${Model}In) -> ${Model}Info:
        """Add ${a_model}."""
        return self.service.create(body.title)
''',
    "learnplat_$name/tasks.py": '''\
"""The $name plugin's tasks. A task gets its plugin's object with ``runtime.plugin_of(__name__)``:
importing the plugin's class here would be an import circle (plugin.py imports this module)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from learnplat.plugin import Runtime

    from .plugin import ${camel}Plugin

log = logging.getLogger(__name__)  # learnplat_$name.tasks: docs/plugins.md, "Logging"


def count_${models}(runtime: Runtime) -> int:
    """A tenant task: runs in the tenant's context and in a transaction."""
    plugin: ${camel}Plugin = runtime.plugin_of(__name__)
    count = plugin.${name}.count()
    log.info("%d ${models_words} in this school", count)  # `learnplat tasks run` shows it
    return count
''',
    "learnplat_$name/cli.py": '''\
"""`learnplat $name-count --tenant SLUG`. With ``plugin=True`` a command receives its plugin's
object (importing the plugin's class here would be an import circle: plugin.py imports this
module)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from learnplat.plugin.cli import with_tenant

if TYPE_CHECKING:
    from learnplat.plugin import TenantInfo

    from .plugin import ${camel}Plugin


@click.command("$name-count")
@with_tenant(write=False, plugin=True)
def count(plugin: ${camel}Plugin, tenant: TenantInfo) -> None:
    """How many ${models_words} a school has."""
    click.echo(plugin.${name}.count())
''',
    "learnplat_$name/plugin.py": '''\
"""The $name plugin's object: its hooks, and its service once the runtime is built (the class
its entry point names)."""

from __future__ import annotations

from typing import Any

import click
from learnplat_courses.events import CoursePublished

import learnplat.plugin as lp

from .api import ${upper}
from .cli import count
from .events import ${Model}Created
from .models import ${Model}
from .resources import ${Models}
from .services import ${camel}Service
from .tasks import count_${models}


class ${camel}Plugin(lp.Plugin):
    """${Models_words} per school, added by hand or when a course is published."""

    requires = ("courses",)  # start-up names it when it is missing
    ${name}: ${camel}Service  # built by register_services

    @lp.hookimpl
    def register_models(self) -> list[type]:
        return [${Model}]

    @lp.hookimpl
    def register_events(self) -> list[type[lp.Event]]:
        return [${Model}Created]

    @lp.hookimpl
    def register_permissions(self) -> list[lp.Permission]:
        return [lp.Permission("$name.create", "Add ${models_words}",
                              {"admin": "any", "instructor": "any"})]

    @lp.hookimpl
    def register_services(self, runtime: lp.Runtime) -> dict[lp.ServiceKey[Any], Any]:
        self.${name} = ${camel}Service(runtime)
        return {${upper}: self.${name}}

    @lp.hookimpl
    def register_routes(self, runtime: lp.Runtime) -> list[lp.Route]:
        return [lp.Route("/$name/${models_path}", ${Models}(self.${name}))]

    @lp.hookimpl
    def register_tasks(self) -> list[lp.TaskSpec]:
        return [lp.TaskSpec("$name.count_${models}", count_${models})]

    @lp.hookimpl
    def register_event_handlers(self) -> list[lp.EventHandler]:
        return [lp.EventHandler(CoursePublished, "announce", self.on_course_published)]

    @lp.hookimpl
    def register_commands(self, cli: click.Group) -> None:
        cli.add_command(count)

    def on_course_published(self, runtime: lp.Runtime,
                            event: lp.EventMessage[CoursePublished]) -> None:
        self.${name}.create(f"New course: {event.data.title}")
''',
    "learnplat_$name/migrations/__init__.py": "",
    "learnplat_$name/migrations/0001_initial.py": '''\
"""$name: the ${model} table."""
from peewee import *
from learnplat.plugin import UTCDateTimeField


def up(migrator, db):
    class Tenant(Model):
        class Meta:
            database = db
            table_name = 'learnplat_tenant'

    class ${Model}(Model):
        tenant = ForeignKeyField(Tenant, on_delete='CASCADE', column_name='tenant_id')
        title = CharField(max_length=200)
        created_at = UTCDateTimeField()
        class Meta:
            database = db
            table_name = '${name}_${model}'
    db.create_tables([${Model}])
''',
    "tests/test_$name.py": '''\
"""The $name plugin, through learnplat's shipped pytest fixtures."""

from learnplat_courses.events import CoursePublished
from learnplat_$name.plugin import ${camel}Plugin

from learnplat.plugin import db, tenant_context


def test_create_list_and_other_tenant_sees_nothing(lp_client, lp_users, lp_other_tenant):
    teacher = lp_users.make("instructor").token
    r = lp_client.as_(teacher).post("/$name/${models_path}", json={"title": "first"})
    assert r.status_code == 201
    assert lp_client.as_(teacher).get("/$name/${models_path}").json["items"] == [r.json]
    empty = lp_client.as_(teacher).post("/$name/${models_path}", json={"title": ""})
    assert empty.status_code == 422
    student = lp_users.make("student").token
    refused = lp_client.as_(student).post("/$name/${models_path}", json={"title": "x"})
    assert refused.status_code == 403
    outsider = lp_users.make("admin", tenant=lp_other_tenant).token
    assert lp_client.as_(outsider, lp_other_tenant).get("/$name/${models_path}").json["items"] == []


def test_the_count_command(lp_cli, lp_client, lp_users, lp_tenant):
    teacher = lp_users.make("instructor").token
    lp_client.as_(teacher).post("/$name/${models_path}", json={"title": "one"})
    result = lp_cli("$name-count", "--tenant", lp_tenant.slug)
    assert result.exit_code == 0 and result.stdout.strip() == "1"


def test_a_published_course_adds_${a_model_}(lp_runtime, lp_tenant, event_recorder):
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        lp_runtime.events.record(CoursePublished(
            course_id=1, owner_id=2, status="published", title="Algebra", action="approve",
            from_status="pending_review"))
    lp_runtime.events.dispatch_pending()
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        assert lp_runtime.plugin(${camel}Plugin).${name}.count() == 1
    assert "$name.${model}_created.v1" in event_recorder.names()
''',
}


class ScaffoldError(ValueError):
    pass


MODEL_RE = re.compile(r"^[A-Z][A-Za-z0-9]{0,39}$")
# Names the generated modules (or peewee's Model in the migration) already use.
TAKEN = {"Any", "CoursePublished", "Model", "Tenant"}


def _plugin_attributes() -> set[str]:
    """Names the generated plugin class already has (its service attribute is the plugin's
    name): Plugin's own, the hooks, and the handler it defines."""
    from . import hookspecs
    from .contracts import Plugin

    return ({n for n in dir(Plugin) if not n.startswith("_")} | {"name", "runtime"}
            | {n for n in vars(hookspecs) if hasattr(getattr(hookspecs, n), "learnplat_spec")}
            | {"on_course_published"})


def snake(camel: str) -> str:
    """ShelfItem -> shelf_item (as learnplat.models.default_table_name names tables)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def plural(word: str) -> str:
    """English plural of a (snake_case) word, good enough for routes: item -> items,
    box -> boxes, category -> categories."""
    if re.search(r"(s|x|z|ch|sh)$", word):
        return word + "es"
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ies"
    return word + "s"


def template_values(name: str, model: str = "Item") -> dict[str, str]:
    """The placeholders of FILES for plugin `name` and its model class `model`."""
    if not NAME_RE.match(name) or keyword.iskeyword(name):
        raise ScaffoldError(f"plugin name {name!r}: use 2-31 lower-case letters, digits or _, "
                            "starting with a letter")
    if not MODEL_RE.match(model) or model in TAKEN:
        raise ScaffoldError(f"model name {model!r}: use a CamelCase class name (1-40 letters or "
                            f"digits, starting with a capital), not one of {sorted(TAKEN)}")
    if name in _plugin_attributes():
        raise ScaffoldError(f"plugin name {name!r}: the plugin object keeps its service under "
                            "that name, which its class already uses")
    camel = "".join(p.capitalize() for p in name.split("_"))
    if model in (f"{camel}Service", f"{camel}API", f"{camel}Plugin"):
        raise ScaffoldError(f"model name {model!r} is taken by the plugin's own classes")
    model_snake = snake(model)
    models = plural(model_snake)
    words = model_snake.replace("_", " ")
    article = "an" if words[0] in "aeiou" else "a"
    return {"name": name, "upper": name.upper(), "camel": camel,
            "Model": model, "model": model_snake, "models": models,
            "Models": "".join(p.capitalize() for p in models.split("_")),
            "models_path": models.replace("_", "-"),  # /shelf/shelf-boxes
            "model_words": words, "a_model": f"{article} {words}",
            "A_model": f"{article.capitalize()} {words}", "a_model_": f"{article}_{model_snake}",
            "models_words": models.replace("_", " "),
            "Models_words": models.replace("_", " ").capitalize()}


def render(name: str, model: str = "Item") -> dict[str, str]:
    """Relative path -> text of every file of a plugin named `name` whose model is `model`
    (class name; its table is ``<name>_<model in snake_case>``, its routes the plural)."""
    values = template_values(name, model)
    return {Template(path).substitute(values): Template(text).substitute(values)
            for path, text in FILES.items()}


def write(name: str, directory: Path, model: str = "Item") -> list[Path]:
    """Write the plugin under `directory` (which must not exist or be empty)."""
    files = render(name, model)
    if directory.exists() and any(directory.iterdir()):
        raise ScaffoldError(f"{directory} exists and is not empty")
    written = []
    for rel, text in files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
