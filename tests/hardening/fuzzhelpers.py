"""Helpers of the schemathesis fuzzing test (test_fuzz_openapi.py): a populated school, fuzzing
actors whose token is minted afresh for every request, and the loop that drives schemathesis
over every operation of the served OpenAPI document and tallies what it saw."""

from __future__ import annotations

import io
import secrets
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from learnplat import db
from learnplat.tenancy import TenantInfo, tenant_context

PROBLEM_JSON = "application/problem+json"
PROBLEM_FIELDS = ("type", "title", "status", "detail")
ROLES = ("admin", "instructor", "student")

# -- a populated school ----------------------------------------------------------------------


@contextmanager
def in_tenant(tenant: TenantInfo) -> Iterator[None]:
    with db.connection(), tenant_context(tenant), db.transaction():
        yield


def png_bytes() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 120, 200)).save(out, "PNG")
    return out.getvalue()


def multipart(data: bytes, filename: str, content_type: str, name: str = "file") -> tuple[
        bytes, dict[str, str]]:
    boundary = f"lpfuzz{uuid.uuid4().hex[:12]}"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n").encode() \
        + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


QUESTIONS: list[dict[str, Any]] = [
    {"type": "single_choice", "prompt": "Capital of France?", "options": ["Lyon", "Paris"],
     "answer": 1, "points": 2},
    {"type": "true_false", "prompt": "The sky is green.", "answer": False, "points": 1},
    {"type": "short_text", "prompt": "Name the zebra", "answer": "Zorblax", "points": 1},
]


def _ok(r: Any, *codes: int) -> Any:
    assert r.status_code in (codes or (200, 201)), (r.status_code, r.text)
    return r.json if r.content else None


def populate(client: Any, users: Any, runtime: Any, tenant: TenantInfo, role: str) -> tuple[
        dict[str, Any], dict[str, Any]]:
    """Make the cast (an admin, an owning instructor, an enrolled student, a victim student)
    and a course with modules, a quiz with an attempt, a rating, a feedback thread, an
    attachment, an assignment submission and notifications. Returns (actors, path
    parameters for `role`): the ids of objects that `role` may act on."""
    admin, teacher, student = (users.make(r) for r in ROLES)
    victim = users.make("student")
    a, t, s = (client.as_(u.token) for u in (admin, teacher, student))
    cid = _ok(t.post("/courses", json={"title": "Fuzzed course", "description": "d"}))["id"]
    mids = [_ok(t.post(f"/courses/{cid}/modules", json={"title": f"M{i}"}))["id"]
            for i in range(3)]
    quiz = _ok(t.post(f"/courses/{cid}/modules/{mids[0]}/quiz",
                      json={"title": "Q", "pass_mark": 50, "questions": QUESTIONS}))
    qid, question_ids = quiz["id"], [q["id"] for q in quiz["questions"]]
    _ok(t.put(f"/courses/{cid}/modules/{mids[1]}/assignment",
              json={"instructions": "Hand in a PDF"}), 200, 201)
    body, hdrs = multipart(b"%PDF-1.4\n%%EOF\n", "notes.pdf", "application/pdf")
    attachment = _ok(t.post(f"/courses/{cid}/modules/{mids[2]}/attachments", body=body,
                            headers=hdrs))
    body, hdrs = multipart(png_bytes(), "cover.png", "image/png")
    _ok(t.post(f"/courses/{cid}/image", body=body, headers=hdrs))
    _ok(t.post(f"/courses/{cid}/submit"))
    _ok(a.post(f"/courses/{cid}/approve"))
    # A second course, left in draft, for the lifecycle operations.
    draft = _ok(t.post("/courses", json={"title": "Draft course"}))["id"]
    _ok(s.post(f"/courses/{cid}/enroll"), 201)
    _ok(client.as_(victim.token).post(f"/courses/{cid}/enroll"), 201)
    attempt = _ok(s.post(f"/courses/{cid}/modules/{mids[0]}/quiz/{qid}/attempts"), 201)
    rating = _ok(s.post(f"/courses/{cid}/ratings", json={"stars": 4, "comment": "good"}), 201)
    thread = _ok(s.post(f"/courses/{cid}/feedback",
                        json={"subject": "A question", "body": "How?"}), 201)
    body, hdrs = multipart(b"%PDF-1.4\n%%EOF\n", "work.pdf", "application/pdf")
    submission = _ok(s.post(f"/courses/{cid}/modules/{mids[1]}/assignment/submission",
                            body=body, headers=hdrs), 201, 200)
    tool_id, platform_id = _lti(a, tenant, cid, student.id)
    _ok(s.post(f"/progress/{cid}", json={"module_id": mids[2], "completed": True}))
    runtime.events.dispatch_pending()  # the progress: a grade queued for the LMS
    passbacks = _ok(a.get("/lti/passbacks"))["items"]
    broadcast = _ok(a.post("/notifications", json={
        "title": "Hello", "body": "Welcome", "everyone": True}), 201, 202)
    actors = {"admin": admin, "instructor": teacher, "student": student, "victim": victim}
    common = {
        "course_id": cid, "module_id": mids[0], "quiz_id": qid, "question_id": question_ids[0],
        "attempt_id": attempt["id"], "rating_id": rating["id"], "thread_id": thread["id"],
        "media_id": attachment["id"], "submission_id": submission["id"],
        "broadcast_id": broadcast.get("id", 1), "tenant_id": tenant.id, "slug": tenant.slug,
        "school": tenant.slug,  # a route's tenant_param: the LTI peers' URLs
        "provider": "google", "job_id": 1, "public_id": "0" * 32,
        "user_id": actors[role].id,
        "tool_id": tool_id, "platform_id": platform_id,
        "passback_id": passbacks[0]["id"] if passbacks else 1,
    }
    mine = _ok(client.as_(actors[role].token).get("/notifications"))["items"]
    common["notification_id"] = mine[0]["id"] if mine else 1
    common["draft_id"] = draft
    common["victim_id"] = victim.id
    common["module_ids"] = mids
    return actors, common


def _lti(a: Any, tenant: TenantInfo, cid: int, student_id: int) -> tuple[int, int]:
    """LTI: a tool and an LMS registered (closed loopback ports), and the student launched
    from the LMS into the course (the grade target a launch writes; a launch needs an
    id_token the LMS signs, which tests/lti drives): their progress is sent back to it."""
    from learnplat_lti.models import GradeTarget

    tool = _ok(a.post("/lti/tools", json={
        "name": "Lab", "login_url": "http://127.0.0.1:9/login",
        "launch_url": "http://127.0.0.1:9/launch", "jwks_url": "http://127.0.0.1:9/jwks"}), 201)
    platform = _ok(a.post("/lti/platforms", json={
        "name": "LMS", "issuer": "https://lms.example.org", "client_id": "c",
        "deployment_ids": ["d"], "auth_login_url": "http://127.0.0.1:9/auth",
        "token_url": "http://127.0.0.1:9/token", "jwks_url": "http://127.0.0.1:9/jwks"}), 201)
    with in_tenant(tenant):
        GradeTarget.insert(platform=platform["id"], user_id=student_id, sub="lms-user",
                           course_id=cid, resource_link_id="link", deployment_id="d",
                           lineitem_url="http://127.0.0.1:9/lineitems/1",
                           scopes=["https://purl.imsglobal.org/spec/lti-ags/scope/score"]
                           ).execute()
    return int(tool["id"]), int(platform["id"])


# -- actors: a fresh token for every request --------------------------------------------------


class Actors:
    """The fuzzing users of one tenant. `token(role)` mints a new access token (a new token
    family) for every request, so a logout or a revoked family never starves the run; after
    an operation that may change a user (role, deactivation, profile), `restore()` puts every
    actor back as it was (role, active, unlocked) from the database."""

    def __init__(self, runtime: Any, tenant: TenantInfo, users: dict[str, Any]):
        self.runtime, self.tenant = runtime, tenant
        self.svc = runtime.service("identity")
        self.roles = {name: u.role for name, u in users.items()}
        self.ids = {name: u.id for name, u in users.items()}
        self.versions: dict[str, int] = {}
        self.restored = 0
        self.restore()

    def token(self, name: str) -> str:
        with in_tenant(self.tenant):  # the signing key is the tenant's
            return self.svc.tokens.issue(self.tenant, self.ids[name], self.roles[name],
                                         self.versions[name], secrets.token_hex(16)).token

    def restore(self) -> None:
        from learnplat_identity.models import User

        with in_tenant(self.tenant):
            for name, uid in self.ids.items():
                user = User.get_by_id(uid)
                if user.role != self.roles[name]:
                    self.svc.set_role(uid, self.roles[name])
                    self.restored += 1
                if not user.active or user.locked_until is not None:
                    User.update(active=True, locked_until=None, failed_logins=0,
                                token_version=User.token_version + 1
                                ).where(User.id == uid).execute()
                    self.svc._publish_state(uid)
                    self.restored += 1
        with in_tenant(self.tenant):
            for name, uid in self.ids.items():
                self.versions[name] = User.get_by_id(uid).token_version


# -- the fuzzing loop -------------------------------------------------------------------------


@dataclass
class Tally:
    """What one role's run saw."""

    role: str
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    failures: dict[tuple[str, str], str] = field(default_factory=dict)
    examples: int = 0
    seconds: float = 0.0

    def add(self, label: str, status: int) -> None:
        self.statuses[label][status] += 1
        self.examples += 1

    def fail(self, label: str, kind: str, message: str) -> None:
        self.failures.setdefault((label, kind), message[:1500])

    def only_denied(self, labels: list[str]) -> list[str]:
        return [lb for lb in labels
                if self.statuses[lb] and set(self.statuses[lb]) <= {401, 403}]

    def with_success(self, labels: list[str]) -> list[str]:
        return [lb for lb in labels if any(200 <= s < 300 for s in self.statuses[lb])]

    def summary(self) -> str:
        lines = [f"{self.role}: {len(self.statuses)} operations, {self.examples} requests, "
                 f"{self.seconds:.1f} s"]
        for label, counts in sorted(self.statuses.items()):
            lines.append(f"  {label}: {dict(sorted(counts.items()))}")
        return "\n".join(lines)


def problem_check(response: Any) -> str | None:
    """Every 4xx/5xx is application/problem+json with the RFC 9457 members (our own check)."""
    if response.status_code < 400:
        return None
    ctype = (response.headers.get("Content-Type") or response.headers.get("content-type")
             or [""])
    ctype = ctype[0] if isinstance(ctype, list) else ctype
    if not ctype.startswith(PROBLEM_JSON):
        return f"{response.status_code} answered as {ctype!r}, not {PROBLEM_JSON}"
    try:
        body = response.json()
    except Exception:
        return f"{response.status_code}: the problem document is not JSON"
    missing = [k for k in PROBLEM_FIELDS if k not in body]
    if missing:
        return f"{response.status_code}: problem document lacks {missing}: {body!r}"
    if body["status"] != response.status_code:
        return f"problem status {body['status']} != HTTP status {response.status_code}"
    return None


def now() -> float:
    return time.monotonic()
