"""Fixtures for notifications tests: users with clients, a published course with enrolled
students (made through the REST API), and the notifications service in the test tenant."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from learnplat import db
from learnplat.tenancy import tenant_context


@dataclass
class Course:
    id: int
    instructor: Any
    admin: Any
    students: list[Any] = field(default_factory=list)


@pytest.fixture
def person(lp_users, lp_client):
    """person("student") -> a user with `.client` acting as them."""

    def make(role: str = "student", tenant: Any = None) -> Any:
        user = lp_users.make(role, tenant=tenant)
        user.client = lp_client.as_(user.token, tenant=tenant)
        return user

    return make


@pytest.fixture
def admin(person):
    return person("admin")


@pytest.fixture
def published_course(person, admin):
    """make(students=n) -> a published course with n enrolled students."""

    def make(students: int = 0, modules: int = 2) -> Course:
        teacher = person("instructor")
        cid = teacher.client.post("/courses", json={"title": "Biology"}).json["id"]
        for i in range(modules):
            r = teacher.client.post(f"/courses/{cid}/modules", json={"title": f"M{i}"})
            assert r.status_code == 201, r.text
        assert teacher.client.post(f"/courses/{cid}/submit").status_code == 200
        assert admin.client.post(f"/courses/{cid}/approve").status_code == 200
        course = Course(cid, teacher, admin)
        for _ in range(students):
            s = person("student")
            assert s.client.post(f"/courses/{cid}/enroll").status_code == 201
            course.students.append(s)
        return course

    return make


@pytest.fixture
def in_tenant_ctx(lp_runtime, lp_tenant):
    @contextmanager
    def ctx(tenant: Any = None):
        with db.connection():  # the tenant as it is now (tests change its settings)
            tenant = lp_runtime.tenants.get_by_slug((tenant or lp_tenant).slug)
        with db.connection(), tenant_context(tenant), db.transaction():
            yield

    return ctx


@pytest.fixture
def svc(lp_runtime):
    from learnplat_notifications.plugin import NotificationsPlugin

    return lp_runtime.plugin(NotificationsPlugin).notifications


@pytest.fixture
def configure(lp_runtime, lp_tenant):
    """configure({"notifications": {...}}) sets the test tenant's settings."""
    from learnplat.tenants import TenantSpec

    def apply(settings: dict[str, Any]) -> Any:
        spec = TenantSpec(slug=lp_tenant.slug, name=lp_tenant.name, settings=settings)
        with db.connection():
            lp_runtime.tenants.apply(spec)
        return lp_runtime.tenants.get_by_slug(lp_tenant.slug)

    return apply


class Inbox:
    """Messages received by the loopback SMTP server."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import email

        msg = email.message_from_bytes(envelope.content)
        msg.rcpt = list(envelope.rcpt_tos)
        self.messages.append(msg)
        return "250 OK"


@pytest.fixture
def smtp_server():
    """An SMTP server (aiosmtpd) on 127.0.0.1: yields (port, inbox)."""
    from aiosmtpd.controller import Controller

    from learnplat.testing import free_port

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, inbox
    finally:
        controller.stop()
