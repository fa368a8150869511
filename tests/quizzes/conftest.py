"""Fixtures for the quizzes tests: a published course (made through the courses API) with an
instructor, an admin, enrolled students, and quizzes created through the quizzes API."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest
from quizhelpers import QUESTIONS


@dataclass
class Cast:
    client: Any
    users: Any
    teacher: Any = None
    admin: Any = None
    t: Any = None
    a: Any = None
    course_id: int = 0
    module_ids: list[int] = field(default_factory=list)

    def enroll(self) -> Any:
        """A new student enrolled in the course, with a client acting as them (`.c`)."""
        student = self.users.make("student")
        student.c = self.client.as_(student.token)
        r = student.c.post(f"/courses/{self.course_id}/enroll")
        assert r.status_code == 201, r.text
        return student

    def quiz_path(self, module: int = 0) -> str:
        return f"/courses/{self.course_id}/modules/{self.module_ids[module]}/quiz"

    def create_quiz(self, module: int = 0, questions: list[dict[str, Any]] | None = None,
                    **fields: Any) -> dict[str, Any]:
        body = {"title": "Quiz", "pass_mark": 60,
                "questions": copy.deepcopy(QUESTIONS if questions is None else questions),
                **fields}
        r = self.t.post(self.quiz_path(module), json=body)
        assert r.status_code == 201, r.text
        quiz = r.json
        quiz["path"] = f"{self.quiz_path(module)}/{quiz['id']}"
        quiz["qids"] = [q["id"] for q in quiz["questions"]]
        return quiz

    @staticmethod
    def answers(quiz: dict[str, Any], by_index: dict[int, Any]) -> dict[str, Any]:
        return {str(quiz["qids"][i]): a for i, a in by_index.items()}


def make_cast(client: Any, users: Any, modules: int = 2) -> Cast:
    cast = Cast(client, users)
    cast.teacher, cast.admin = users.make("instructor"), users.make("admin")
    cast.t, cast.a = client.as_(cast.teacher.token), client.as_(cast.admin.token)
    r = cast.t.post("/courses", json={"title": "Quiz course"})
    assert r.status_code == 201, r.text
    cast.course_id = r.json["id"]
    for i in range(modules):
        r = cast.t.post(f"/courses/{cast.course_id}/modules", json={"title": f"M{i}"})
        assert r.status_code == 201, r.text
        cast.module_ids.append(r.json["id"])
    assert cast.t.post(f"/courses/{cast.course_id}/submit").status_code == 200
    assert cast.a.post(f"/courses/{cast.course_id}/approve").status_code == 200
    return cast


@pytest.fixture
def cast(lp_client, lp_users) -> Cast:
    return make_cast(lp_client, lp_users)


@pytest.fixture
def outsider(lp_client, lp_users, lp_other_tenant) -> Any:
    """An admin of another tenant: must see nothing of this tenant."""
    user = lp_users.make("admin", tenant=lp_other_tenant)
    return lp_client.as_(user.token, tenant=lp_other_tenant)


@pytest.fixture
def outsider_student(lp_client, lp_users, lp_other_tenant) -> Any:
    """A student of another tenant (the student-facing routes need a student's role)."""
    user = lp_users.make("student", tenant=lp_other_tenant)
    return lp_client.as_(user.token, tenant=lp_other_tenant)
