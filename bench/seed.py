"""The benchmark's data set: a documented, deterministic generator (seeded RNG).

Per `--scale 1` (the default; every count but the tenants is multiplied by the scale):

* tenants: 50, made by `runtime.tenants.create` (the real code path: settings, domains);
* users: 20,000 (400 per tenant): 1 admin and 20 instructors per tenant (x scale), the rest
  students; one argon2 hash of `PASSWORD`, computed once, shared by all;
* courses: 2,000 (40 per tenant), published, 1-3 tags of 20, owned by the instructors;
* modules: 10 per course, positions 0-9: 0 and 5 video, 9 a quiz, the rest text; none locked;
* quizzes: 1 per course (module 9), 20 questions of every type (bench/quiz_submit.quiz_body):
  one made through the quizzes service, its questions and frozen version cloned for the rest;
* enrollments: 200,000 (4,000 per tenant), distinct random (student, course) pairs, active;
* course progress: 1 per enrollment, 0-4 completed text modules each (module progress rows
  to match), percent to match;
* quiz attempts: 30 % of enrollments, one graded attempt (the pure grading function on one of
  4 answer sets per quiz) and the student's standing in the quiz;
* notifications: 5 per student, 2 of them read.

Everything but the tenants is written with PostgreSQL COPY over the admin connection of the
bench database (the superuser: bulk writes need not set the tenant for RLS), with ids taken
from each table's sequence first so rows can point at each other. `--quick` is a tiny set
(3 tenants, 60 users, 8 courses, 200 enrollments each).
"""

from __future__ import annotations

import datetime as dt
import io
import random
import time
from dataclasses import dataclass, field
from typing import Any

import peewee

PASSWORD = "bench-password-2026"
TAGS = ["python", "data", "web", "design", "math", "history", "music", "language", "science",
        "art", "business", "health", "writing", "physics", "biology", "chemistry", "law",
        "finance", "robotics", "ethics"]


@dataclass
class Plan:
    tenants: int = 50
    users_per_tenant: int = 400
    instructors_per_tenant: int = 20
    courses_per_tenant: int = 40
    enrollments_per_tenant: int = 4000
    modules_per_course: int = 10
    notifications_per_student: int = 5
    attempt_share: float = 0.3

    @classmethod
    def for_scale(cls, scale: float, quick: bool = False) -> Plan:
        if quick:
            return cls(tenants=3, users_per_tenant=60, instructors_per_tenant=4,
                       courses_per_tenant=8, enrollments_per_tenant=200)
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


@dataclass
class Seeded:
    plan: Plan
    tenants: list[TenantData]
    seconds: float
    rows: dict[str, int]
    quiz_questions: dict[int, list[dict[str, Any]]]  # quiz id -> frozen questions


# -- COPY ---------------------------------------------------------------------------------


def _esc(s: str) -> str:
    if "\\" in s or "\t" in s or "\n" in s or "\r" in s:
        return (s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                .replace("\r", "\\r"))
    return s


def _dt(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(" ")


def _converter(f: peewee.Field) -> Any:
    """value -> COPY text for one field (what its db_value would store)."""
    import orjson

    from learnplat.models import JSONField

    if isinstance(f, JSONField):
        return lambda v: _esc(orjson.dumps(v).decode())
    if isinstance(f, peewee.DateTimeField):
        return _dt
    if isinstance(f, peewee.BooleanField):
        return lambda v: "t" if v else "f"
    if isinstance(f, (peewee.IntegerField, peewee.FloatField, peewee.ForeignKeyField,
                      peewee.AutoField)):
        return str
    return lambda v: _esc(str(v))


def copy_rows(cur: Any, model: type[peewee.Model], rows: list[dict[str, Any]],
              with_id: bool = False) -> int:
    """COPY `rows` (dicts by field name; `tenant` as an id) into the model's table, filling
    peewee's Python-side defaults (the tables have no SQL defaults) and converting each value
    as the field's db_value would."""
    if not rows:
        return 0
    fields = [f for f in model._meta.sorted_fields if with_id or f.name != "id"]
    plan = []
    for f in fields:
        d = f.default
        plan.append((f.name, d if callable(d) else (lambda d=d: d), _converter(f)))
    buf = io.StringIO()
    write = buf.write
    for row in rows:
        out = []
        for name, default, conv in plan:
            value = row[name] if name in row else default()
            out.append("\\N" if value is None else conv(value))
        write("\t".join(out))
        write("\n")
    buf.seek(0)
    columns = ", ".join(f'"{f.column_name}"' for f in fields)
    cur.copy_expert(f'COPY "{model._meta.table_name}" ({columns}) FROM STDIN', buf)
    return len(rows)


def take_ids(cur: Any, model: type[peewee.Model], n: int) -> list[int]:
    if n <= 0:
        return []
    table = model._meta.table_name
    cur.execute(f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) "
                "FROM generate_series(1, %s)", (n,))
    return [r[0] for r in cur.fetchall()]


# -- the generator --------------------------------------------------------------------------


def seed(runtime: Any, admin_db_url: str, plan: Plan, rng_seed: int = 14,
         log: Any = print) -> Seeded:
    import psycopg2
    from learnplat_courses.models import Course, CourseTag, Module
    from learnplat_enrollment.models import Enrollment
    from learnplat_identity import passwords
    from learnplat_identity.models import User
    from learnplat_notifications.models import Notification
    from learnplat_progress.models import CourseProgress, ModuleProgress
    from learnplat_quizzes import grading as g
    from learnplat_quizzes import views as v
    from learnplat_quizzes.models import Attempt, StudentQuiz

    from learnplat import db
    from learnplat.tenants import TenantSpec

    started = time.perf_counter()
    rng = random.Random(rng_seed)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows: dict[str, int] = {}

    def count(name: str, n: int) -> None:
        rows[name] = rows.get(name, 0) + n

    # 1. tenants through the real code path
    tenants: list[TenantData] = []
    with db.connection():
        for i in range(plan.tenants):
            info = runtime.tenants.create(TenantSpec(slug=f"bench{i:03d}",
                                                     name=f"Bench School {i}"))
            tenants.append(TenantData(info.id, info.slug, 0, [], [], []))
    pw_hash = passwords.hash_password(PASSWORD)
    conn = psycopg2.connect(admin_db_url)
    try:
        cur = conn.cursor()
        # 2. users
        per = plan.users_per_tenant
        for t in tenants:
            ids = take_ids(cur, User, per)
            t.admin_id, t.instructors = ids[0], ids[1:1 + plan.instructors_per_tenant]
            t.students = ids[1 + plan.instructors_per_tenant:]
            urows = []
            for n, uid in enumerate(ids):
                role = ("admin" if n == 0 else "instructor" if uid in t.instructors
                        else "student")
                urows.append({"id": uid, "tenant": t.id, "email": f"{role}{n}@{t.slug}.example",
                              "name": f"{role.title()} {n}", "password_hash": pw_hash,
                              "role": role, "email_verified": True, "created_at": now,
                              "updated_at": now})
            count("users", copy_rows(cur, User, urows, with_id=True))
        log(f"  users: {rows['users']} ({time.perf_counter() - started:.1f} s)")

        # 3. courses, tags, modules
        for t in tenants:
            t.courses = take_ids(cur, Course, plan.courses_per_tenant)
            crows, trows = [], []
            for k, cid in enumerate(t.courses):
                crows.append({"id": cid, "tenant": t.id, "owner_id": rng.choice(t.instructors),
                              "title": f"Course {k} of {t.slug}: {rng.choice(TAGS)} "
                                       f"for {rng.choice(['beginners', 'everyone', 'pros'])}",
                              "description": "A benchmark course. " * 8,
                              "level": rng.choice(("beginner", "intermediate", "advanced")),
                              "status": "published", "published_at": now, "created_at": now,
                              "updated_at": now, "rating_count": 0, "rating_sum": 0})
                for tag in rng.sample(TAGS, rng.randint(1, 3)):
                    trows.append({"tenant": t.id, "course": cid, "tag": tag})
            count("courses", copy_rows(cur, Course, crows, with_id=True))
            count("course_tags", copy_rows(cur, CourseTag, trows))
            mids = take_ids(cur, Module, len(t.courses) * plan.modules_per_course)
            mrows = []
            for k, cid in enumerate(t.courses):
                mine = mids[k * plan.modules_per_course:(k + 1) * plan.modules_per_course]
                kinds = {"video": [], "text": [], "quiz": None}
                for pos, mid in enumerate(mine):
                    kind = ("video" if pos in (0, 5) else
                            "quiz" if pos == plan.modules_per_course - 1 else "text")
                    if kind == "quiz":
                        kinds["quiz"] = (mid, 0)
                    else:
                        kinds[kind].append(mid)
                    mrows.append({"id": mid, "tenant": t.id, "course": cid,
                                  "title": f"Module {pos}", "position": pos, "kind": kind,
                                  "estimated_minutes": 10, "required": True,
                                  "created_at": now, "updated_at": now})
                t.modules[cid] = kinds
            count("modules", copy_rows(cur, Module, mrows, with_id=True))
        conn.commit()
        log(f"  courses, modules: {rows['courses']}, {rows['modules']} "
            f"({time.perf_counter() - started:.1f} s)")

        # 4. one quiz through the service (tenant 0, course 0), cloned for every other course
        quiz_questions = _quizzes(runtime, cur, tenants, now, count, copy_rows, take_ids)
        conn.commit()
        log(f"  quizzes: {rows['quizzes']} ({time.perf_counter() - started:.1f} s)")

        # 5. enrollments, progress, attempts, notifications
        variants: dict[int, list[tuple[dict[str, Any], Any, list[Any]]]] = {}
        for t in tenants:
            pairs: set[tuple[int, int]] = set()
            want = min(plan.enrollments_per_tenant, len(t.students) * len(t.courses) // 2)
            while len(pairs) < want:
                pairs.add((rng.choice(t.students), rng.choice(t.courses)))
            erows, cprows, mprows = [], [], []
            arows, sqrows = [], []
            aids = take_ids(cur, Attempt, int(len(pairs) * plan.attempt_share * 1.2) + 10)
            for uid, cid in sorted(pairs):
                t.enrolled.setdefault(uid, set()).add(cid)
                when = now - dt.timedelta(days=rng.randint(1, 300))
                erows.append({"tenant": t.id, "course_id": cid, "user_id": uid,
                              "status": "active", "source": "self", "created_at": when,
                              "updated_at": when})
                mods = t.modules[cid]
                done = rng.sample(mods["text"], rng.randint(0, min(4, len(mods["text"]))))
                total = plan.modules_per_course
                cprows.append({"tenant": t.id, "course_id": cid, "user_id": uid,
                               "status": "active", "percent": round(100 * len(done) / total, 1),
                               "completed_count": len(done), "required_count": total,
                               "last_activity_at": when, "created_at": when, "updated_at": when})
                for mid in done:
                    mprows.append({"tenant": t.id, "course_id": cid, "module_id": mid,
                                   "user_id": uid, "completed_at": when,
                                   "completed_source": "manual", "updated_at": when})
                if rng.random() < plan.attempt_share and aids:
                    _qmid, qid = mods["quiz"]
                    answers, result, layout = rng.choice(_variants(variants, qid,
                                                                   quiz_questions, g, v))
                    aid = aids.pop()
                    t.attempted.add((uid, cid))
                    arows.append({"id": aid, "tenant": t.id, "quiz": qid,
                                  "version": quiz_questions[qid][0]["_version"],
                                  "course_id": cid, "user_id": uid, "number": 1,
                                  "status": "graded", "started_at": when, "layout": layout,
                                  "answers": answers, "saved_at": {}, "manual": {},
                                  "results": [r.as_dict() for r in result.results],
                                  "submitted_at": when, "late": False,
                                  "points": result.points, "max_points": result.max_points,
                                  "percent": result.percent, "passed": result.passed,
                                  "pending": 0, "needs_review": False, "graded_at": when})
                    sqrows.append({"tenant": t.id, "quiz": qid, "course_id": cid,
                                   "user_id": uid, "attempts": 1, "counted_attempt_id": aid,
                                   "percent": result.percent, "passed": result.passed,
                                   "passed_at": when if result.passed else None,
                                   "updated_at": when})
            count("enrollments", copy_rows(cur, Enrollment, erows))
            count("course_progress", copy_rows(cur, CourseProgress, cprows))
            count("module_progress", copy_rows(cur, ModuleProgress, mprows))
            count("quiz_attempts", copy_rows(cur, Attempt, arows, with_id=True))
            count("student_quizzes", copy_rows(cur, StudentQuiz, sqrows))
            nrows = []
            for uid in t.students:
                for n in range(plan.notifications_per_student):
                    nrows.append({"tenant": t.id, "user_id": uid, "kind": "announcement",
                                  "title": f"Notice {n}", "body": "Something happened.",
                                  "data": {}, "source": f"bench:{n}",
                                  "read_at": now if n % 5 < 2 else None,
                                  "created_at": now - dt.timedelta(hours=n)})
            count("notifications", copy_rows(cur, Notification, nrows))
            conn.commit()
        log(f"  enrollments etc.: {rows['enrollments']} ({time.perf_counter() - started:.1f} s)")
        # VACUUM as well: after millions of COPYed rows, autovacuum would otherwise vacuum them
        # during the measured runs (minutes of CPU at --scale 10), and the bigger data set
        # would look slower for what is only the database's housekeeping.
        conn.commit()
        conn.autocommit = True
        cur.execute("VACUUM (ANALYZE)")
        # And write what seeding and VACUUM dirtied now: the checkpointer would spread it over
        # the next minutes, during the runs (gigabytes at --scale 10).
        cur.execute("CHECKPOINT")
        conn.autocommit = False
        log(f"  vacuumed, analyzed, checkpointed ({time.perf_counter() - started:.1f} s)")
    finally:
        conn.close()
    # the quiz template's private keys are not needed by the caller
    clean = {qid: [{k: val for k, val in q.items() if k != "_version"} for q in qs]
             for qid, qs in quiz_questions.items()}
    return Seeded(plan, tenants, time.perf_counter() - started, rows, clean)


def _variants(cache: dict[int, Any], qid: int, quiz_questions: dict[int, Any], g: Any,
              v: Any) -> list[Any]:
    """4 answer sets of a quiz, graded by the pure grading function once each."""
    if qid not in cache:
        from bench.quiz_submit import answers_for

        raw = [{k: val for k, val in q.items() if k != "_version"} for q in quiz_questions[qid]]
        frozen = v.frozen_questions(raw)
        layout = [[q["id"], list(range(len(q.get("options") or [])))] for q in raw]
        out = []
        for i in range(4):
            answers = answers_for(raw, random.Random(qid * 10 + i))
            out.append((answers, g.grade(frozen, answers, quiz_questions[qid][0]["_pass"]),
                        layout))
        cache[qid] = out
    return cache[qid]


def _quizzes(runtime: Any, cur: Any, tenants: list[TenantData], now: dt.datetime, count: Any,
             copy_rows: Any, take_ids: Any) -> dict[int, list[dict[str, Any]]]:
    from learnplat_quizzes.models import Question, Quiz, QuizVersion
    from learnplat_quizzes.schemas import QuizIn

    from bench.quiz_submit import quiz_body
    from learnplat import db
    from learnplat.auth import Principal
    from learnplat.tenancy import tenant_context

    t0 = tenants[0]
    c0 = t0.courses[0]
    qmid0 = t0.modules[c0]["quiz"][0]
    cur.connection.commit()  # the service's connection must see the courses
    svc = runtime.service("quizzes")
    info = runtime.tenants.require(t0.slug)
    with db.connection(), tenant_context(info), db.transaction():
        from learnplat_courses.models import Course

        owner = Course.get_by_id(c0).owner_id
        principal = Principal(owner, t0.id, "instructor",
                              runtime.registry.grants_for("instructor"))
        quiz = svc.create(principal, c0, qmid0, QuizIn(**quiz_body()))
        template_q = list(Question.select().where(Question.quiz == quiz.id)
                          .order_by(Question.position).dicts())
        version = QuizVersion.get(QuizVersion.quiz == quiz.id)
        template_v = version.questions
        template_quiz = Quiz.select().where(Quiz.id == quiz.id).dicts().get()
    t0.modules[c0]["quiz"] = (qmid0, quiz.id)
    out = {quiz.id: [dict(q, _version=version.id, _pass=quiz.pass_mark) for q in template_v]}
    count("quizzes", 1)
    targets = [(t, cid) for t in tenants for cid in t.courses if (t, cid) != (t0, c0)]
    qids = take_ids(cur, Quiz, len(targets))
    vids = take_ids(cur, QuizVersion, len(targets))
    questions = take_ids(cur, Question, len(targets) * len(template_q))
    qrows, questionrows, vrows = [], [], []
    n = len(template_q)
    by_old = {q["id"]: i for i, q in enumerate(template_q)}
    for k, ((t, cid), qid, vid) in enumerate(zip(targets, qids, vids, strict=True)):
        qmid = t.modules[cid]["quiz"][0]
        t.modules[cid]["quiz"] = (qmid, qid)
        new_ids = questions[k * n:(k + 1) * n]
        qrows.append({**{key: val for key, val in template_quiz.items()
                         if key not in ("id", "tenant")},
                      "id": qid, "tenant": t.id, "course_id": cid, "module_id": qmid,
                      "created_at": now, "updated_at": now})
        for i, q in enumerate(template_q):
            questionrows.append({**{key: val for key, val in q.items()
                                    if key not in ("id", "tenant", "quiz")},
                                 "id": new_ids[i], "tenant": t.id, "quiz": qid})
        frozen = [dict(q, id=new_ids[by_old[q["id"]]]) for q in template_v]
        vrows.append({"id": vid, "tenant": t.id, "quiz": qid, "number": 1,
                      "pass_mark": template_quiz["pass_mark"], "questions": frozen,
                      "created_at": now})
        out[qid] = [dict(q, _version=vid, _pass=template_quiz["pass_mark"]) for q in frozen]
    count("quizzes", copy_rows(cur, Quiz, qrows, with_id=True))
    copy_rows(cur, QuizVersion, vrows, with_id=True)
    count("quiz_questions", copy_rows(cur, Question, questionrows, with_id=True))
    return out
