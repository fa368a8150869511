"""The benchmark's data set: a documented, deterministic generator (seeded RNG).

Per `--scale 1` (the default; every count but the tenants is multiplied by the scale):

* tenants: 50, made by the tenant service (`runtime.tenants.create`: settings, domains);
* users: 20,000 (400 per tenant): 1 admin and 20 instructors per tenant (x scale), the rest
  students; in the first 8 tenants the first 4 students have the password `PASSWORD`, made
  by the identity service (`create_user`, one argon2 hash each: the `login` scenario's
  accounts), the others have no password;
* courses: 2,000 (40 per tenant), published, 1-3 tags of 20, owned by the instructors;
* modules: 10 per course, positions 0-9: 0 and 5 video, 9 a quiz, the rest text; none locked;
* quizzes: 1 per course (module 9), 20 questions of every type (bench/quiz_submit.quiz_body):
  one made by the quizzes service, its questions and frozen version cloned for the rest;
* enrollments: 200,000 (4,000 per tenant), distinct random (student, course) pairs, active;
* course progress: 1 per enrollment, 0-4 completed text modules each (module progress rows
  to match), percent to match;
* quiz attempts: 30 % of enrollments, one graded attempt (the quizzes plugin's pure grading
  function on one of 4 answer sets per quiz) and the student's standing in the quiz;
* notifications: 5 per student, 2 of them read, by the notifications service (`notify` for
  all the tenant's students at once, `mark_all_read` per student).

How each part is written (docs/performance.md "The data set"): through the plugins' services
where they make the data set in under a minute (tenants, the login accounts, the template
quiz, notifications); the rest in bulk through the plugins' own models (`bulk`: the INSERT
peewee generates from the plugin's model class, each value converted by its field, as the
app's role inside the tenant's context: row-level security applies, the tenant column is the
model's to fill), one transaction per tenant, because the services make one row at a time
(measured on the 2-core bench VM: create_user 3-4 ms, a course with 10 modules and its
publication 120-140 ms, a quiz 30-60 ms, an enrollment 2 ms before its events, a module
completion 26 ms, a quiz attempt 30 ms: hours at --scale 1). A `seed` hook per plugin would
let each plugin bulk-write its own rows; until then this module knows their fields. `--quick`
is a tiny set (3 tenants, 60 users, 8 courses, 200 enrollments each).
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PASSWORD = "bench-password-2026"
TAGS = ["python", "data", "web", "design", "math", "history", "music", "language", "science",
        "art", "business", "health", "writing", "physics", "biology", "chemistry", "law",
        "finance", "robotics", "ethics"]
CHUNK = 1000  # rows per INSERT: ~20 columns x 1000 stays far below PostgreSQL's 65,535 params


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


@dataclass
class Seeded:
    plan: Plan
    tenants: list[TenantData]
    seconds: float
    rows: dict[str, int]
    quiz_questions: dict[int, list[dict[str, Any]]]  # quiz id -> frozen questions


def bulk(model: Any, rows: list[dict[str, Any]]) -> int:
    """Insert `rows` (dicts by field name) through the plugin's model in the current tenant
    and transaction; how many."""
    _insert(model, rows, ids=False)
    return len(rows)


def bulk_ids(model: Any, rows: list[dict[str, Any]]) -> list[int]:
    """As bulk, and the new rows' ids, in order."""
    return _insert(model, rows, ids=True)


def _insert(model: Any, rows: list[dict[str, Any]], ids: bool) -> list[int]:
    """The model's own INSERT (peewee generates it from the model, with the tenant the model
    adds), sent for CHUNK rows at a time with psycopg2's execute_values, each value converted
    by its field's db_value. peewee's insert_many builds the same statement but spends ~100 us
    per row composing it: minutes for the million rows of --scale 1. Where the model's
    statement is not the expected shape, peewee's insert_many does it all."""
    from psycopg2.extras import execute_values

    from learnplat import db

    if not rows:
        return []
    fields = [f for f in model._meta.sorted_fields if f.name != "id"]
    defaults = {f.name: f.default for f in fields if f.default is not None}
    full = [{f.name: row[f.name] if f.name in row else
             (d() if callable(d := defaults.get(f.name)) else d) for f in fields if
             f is not model.tenant} for row in rows]
    sql, _params = model.insert(full[0]).sql()
    columns = "(" + ", ".join(f'"{f.column_name}"' for f in fields) + ")"
    head, values, tail = sql.partition(" VALUES ")
    if not head.endswith(columns) or not values or not db.is_postgres():
        return _insert_many(model, full, ids)
    returning = tail[tail.index(")") + 1:]  # "" or ' RETURNING "table"."id"'
    tenant_id = model._tenant_id()
    args = [[tenant_id if f is model.tenant else f.db_value(row[f.name]) for f in fields]
            for row in full]
    cursor = db.database.cursor()
    out = execute_values(cursor, f"{head} VALUES %s{returning}", args, page_size=CHUNK,
                         fetch=bool(returning) and ids)
    return [r[0] for r in out] if ids else []


def _insert_many(model: Any, rows: list[dict[str, Any]], ids: bool) -> list[int]:
    out: list[int] = []
    for start in range(0, len(rows), CHUNK):
        query = model.insert_many(rows[start:start + CHUNK])
        if ids:
            out += [r[0] for r in query.returning(model.id).tuples().execute()]
        else:
            query.as_rowcount().execute()
    return out


class Seeder:
    def __init__(self, runtime: Any, plan: Plan, rng_seed: int, log: Callable[[str], Any]):
        self.runtime, self.plan, self.log = runtime, plan, log
        self.rng = random.Random(rng_seed)
        self.now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        self.started = time.perf_counter()
        self.rows: dict[str, int] = {}
        self.tenants: list[TenantData] = []
        self.quiz_questions: dict[int, list[dict[str, Any]]] = {}
        self.template: dict[str, Any] = {}
        self.variants: dict[int, list[Any]] = {}

    def count(self, name: str, n: int) -> None:
        self.rows[name] = self.rows.get(name, 0) + n

    def took(self) -> str:
        return f"({time.perf_counter() - self.started:.1f} s)"

    def principal(self, t: TenantData, user_id: int, role: str) -> Any:
        from learnplat.plugin import Principal

        return Principal(user_id, t.id, role, self.runtime.registry.grants_for(role))

    def each_tenant(self, step: Callable[[int, TenantData], None]) -> None:
        """`step(i, t)` for every tenant, in its context and one transaction."""
        from learnplat import db
        from learnplat.tenancy import tenant_context

        for i, t in enumerate(self.tenants):
            info = self.runtime.tenants.require(t.slug)
            with db.connection(), tenant_context(info), db.transaction():
                step(i, t)

    # -- 1. tenants, users, courses, modules ------------------------------------------------

    def make_tenants(self) -> None:
        from learnplat import db
        from learnplat.tenants import TenantSpec

        with db.connection():
            for i in range(self.plan.tenants):
                info = self.runtime.tenants.create(TenantSpec(slug=f"bench{i:03d}",
                                                              name=f"Bench School {i}"))
                self.tenants.append(TenantData(info.id, info.slug, 0, [], [], []))
        self.count("tenants", len(self.tenants))

    def users(self, i: int, t: TenantData) -> None:
        from learnplat_identity.api import IDENTITY
        from learnplat_identity.models import User

        plan = self.plan
        roles = ["admin"] + ["instructor"] * plan.instructors_per_tenant
        roles += ["student"] * (plan.users_per_tenant - len(roles))
        email = [f"{role}{n}@{t.slug}.example" for n, role in enumerate(roles)]
        logins = plan.login_accounts if i < plan.login_tenants else 0
        first_student = 1 + plan.instructors_per_tenant
        ids = bulk_ids(User, [{"email": email[n], "name": f"{role.title()} {n}", "role": role,
                           "email_verified": True, "created_at": self.now,
                           "updated_at": self.now}
                          for n, role in enumerate(roles[:first_student])])
        ident = self.runtime.service(IDENTITY)
        for n in range(first_student, first_student + logins):
            ids.append(ident.create_user(email[n], PASSWORD, f"Student {n}",
                                         email_verified=True).id)
            t.logins.append(email[n])
        ids += bulk_ids(User, [{"email": email[n], "name": f"Student {n}", "role": "student",
                            "email_verified": True, "created_at": self.now,
                            "updated_at": self.now}
                           for n in range(first_student + logins, len(roles))])
        t.admin_id, t.instructors = ids[0], ids[1:first_student]
        t.students = ids[first_student:]
        self.count("users", len(ids))

    def courses(self, i: int, t: TenantData) -> None:
        from learnplat_courses.models import Course, CourseTag, Module

        rng, now, per = self.rng, self.now, self.plan.modules_per_course
        t.courses = bulk_ids(Course, [
            {"owner_id": rng.choice(t.instructors),
             "title": f"Course {k} of {t.slug}: {rng.choice(TAGS)} "
                      f"for {rng.choice(['beginners', 'everyone', 'pros'])}",
             "description": "A benchmark course. " * 8,
             "level": rng.choice(("beginner", "intermediate", "advanced")),
             "status": "published", "published_at": now, "created_at": now, "updated_at": now,
             "rating_count": 0, "rating_sum": 0}
            for k in range(self.plan.courses_per_tenant)])
        tags = [{"course": cid, "tag": tag} for cid in t.courses
                for tag in rng.sample(TAGS, rng.randint(1, 3))]
        self.count("courses", len(t.courses))
        self.count("course_tags", bulk(CourseTag, tags))
        kinds = ["video" if pos in (0, 5) else "quiz" if pos == per - 1 else "text"
                 for pos in range(per)]
        mids = bulk_ids(Module, [
            {"course": cid, "title": f"Module {pos}", "position": pos, "kind": kind,
             "estimated_minutes": 10, "required": True, "created_at": now, "updated_at": now}
            for cid in t.courses for pos, kind in enumerate(kinds)])
        for k, cid in enumerate(t.courses):
            mine = list(zip(mids[k * per:(k + 1) * per], kinds, strict=True))
            t.modules[cid] = {"video": [m for m, kind in mine if kind == "video"],
                              "text": [m for m, kind in mine if kind == "text"],
                              "quiz": next(((m, 0) for m, kind in mine if kind == "quiz"))}
        self.count("modules", len(mids))

    # -- 2. quizzes: one through the service, cloned ------------------------------------------

    def template_quiz(self, i: int, t: TenantData) -> None:
        """The quizzes service makes the quiz of tenant 0's first course (as its owner)."""
        if i != 0:
            return
        from learnplat_courses.api import COURSES
        from learnplat_quizzes.api import QUIZZES
        from learnplat_quizzes.models import Question, Quiz, QuizVersion
        from learnplat_quizzes.schemas import QuizIn

        from bench.quiz_submit import quiz_body

        c0 = t.courses[0]
        qmid0 = t.modules[c0]["quiz"][0]
        course = self.runtime.service(COURSES).get_course(c0)
        owner = self.principal(t, course.owner_id, "instructor")
        quiz = self.runtime.service(QUIZZES).create(owner, c0, qmid0, QuizIn(**quiz_body()))
        version = QuizVersion.get(QuizVersion.quiz == quiz.id)
        self.template = {
            "quiz": Quiz.select().where(Quiz.id == quiz.id).dicts().get(),
            "questions": list(Question.select().where(Question.quiz == quiz.id)
                              .order_by(Question.position).dicts()),
            "frozen": version.questions}
        t.modules[c0]["quiz"] = (qmid0, quiz.id)
        self.quiz_questions[quiz.id] = self._frozen(version.questions, version.id)
        self.count("quizzes", 1)

    def _frozen(self, questions: list[dict[str, Any]], version: int) -> list[dict[str, Any]]:
        return [dict(q, _version=version, _pass=self.template["quiz"]["pass_mark"])
                for q in questions]

    def clone_quizzes(self, i: int, t: TenantData) -> None:
        from learnplat_quizzes.models import Question, Quiz, QuizVersion

        tpl = self.template
        targets = [cid for cid in t.courses if t.modules[cid]["quiz"][1] == 0]
        keep = {k: v for k, v in tpl["quiz"].items() if k not in ("id", "tenant")}
        qids = bulk_ids(Quiz, [{**keep, "course_id": cid, "module_id": t.modules[cid]["quiz"][0],
                            "created_at": self.now, "updated_at": self.now}
                           for cid in targets])
        n = len(tpl["questions"])
        new_ids = bulk_ids(Question, [
            {**{k: v for k, v in q.items() if k not in ("id", "tenant", "quiz")}, "quiz": qid}
            for qid in qids for q in tpl["questions"]])
        position = {q["id"]: k for k, q in enumerate(tpl["questions"])}
        frozen = {qid: [dict(q, id=new_ids[j * n + position[q["id"]]]) for q in tpl["frozen"]]
                  for j, qid in enumerate(qids)}
        vids = bulk_ids(QuizVersion, [{"quiz": qid, "number": 1,
                                   "pass_mark": tpl["quiz"]["pass_mark"],
                                   "questions": frozen[qid], "created_at": self.now}
                                  for qid in qids])
        for cid, qid, vid in zip(targets, qids, vids, strict=True):
            t.modules[cid]["quiz"] = (t.modules[cid]["quiz"][0], qid)
            self.quiz_questions[qid] = self._frozen(frozen[qid], vid)
        self.count("quizzes", len(qids))
        self.count("quiz_questions", len(new_ids))

    # -- 3. enrollments, progress, attempts --------------------------------------------------

    def learners(self, i: int, t: TenantData) -> None:
        from learnplat_enrollment.models import Enrollment
        from learnplat_progress.models import CourseProgress, ModuleProgress

        rng, plan = self.rng, self.plan
        pairs: set[tuple[int, int]] = set()
        want = min(plan.enrollments_per_tenant, len(t.students) * len(t.courses) // 2)
        while len(pairs) < want:
            pairs.add((rng.choice(t.students), rng.choice(t.courses)))
        erows, cprows, mprows, attempts = [], [], [], []
        total = plan.modules_per_course
        for uid, cid in sorted(pairs):
            t.enrolled.setdefault(uid, set()).add(cid)
            when = self.now - dt.timedelta(days=rng.randint(1, 300))
            erows.append({"course_id": cid, "user_id": uid, "status": "active",
                          "source": "self", "created_at": when, "updated_at": when})
            text = t.modules[cid]["text"]
            done = rng.sample(text, rng.randint(0, min(4, len(text))))
            cprows.append({"course_id": cid, "user_id": uid, "status": "active",
                           "percent": round(100 * len(done) / total, 1),
                           "completed_count": len(done), "required_count": total,
                           "last_activity_at": when, "created_at": when, "updated_at": when})
            mprows += [{"course_id": cid, "module_id": mid, "user_id": uid,
                        "completed_at": when, "completed_source": "manual", "updated_at": when}
                       for mid in done]
            if rng.random() < plan.attempt_share:
                attempts.append((uid, cid, when))
        self.count("enrollments", bulk(Enrollment, erows))
        self.count("course_progress", bulk(CourseProgress, cprows))
        self.count("module_progress", bulk(ModuleProgress, mprows))
        self.attempts(t, attempts)

    def attempts(self, t: TenantData, attempts: list[tuple[int, int, dt.datetime]]) -> None:
        """One graded attempt each, graded by the quizzes plugin's pure grading function."""
        from learnplat_quizzes.models import Attempt, StudentQuiz

        arows, graded = [], []
        for uid, cid, when in attempts:
            qid = t.modules[cid]["quiz"][1]
            answers, result, layout = self.rng.choice(self._variants(qid))
            t.attempted.add((uid, cid))
            graded.append((uid, cid, qid, when, result))
            arows.append({"quiz": qid, "version": self.quiz_questions[qid][0]["_version"],
                          "course_id": cid, "user_id": uid, "number": 1, "status": "graded",
                          "started_at": when, "layout": layout, "answers": answers,
                          "saved_at": {}, "manual": {},
                          "results": [r.as_dict() for r in result.results],
                          "submitted_at": when, "late": False, "points": result.points,
                          "max_points": result.max_points, "percent": result.percent,
                          "passed": result.passed, "pending": 0, "needs_review": False,
                          "graded_at": when})
        aids = bulk_ids(Attempt, arows)
        sqrows = [{"quiz": qid, "course_id": cid, "user_id": uid, "attempts": 1,
                   "counted_attempt_id": aid, "percent": result.percent,
                   "passed": result.passed, "passed_at": when if result.passed else None,
                   "updated_at": when}
                  for aid, (uid, cid, qid, when, result) in zip(aids, graded, strict=True)]
        self.count("quiz_attempts", len(aids))
        self.count("student_quizzes", bulk(StudentQuiz, sqrows))

    def _variants(self, qid: int) -> list[Any]:
        """4 answer sets of a quiz, graded by the pure grading function once each."""
        cache = self.variants
        if qid not in cache:
            from learnplat_quizzes import grading, views

            from bench.quiz_submit import answers_for

            raw = [{k: v for k, v in q.items() if not k.startswith("_")}
                   for q in self.quiz_questions[qid]]
            frozen = views.frozen_questions(raw)
            layout = [[q["id"], list(range(len(q.get("options") or [])))] for q in raw]
            pass_mark = self.quiz_questions[qid][0]["_pass"]
            cache[qid] = [(answers, grading.grade(frozen, answers, pass_mark), layout)
                          for answers in (answers_for(raw, random.Random(qid * 10 + k))
                                          for k in range(4))]
        return cache[qid]

    # -- 4. notifications through the service ------------------------------------------------

    def notifications(self, i: int, t: TenantData) -> None:
        from learnplat_notifications.api import NOTIFICATIONS

        notes = self.runtime.service(NOTIFICATIONS)
        made = 0
        for n in range(self.plan.notifications_per_student):
            if n == self.plan.notifications_read:
                for uid in t.students:
                    notes.mark_all_read(self.principal(t, uid, "student"))
            made += notes.notify(t.students, "announcement", f"Notice {n}",
                                 "Something happened.", source=f"bench:{n}")
        self.count("notifications", made)


def seed(runtime: Any, plan: Plan, admin_db_url: str = "", rng_seed: int = 14,
         log: Callable[[str], Any] = print) -> Seeded:
    """Make the data set in the runtime's (migrated, empty) database; with `admin_db_url` (a
    superuser URL of the same database) VACUUM, ANALYZE and CHECKPOINT it afterwards."""
    s = Seeder(runtime, plan, rng_seed, log)
    s.make_tenants()
    s.each_tenant(s.users)
    log(f"  tenants, users: {s.rows['users']} {s.took()}")
    s.each_tenant(s.courses)
    log(f"  courses, modules: {s.rows['courses']}, {s.rows['modules']} {s.took()}")
    s.each_tenant(s.template_quiz)
    s.each_tenant(s.clone_quizzes)
    log(f"  quizzes: {s.rows['quizzes']} {s.took()}")
    s.each_tenant(s.learners)
    log(f"  enrollments etc.: {s.rows['enrollments']} {s.took()}")
    s.each_tenant(s.notifications)
    log(f"  notifications: {s.rows['notifications']} {s.took()}")
    if admin_db_url:
        settle(admin_db_url)
        log(f"  vacuumed, analyzed, checkpointed {s.took()}")
    # the quiz template's private keys are not needed by the caller
    clean = {qid: [{k: v for k, v in q.items() if not k.startswith("_")} for q in qs]
             for qid, qs in s.quiz_questions.items()}
    return Seeded(plan, s.tenants, time.perf_counter() - s.started, s.rows, clean)


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
