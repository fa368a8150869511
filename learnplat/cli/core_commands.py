"""The core's commands: migrate, tenants, plugins, serve, worker, openapi (and, through the
modules imported below, config, tasks, permissions and events)."""

from __future__ import annotations

import logging
import os
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import peewee
from pydantic import ValidationError

from .. import db
from ..errors import LearnplatError, ValidationFailed
from ..safety import check_start
from ..secret_keys import require_decryptable
from ..tenancy import TenantInfo, tenant_context
from . import (  # noqa: F401  (register their commands)
    backup_commands,
    event_commands,
    permission_commands,
    secret_commands,
    task_commands,
)
from .config_command import describe_home
from .helpers import echo_rows, json_option
from .main import AppContext, cli, echo_json, pass_app
from .passwords import password_options


def tenant_dict(t: TenantInfo) -> dict[str, Any]:
    return {"id": t.id, "slug": t.slug, "name": t.name, "domains": list(t.domains),
            "enabled": t.enabled, "disabled_plugins": sorted(t.disabled_plugins),
            "settings": t.settings}


@cli.command()
@pass_app
def migrate(app: AppContext) -> None:
    """Apply every plugin's pending migrations (safe to run twice, or twice at once)."""
    from ..migrate import migrate as run

    runtime = app.runtime
    # Which home, so a relative sqlite:///var/... says where it is; stdout, because stderr
    # holds only the one error line when there is one.
    click.echo(describe_home(runtime.settings))
    applied = run(runtime)
    for name in applied:
        click.echo(f"applied {name}")
    click.echo(f"{len(applied)} migration(s) applied" if applied else "up to date")


@cli.command()
@click.argument("plugin")
@click.option("--name", default="", help="Migration name (default: initial / auto).")
@pass_app
def makemigrations(app: AppContext, plugin: str, name: str) -> None:
    """Write a migration for PLUGIN's models against the current database."""
    from ..migrate import generate

    if plugin not in app.runtime.plugins:
        raise LearnplatError(f"no plugin {plugin!r}")
    path = generate(app.runtime, plugin, name)
    click.echo(path or "models match the database; nothing to write")


# -- tenants ---------------------------------------------------------------------------------


@cli.group()
def tenants() -> None:
    """Create and manage tenants (schools)."""


@tenants.command("create")
@click.argument("slug")
@click.option("--name", required=True)
@click.option("--domain", "domains", multiple=True, help="Host name (repeatable).")
@click.option("--admin-email", required=True)
@password_options("admin-password", "the admin", account="admin_email")
@pass_app
def tenants_create(app: AppContext, slug: str, name: str, domains: tuple[str, ...],
                   admin_email: str, admin_password: str) -> None:
    """Create tenant SLUG with its first admin (the password is asked for at the terminal, or
    read with --admin-password-file FILE, - for standard input)."""
    rt = app.runtime
    spec = _spec(slug=slug, name=name, domains=list(domains))
    with app.connection(), db.transaction():
        tenant = rt.tenants.create(spec)
        with tenant_context(tenant):
            user_id = rt.hook.provision_tenant_admin(
                runtime=rt, tenant=tenant, email=admin_email, password=admin_password)
        if user_id is None:
            raise LearnplatError("no identity plugin is loaded to create the admin user")
    click.echo(f"created tenant {tenant.slug} (id {tenant.id}) with admin {admin_email}")


def _spec(**data: Any) -> Any:
    from ..tenants import TenantSpec

    try:
        return TenantSpec(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where, message = ".".join(map(str, err["loc"])), str(err["msg"])
        if err["type"] == "value_error" and where == "settings":
            # TenantSpec names the settings key itself: "settings.limits.x: what is wrong".
            where, _, message = str(err.get("ctx", {}).get("error", message)).partition(": ")
        raise ValidationFailed.field(where, message) from None


@tenants.command("list")
@json_option
@pass_app
def tenants_list(app: AppContext, as_json: bool) -> None:
    """List tenants."""
    with app.connection():
        rows = [tenant_dict(t) for t in app.runtime.tenants.list()]
    echo_rows(rows, lambda t: (t["slug"], t["name"], "enabled" if t["enabled"] else "disabled",
                               ",".join(t["domains"])), as_json=as_json)


@tenants.command("show")
@click.argument("slug")
@pass_app
def tenants_show(app: AppContext, slug: str) -> None:
    """Show one tenant as JSON, with the API rate limits in force for it (configuration,
    overlaid with the tenant's `settings.limits`)."""
    rt = app.runtime
    with app.connection():
        tenant = rt.tenants.require(slug)
    shown = tenant_dict(tenant)
    shown["limits"] = {"enabled": rt.settings.limits.enabled, **rt.limits.effective(tenant)}
    echo_json(shown)


# A demo school's sizes (the plugins' defaults are the benchmark's, 400 users per school).
DEMO_SIZES = {"users": 60, "instructors": 4, "courses": 8, "modules_per_course": 6,
              "enrollments": 150, "notifications_per_student": 3, "notifications_read": 1}


@tenants.command("seed")
@click.argument("slug")
@click.option("--size", "sizes", multiple=True, metavar="NAME=VALUE",
              help="A size for the plugins' parts (repeatable): users, instructors, courses, "
                   "modules_per_course, enrollments, attempt_share, notifications_per_student"
                   "... (docs/plugins.md, seed_tenant).")
@click.option("--rng-seed", default=14, show_default=True, help="The generator's seed.")
@click.option("--login-password-file", type=click.Path(dir_okay=False, allow_dash=True,
                                                       path_type=Path), default=None,
              help="Give --size login_accounts=N students (default 2) the password in this "
                   "file (- for standard input); the other accounts have none.")
@json_option
@pass_app
def tenants_seed(app: AppContext, slug: str, sizes: tuple[str, ...], rng_seed: int,
                 login_password_file: Path | None, as_json: bool) -> None:
    """Fill school SLUG with a generated demo data set: every plugin writes its part (users,
    published courses and modules, enrollments, progress, quiz attempts, notifications).
    Meant for a new school: it adds, it never replaces. E-mails end in @SLUG.example."""
    from ..seeding import SeedRun
    from .main import read_text_file

    asked: dict[str, Any] = dict(DEMO_SIZES)
    for item in sizes:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValidationFailed.field("size", f"NAME=VALUE, not {item!r}")
        if name.strip() == "login_password":  # ps and shell history would show it (issue 34)
            raise ValidationFailed.field("size", "the login password is read with "
                                                 "--login-password-file, not given as a size")
        asked[name.strip()] = value.strip()
    if login_password_file is not None:
        text = (sys.stdin.read() if str(login_password_file) == "-"
                else read_text_file(login_password_file))
        asked["login_password"] = text.splitlines()[0] if text.strip() else ""
        asked.setdefault("login_accounts", 2)
    rt = app.runtime
    run = SeedRun(rt, rng_seed)
    with app.connection():
        tenant = rt.tenants.require(slug)
    seed = run.tenant(tenant, asked)
    unread = sorted(set(asked) - seed.asked)
    if unread:
        click.echo(f"warning: no plugin reads the size {', '.join(unread)}", err=True)
    if as_json:
        echo_json({"tenant": slug, "rows": dict(sorted(run.rows.items())),
                   "seconds": {name: round(t, 2) for name, t in run.seconds.items()}})
        return
    click.echo(f"seeded {slug}: " + ", ".join(f"{n} {kind}" for kind, n in run.rows.items()))


@tenants.command("disable")
@click.argument("slug")
@pass_app
def tenants_disable(app: AppContext, slug: str) -> None:
    """Disable a tenant: its API answers 404 until enabled again."""
    rt = app.runtime
    with app.connection():
        rt.tenants.set_enabled(slug, False)
    click.echo(f"disabled {slug}")


@tenants.command("enable")
@click.argument("slug")
@pass_app
def tenants_enable(app: AppContext, slug: str) -> None:
    """Enable a disabled tenant."""
    rt = app.runtime
    with app.connection():
        rt.tenants.set_enabled(slug, True)
    click.echo(f"enabled {slug}")


@tenants.command("apply")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@pass_app
def tenants_apply(app: AppContext, path: Path) -> None:
    """Create or update tenants from tenants/*.toml (one file per school); idempotent."""
    files = sorted(path.glob("*.toml")) if path.is_dir() else [path]
    rt = app.runtime
    specs = []
    for f in files:
        try:
            data = tomllib.loads(f.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise LearnplatError(f"{f}: invalid TOML: {exc}") from None
        data.setdefault("slug", f.stem)
        try:
            spec = _spec(**data)
            # The whole settings tree against what the loaded plugins declare
            # (Plugin.tenant_settings): a wrong value is refused here, not a 500 later.
            rt.tenants.check_settings(spec.settings)
        except ValidationFailed as exc:
            raise LearnplatError(f"{f}: " + "; ".join(
                f"{e['field']}: {e['message']}" for e in exc.errors[:5])) from None
        specs.append(spec)
    # All files are validated before anything is written; then one transaction for all.
    with app.connection(), db.transaction():
        results = [rt.tenants.apply(spec) for spec in specs]
    for outcome, tenant in results:
        click.echo(f"{outcome} {tenant.slug}")


# -- plugins -------------------------------------------------------------------------------


@cli.group()
def plugins() -> None:
    """Inspect plugins."""


@plugins.command("list")
@json_option
@click.option("--tenant", default=None, help="Show whether each plugin is enabled there.")
@pass_app
def plugins_list(app: AppContext, as_json: bool, tenant: str | None) -> None:
    """Name, version, where it was loaded from, and whether it is enabled."""
    rt = app.runtime
    info = None
    if tenant:
        with app.connection():
            info = rt.tenants.require(tenant)
    rows = [{"name": p.name, "version": p.version, "module": p.module, "location": p.location,
             "requires": list(p.requires), "enabled": info.plugin_enabled(p.name) if info else True}
            for p in rt.plugins.values()]
    echo_rows(rows, lambda r: (r["name"], r["version"], r["location"],
                               "enabled" if r["enabled"] else "disabled"), as_json=as_json)


@plugins.command("new")
@click.argument("name")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Where to write it (default: ./learnplat-NAME).")
@click.option("--model", default="Item", show_default=True, metavar="CLASS",
              help="The model's class name (CamelCase): its table, migration, event, routes "
                   "and task are named after it.")
def plugins_new(name: str, directory: Path | None, model: str) -> None:
    """Scaffold a third-party plugin package NAME: model + migration, api.py, events.py, a
    permission, routes, a task, a CLI command, an event handler and tests."""
    from ..scaffold import ScaffoldError, write

    target = directory or Path(f"learnplat-{name}")
    try:
        files = write(name, target, model)
    except ScaffoldError as exc:
        raise LearnplatError(str(exc)) from None
    click.echo(f"wrote {len(files)} files in {target}; next: pip install -e {target} && "
               f"learnplat migrate && (cd {target} && pytest)")


# -- processes ----------------------------------------------------------------------------


def app_spec(worker_class: str) -> str:
    """What gunicorn loads: the ASGI entry (REST + WebSockets) or the WSGI app (REST)."""
    if worker_class == "asgi":
        return "learnplat.http.asgi:get_asgi_app()"
    return "learnplat.http.app:get_app()"


@cli.command()
@click.option("--bind", default=None, help="HOST:PORT (default: server.bind).")
@click.option("--workers", type=int, default=None, help="Worker processes (server.workers).")
@click.option("--no-migrate", is_flag=True, help="Do not apply migrations first.")
@pass_app
def serve(app: AppContext, bind: str | None, workers: int | None, no_migrate: bool) -> None:
    """Apply migrations and serve the API with gunicorn (plus an embedded queue worker)."""
    from ..migrate import migrate as run

    # Settings alone first: unsafe ones are refused (below) before the runtime is built (with
    # an empty app.secret_key that would write var/secret.key).
    settings = app.settings
    click.echo(describe_home(settings))
    bind = bind or settings.server.bind
    # The processes started below (gunicorn's workers, the embedded queue worker) read their
    # settings afresh: they must see the address bound, which an empty app.public_url is
    # derived from (certificates' QR codes and DIDs; Settings.public_url_in_force).
    os.environ["LEARNPLAT_SERVER_BIND"] = bind
    public = settings.public_url_in_force(bind)
    click.echo(f"public URL: {public.url or '(none)'} ({public.source})")
    # Unsafe settings: refused in production before anything is changed, warned otherwise.
    for warning in check_start(settings, bind, process="serve"):
        click.echo(warning, err=True)
    if not no_migrate:
        run(app.runtime)
    # After the migrations (a new database has no keys yet): every key at rest must decrypt,
    # or every login of that school would answer 500.
    require_decryptable(app.runtime)
    # A home may carry its own gunicorn settings; an installed learnplat has the packaged ones.
    conf = Path(settings.home) / "config" / "gunicorn.conf.py"
    conf_arg = str(conf) if conf.is_file() else "python:learnplat.gunicorn_conf"
    # Not `python -m gunicorn`: it puts the current directory first on sys.path, where a folder
    # named learnplat/ (the checkout, seen from its parent) shadows the package. -P and our
    # gunicorn entry keep it off; the server runs in the home, whatever directory it came from.
    chdir = ["--chdir", settings.home] if Path(settings.home).is_dir() else []
    args = [sys.executable, "-P", "-m", "learnplat.cli.gunicorn_main", "-c", conf_arg, *chdir,
            "--bind", bind or settings.server.bind,
            "--workers", str(workers or settings.server.workers),
            "--no-control-socket", app_spec(settings.server.worker_class)]
    os.environ.setdefault("LEARNPLAT_HOME", settings.home)
    # Inherited by the embedded worker and by gunicorn's re-exec on USR2 (which drops -P).
    os.environ["PYTHONSAFEPATH"] = "1"
    os.execv(sys.executable, args)


# How long a starting worker waits for an unreachable database before it gives up (exit 1,
# for the service manager to restart it): longer than a PostgreSQL restart or failover.
DATABASE_WAIT_SECONDS = 120.0


def _waiting_for_database(check: Callable[[], object], log: logging.Logger,
                          limit: float = DATABASE_WAIT_SECONDS) -> None:
    """Run `check`, again after a growing pause while the database cannot be reached
    (OperationalError), until it answers or `limit` seconds have passed (then it raises)."""
    deadline = time.monotonic() + limit
    pause = 0.5
    while True:
        try:
            check()
            return
        except peewee.OperationalError as exc:
            if time.monotonic() + pause > deadline:
                raise
            log.warning("database not reachable, retrying in %.1f s: %s", pause,
                        " ".join(str(exc).split()))
            time.sleep(pause)
            pause = min(pause * 2, 10.0)


@cli.command()
@click.option("--workers", type=int, default=None, help="Consumer threads (queue.workers).")
@pass_app
def worker(app: AppContext, workers: int | None) -> None:
    """Run the Huey consumer: background tasks, periodic tasks and event delivery."""
    from ..events import DISPATCH_TASK
    from ..logs import configure_logging

    # Unsafe settings: refused in production before anything is built; in development the
    # warnings are logged below, once the worker is known to run.
    warnings = check_start(app.settings, process="run a worker")
    # Before the runtime is built, so that what building it logs is formatted too.
    configure_logging(app.settings.home, app.settings.logging.repeat_seconds)
    rt = app.runtime
    if rt.settings.queue.immediate:
        raise LearnplatError("queue.immediate is set: tasks run inline, there is nothing to "
                             "consume")
    logging.getLogger(__name__).info("%s", describe_home(rt.settings))
    for warning in warnings:
        logging.getLogger(__name__).warning("%s", warning.removeprefix("warning: "))
    # Tasks sign certificates: their keys must decrypt. A worker started while the database
    # is down (a host booting, a restart) waits for it, as the consumer waits for Redis.
    _waiting_for_database(lambda: require_decryptable(rt), logging.getLogger(__name__))
    # Events recorded while no worker ran are delivered now, not at the next sweep; and the
    # recovery sweeps (TaskSpec.at_start) find work whose task died with a killed worker.
    log = logging.getLogger(__name__)
    for name in [DISPATCH_TASK, *(spec.name for spec in rt.registry.tasks.values()
                                  if spec.at_start and spec.name != DISPATCH_TASK)]:
        try:
            rt.queue.enqueue(name)
        except Exception as exc:  # Redis down at start: the consumer waits for it, the
            # periodic sweeps (and the next commit's dispatch) run once it is back.
            log.warning("could not queue %s at start: %s", name, exc)
    consumer = rt.queue.huey.create_consumer(
        workers=workers or rt.settings.queue.workers, worker_type="thread", periodic=True,
        check_worker_health=True)
    consumer.run()


@cli.command()
@click.option("--check", "check", type=click.Path(dir_okay=False, path_type=Path),
              help="Compare with this snapshot (docs/api/openapi.json): print each breaking "
                   "change and exit 1, or \"no breaking change\".")
@click.option("--write", "write", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the document to this file (the committed snapshot).")
@pass_app
def openapi(app: AppContext, check: Path | None, write: Path | None) -> None:
    """Print the OpenAPI 3.1 document; or check it against a snapshot, or write one
    (docs/api-clients.md, "API evolution")."""
    import json

    import orjson

    from ..api_changes import breaking_changes
    from ..http.openapi import build_document

    if check is None and write is None:
        echo_json(build_document(app.runtime))
        return
    # As GET /openapi.json serializes it (orjson), read back: what a client and the snapshot
    # file hold.
    document = orjson.loads(orjson.dumps(build_document(app.runtime)))
    if check is not None:
        try:
            old = json.loads(check.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise click.ClickException(f"cannot read the snapshot {check}: {exc}") from None
        changes = breaking_changes(old, document)
        for line in changes:
            click.echo(line)
        if not changes:
            click.echo("no breaking change")
            if old != document and write is None:
                click.echo(f"(the snapshot differs: learnplat openapi --write {check})")
    if write is not None:
        write.parent.mkdir(parents=True, exist_ok=True)
        # Sorted keys, one per line: a change to the API is a readable diff in review.
        write.write_text(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)
                         + "\n", encoding="utf-8")
        click.echo(f"wrote {write}", err=True)
    if check is not None and changes:
        sys.exit(1)
