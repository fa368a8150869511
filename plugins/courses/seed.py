"""The courses plugin's part of a generated data set (its ``seed_tenant`` hook).

Sizes: ``courses`` (40), published, each with 1-3 of 20 tags and owned by one of the school's
instructors (``identity.instructors``); ``modules_per_course`` (10), positions 1 to N: the
1st and the 6th a video, the last a quiz, the rest text; all required, none locked.

Leaves in ``seed.made``: ``courses.ids`` (course ids) and ``courses.modules`` (course id ->
``[(module id, kind), ...]`` in position order).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from learnplat.plugin import ValidationFailed, bump_generation

from .api import CATALOGUE_GENERATION
from .models import Course, CourseTag, Module

if TYPE_CHECKING:
    from learnplat.plugin import Seed

TAGS = ["python", "data", "web", "design", "math", "history", "music", "language", "science",
        "art", "business", "health", "writing", "physics", "biology", "chemistry", "law",
        "finance", "robotics", "ethics"]


def module_kinds(per_course: int) -> list[str]:
    """The kind of each module of a seeded course, by position."""
    return ["quiz" if pos == per_course - 1 and per_course > 1
            else "video" if pos in (0, 5) else "text" for pos in range(per_course)]


def seed_tenant(seed: Seed) -> None:
    count, per = seed.size("courses", 40), seed.size("modules_per_course", 10)
    instructors = seed.made.get("identity.instructors") or seed.made["identity.admins"]
    if not 0 <= count <= 100_000:
        raise ValidationFailed.field("courses", "0 to 100000", "range")
    if not 0 <= per <= 1000:
        raise ValidationFailed.field("modules_per_course", "0 to 1000", "range")
    rng, now, slug = seed.rng, seed.now, seed.tenant.slug
    ids = seed.bulk_ids(Course, [
        {"owner_id": rng.choice(instructors),
         "title": f"Course {k} of {slug}: {rng.choice(TAGS)} "
                  f"for {rng.choice(['beginners', 'everyone', 'pros'])}",
         "description": "A generated course. " * 8,
         "level": rng.choice(("beginner", "intermediate", "advanced")),
         "status": "published", "published_at": now, "created_at": now, "updated_at": now}
        for k in range(count)], kind="courses")
    seed.bulk(CourseTag, [{"course": cid, "tag": tag} for cid in ids
                          for tag in rng.sample(TAGS, rng.randint(1, 3))], kind="course_tags")
    kinds = module_kinds(per)
    mids = seed.bulk_ids(Module, [
        {"course": cid, "title": f"Module {pos + 1}", "position": pos + 1, "kind": kind,
         "estimated_minutes": 10, "required": True, "created_at": now, "updated_at": now}
        for cid in ids for pos, kind in enumerate(kinds)], kind="modules")
    seed.made["courses.ids"] = ids
    seed.made["courses.modules"] = {
        cid: list(zip(mids[k * per:(k + 1) * per], kinds, strict=True))
        for k, cid in enumerate(ids)}
    bump_generation(seed.runtime, CATALOGUE_GENERATION)  # a school's cached catalogue is stale
