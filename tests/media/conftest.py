"""Fixtures for the media tests: a published course with modules, its owner, an admin, an
enrolled student and a student who is not enrolled."""

from __future__ import annotations

from typing import Any

import pytest
from mediahelpers import Stage, make_stage


@pytest.fixture
def stage(lp_client: Any, lp_users: Any) -> Stage:
    return make_stage(lp_client, lp_users)


@pytest.fixture
def outsider(lp_client: Any, lp_users: Any, lp_other_tenant: Any) -> Any:
    """An admin of another tenant: must see nothing of this tenant."""
    user = lp_users.make("admin", tenant=lp_other_tenant)
    return lp_client.as_(user.token, tenant=lp_other_tenant)
