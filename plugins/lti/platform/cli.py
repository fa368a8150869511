"""`learnplat lti tools ...`: the external tools a school's courses may launch (add, list,
show, update, remove), for operators and scripts."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from learnplat.plugin import LearnplatError, TenantInfo, dump, echo_rows
from learnplat.plugin.cli import json_option, tenant_command

from ..cli import body_of, show_record

if TYPE_CHECKING:
    from ..plugin import LtiPlugin

ID = click.IntRange(min=1, max=2**63 - 1)


@click.group()
def tools() -> None:
    """External LTI 1.3 tools the school's courses launch (learnplat as platform)."""


def _out(plugin: LtiPlugin, row: Any) -> dict[str, Any]:
    import orjson

    from .resources import tool_out

    return dict(orjson.loads(dump(tool_out(plugin, row))))


_OPTIONS = [
    click.option("--name", help="What the school calls it."),
    click.option("--description"),
    click.option("--login-url", help="The tool's OIDC login initiation URL."),
    click.option("--launch-url", help="The tool's launch URL."),
    click.option("--redirect-uri", "redirect_uris", multiple=True, metavar="URL",
                 help="Where id_tokens may be posted; repeat for more."),
    click.option("--deep-linking-url", help="The tool's Deep Linking URL."),
    click.option("--jwks-url", help="The tool's public keys (JWKS URL)."),
    click.option("--public-jwk", help="One public key (JSON), instead of --jwks-url."),
    click.option("--deployment-id", "deployment_ids", multiple=True, metavar="ID",
                 help="A deployment id; repeat for more (default: one is made)."),
    click.option("--scope", "scopes", multiple=True, metavar="URI",
                 help="An LTI Advantage scope the tool may ask for; repeat for more."),
    click.option("--custom", "custom", multiple=True, metavar="KEY=VALUE",
                 help="A custom parameter of every launch; repeat for more."),
    click.option("--send-name/--no-send-name", default=None, help="Send the user's name."),
    click.option("--send-email/--no-send-email", default=None, help="Send the e-mail."),
    click.option("--enabled/--disabled", default=None, help="Switch it on or off."),
]


def _with_options(fn: Any) -> Any:
    for option in reversed(_OPTIONS):
        fn = option(fn)
    return fn


def _given(**options: Any) -> dict[str, Any]:
    out = {k: v for k, v in options.items() if v is not None and v != ()}
    for name in ("redirect_uris", "deployment_ids", "scopes"):
        if name in out:
            out[name] = list(out[name])
    if "custom" in out:
        pairs = [p.partition("=") for p in out["custom"]]
        if any(not sep for _, sep, _ in pairs):
            raise LearnplatError("--custom takes KEY=VALUE")
        out["custom"] = {k: v for k, _, v in pairs}
    if "public_jwk" in out:
        try:
            out["public_jwk"] = json.loads(out["public_jwk"])
        except ValueError:
            raise LearnplatError("--public-jwk must be a JSON object (a JWK)") from None
    return out


@tenant_command(tools, "add", allow_disabled=True, plugin=True)
@_with_options
@json_option
def add(plugin: LtiPlugin, tenant: TenantInfo, as_json: bool, **options: Any) -> None:
    """Register a tool; prints its client_id and what to enter in it (the platform URLs)."""
    from .schemas import LtiPlatformToolIn
    from .tools import ToolRegistrations

    body = body_of(LtiPlatformToolIn, _given(**options))
    show_record(_out(plugin, ToolRegistrations(plugin).create(body.model_dump())), as_json)


@tenant_command(tools, "list", write=False, allow_disabled=True, plugin=True)
@json_option
def list_tools(plugin: LtiPlugin, tenant: TenantInfo, as_json: bool) -> None:
    """The school's tool registrations, oldest first."""
    from ..models import ToolRegistration

    rows = [_out(plugin, r) for r in ToolRegistration.select().order_by(ToolRegistration.id)]
    echo_rows(rows, lambda t: (t["id"], "enabled" if t["enabled"] else "disabled", t["name"],
                               t["client_id"], t["launch_url"]), as_json=as_json)


@tenant_command(tools, "show", write=False, allow_disabled=True, plugin=True)
@click.argument("tool_id", type=ID)
@json_option
def show(plugin: LtiPlugin, tenant: TenantInfo, tool_id: int, as_json: bool) -> None:
    """One registration and what to enter in the tool."""
    from .tools import ToolRegistrations

    show_record(_out(plugin, ToolRegistrations(plugin).get(tool_id)), as_json)


@tenant_command(tools, "update", allow_disabled=True, plugin=True)
@click.argument("tool_id", type=ID)
@_with_options
@json_option
def update(plugin: LtiPlugin, tenant: TenantInfo, tool_id: int, as_json: bool,
           **options: Any) -> None:
    """Change a registration (only the options given; a repeated option replaces its list)."""
    from .schemas import LtiPlatformToolPatch
    from .tools import ToolRegistrations

    body = body_of(LtiPlatformToolPatch, _given(**options))
    row = ToolRegistrations(plugin).update(tool_id, body.model_dump(exclude_unset=True))
    show_record(_out(plugin, row), as_json)


@tenant_command(tools, "remove", allow_disabled=True, plugin=True)
@click.argument("tool_id", type=ID)
def remove(plugin: LtiPlugin, tenant: TenantInfo, tool_id: int) -> None:
    """Remove a registration (its lti modules stay, launching nothing)."""
    from .tools import ToolRegistrations

    ToolRegistrations(plugin).delete(tool_id)
    click.echo(f"tool {tool_id} removed")
