"""Fixtures of the identity tests: an admin (the CLI runner is learnplat.testing's lp_cli)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def admin(lp_users: Any) -> Any:
    return lp_users.make("admin")
