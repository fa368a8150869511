"""The enrollment plugin's part of a generated data set (its ``seed_tenant`` hook).

Sizes: ``enrollments`` (4000): distinct random (student, course) pairs, active, each made on
a random day of the last 300, at most half of all pairs (``identity.students`` x
``courses.ids``).

Leaves in ``seed.made``: ``enrollment.pairs``, ``[(user id, course id, enrolled at), ...]``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from .models import Enrollment

if TYPE_CHECKING:
    from learnplat.plugin import Seed


def seed_tenant(seed: Seed) -> None:
    students, courses = seed.made["identity.students"], seed.made["courses.ids"]
    rng = seed.rng
    want = min(seed.size("enrollments", 4000), len(students) * len(courses) // 2)
    chosen: set[tuple[int, int]] = set()
    while len(chosen) < want:
        chosen.add((rng.choice(students), rng.choice(courses)))
    pairs = [(uid, cid, seed.now - dt.timedelta(days=rng.randint(1, 300)))
             for uid, cid in sorted(chosen)]
    seed.bulk(Enrollment, [{"course_id": cid, "user_id": uid, "status": "active",
                            "source": "self", "created_at": when, "updated_at": when}
                           for uid, cid, when in pairs], kind="enrollments")
    seed.made["enrollment.pairs"] = pairs
