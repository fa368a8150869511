"""Helpers of the enrollment tests (the fixtures in conftest.py use them): published courses
made through the courses API, direct tenant access and a thread race starter."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from learnplat import db
from learnplat.tenancy import TenantInfo, tenant_context


@dataclass
class PublishedCourse:
    id: int
    module_ids: list[int]
    instructor: Any
    admin: Any


@dataclass
class QuickUser:
    id: int
    email: str
    role: str
    token: str


_n = itertools.count()


def make_users(runtime: Any, tenant: TenantInfo, n: int, role: str = "student",
               prefix: str = "") -> list[QuickUser]:
    """n users with tokens and no password: argon2 would spend 0.2 s on each, and these tests
    never log in."""
    svc = runtime.service("identity")
    out: list[QuickUser] = []
    with in_tenant(tenant):
        for _ in range(n):
            email = f"{prefix or role}{next(_n)}-{uuid.uuid4().hex[:6]}@example.org"
            user = svc.create_user(email, None, email.split("@")[0], role=role)
            out.append(QuickUser(user.id, email, role, svc.issue_pair(user)["access_token"]))
    return out


def publish_course(client: Any, users: Any, modules: int = 2, title: str = "Course",
                   tenant: TenantInfo | None = None) -> PublishedCourse:
    tenant = tenant or client.tenant
    teacher, = make_users(users.runtime, tenant, 1, "instructor")
    admin, = make_users(users.runtime, tenant, 1, "admin")
    t = client.as_(teacher.token, tenant=tenant)
    cid = t.post("/courses", json={"title": title}).json["id"]
    mids = [t.post(f"/courses/{cid}/modules", json={"title": f"M{i}"}).json["id"]
            for i in range(modules)]
    assert t.post(f"/courses/{cid}/submit").status_code == 200
    assert client.as_(admin.token, tenant=tenant).post(
        f"/courses/{cid}/approve").status_code == 200
    return PublishedCourse(cid, mids, teacher, admin)


@contextmanager
def in_tenant(tenant: TenantInfo) -> Iterator[None]:
    """Read or write the tenant's rows directly (a connection, the tenant, a transaction)."""
    with db.connection(), tenant_context(tenant), db.transaction():
        yield


# -- a real gunicorn -------------------------------------------------------------------------------


def race(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run every call in its own thread, all released at the same moment; their results in
    order (an exception is returned as the result)."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[i] = call()
        except Exception as exc:  # reported by the test's assertions
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results
