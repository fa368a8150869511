"""Fixtures of the identity tests: an admin, the CLI bound to the test runtime."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from click.testing import CliRunner

from learnplat.cli.main import AppContext, cli


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


class CLI:
    """Runs `learnplat ...` in-process against the test runtime (same database and kv)."""

    def __init__(self, runtime: Any):
        from learnplat_identity.cli import register

        from learnplat.cli import core_commands  # noqa: F401  (registers the core commands)

        if "users" not in cli.commands:
            register(cli)
        self.runtime = runtime

    def __call__(self, *args: str) -> CliResult:
        ctx = AppContext()
        ctx._runtime = self.runtime
        result = CliRunner().invoke(cli, list(args), obj=ctx, catch_exceptions=False)
        return CliResult(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def lp_cli(lp_runtime: Any) -> CLI:
    return CLI(lp_runtime)


@pytest.fixture
def admin(lp_users: Any) -> Any:
    return lp_users.make("admin")
