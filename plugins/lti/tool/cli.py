"""`learnplat lti platforms ...`: the LMSs registered to launch a school's courses (add,
list, show, update, remove), for operators and scripts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from learnplat.plugin import TenantInfo, dump, echo_rows
from learnplat.plugin.cli import json_option, tenant_command

from ..cli import body_of, show_record

if TYPE_CHECKING:
    from ..plugin import LtiPlugin

ID = click.IntRange(min=1, max=2**63 - 1)


@click.group()
def platforms() -> None:
    """LMSs (Canvas, Moodle...) that launch the school's courses (learnplat as tool)."""


def _json(value: Any) -> Any:
    import orjson

    return orjson.loads(dump(value))


def _out(plugin: LtiPlugin, row: Any) -> dict[str, Any]:
    from .resources import platform_out

    return dict(_json(platform_out(plugin, row)))


_OPTIONS = [
    click.option("--name", help="What the school calls it."),
    click.option("--issuer", help="The platform's issuer (iss of its id_tokens)."),
    click.option("--client-id", help="The client id the platform gave learnplat."),
    click.option("--deployment-id", "deployment_ids", multiple=True, metavar="ID",
                 help="A deployment allowed to launch; repeat for more."),
    click.option("--auth-login-url", help="The platform's OIDC authorization endpoint."),
    click.option("--token-url", help="Its OAuth 2 token endpoint."),
    click.option("--jwks-url", help="Its public keys (JWKS URL)."),
    click.option("--landing-url", help="Where launched users land (else oauth.redirect_url)."),
]


def _with_options(fn: Any) -> Any:
    for option in reversed(_OPTIONS):
        fn = option(fn)
    return fn


def _given(**options: Any) -> dict[str, Any]:
    out = {k: v for k, v in options.items() if v is not None and v != ()}
    if "deployment_ids" in out:
        out["deployment_ids"] = list(out["deployment_ids"])
    return out


@tenant_command(platforms, "add", allow_disabled=True, plugin=True)
@_with_options
@click.option("--disabled", is_flag=True, help="Register it switched off.")
@json_option
def add(plugin: LtiPlugin, tenant: TenantInfo, disabled: bool, as_json: bool,
        **options: Any) -> None:
    """Register a platform; prints what to enter in it (learnplat's tool URLs)."""
    from .platforms import PlatformRegistrations
    from .schemas import LtiToolPlatformIn

    body = body_of(LtiToolPlatformIn, {**_given(**options), "enabled": not disabled})
    show_record(_out(plugin, PlatformRegistrations(plugin).create(body.model_dump())), as_json)


@tenant_command(platforms, "list", write=False, allow_disabled=True, plugin=True)
@json_option
def list_platforms(plugin: LtiPlugin, tenant: TenantInfo, as_json: bool) -> None:
    """The school's platform registrations, oldest first."""
    from ..models import PlatformRegistration

    rows = [_out(plugin, r) for r in PlatformRegistration.select().order_by(
        PlatformRegistration.id)]
    echo_rows(rows, lambda p: (p["id"], "enabled" if p["enabled"] else "disabled", p["name"],
                               p["issuer"], p["client_id"], ",".join(p["deployment_ids"])),
              as_json=as_json)


@tenant_command(platforms, "show", write=False, allow_disabled=True, plugin=True)
@click.argument("platform_id", type=ID)
@json_option
def show(plugin: LtiPlugin, tenant: TenantInfo, platform_id: int, as_json: bool) -> None:
    """One registration and what to enter in the platform."""
    from .platforms import PlatformRegistrations

    show_record(_out(plugin, PlatformRegistrations(plugin).get(platform_id)), as_json)


@tenant_command(platforms, "update", allow_disabled=True, plugin=True)
@click.argument("platform_id", type=ID)
@_with_options
@click.option("--enabled/--disabled", default=None, help="Switch it on or off.")
@json_option
def update(plugin: LtiPlugin, tenant: TenantInfo, platform_id: int, enabled: bool | None,
           as_json: bool, **options: Any) -> None:
    """Change a registration (only the options given; --deployment-id replaces the list)."""
    from .platforms import PlatformRegistrations
    from .schemas import LtiToolPlatformPatch

    changes = _given(**options)
    if enabled is not None:
        changes["enabled"] = enabled
    body = body_of(LtiToolPlatformPatch, changes)
    row = PlatformRegistrations(plugin).update(platform_id, body.model_dump(exclude_unset=True))
    show_record(_out(plugin, row), as_json)


@tenant_command(platforms, "remove", allow_disabled=True, plugin=True)
@click.argument("platform_id", type=ID)
def remove(plugin: LtiPlugin, tenant: TenantInfo, platform_id: int) -> None:
    """Remove a registration and its account links (the accounts stay)."""
    from .platforms import PlatformRegistrations

    PlatformRegistrations(plugin).delete(platform_id)
    click.echo(f"platform {platform_id} removed")
