"""Fixtures for enrollment tests: a published course made through the courses API."""

from __future__ import annotations

from dataclasses import dataclass

import pytest


@dataclass
class PublishedCourse:
    id: int
    module_ids: list[int]
    instructor: object
    admin: object


def publish_course(client, users, modules: int = 2, title: str = "Course") -> PublishedCourse:
    teacher = users.make("instructor")
    admin = users.make("admin")
    t = client.as_(teacher.token)
    cid = t.post("/courses", json={"title": title}).json["id"]
    mids = [t.post(f"/courses/{cid}/modules", json={"title": f"M{i}"}).json["id"]
            for i in range(modules)]
    assert t.post(f"/courses/{cid}/submit").status_code == 200
    assert client.as_(admin.token).post(f"/courses/{cid}/approve").status_code == 200
    return PublishedCourse(cid, mids, teacher, admin)


@pytest.fixture
def published(lp_client, lp_users) -> PublishedCourse:
    return publish_course(lp_client, lp_users)
