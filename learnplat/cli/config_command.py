"""`learnplat config`: which home and configuration files a command uses, and the effective
settings (core and plugin sections) with secrets masked, so they can be pasted into a bug report.

Works without a database: it loads the plugins only to learn their settings sections (with a
PostgreSQL database.url it asks the server whether the role bypasses row-level security, and
says so when it cannot: learnplat.safety).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import click
import orjson

from ..safety import environment, unsafe_settings
from ..settings import CORE_SECTIONS, ConfigError, Settings, config_files, resolve_home
from ..settings import setting_env_vars as _setting_env_vars
from .helpers import json_option
from .main import AppContext, cli, echo_json, pass_app

MASK = "********"
# Key names whose values are secrets: secret_key, client_secret, smtp_password, api_key,
# signing_key, webhook_token... but not access_token_ttl or redis.prefix.
_SECRET_NAME = re.compile(r"secret|passw(or)?d|credential|private|(^|_)(token|key)$",
                          re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def mask_url(value: str) -> str:
    """A URL with its password (``scheme://user:********@host``) and secret-named query
    parameters masked; any other string unchanged (edited in place, so ``sqlite:///x`` keeps
    its three slashes)."""
    if "://" not in value:
        return value
    try:
        query = urlsplit(value).query
    except ValueError:
        return value
    begin = value.index("://") + 3
    end = min((i for i in (value.find(c, begin) for c in "/?#") if i >= 0), default=len(value))
    userinfo, at, hostport = value[begin:end].rpartition("@")
    if at and ":" in userinfo:
        user = userinfo.split(":", 1)[0]
        value = f"{value[:begin]}{user}:{MASK}@{hostport}{value[end:]}"
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(is_secret_name(k) and v for k, v in pairs):
        masked = urlencode([(k, MASK if is_secret_name(k) and v else v) for k, v in pairs],
                           safe="*")
        value = value.replace(f"?{query}", f"?{masked}", 1)
    return value


def mask_secrets(value: Any, name: str = "") -> Any:
    """`value` with secrets masked: non-empty strings under a secret-looking key name, and
    passwords inside URLs anywhere. Empty strings stay empty, so "unset" stays visible."""
    if isinstance(value, Mapping):
        secret = is_secret_name(name)
        return {k: (_mask_all(v) if secret else mask_secrets(v, str(k)))
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_secrets(v, name) for v in value]
    if isinstance(value, str):
        if value and is_secret_name(name):
            return MASK
        return mask_url(value)
    return value


def _mask_all(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _mask_all(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_all(v) for v in value]
    return MASK if isinstance(value, str) and value else value


def plugin_sections(settings: Settings, pm: Any) -> dict[str, dict[str, Any]]:
    """Every plugin settings section, validated, with the plugin's defaults filled in."""
    from ..plugins import _call_each, load_plugin_settings
    from ..registry import Registry

    registry = Registry()
    for plugin, sections in _call_each(pm, "register_settings"):
        for section, model in sections.items():
            registry.add_settings_model(section, model, plugin)
    validated = load_plugin_settings(settings, registry)  # the start-up checks, same messages
    return {section: model.model_dump(mode="json") for section, model in validated.items()}


def effective_settings(settings: Settings, pm: Any) -> dict[str, dict[str, Any]]:
    """Core then plugin sections, secrets masked."""
    core = settings.model_dump(mode="json", include=set(CORE_SECTIONS))
    ordered = {section: core[section] for section in Settings.model_fields
               if section in CORE_SECTIONS}
    ordered.update(sorted(plugin_sections(settings, pm).items()))
    return {section: mask_secrets(values) for section, values in ordered.items()}


def describe_home(settings: Settings) -> str:
    """One line naming the home and the configuration files in use."""
    files = ", ".join(settings.config_files) or "none (defaults and environment only)"
    return f"home: {settings.home} ({settings.home_source}); config files: {files}"


def _value(value: Any) -> str:
    return orjson.dumps(value).decode()


@cli.command("config")
@json_option
@pass_app
def config(app: AppContext, as_json: bool) -> None:
    """Show the home directory, the configuration files read (in order) and the effective
    settings, secrets masked. Needs no database."""
    try:
        settings = app.settings
        sections = effective_settings(settings, app.plugin_manager)
    except ConfigError:
        # The home and files still say where to look for the bad key named below.
        home, why = resolve_home()
        files = ", ".join(map(str, config_files(home, os.environ))) or "none"
        click.echo(f"home: {home} ({why}); config files: {files}", err=True)
        raise
    env = _setting_env_vars(os.environ)
    # The value in force when app.public_url is empty (derived from server.bind, or none).
    public = settings.public_url_in_force()
    # Unsafe values (learnplat.safety): flagged here, refused by serve/worker in production.
    mode = environment(settings)
    findings = unsafe_settings(settings)
    if as_json:
        echo_json({"home": settings.home, "home_source": settings.home_source,
                   "config_files": list(settings.config_files), "environment": env,
                   "public_url": {"url": public.url, "source": public.source},
                   "mode": {"name": mode.name, "why": mode.why},
                   "unsafe": [f.as_dict() for f in findings],
                   "settings": sections})
        return
    click.echo(f"home: {settings.home} ({settings.home_source})")
    click.echo("config files: " + (", ".join(settings.config_files)
                                   or "none (defaults and environment only)"))
    click.echo("environment: " + (", ".join(env) or "none"))
    click.echo(f"public URL: {public.url or '(none)'} ({public.source})")
    click.echo(f"mode: {mode.name} ({mode.why})")
    for f in findings:
        refused = " (refused in production)" if f.refuse else ""
        click.echo(f"unsafe: {f.line()}{refused}")
    for section, values in sections.items():
        click.echo(f"\n[{section}]")
        for key, value in values.items():
            click.echo(f"{key} = {_value(value)}")
