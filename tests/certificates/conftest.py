"""Fixtures for the certificates tests: a published course (made through the API), learners
who complete it, and helpers to look inside the PDF and the credential."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from learnplat import db
from learnplat.tenancy import tenant_context


@dataclass
class School:
    client: Any
    users: Any
    runtime: Any
    tenant: Any
    title: str = "Введение в Python"
    teacher_name: str = "José Müller"
    modules: int = 2
    course_id: int = 0
    module_ids: list[int] = field(default_factory=list)
    teacher: Any = None
    admin: Any = None
    a: Any = None

    def __post_init__(self) -> None:
        self.teacher = self.users.make("instructor", name=self.teacher_name)
        self.admin = self.users.make("admin", name="Admin")
        self.a = self.client.as_(self.admin.token)
        self.course_id, self.module_ids = self.course(self.title, self.modules)

    def course(self, title: str, modules: int = 2) -> tuple[int, list[int]]:
        t = self.client.as_(self.teacher.token)
        r = t.post("/courses", json={"title": title})
        assert r.status_code == 201, r.text
        cid = r.json["id"]
        mids = []
        for i in range(modules):
            r = t.post(f"/courses/{cid}/modules", json={"title": f"M{i}"})
            assert r.status_code == 201, r.text
            mids.append(r.json["id"])
        assert t.post(f"/courses/{cid}/submit").status_code == 200
        assert self.a.post(f"/courses/{cid}/approve").status_code == 200
        return cid, mids

    def learner(self, name: str = "Ada Lovelace", course_id: int | None = None) -> Any:
        """A student enrolled in the course, with `.client`."""
        student = self.users.make("student", name=name)
        student.client = self.client.as_(student.token)
        r = student.client.post(f"/courses/{course_id or self.course_id}/enroll")
        assert r.status_code == 201, r.text
        return student

    def complete(self, student: Any, course_id: int | None = None,
                 module_ids: list[int] | None = None) -> None:
        cid = course_id or self.course_id
        for mid in module_ids or self.module_ids:
            r = student.client.post(f"/progress/{cid}", json={"module_id": mid,
                                                              "completed": True})
            assert r.status_code == 200, r.text
        assert student.client.get(f"/progress/{cid}").json["completed"] is True

    def graduate(self, name: str = "Ada Lovelace") -> Any:
        """A learner who completed the course, with the completion event delivered (tasks run
        inline in unit tests: the certificate is issued when this returns)."""
        student = self.learner(name)
        self.complete(student)
        self.runtime.events.dispatch_pending()
        return student

    def in_tenant(self) -> Any:
        from contextlib import contextmanager

        @contextmanager
        def ctx() -> Any:
            with db.connection(), tenant_context(self.tenant), db.transaction():
                yield

        return ctx()


@pytest.fixture
def school(lp_client, lp_users, lp_runtime, lp_tenant) -> School:
    return School(lp_client, lp_users, lp_runtime, lp_tenant)


@pytest.fixture
def certs(lp_runtime) -> Any:
    from learnplat_certificates.hooks import service

    return service(lp_runtime)
