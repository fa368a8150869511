"""The course_analytics hook (enrollments over time, active/dropped totals) and the OpenAPI
document of the enrollment routes."""

from __future__ import annotations

import datetime as dt
import os
import time

import pytest
from enrollhelpers import in_tenant, make_users
from learnplat_enrollment.models import Enrollment

UTC = dt.UTC


def _seed(course_id: int, n: int, start: dt.datetime, per_day: int, user_base: int = 1_000_000
          ) -> None:
    """n enrollments, per_day of them each day from start; every 4th one dropped the next day."""
    rows = []
    for i in range(n):
        created = start + dt.timedelta(days=i // per_day, minutes=i % per_day)
        dropped = i % 4 == 0
        rows.append({"course_id": course_id, "user_id": user_base + i,
                     "status": "dropped" if dropped else "active", "created_at": created,
                     "updated_at": created,
                     "dropped_at": created + dt.timedelta(days=1) if dropped else None})
    for start_at in range(0, n, 2000):
        Enrollment.insert_many(rows[start_at:start_at + 2000]).execute()


def test_analytics_counts_by_day_and_status(lp_runtime, lp_tenant):
    start = dt.datetime(2025, 3, 1, 23, 0, tzinfo=UTC)  # late in the day: UTC days
    with in_tenant(lp_tenant):
        _seed(4242, 10, start, per_day=4)
        answers = lp_runtime.hook.course_analytics(runtime=lp_runtime, course_id=4242)
    section = next(a for a in answers if a and "enrollments" in a)["enrollments"]
    assert (section["total"], section["active"], section["dropped"]) == (10, 7, 3)
    assert section["over_time"] == [
        {"date": "2025-03-01", "count": 4, "dropped": 0},
        {"date": "2025-03-02", "count": 4, "dropped": 1},
        {"date": "2025-03-03", "count": 2, "dropped": 1},
        {"date": "2025-03-04", "count": 0, "dropped": 1},
    ]
    with in_tenant(lp_tenant):
        empty = lp_runtime.service("enrollment").analytics(4343)
    assert empty == {"enrollments": {"total": 0, "active": 0, "dropped": 0, "over_time": []}}


def test_analytics_endpoint_carries_the_enrollment_section(lp_client, lp_users, lp_tenant,
                                                           published):
    learners = make_users(lp_users.runtime, lp_tenant, 3)
    for s in learners:
        lp_client.as_(s.token).post(f"/courses/{published.id}/enroll")
    lp_client.as_(learners[0].token).delete(f"/courses/{published.id}/enroll")
    r = lp_client.as_(published.instructor.token).get(f"/courses/{published.id}/analytics")
    assert r.status_code == 200, r.text
    section = r.json["enrollments"]
    assert (section["total"], section["active"], section["dropped"]) == (3, 2, 1)
    today = dt.datetime.now(UTC).date().isoformat()
    assert section["over_time"] == [{"date": today, "count": 3, "dropped": 1}]


@pytest.mark.skipif(not os.environ.get("LEARNPLAT_TEST_SLOW"),
                    reason="set LEARNPLAT_TEST_SLOW=1 for the 100k-enrollment timing")
def test_analytics_stays_fast_on_100k_enrollments(lp_runtime, lp_tenant):
    with in_tenant(lp_tenant):
        _seed(777, 100_000, dt.datetime(2024, 1, 1, tzinfo=UTC), per_day=150)
        _seed(778, 20_000, dt.datetime(2024, 1, 1, tzinfo=UTC), per_day=150)  # a neighbour
    with in_tenant(lp_tenant):
        began = time.perf_counter()
        section = lp_runtime.service("enrollment").analytics(777)["enrollments"]
        elapsed = time.perf_counter() - began
    assert section["total"] == 100_000 and len(section["over_time"]) == 668
    print(f"analytics over 100k enrollments: {elapsed * 1000:.0f} ms")
    assert elapsed < 1.0, elapsed
