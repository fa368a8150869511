"""pytest fixtures for plugins that need users (installed as a pytest11 plugin).

    def test_enroll(lp_users, lp_client):
        student = lp_users.make("student")
        r = lp_client.as_(student.token).post(...)
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from learnplat.plugin import TenantInfo, db, tenant_context

from .plugin import IdentityPlugin

_n = itertools.count()
PASSWORD = "correct horse battery staple"


@dataclass
class TestUser:
    id: int
    email: str
    role: str
    token: str
    refresh_token: str
    tenant: TenantInfo
    password: str = PASSWORD


class UserFactory:
    """Makes users (with tokens) in a tenant, directly through the identity service."""

    def __init__(self, runtime: Any, tenant: TenantInfo):
        self.runtime = runtime
        self.tenant = tenant

    def make(self, role: str = "student", email: str | None = None, name: str = "",
             tenant: TenantInfo | None = None) -> TestUser:
        tenant = tenant or self.tenant
        email = email or f"{role}{next(_n)}-{uuid.uuid4().hex[:6]}@example.org"
        svc = self.runtime.plugin(IdentityPlugin).identity
        with db.connection(), tenant_context(tenant), db.transaction():
            user = svc.create_user(email, PASSWORD, name or email.split("@")[0], role=role)
            pair = svc.issue_tokens(user)
        return TestUser(user.id, email, role, pair.access_token, pair.refresh_token, tenant)


@pytest.fixture
def lp_users(lp_runtime: Any, lp_tenant: TenantInfo) -> UserFactory:
    """Makes users of the test's tenant: lp_users.make("instructor").token"""
    return UserFactory(lp_runtime, lp_tenant)
