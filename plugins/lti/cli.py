"""`learnplat lti ...`: the school's LTI addresses; each part adds its commands to the group
(``lti tools``, ``lti platforms``, ``lti scores``, ``lti passbacks``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from learnplat.plugin import LearnplatError, TenantInfo, echo_json, json_option, tenant_command

if TYPE_CHECKING:
    from .plugin import LtiPlugin


def show_record(out: dict[str, Any], as_json: bool) -> None:
    """A registration as `--json` or as aligned lines (a nested block, such as the URLs to
    enter in the peer, indented under its name)."""
    if as_json:
        echo_json(out)
        return
    for key, value in out.items():
        if isinstance(value, dict):
            click.echo(f"{key}:")
            for k, v in value.items():
                click.echo(f"  {k:22} {v}")
        else:
            click.echo(f"{key:20} {value}")


def body_of(model: Any, data: dict[str, Any]) -> Any:
    """A command's options as the API's request model: what it refuses is the command's
    error (one line, exit status 1), as the API's 422 would say it."""
    try:
        return model(**data)
    except ValueError as exc:
        raise LearnplatError(str(exc)) from None


@click.group()
def lti() -> None:
    """LTI 1.3: tools in the school's courses, the school's courses in other LMSs."""


@tenant_command(lti, "urls", write=False, allow_disabled=True, plugin=True)
@json_option
def urls(plugin: LtiPlugin, tenant: TenantInfo, as_json: bool) -> None:
    """The school's LTI addresses: what to enter in a tool (as platform) or in an LMS that
    launches the school's courses (as tool)."""
    from .resources import config_out

    out = config_out(plugin).model_dump(mode="json")
    if as_json:
        echo_json(out)
        return
    for role, entries in out.items():
        click.echo(f"as {role}:")
        for name, value in entries.items():
            click.echo(f"  {name:22} {value}")


@tenant_command(lti, "rotate-key", allow_disabled=True, plugin=True)
def rotate_key(plugin: LtiPlugin, tenant: TenantInfo) -> None:
    """Sign with a new RSA key from now on (prints its kid); the old one stays published a
    day, so id_tokens and assertions it signed minutes ago still verify. Peers that cache the
    school's JWKS fetch it again when they meet the new kid."""
    click.echo(plugin.keys.ring.rotate())
