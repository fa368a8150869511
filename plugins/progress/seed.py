"""The progress plugin's part of a generated data set (its ``seed_tenant`` hook).

For every enrollment (``enrollment.pairs``): the course's progress row, with 0 to 4 of its
text modules (``courses.modules``) completed on the day of the enrollment (never every module:
a finished course would be owed a certificate), and the module progress rows to match; the
percent, counts and milestones as the plugin computes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .models import CourseProgress, ModuleProgress

if TYPE_CHECKING:
    from learnplat.plugin import Seed


def seed_tenant(seed: Seed) -> None:
    rng, modules = seed.rng, seed.made["courses.modules"]
    courses: list[dict[str, Any]] = []
    done_rows: list[dict[str, Any]] = []
    for uid, cid, when in seed.made["enrollment.pairs"]:
        total = len(modules[cid])
        text = [mid for mid, kind in modules[cid] if kind == "text"]
        done = rng.sample(text, rng.randint(0, max(0, min(4, len(text), total - 1))))
        percent = round(100 * len(done) / total, 1) if total else 0.0
        courses.append({"course_id": cid, "user_id": uid, "status": "active",
                        "percent": percent, "completed_count": len(done),
                        "required_count": total,
                        "milestone_50_at": when if percent >= 50 else None,
                        "last_activity_at": when, "created_at": when, "updated_at": when})
        done_rows += [{"course_id": cid, "module_id": mid, "user_id": uid,
                       "completed_at": when, "completed_source": "manual", "updated_at": when}
                      for mid in done]
    seed.bulk(CourseProgress, courses, kind="course_progress")
    seed.bulk(ModuleProgress, done_rows, kind="module_progress")
