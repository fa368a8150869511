"""The benchmark's data set: a documented, deterministic generator (seeded RNG), written by
the plugins themselves (each plugin's ``seed_tenant`` hook, learnplat.seeding): this module
only says how much.

Per `--scale 1` (the default; every count but the tenants is multiplied by the scale):

* tenants: 50, made by the tenant service (`runtime.tenants.create`: settings, domains);
* users: 20,000 (400 per tenant): 1 admin and 20 instructors per tenant (x scale), the rest
  students; in the first 8 tenants the first 4 students have the password `PASSWORD`, made
  by the identity service (`create_user`, one argon2 hash each: the `login` scenario's
  accounts), the others have no password (identity's part);
* courses: 2,000 (40 per tenant), published, 1-3 tags of 20, owned by the instructors;
  modules: 10 per course, positions 1-10: 1 and 6 video, 10 a quiz, the rest text; none
  locked (courses' part);
* enrollments: 200,000 (4,000 per tenant), distinct random (student, course) pairs, active
  (enrollment's part);
* course progress: 1 per enrollment, 0-4 completed text modules each (module progress rows
  to match), percent to match (progress's part);
* quizzes: 1 per course (its quiz module), 20 questions of every type: the first made by the
  quizzes service, the rest its copies; quiz attempts: 30 % of enrollments, one graded
  attempt (the plugin's own grading function on one of 4 answer sets per quiz) and the
  student's standing in the quiz (quizzes' part);
* notifications: 5 per student, 2 of them read, by the notifications service (`notify` for
  all the tenant's students at once, `mark_all_read` per student) (notifications' part).

How each part is written (docs/performance.md "The data set"): through a plugin's services
where they make it in under a minute (tenants, the login accounts, the template quiz,
notifications); the rest in bulk through the plugin's own models (`Seed.bulk`: the INSERT
peewee generates from the model class, each value converted by its field, as the app's role
inside the tenant's context: row-level security applies), one transaction per tenant,
because the services make one row at a time (measured on the 2-core bench VM: create_user
3-4 ms, a course with 10 modules and its publication 120-140 ms, a quiz 30-60 ms, an
enrollment 2 ms before its events, a module completion 26 ms, a quiz attempt 30 ms: hours at
--scale 1). `--quick` is a tiny set (3 tenants, 60 users, 8 courses, 200 enrollments each).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PASSWORD = "bench-password-2026"


@dataclass
class Plan:
    tenants: int = 50
    users_per_tenant: int = 400
    instructors_per_tenant: int = 20
    courses_per_tenant: int = 40
    enrollments_per_tenant: int = 4000
    modules_per_course: int = 10
    notifications_per_student: int = 5
    notifications_read: int = 2
    attempt_share: float = 0.3
    login_tenants: int = 8  # tenants with login accounts (bin/bench --token-tenants: 8)
    login_accounts: int = 4  # students with a password per such tenant

    @classmethod
    def for_scale(cls, scale: float, quick: bool = False) -> Plan:
        if quick:
            return cls(tenants=3, users_per_tenant=60, instructors_per_tenant=4,
                       courses_per_tenant=8, enrollments_per_tenant=200, login_tenants=2,
                       login_accounts=2)
        return cls(users_per_tenant=int(400 * scale), instructors_per_tenant=int(20 * scale),
                   courses_per_tenant=int(40 * scale),
                   enrollments_per_tenant=int(4000 * scale))

    def sizes(self, index: int) -> dict[str, Any]:
        """What the plugins' seed_tenant hooks are asked for in the `index`-th tenant."""
        logins = self.login_accounts if index < self.login_tenants else 0
        return {"users": self.users_per_tenant, "instructors": self.instructors_per_tenant,
                "login_accounts": logins, "login_password": PASSWORD,
                "courses": self.courses_per_tenant, "modules_per_course": self.modules_per_course,
                "enrollments": self.enrollments_per_tenant, "attempt_share": self.attempt_share,
                "notifications_per_student": self.notifications_per_student,
                "notifications_read": self.notifications_read}

    def describe(self) -> dict[str, int]:
        n = self.tenants
        return {"tenants": n, "users": n * self.users_per_tenant,
                "courses": n * self.courses_per_tenant,
                "modules": n * self.courses_per_tenant * self.modules_per_course,
                "enrollments": n * self.enrollments_per_tenant}


@dataclass
class TenantData:
    id: int
    slug: str
    admin_id: int
    instructors: list[int]
    students: list[int]
    courses: list[int]
    # course id -> {"video": [module ids], "text": [...], "quiz": (module id, quiz id)}
    modules: dict[int, dict[str, Any]] = field(default_factory=dict)
    enrolled: dict[int, set[int]] = field(default_factory=dict)  # student -> course ids
    attempted: set[tuple[int, int]] = field(default_factory=set)  # (student, course)
    logins: list[str] = field(default_factory=list)  # emails of the accounts with PASSWORD

    @classmethod
    def of(cls, tenant_id: int, slug: str, made: dict[str, Any]) -> TenantData:
        """What the plugins' parts made in a tenant (their `seed.made` keys), as the
        scenarios read it."""
        quiz = made.get("quizzes.by_course", {})
        t = cls(tenant_id, slug, made["identity.admins"][0], made["identity.instructors"],
                made["identity.students"], made["courses.ids"],
                logins=made["identity.logins"],
                attempted=set(made.get("quizzes.attempted", ())))
        for cid, modules in made["courses.modules"].items():
            t.modules[cid] = {"video": [m for m, kind in modules if kind == "video"],
                              "text": [m for m, kind in modules if kind == "text"],
                              "quiz": quiz.get(cid, (0, 0))}
        for uid, cid, _when in made["enrollment.pairs"]:
            t.enrolled.setdefault(uid, set()).add(cid)
        return t


@dataclass
class Seeded:
    plan: Plan
    tenants: list[TenantData]
    seconds: float
    rows: dict[str, int]
    quiz_questions: dict[int, list[dict[str, Any]]]  # quiz id -> frozen questions


def seed(runtime: Any, plan: Plan, admin_db_url: str = "", rng_seed: int = 14,
         log: Callable[[str], Any] = print) -> Seeded:
    """Make the data set in the runtime's (migrated, empty) database; with `admin_db_url` (a
    superuser URL of the same database) VACUUM, ANALYZE and CHECKPOINT it afterwards."""
    from learnplat import db
    from learnplat.seeding import SeedRun
    from learnplat.tenants import TenantSpec

    started = time.perf_counter()
    run = SeedRun(runtime, rng_seed)
    tenants: list[TenantData] = []
    questions: dict[int, list[dict[str, Any]]] = {}
    for i in range(plan.tenants):
        with db.connection(), db.transaction():
            info = runtime.tenants.create(TenantSpec(slug=f"bench{i:03d}",
                                                     name=f"Bench School {i}"))
        made = run.tenant(info, plan.sizes(i)).made
        tenants.append(TenantData.of(info.id, info.slug, made))
        questions.update(made["quizzes.questions"])
        if i % 10 == 9 or i == plan.tenants - 1:
            log(f"  {i + 1} tenants: {run.rows['users']} users, {run.rows['enrollments']} "
                f"enrollments ({time.perf_counter() - started:.1f} s)")
    log("  by plugin: " + ", ".join(f"{name} {t:.1f} s" for name, t in run.seconds.items()))
    if admin_db_url:
        settle(admin_db_url)
        log(f"  vacuumed, analyzed, checkpointed ({time.perf_counter() - started:.1f} s)")
    rows = {"tenants": len(tenants), **run.rows}
    return Seeded(plan, tenants, time.perf_counter() - started, rows, questions)


def settle(admin_db_url: str) -> None:
    """VACUUM (ANALYZE) and CHECKPOINT, as the superuser. After a million new rows autovacuum
    would otherwise vacuum them during the measured runs (minutes of CPU at --scale 10), and
    the checkpointer would write what seeding dirtied during the runs (gigabytes at --scale
    10): the bigger data set would look slower for what is only the database's housekeeping.
    """
    import psycopg2

    conn = psycopg2.connect(admin_db_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("VACUUM (ANALYZE)")
            cur.execute("CHECKPOINT")
    finally:
        conn.close()
