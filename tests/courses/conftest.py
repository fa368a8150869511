"""Fixtures for the courses tests: users, courses made through the API, a query counter."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from PIL import Image


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


class QueryCounter(logging.Handler):
    """Counts the SQL statements peewee runs (it logs each one at DEBUG on 'peewee')."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.queries: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.queries.append(str(record.msg))


@contextmanager
def count_queries() -> Iterator[QueryCounter]:
    logger = logging.getLogger("peewee")
    counter = QueryCounter()
    level = logger.level
    logger.addHandler(counter)
    logger.setLevel(logging.DEBUG)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
        logger.setLevel(level)


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (64, 48), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (200, 30, 30) if mode == "RGB" else None).save(out, fmt)
    return out.getvalue()


def upload(client: Any, cid: int, data: bytes, name: str = "file", filename: str = "a.png",
           content_type: str = "image/png") -> Any:
    boundary = "lpboundary7d3f"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n").encode() \
        + data + f"\r\n--{boundary}--\r\n".encode()
    return client.post(f"/courses/{cid}/image", body=body,
                       headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
