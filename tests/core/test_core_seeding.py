"""Generated data sets (learnplat.seeding): every plugin writes its own part of a school through
its `seed_tenant` hook, after the plugins it requires; what they write reads back through the
API as the plugins' own code made it (the answers are checked against their declared models:
the test settings' `server.check_responses`). The command `learnplat tenants seed` is run as a
process in test_core_cli_processes."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from learnplat.errors import LearnplatError
from learnplat.seeding import SeedRun
from learnplat.testing import Client, make_tenant

PASSWORD = "seeded school password"
SIZES = {"users": 20, "instructors": 2, "courses": 3, "modules_per_course": 6,
         "enrollments": 20, "login_accounts": 2, "login_password": PASSWORD,
         "attempt_share": 0.7, "notifications_per_student": 3, "notifications_read": 1}


def test_each_plugin_seeds_after_the_plugins_it_requires(lp_runtime):
    order = [name for name, _ in SeedRun(lp_runtime).plugins()]
    assert {"identity", "courses", "enrollment", "progress", "quizzes",
            "notifications"} <= set(order)
    at = order.index
    assert at("identity") < at("courses") < at("enrollment") < at("progress")
    assert at("enrollment") < at("quizzes") and at("progress") < at("notifications")
    for name in order:  # no plugin before one it requires
        for needed in getattr(lp_runtime.plugin(name), "requires", ()):
            if needed in order:
                assert at(needed) < at(name), (needed, name)


@pytest.fixture
def seeded(lp_runtime) -> tuple[Any, Any, SeedRun]:
    tenant = make_tenant(lp_runtime)
    run = SeedRun(lp_runtime, rng_seed=3)
    return tenant, run.tenant(tenant, SIZES), run


def test_the_sizes_asked_for_are_the_rows_written(seeded):
    _tenant, seed, run = seeded
    made = seed.made
    assert run.rows["users"] == 20
    assert len(made["identity.admins"]) == 1 and len(made["identity.instructors"]) == 2
    assert len(made["identity.students"]) == 17 and len(made["identity.logins"]) == 2
    assert run.rows["courses"] == 3 and run.rows["modules"] == 18
    assert [kind for _, kind in made["courses.modules"][made["courses.ids"][0]]] == [
        "video", "text", "text", "text", "text", "quiz"]
    assert run.rows["enrollments"] == 20 == len(set((u, c) for u, c, _ in
                                                     made["enrollment.pairs"]))
    assert run.rows["course_progress"] == 20
    assert run.rows["quizzes"] == 3 and run.rows["quiz_questions"] == 60
    assert run.rows["quiz_attempts"] == len(made["quizzes.attempted"]) > 0
    assert run.rows["notifications"] == 3 * 17
    assert seed.asked >= set(SIZES)  # every size was read by a plugin


def test_a_seeded_school_reads_back_through_the_api(lp_app, seeded):
    tenant, seed, _run = seeded
    made = seed.made
    client = Client(lp_app, tenant)
    email = made["identity.logins"][0]
    login = client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.json
    me = client.as_(login.json["access_token"])
    profile = me.get("/auth/profile")
    assert profile.status_code == 200, profile.json
    uid = profile.json["id"]
    assert uid in made["identity.students"]

    catalogue = me.get("/courses").json["items"]
    assert sorted(c["id"] for c in catalogue) == sorted(made["courses.ids"])
    assert all(c["status"] == "published" for c in catalogue)

    mine = {c for u, c, _ in made["enrollment.pairs"] if u == uid}
    listed = me.get("/courses/enrollments").json["items"]
    assert {e["course_id"] for e in listed} == mine
    for cid in mine:
        progress = me.get(f"/progress/{cid}").json
        done = [m for m in progress["modules"] if m["completed"]]
        assert progress["completed_modules"] == len(done) < progress["required_modules"] == 6
        assert progress["percent"] == round(100 * len(done) / 6, 1)
        page = me.get(f"/courses/{cid}").json
        assert page["id"] == cid and len(page["modules"]) == 6
        mid, qid = made["quizzes.by_course"][cid]
        quiz = f"/courses/{cid}/modules/{mid}/quiz/{qid}"
        attempts = me.get(f"{quiz}/attempts").json["items"]
        if (uid, cid) in made["quizzes.attempted"]:
            assert [a["status"] for a in attempts] == ["graded"]
            assert me.get(f"{quiz}/result").status_code == 200
        else:
            assert attempts == []

    notes = me.get("/notifications").json["items"]
    assert len(notes) == 3 and sum(n["read_at"] is None for n in notes) == 2
    assert me.get("/notifications/unread-count").json["unread"] == 2

    # Another school sees none of it: not the courses, not the accounts.
    other = Client(lp_app, make_tenant(seed.runtime))
    assert other.get("/courses").json["items"] == []
    refused = other.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert refused.status_code == 401
    assert me.get("/courses", headers={"X-Tenant": other.tenant.slug}).status_code == 401


def test_the_same_rng_seed_makes_the_same_school(lp_runtime):
    shapes = []
    for _ in range(2):
        tenant = make_tenant(lp_runtime)
        seed = SeedRun(lp_runtime, rng_seed=11).tenant(tenant, SIZES)
        first_student = seed.made["identity.students"][0]
        courses = seed.made["courses.ids"]
        shapes.append((Counter(courses.index(c) for _, c, _ in seed.made["enrollment.pairs"]),
                       sorted((u - first_student, courses.index(c))
                              for u, c in seed.made["quizzes.attempted"])))
    assert shapes[0] == shapes[1]


def test_a_bad_size_names_itself_and_writes_nothing(lp_runtime):
    tenant = make_tenant(lp_runtime)
    with pytest.raises(LearnplatError, match="courses"):
        SeedRun(lp_runtime).tenant(tenant, {**SIZES, "courses": "many"})
    with pytest.raises(LearnplatError, match="login_password"):
        SeedRun(lp_runtime).tenant(tenant, {**SIZES, "login_password": ""})
    again = SeedRun(lp_runtime).tenant(tenant, {**SIZES, "login_accounts": 0})
    assert again.made["identity.admins"]  # the failed runs left no user behind to clash with
