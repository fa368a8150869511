"""The scenarios of bin/bench: what each one sends (docs/performance.md "Scenarios"), built
over the seeded data set (bench/seed.py) and the students logged in for the run (`World`)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.seed import PASSWORD
from bench.wrk import Item

SCENARIOS = ("catalogue_anon", "catalogue_student", "course_detail", "course_detail_304",
             "enroll", "heartbeat", "complete_module", "quiz_submit", "notifications", "login",
             "floor_healthz", "floor_auth", "certificates", "websocket", "fairness",
             "webhooks")
WRK_SCENARIOS = SCENARIOS[:12]
TARGETS = {"catalogue_anon": 0.5, "catalogue_student": 0.5, "course_detail": 0.35,
           "heartbeat": 0.5}


@dataclass
class Student:
    tenant: str
    user_id: int
    email: str
    token: str
    courses: list[int]


@dataclass
class Scenario:
    name: str
    what: str
    # items(n): the next requests to send (for scenarios whose requests must not repeat, a
    # fresh slice each call); consumed(k) says how many of them were sent
    items: Callable[[], list[Item]]
    consumed: Callable[[int], None] = lambda n: None
    ok: tuple[int, ...] = (200, 201)
    ratio: bool = True
    connections: int = 0  # 0: --connections
    state: dict[str, Any] = field(default_factory=dict)
    # Called with the server's base URL before the scenario's first request (what its
    # requests need from the running server: the ETags course_detail_304 sends back).
    prepare: Callable[[str], None] | None = None


@dataclass
class World:
    seeded: Any
    students: list[Student]
    modules: dict[int, dict[str, Any]]  # course id -> seed's module map
    quiz_questions: dict[int, list[dict[str, Any]]]
    tenants: list[str] = field(default_factory=list)


def build_scenarios(world: World, rng: random.Random) -> dict[str, Scenario]:
    st = world.students
    sc: dict[str, Scenario] = {}

    def rotate(make: Callable[[Student], Item], n: int = 2000) -> Callable[[], list[Item]]:
        items = [make(st[i % len(st)]) for i in range(n)]
        rng.shuffle(items)
        return lambda: items

    def anonymous(path: str) -> Callable[[], list[Item]]:
        """GET `path` without a token, X-Tenant rotated over all tenants."""
        return lambda: [Item("GET", path, t) for t in world.tenants]

    def as_students(path: str) -> Callable[[], list[Item]]:
        """GET `path` with the students' tokens, rotated."""
        return rotate(lambda s: Item("GET", path, s.tenant, s.token))

    sc["catalogue_anon"] = Scenario(
        "catalogue_anon", "GET /courses?limit=20, no token, X-Tenant rotated over all tenants",
        anonymous("/courses?limit=20"))
    sc["catalogue_student"] = Scenario(
        "catalogue_student", "GET /courses?limit=20 as a student (tokens rotated)",
        as_students("/courses?limit=20"))
    sc["course_detail"] = Scenario(
        "course_detail", "GET /courses/{id}, a course the student is enrolled in",
        rotate(lambda s: Item("GET", f"/courses/{rng.choice(s.courses)}", s.tenant, s.token)))
    sc["course_detail_304"] = revalidated(sc["course_detail"])

    def heartbeat(s: Student) -> Item:
        cid = rng.choice(s.courses)
        mid = rng.choice(world.modules[cid]["video"])
        body = json.dumps({"module_id": mid, "position_seconds": round(rng.uniform(0, 500), 1),
                           "duration_seconds": 1800.0})
        return Item("POST", f"/progress/{cid}", s.tenant, s.token, body)

    sc["heartbeat"] = Scenario("heartbeat", "POST /progress/{id} video playback heartbeat",
                               rotate(heartbeat))

    def complete(s: Student) -> Item:
        cid = rng.choice(s.courses)
        mid = rng.choice(world.modules[cid]["text"])
        return Item("POST", f"/progress/{cid}", s.tenant, s.token,
                    json.dumps({"module_id": mid, "completed": True}))

    sc["complete_module"] = Scenario("complete_module",
                                     "POST /progress/{id} {module_id, completed: true}",
                                     rotate(complete))
    sc["notifications"] = Scenario(
        "notifications", "GET /notifications (the student's, newest first)",
        as_students("/notifications"))
    logins = [Item("POST", "/auth/login", t.slug, "",
                   json.dumps({"email": email, "password": PASSWORD}))
              for t in world.seeded.tenants for email in t.logins]
    rng.shuffle(logins)
    sc["login"] = Scenario(
        "login", "POST /auth/login (argon2id verify: bounded by the password hash)",
        lambda: logins, ratio=False,
        # at 32 connections the latency would only show the queue in front of the hashing
        connections=4)

    # The floors: what any request costs before its own work. /healthz: the serving path and
    # the app's middleware (no authentication, no limits); /auth/roles: that plus a verified
    # token and the authentication + limits round trip (no SQL). No route that authenticates
    # can go faster than floor_auth on this machine.
    sc["floor_healthz"] = Scenario(
        "floor_healthz", "GET /healthz (floor: serving path + middleware, no auth, no limits)",
        anonymous("/healthz"))
    sc["floor_auth"] = Scenario(
        "floor_auth", "GET /auth/roles as a student (floor: + token, auth/limits round trip)",
        as_students("/auth/roles"))

    return {**sc, **unique_scenarios(world, rng)}


def revalidated(plain: Scenario) -> Scenario:
    """`plain`'s requests (the same resources, callers and order) sent with If-None-Match:
    the ETag each (caller, resource) got from the running server, fetched once before the
    first request. Each answer is a 304 with no body: beside `plain`, what a client that
    polls with the ETag it holds saves (the page is not built, sent or parsed)."""
    tagged: list[Item] = []
    state: dict[str, Any] = {}

    def prepare(base: str) -> None:
        import requests

        if tagged:
            return
        etags: dict[tuple[str, str, str], str] = {}
        for it in plain.items():
            key = (it.tenant, it.token, it.path)
            if key not in etags:
                r = requests.get(base + it.path, timeout=30, headers={
                    "X-Tenant": it.tenant, "Authorization": f"Bearer {it.token}"})
                r.raise_for_status()
                etags[key] = r.headers["ETag"]
            tagged.append(Item(it.method, it.path, it.tenant, it.token, it.body,
                               (("If-None-Match", etags[key]),)))
        state["etags"] = len(etags)

    return Scenario(f"{plain.name}_304",
                    plain.what.replace("GET ", "GET (If-None-Match: its ETag) ", 1)
                    + ": 304", lambda: tagged, ok=(304,), state=state, prepare=prepare)


def unique_scenarios(world: World, rng: random.Random) -> dict[str, Scenario]:
    """The scenarios whose requests must not repeat: each (student, course) pair once."""
    sc: dict[str, Scenario] = {}

    def once(name: str, what: str, pairs: list[Item], ok: tuple[int, ...]) -> None:
        cursor = [0]
        state: dict[str, Any] = {"pairs": len(pairs)}

        def items() -> list[Item]:
            return pairs[cursor[0]:] or pairs

        def consumed(n: int) -> None:
            if cursor[0] + n > len(pairs):  # wrapped: repeats answer 200/409, not 201
                state["pairs_exhausted"] = True
            cursor[0] = min(len(pairs), cursor[0] + n)

        sc[name] = Scenario(name, what, items, consumed, ok, state=state)

    by_tenant = {t.slug: t for t in world.seeded.tenants}
    enroll, quiz = [], []
    for s in world.students:
        t = by_tenant[s.tenant]
        for cid in t.courses:
            if cid not in s.courses:
                enroll.append(Item("POST", f"/courses/{cid}/enroll", s.tenant, s.token))
            elif (s.user_id, cid) not in t.attempted:
                qmid, qid = world.modules[cid]["quiz"]
                body = json.dumps({"answers": _answers(world.quiz_questions[qid], rng)})
                quiz.append(Item("POST", f"/courses/{cid}/modules/{qmid}/quiz/{qid}/submit",
                                 s.tenant, s.token, body))
    rng.shuffle(enroll)
    rng.shuffle(quiz)
    once("enroll", "POST /courses/{id}/enroll, a new (student, course) pair each request",
         enroll, (201,))
    once("quiz_submit", "POST .../quiz/{id}/submit, 20 questions graded, one new attempt each "
         "(one-step: start and submit)", quiz, (200,))
    return sc


def _answers(questions: list[dict[str, Any]], rng: random.Random) -> dict[str, Any]:
    from learnplat_quizzes.seed import sample_answers

    return sample_answers(questions, rng)


def make_world(runtime: Any, seeded: Any, n_tokens: int, n_tenants: int) -> World:
    """Access tokens for `n_tokens` students spread over `n_tenants` tenants, issued by the
    identity service in-process (the login scenario measures POST /auth/login itself)."""
    from learnplat_identity.api import IDENTITY

    from learnplat import db
    from learnplat.tenancy import tenant_context

    ident = runtime.service(IDENTITY)
    chosen = seeded.tenants[:max(1, min(n_tenants, len(seeded.tenants)))]
    per = max(1, n_tokens // len(chosen))
    students: list[Student] = []
    modules: dict[int, dict[str, Any]] = {}
    for t in seeded.tenants:
        modules.update(t.modules)
    for t in chosen:
        info = runtime.tenants.require(t.slug)
        enrolled = [u for u in t.students if t.enrolled.get(u)][:per]
        with db.connection(), tenant_context(info), db.transaction():
            for uid in enrolled:
                user = ident.get_user(uid)
                token = ident.issue_pair(user)["access_token"]
                students.append(Student(t.slug, uid, user.email, token,
                                        sorted(t.enrolled[uid])))
    return World(seeded, students, modules, seeded.quiz_questions,
                 [t.slug for t in seeded.tenants])
