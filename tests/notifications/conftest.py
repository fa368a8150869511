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
        with db.connection(), tenant_context(tenant or lp_tenant), db.transaction():
            yield

    return ctx


@pytest.fixture
def svc(lp_runtime):
    from learnplat_notifications.hooks import service

    return service(lp_runtime)


def kinds(client: Any, **params: Any) -> list[str]:
    return [n["kind"] for n in client.get("/notifications", params=params).json["items"]]
