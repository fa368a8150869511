"""The public face for a plugin's click commands: ``from learnplat.plugin.cli import ...``.

A plugin adds commands with the ``register_commands(cli)`` hook. ``tenant_command`` gives a
command ``--tenant SLUG`` and runs it in that school and one transaction; the rest reads
input and prints output the way the core's own commands do. Semantic versioning, like
``learnplat.plugin``.
"""

from __future__ import annotations

from ..cli.helpers import (
    echo_json,
    echo_pages,
    echo_rows,
    json_option,
    read_pages,
    tenant_command,
    with_tenant,
)
from ..cli.main import AppContext, pass_app, read_text_file
from ..cli.passwords import password_options
from ..cli.secret_commands import key_command

__all__ = [
    "AppContext", "echo_json", "echo_pages", "echo_rows", "json_option", "key_command",
    "pass_app", "password_options", "read_pages", "read_text_file", "tenant_command",
    "with_tenant",
]
