"""The notifications plugin's part of a generated data set (its ``seed_tenant`` hook).

Sizes: ``notifications_per_student`` (5) announcements to every student
(``identity.students``), made by the notifications service (``notify``, all the school's
students at once; what their preferences say is sent as well), of which the first
``notifications_read`` (2) are read (``mark_all_read`` per student).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from learnplat.plugin import Seed

    from .services import NotificationsService


def seed_tenant(service: NotificationsService, seed: Seed) -> None:
    students = seed.made["identity.students"]
    per, read = seed.size("notifications_per_student", 5), seed.size("notifications_read", 2)
    for n in range(per):
        if n == read:
            for uid in students:
                service.mark_all_read(seed.principal(uid, "student"))
        seed.rows["notifications"] += service.notify(
            students, "announcement", f"Notice {n + 1}", "Something happened.",
            source=f"seed:{n}")
