"""Fixtures for the courses tests: users, courses made through the API, a query counter."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass
class World:
    """A tenant's cast: an instructor, an admin, a student, and clients for each."""

    client: Any
    users: Any
    teacher: Any = None
    admin: Any = None
    student: Any = None
    t: Any = None
    a: Any = None
    s: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.teacher = self.users.make("instructor")
        self.admin = self.users.make("admin")
        self.student = self.users.make("student")
        self.t = self.client.as_(self.teacher.token)
        self.a = self.client.as_(self.admin.token)
        self.s = self.client.as_(self.student.token)

    def as_new(self, role: str) -> Any:
        return self.client.as_(self.users.make(role).token)

    def course(self, title: str = "Course", publish: bool = False, modules: int = 0,
               client: Any = None, **fields: Any) -> dict[str, Any]:
        t = client or self.t
        r = t.post("/courses", json={"title": title, **fields})
        assert r.status_code == 201, r.text
        cid = r.json["id"]
        for i in range(modules):
            assert t.post(f"/courses/{cid}/modules", json={"title": f"M{i + 1}"}
                          ).status_code == 201
        if publish:
            assert t.post(f"/courses/{cid}/submit").status_code == 200
            r = self.a.post(f"/courses/{cid}/approve")
            assert r.status_code == 200, r.text
        return t.get(f"/courses/{cid}").json

    def enroll(self, client: Any, cid: int) -> None:
        r = client.post(f"/courses/{cid}/enroll")
        assert r.status_code in (200, 201), r.text


@pytest.fixture
def world(lp_client: Any, lp_users: Any) -> World:
    return World(lp_client, lp_users)


@pytest.fixture
def outsider(lp_client: Any, lp_users: Any, lp_other_tenant: Any) -> Any:
    """An admin of another tenant: must see nothing of this tenant."""
    user = lp_users.make("admin", tenant=lp_other_tenant)
    return lp_client.as_(user.token, tenant=lp_other_tenant)
