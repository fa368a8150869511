"""Request and response schemas of the courses routes."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from learnplat.http.pagination import PageQuery

Level = Literal["beginner", "intermediate", "advanced"]
Status = Literal["draft", "pending_review", "published", "rejected", "archived"]
Kind = Literal["video", "text", "quiz", "assignment", "other"]
LANGUAGE = r"^[a-zA-Z]{2,3}(-[A-Za-z0-9]{2,8})*$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CourseIn(_In):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=20_000)
    language: str = Field("en", min_length=2, max_length=16, pattern=LANGUAGE)
    level: Level = "beginner"
    tags: list[str] = Field(default_factory=list, max_length=20)


class CoursePatch(_In):
    title: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=20_000)
    language: str | None = Field(None, min_length=2, max_length=16, pattern=LANGUAGE)
    level: Level | None = None
    tags: list[str] | None = Field(None, max_length=20)


class RejectIn(_In):
    reason: str = Field(min_length=1, max_length=2000)


class ModuleIn(_In):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=20_000)
    position: int | None = Field(None, ge=0, le=100_000)
    kind: Kind = "text"
    estimated_minutes: int = Field(0, ge=0, le=100_000)
    required: bool = True
    prerequisite_id: int | None = Field(None, ge=1)
    release_at: dt.datetime | None = None


class ModuleOut(BaseModel):
    id: int
    course_id: int
    title: str
    description: str
    position: int
    kind: Kind
    estimated_minutes: int
    required: bool
    prerequisite_id: int | None
    release_at: dt.datetime | None


class CourseOut(BaseModel):
    id: int
    owner_id: int
    title: str
    description: str
    language: str
    level: Level
    tags: list[str]
    status: Status
    rejection_reason: str = ""
    image_url: str | None = None
    published_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class CourseDetail(CourseOut):
    modules: list[ModuleOut] = []
    model_config = ConfigDict(extra="allow")  # plugins add keys (progress...)


class CoursePage(BaseModel):
    items: list[CourseOut]
    next_cursor: str | None


class CourseQuery(PageQuery):
    q: str | None = Field(None, max_length=200, description="Search title and description.")
    tag: str | None = Field(None, max_length=40)
    level: Level | None = None
    language: str | None = Field(None, max_length=16)
    instructor: int | None = Field(None, ge=1, description="Owner user id.")
    status: Status | None = None


def course_out(c: Any, tags: list[str]) -> dict[str, Any]:
    return {
        "id": c.id, "owner_id": c.owner_id, "title": c.title, "description": c.description,
        "language": c.language, "level": c.level, "tags": tags, "status": c.status,
        "rejection_reason": c.rejection_reason, "image_url": None,
        "published_at": c.published_at, "created_at": c.created_at, "updated_at": c.updated_at,
    }


def module_out(m: Any) -> dict[str, Any]:
    return {
        "id": m.id, "course_id": m.course_id, "title": m.title, "description": m.description,
        "position": m.position, "kind": m.kind, "estimated_minutes": m.estimated_minutes,
        "required": m.required, "prerequisite_id": m.prerequisite_id, "release_at": m.release_at,
    }
