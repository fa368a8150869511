"""Query counts of every GET route (issue 14): constant in the page size and in the school's
data, and under a recorded bound per route.

One school is seeded through the API with a little of everything (courses, modules, a quiz, an
assignment, a video, attachments, enrollments, progress, quiz attempts, submissions, ratings,
feedback, notifications, certificates), every GET route of the OpenAPI document is measured
(`learnplat.testing.count_queries`: SQL statements, transaction control left out), then the
school grows several times over and every route is measured again, lists at `limit=2` and
`limit=20`. A GET route that is neither measured here nor exempted (with the reason) fails
`test_every_get_route_has_a_query_count`.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlparse

from learnplat import db
from learnplat.tenancy import tenant_context
from learnplat.testing import Client, count_queries, make_tenant

# Routes whose query count is not measured here, and why.
EXEMPT: dict[str, str] = {
    "/auth/oauth/{provider}/login": "needs an external OAuth/OIDC provider "
                                    "(tests/identity/test_oauth.py drives one)",
    "/auth/oauth/{provider}/callback": "needs an external OAuth/OIDC provider "
                                       "(tests/identity/test_oauth.py drives one)",
}

# path -> the most SQL statements (transaction control left out) a GET may run, the most
# expensive caller of the cases below. Generous (what it runs today plus a third, at least +2;
# PostgreSQL and SQLite run the same statements) but meaningful: an N+1 shows at once.
BOUNDS: dict[str, int] = {
    "/.well-known/jwks.json": 5,
    "/audit": 6,
    "/auth/profile": 6,
    "/auth/roles": 5,
    "/certificates": 6,
    "/certificates/issuers/{slug}": 6,
    "/certificates/issuers/{slug}/achievements/{achievement_id}": 7,
    "/certificates/issuers/{slug}/did.json": 7,
    "/certificates/issuers/{slug}/jwks.json": 7,
    "/certificates/issuers/{slug}/status/revocation": 8,
    "/certificates/jobs/{job_id}": 6,
    "/certificates/template": 6,
    "/certificates/{public_id}/credential": 8,
    "/certificates/{public_id}/pdf": 8,
    "/certificates/{public_id}/verify": 8,
    "/courses": 7,
    "/courses/enrollments": 8,
    "/courses/{course_id}": 14,
    "/courses/{course_id}/analytics": 20,
    "/courses/{course_id}/certificate": 7,
    "/courses/{course_id}/enrollment-rules": 8,
    "/courses/{course_id}/feedback": 7,
    "/courses/{course_id}/feedback/{thread_id}": 8,
    "/courses/{course_id}/history": 7,
    "/courses/{course_id}/image": 5,
    "/courses/{course_id}/modules": 7,
    "/courses/{course_id}/modules/{module_id}": 7,
    "/courses/{course_id}/modules/{module_id}/assignment": 8,
    "/courses/{course_id}/modules/{module_id}/assignment/submission": 13,
    "/courses/{course_id}/modules/{module_id}/assignment/submission/file": 13,
    "/courses/{course_id}/modules/{module_id}/assignment/submissions": 9,
    "/courses/{course_id}/modules/{module_id}/assignment/submissions/{submission_id}/file": 9,
    "/courses/{course_id}/modules/{module_id}/attachments": 10,
    "/courses/{course_id}/modules/{module_id}/attachments/{media_id}": 8,
    "/courses/{course_id}/modules/{module_id}/quiz": 8,
    "/courses/{course_id}/modules/{module_id}/quiz/{quiz_id}": 12,
    "/courses/{course_id}/modules/{module_id}/quiz/{quiz_id}/attempts": 12,
    "/courses/{course_id}/modules/{module_id}/quiz/{quiz_id}/attempts/{attempt_id}": 13,
    "/courses/{course_id}/modules/{module_id}/quiz/{quiz_id}/result": 13,
    "/courses/{course_id}/modules/{module_id}/quiz/{quiz_id}/submissions": 8,
    "/courses/{course_id}/modules/{module_id}/video": 10,
    "/courses/{course_id}/ratings": 7,
    "/courses/{course_id}/students": 8,
    "/courses/{course_id}/thumbnail": 5,
    "/docs": 4,
    "/docs/assets/{digest}/{asset}": 4,
    "/healthz": 4,
    "/media/{tenant_id}/{media_id}": 7,
    "/notifications": 6,
    "/notifications/broadcasts/{broadcast_id}": 6,
    "/notifications/preferences": 6,
    "/notifications/unread-count": 6,
    "/notifications/{notification_id}": 6,
    "/openapi.json": 4,
    "/progress/{course_id}": 12,
    "/progress/{course_id}/students": 7,
    "/readyz": 5,
    "/users": 6,
    "/users/{user_id}": 6,
    "/users/{user_id}/photo": 6,
    "/webhooks/deliveries/{delivery_id}": 6,
    "/webhooks/endpoints": 5,
    "/webhooks/endpoints/{endpoint_id}": 5,
    "/webhooks/endpoints/{endpoint_id}/deliveries": 6,
    "/webhooks/event-types": 4,
    "/xapi/lrs": 6,
    "/xapi/statements": 6,
    "/xapi/statements/{statement_id}": 6,
    "/lti/config": 4,
    "/lti/schools/{school}/jwks": 5,
    "/lti/schools/{school}/tool/login": 6,
    "/lti/platforms": 5,
    "/lti/platforms/{platform_id}": 5,
    "/lti/passbacks": 8,
    "/lti/passbacks/{passback_id}": 7,
    "/lti/tools": 5,
    "/lti/tools/{tool_id}": 5,
    "/courses/{course_id}/modules/{module_id}/lti": 7,
    "/lti/schools/{school}/platform/auth": 12,
    "/lti/scores": 6,
    "/lti/schools/{school}/platform/contexts/{course_id}/lineitems": 10,
    "/lti/schools/{school}/platform/contexts/{course_id}/lineitems/{lineitem_id}": 10,
    "/lti/schools/{school}/platform/contexts/{course_id}/lineitems/{lineitem_id}/results": 11,
    "/lti/schools/{school}/platform/contexts/{course_id}/memberships": 11,
}


# -- request bodies -----------------------------------------------------------------------------

BOUNDARY = "lpqcountboundary"
QUESTIONS = [
    {"type": "single_choice", "prompt": "Capital of France?", "options": ["Lyon", "Paris"],
     "answer": 1, "points": 1},
    {"type": "short_text", "prompt": "Name the zebra", "answer": "Zorblax", "points": 1},
]


def _multipart(data: bytes, filename: str, content_type: str) -> dict[str, Any]:
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n").encode() \
        + data + f"\r\n--{BOUNDARY}--\r\n".encode()
    return {"body": body,
            "headers": {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}}


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _mp4() -> bytes:
    mvhd = _box(b"mvhd", b"\x00" * 4 + struct.pack(">IIII", 0, 0, 1000, 95_000) + b"\x00" * 80)
    return (_box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41") + _box(b"mdat", b"\x00" * 4096)
            + _box(b"moov", mvhd))


PDF = b"%PDF-1.4\n" + b"1 0 obj << >> endobj\n" * 50 + b"%%EOF\n"


def ok(r: Any, *codes: int) -> Any:
    assert r.status_code in (codes or (200, 201, 202)), (r.status_code, r.text[:500])
    return r


# -- the school ---------------------------------------------------------------------------------


@dataclass
class School:
    """One school seeded through the API; `grow(n)` adds n of everything."""

    runtime: Any
    app: Any
    tenant: Any = None
    a: Any = None  # admin
    t: Any = None  # the owning instructor
    v: Any = None  # the viewing student: enrolled, with progress, attempts, notifications...
    anon: Any = None
    tc: Any = None  # an LTI tool with an access token of the school (AGS, NRPS)
    ids: dict[str, Any] = field(default_factory=dict)
    key: Any = None  # the LTI tools' private key

    def user(self, role: str, name: str = "") -> tuple[Any, Client]:
        from learnplat_identity.testing import UserFactory

        u = UserFactory(self.runtime, self.tenant).make(role, name=name or role.title())
        return u, Client(self.app, self.tenant, u.token)

    def course(self, title: str, modules: list[dict[str, Any]]) -> tuple[int, list[int]]:
        cid = ok(self.t.post("/courses", json={"title": title, "tags": ["a", "b"]})).json["id"]
        mids = [ok(self.t.post(f"/courses/{cid}/modules", json=m)).json["id"] for m in modules]
        ok(self.t.post(f"/courses/{cid}/submit"))
        ok(self.a.post(f"/courses/{cid}/approve"))
        return cid, mids

    def setup(self) -> None:
        self.tenant = make_tenant(self.runtime)
        self.anon = Client(self.app, self.tenant)
        _, self.a = self.user("admin")
        _, self.t = self.user("instructor", "Teacher")
        viewer, self.v = self.user("student", "Viewer")
        self.ids.update(viewer=viewer.id)
        # A webhook endpoint for every event and a learning record store, both on a closed
        # loopback port: their logs grow with the school's events (each delivery refused).
        self.ids["endpoint"] = ok(self.a.post("/webhooks/endpoints", json={
            "url": "http://127.0.0.1:9/hook", "event_types": ["*"]})).json["id"]
        ok(self.a.put("/xapi/lrs", json={"endpoint": "http://127.0.0.1:9/xapi", "key": "k",
                                         "secret": "s"}))
        # An LMS that launches the school's courses (LTI), its token URL a closed port too:
        # the grades sent back to it for its learners (below) stay pending, attempts logged.
        self.ids["platform"] = self.lms(0)
        cid, (m_text, m_quiz, m_assign, m_video, m_lti) = self.course("Main", [
            {"title": "Read"}, {"title": "Quiz"}, {"title": "Essay"}, {"title": "Film"},
            {"title": "Lab", "required": False}])
        # An external tool (LTI, on a closed port) the Lab module launches, with an access
        # token and a line item of its own: every learner below gets a score in it.
        self.ids["tool"] = self.tool(0)
        ok(self.t.put(f"/courses/{cid}/modules/{m_lti}/lti", json={
            "tool_id": self.ids["tool"], "custom": {"user": "$User.id"}}))
        self.tc = Client(self.app, self.tenant, _lti_token(self))
        r = ok(self.tc.post(f"{_ctx(self, cid)}/lineitems", body=json.dumps({
            "scoreMaximum": 10, "label": "Lab", "resourceLinkId": str(m_lti)}),
            headers={"Content-Type": "application/vnd.ims.lis.v2.lineitem+json"}), 201)
        self.ids["lineitem"] = urlparse(json.loads(r.text)["id"]).path
        ok(self.t.post(f"/courses/{cid}/image", **_multipart(_png(), "a.png", "image/png")))
        ok(self.t.put(f"/courses/{cid}/enrollment-rules", json={"cap": 100000}))
        quiz = ok(self.t.post(f"/courses/{cid}/modules/{m_quiz}/quiz", json={
            "title": "Quiz", "pass_mark": 50, "questions": QUESTIONS})).json
        ok(self.t.put(f"/courses/{cid}/modules/{m_assign}/assignment",
                      json={"instructions": "Write", "max_points": 10}))
        ok(self.t.post(f"/courses/{cid}/modules/{m_video}/video",
                       **_multipart(_mp4(), "clip.mp4", "video/mp4")))
        # The certificate course: one module, completed by every learner.
        cert_cid, (cert_mid,) = self.course("Certified", [{"title": "Only"}])
        # A draft that goes back and forth through review: its status history grows.
        self.ids["draft"] = ok(self.t.post("/courses", json={"title": "Draft"})).json["id"]
        self.ids.update(cid=cid, m_text=m_text, m_quiz=m_quiz, m_assign=m_assign,
                        m_video=m_video, quiz=quiz["id"], qids=[q["id"] for q in quiz["questions"]],
                        cert_cid=cert_cid, cert_mid=cert_mid, m_lti=m_lti)
        self.learner(self.v, viewer)
        thread = ok(self.v.post(f"/courses/{cid}/feedback",
                                json={"subject": "Hello", "body": "A question"})).json
        self.ids["thread"] = thread["id"]
        ok(self.v.post(f"/users/{viewer.id}/photo", **_multipart(_png(), "me.png", "image/png")))
        broadcast = ok(self.a.post("/notifications", json={
            "title": "Welcome", "body": "Hello all", "everyone": True})).json
        self.ids["broadcast"] = broadcast["id"]
        job = ok(self.a.post(f"/courses/{cert_cid}/certificates/regenerate")).json
        self.ids["job"] = job["id"]

    def lms(self, n: int) -> int:
        return int(ok(self.a.post("/lti/platforms", json={
            "name": f"LMS {n}", "issuer": f"https://lms{n}.example.org", "client_id": "c",
            "deployment_ids": ["d"], "auth_login_url": "http://127.0.0.1:9/auth",
            "token_url": "http://127.0.0.1:9/token", "jwks_url": "http://127.0.0.1:9/jwks"})
            ).json["id"])

    def tool(self, n: int) -> int:
        from cryptography.hazmat.primitives.asymmetric import rsa
        from jwt.algorithms import RSAAlgorithm

        if self.key is None:
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = {**json.loads(RSAAlgorithm.to_jwk(self.key.public_key())), "kid": "qc",
               "alg": "RS256", "use": "sig"}
        return int(ok(self.a.post("/lti/tools", json={
            "name": f"Tool {n}", "login_url": "http://127.0.0.1:9/login",
            "launch_url": "http://127.0.0.1:9/launch", "public_jwk": jwk,
            "scopes": LTI_SCOPES})).json["id"])

    def learner(self, c: Client, user: Any) -> None:
        """Enroll `c` in both courses: progress, a quiz attempt, a submission, a rating, and
        the certificate course completed (a certificate). `c` was launched from the LMS (its
        grade target, as an LTI launch writes it): its progress is sent back to the LMS."""
        i = self.ids
        cid = i["cid"]
        from learnplat_lti.models import GradeTarget

        if self.tc is not None:  # the tool's score for the learner (enrolled below)
            ok(c.post(f"/courses/{cid}/enroll"))
            # In progress: the Lab module stays open (a completed one would be another
            # measurement of the progress routes).
            ok(self.tc.post(f"{i['lineitem']}/scores", body=json.dumps({
                "userId": str(user.id), "scoreGiven": 7, "scoreMaximum": 10,
                "activityProgress": "InProgress", "gradingProgress": "Pending",
                "timestamp": dt.datetime.now(dt.UTC).isoformat()}),
                headers={"Content-Type": "application/vnd.ims.lis.v1.score+json"}), 204)
        with db.connection(), tenant_context(self.tenant), db.transaction():
            GradeTarget.insert(
                platform=i["platform"], user_id=user.id, sub=f"sub-{user.id}", course_id=cid,
                resource_link_id=f"link-{user.id}", deployment_id="d",
                lineitem_url="http://127.0.0.1:9/lineitems/1",
                scopes=["https://purl.imsglobal.org/spec/lti-ags/scope/score"]).execute()
        ok(c.post(f"/courses/{cid}/enroll"))
        ok(c.post(f"/progress/{cid}", json={"module_id": i["m_text"], "completed": True}))
        self.attempt(c)
        ok(c.post(f"/courses/{cid}/modules/{i['m_assign']}/assignment/submission",
                  **_multipart(PDF, "essay.pdf", "application/pdf")))
        ok(c.post(f"/courses/{cid}/ratings", json={"stars": 4, "comment": "Good"}))
        ok(c.post(f"/courses/{i['cert_cid']}/enroll"))
        ok(c.post(f"/progress/{i['cert_cid']}", json={"module_id": i["cert_mid"],
                                                      "completed": True}))
        self.runtime.events.dispatch_pending()

    def attempt(self, c: Client) -> None:
        i = self.ids
        base = f"/courses/{i['cid']}/modules/{i['m_quiz']}/quiz/{i['quiz']}"
        attempt = ok(c.post(f"{base}/attempts")).json
        q1, q2 = i["qids"]
        ok(c.post(f"{base}/submit", json={"attempt_id": attempt["id"],
                                          "answers": {str(q1): 1, str(q2): "Zebra"}}))

    def grow(self, n: int) -> None:
        """n more of everything the measured routes read."""
        i = self.ids
        cid = i["cid"]
        for k in range(n):
            other, _ = self.course(f"Extra {k}", [{"title": "X"}])
            ok(self.v.post(f"/courses/{other}/enroll"))
            ok(self.t.post(f"/courses/{cid}/modules", json={"title": f"More {k}"}))
            ok(self.t.post(f"/courses/{cid}/modules/{i['m_text']}/attachments",
                           **_multipart(PDF, f"notes{k}.pdf", "application/pdf")))
            user, c = self.user("student", f"Learner {k}")
            self.learner(c, user)
            ok(c.post(f"/courses/{cid}/feedback", json={"subject": f"Q{k}", "body": "Why?"}))
            ok(self.v.post(f"/courses/{cid}/feedback/{i['thread']}/messages",
                           json={"body": f"More {k}"}))
            ok(self.t.post(f"/courses/{cid}/feedback/{i['thread']}/messages",
                           json={"body": f"Answer {k}"}))
            ok(self.a.post("/notifications", json={"title": f"N{k}", "body": "Hi",
                                                   "user_id": i["viewer"]}))
            self.attempt(self.v)
            ok(self.t.post(f"/courses/{i['draft']}/submit"))
            ok(self.t.post(f"/courses/{i['draft']}/withdraw"))
            i["lms"] = i.get("lms", 0) + 1
            self.lms(i["lms"])
            self.tool(i["lms"])
        self.runtime.events.dispatch_pending()


# -- the measured requests ----------------------------------------------------------------------


@dataclass
class Case:
    """One GET: who asks (an attribute of School), the URL, and whether it is a list
    (measured at limit=2 and limit=20)."""

    path: str
    who: str
    url: Callable[[School], str]
    is_list: bool = False
    codes: tuple[int, ...] = (200,)
    label: str = ""
    once: bool = False  # the URL works once: a new one for the measured request


def _quiz(s: School) -> str:
    i = s.ids
    return f"/courses/{i['cid']}/modules/{i['m_quiz']}/quiz/{i['quiz']}"


def _mod(s: School, key: str) -> str:
    return f"/courses/{s.ids['cid']}/modules/{s.ids[key]}"


def _signed(s: School, client: str, url: str, key: str) -> str:
    """The path and query of a signed URL another GET answers."""
    r = ok(getattr(s, client).get(url))
    target = urlparse(r.json[key])
    return f"{target.path}?{target.query}" if target.query else target.path


def _my_cert(s: School) -> dict[str, Any]:
    return ok(s.v.get(f"/courses/{s.ids['cert_cid']}/certificate")).json


def _last_attempt(s: School) -> int:
    return ok(s.v.get(f"{_quiz(s)}/attempts")).json["items"][0]["id"]


def _one_attachment(s: School) -> int:
    return ok(s.a.get(f"{_mod(s, 'm_text')}/attachments")).json["items"][0]["id"]


def _my_submission(s: School) -> int:
    return ok(s.a.get(f"{_mod(s, 'm_assign')}/assignment/submissions")).json["items"][0]["id"]


def _one_notification(s: School) -> int:
    return ok(s.v.get("/notifications?limit=1")).json["items"][0]["id"]


def _one_delivery(s: School) -> int:
    return ok(s.a.get(f"/webhooks/endpoints/{s.ids['endpoint']}/deliveries?limit=1")
              ).json["items"][0]["id"]


def _one_statement(s: School) -> int:
    return ok(s.a.get("/xapi/statements?limit=1")).json["items"][0]["id"]


def _one_passback(s: School) -> int:
    return ok(s.a.get("/lti/passbacks?limit=1")).json["items"][0]["id"]


def _tool_login(s: School) -> str:
    """An LMS's OIDC login initiation (a GET that records a state: a 302 to the LMS)."""
    return (f"/lti/schools/{s.tenant.slug}/tool/login?iss=https%3A%2F%2Flms0.example.org"
            "&login_hint=u1&client_id=c&target_link_uri=https%3A%2F%2Fx.example.org%2F")


LTI_SCOPES = ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
              "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
              "https://purl.imsglobal.org/spec/lti-ags/scope/score",
              "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"]


def _ctx(s: School, cid: int) -> str:
    return f"/lti/schools/{s.tenant.slug}/platform/contexts/{cid}"


def _lti_token(s: School) -> str:
    """An access token of the school for tool 0 (its signed client assertion)."""
    import jwt
    from learnplat_lti.plugin import LtiPlugin

    client_id = ok(s.a.get(f"/lti/tools/{s.ids['tool']}")).json["client_id"]
    now = int(time.time())
    assertion = jwt.encode(
        {"iss": client_id, "sub": client_id, "iat": now, "exp": now + 300,
         "aud": s.runtime.plugin(LtiPlugin).urls.platform_token(s.tenant),
         "jti": uuid.uuid4().hex}, s.key, algorithm="RS256", headers={"kid": "qc"})
    r = ok(s.anon.post(f"/lti/schools/{s.tenant.slug}/platform/token", body=urlencode({
        "grant_type": "client_credentials", "client_assertion": assertion,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "scope": " ".join(LTI_SCOPES)}),
        headers={"Content-Type": "application/x-www-form-urlencoded"}))
    return str(r.json["access_token"])


def _authorize(s: School) -> str:
    """The viewer's launch of the Lab module, as the tool's OIDC login sends the browser to
    the authorization endpoint (its answer: the page posting the id_token to the tool)."""
    from urllib.parse import parse_qsl, urlencode

    r = ok(s.v.post("/lti/launches", json={"module_id": s.ids["m_lti"]}))
    login = dict(parse_qsl(urlparse(r.json["launch_url"]).query))
    return f"/lti/schools/{s.tenant.slug}/platform/auth?" + urlencode({
        "scope": "openid", "response_type": "id_token", "response_mode": "form_post",
        "prompt": "none", "client_id": login["client_id"],
        "redirect_uri": "http://127.0.0.1:9/launch", "login_hint": login["login_hint"],
        "lti_message_hint": login["lti_message_hint"], "nonce": "n0nce", "state": "st4te"})


def _reference_asset(s: School) -> str:
    """The reference page's own script, at the versioned URL the page names."""
    page = ok(s.anon.get("/docs")).text
    found = re.search(r'src="(docs/assets/[0-9a-f]+/reference\.js)"', page)
    assert found, page[:500]
    return "/" + found.group(1)


CASES: list[Case] = [
    # core
    Case("/healthz", "anon", lambda s: "/healthz"),
    Case("/readyz", "anon", lambda s: "/readyz"),
    Case("/openapi.json", "anon", lambda s: "/openapi.json"),
    Case("/docs", "anon", lambda s: "/docs"),
    Case("/docs/assets/{digest}/{asset}", "anon", lambda s: _reference_asset(s)),
    # identity
    Case("/.well-known/jwks.json", "anon", lambda s: "/.well-known/jwks.json"),
    Case("/audit", "a", lambda s: "/audit", is_list=True),
    Case("/auth/profile", "v", lambda s: "/auth/profile"),
    Case("/auth/roles", "a", lambda s: "/auth/roles"),
    Case("/users", "a", lambda s: "/users", is_list=True),
    Case("/users/{user_id}", "a", lambda s: f"/users/{s.ids['viewer']}"),
    Case("/users/{user_id}/photo", "a", lambda s: f"/users/{s.ids['viewer']}/photo",
         codes=(200, 302, 303, 307)),
    # courses
    Case("/courses", "a", lambda s: "/courses", is_list=True),
    Case("/courses/{course_id}", "a", lambda s: f"/courses/{s.ids['cid']}"),
    Case("/courses/{course_id}", "v", lambda s: f"/courses/{s.ids['cid']}",
         label="enrolled student"),
    Case("/courses/{course_id}", "v", lambda s: f"/courses/{s.ids['cert_cid']}",
         label="enrolled student, no seat cap"),
    Case("/courses/{course_id}/analytics", "a", lambda s: f"/courses/{s.ids['cid']}/analytics"),
    Case("/courses/{course_id}/feedback", "a", lambda s: f"/courses/{s.ids['cid']}/feedback",
         is_list=True),
    Case("/courses/{course_id}/feedback/{thread_id}", "a",
         lambda s: f"/courses/{s.ids['cid']}/feedback/{s.ids['thread']}"),
    Case("/courses/{course_id}/history", "a",
         lambda s: f"/courses/{s.ids['draft']}/history", is_list=True),
    Case("/courses/{course_id}/image", "anon", lambda s: f"/courses/{s.ids['cid']}/image",
         codes=(200, 302, 303, 307)),
    Case("/courses/{course_id}/thumbnail", "anon",
         lambda s: f"/courses/{s.ids['cid']}/thumbnail", codes=(200, 302, 303, 307)),
    Case("/courses/{course_id}/modules", "a", lambda s: f"/courses/{s.ids['cid']}/modules"),
    Case("/courses/{course_id}/modules/{module_id}", "a", lambda s: _mod(s, "m_text")),
    Case("/courses/{course_id}/ratings", "a", lambda s: f"/courses/{s.ids['cid']}/ratings",
         is_list=True),
    # enrollment
    Case("/courses/enrollments", "v", lambda s: "/courses/enrollments", is_list=True),
    Case("/courses/{course_id}/students", "a", lambda s: f"/courses/{s.ids['cid']}/students",
         is_list=True),
    Case("/courses/{course_id}/enrollment-rules", "a",
         lambda s: f"/courses/{s.ids['cid']}/enrollment-rules"),
    # progress
    Case("/progress/{course_id}", "v", lambda s: f"/progress/{s.ids['cid']}"),
    Case("/progress/{course_id}/students", "a",
         lambda s: f"/progress/{s.ids['cid']}/students", is_list=True),
    # quizzes
    Case("/courses/{course_id}/modules/{module_id}/quiz", "a",
         lambda s: f"{_mod(s, 'm_quiz')}/quiz"),
    Case("/courses/{course_id}/modules/{module_id}/quiz/{quiz_id}", "a", _quiz),
    Case("/courses/{course_id}/modules/{module_id}/quiz/{quiz_id}", "v", _quiz,
         label="enrolled student"),
    Case("/courses/{course_id}/modules/{module_id}/quiz/{quiz_id}/attempts", "v",
         lambda s: f"{_quiz(s)}/attempts"),
    Case("/courses/{course_id}/modules/{module_id}/quiz/{quiz_id}/attempts/{attempt_id}", "v",
         lambda s: f"{_quiz(s)}/attempts/{_last_attempt(s)}"),
    Case("/courses/{course_id}/modules/{module_id}/quiz/{quiz_id}/result", "v",
         lambda s: f"{_quiz(s)}/result"),
    Case("/courses/{course_id}/modules/{module_id}/quiz/{quiz_id}/submissions", "a",
         lambda s: f"{_quiz(s)}/submissions?status=all", is_list=True),
    # media
    Case("/courses/{course_id}/modules/{module_id}/assignment", "a",
         lambda s: f"{_mod(s, 'm_assign')}/assignment"),
    Case("/courses/{course_id}/modules/{module_id}/assignment/submission", "v",
         lambda s: f"{_mod(s, 'm_assign')}/assignment/submission"),
    Case("/courses/{course_id}/modules/{module_id}/assignment/submission/file", "v",
         lambda s: f"{_mod(s, 'm_assign')}/assignment/submission/file"),
    Case("/courses/{course_id}/modules/{module_id}/assignment/submissions", "a",
         lambda s: f"{_mod(s, 'm_assign')}/assignment/submissions", is_list=True),
    Case("/courses/{course_id}/modules/{module_id}/assignment/submissions/{submission_id}/file",
         "a", lambda s: f"{_mod(s, 'm_assign')}/assignment/submissions/{_my_submission(s)}/file"),
    Case("/courses/{course_id}/modules/{module_id}/attachments", "a",
         lambda s: f"{_mod(s, 'm_text')}/attachments"),
    Case("/courses/{course_id}/modules/{module_id}/attachments", "v",
         lambda s: f"{_mod(s, 'm_text')}/attachments", label="enrolled student"),
    Case("/courses/{course_id}/modules/{module_id}/attachments/{media_id}", "a",
         lambda s: f"{_mod(s, 'm_text')}/attachments/{_one_attachment(s)}"),
    Case("/courses/{course_id}/modules/{module_id}/video", "v",
         lambda s: f"{_mod(s, 'm_video')}/video", label="enrolled student"),
    Case("/media/{tenant_id}/{media_id}", "anon",
         lambda s: _signed(s, "v", f"{_mod(s, 'm_video')}/video", "url"), codes=(200, 206)),
    # notifications
    Case("/notifications", "v", lambda s: "/notifications", is_list=True),
    Case("/notifications/unread-count", "v", lambda s: "/notifications/unread-count"),
    Case("/notifications/preferences", "v", lambda s: "/notifications/preferences"),
    Case("/notifications/{notification_id}", "v",
         lambda s: f"/notifications/{_one_notification(s)}"),
    Case("/notifications/broadcasts/{broadcast_id}", "a",
         lambda s: f"/notifications/broadcasts/{s.ids['broadcast']}"),
    # certificates
    Case("/certificates", "a", lambda s: "/certificates", is_list=True),
    Case("/certificates/template", "a", lambda s: "/certificates/template"),
    Case("/certificates/jobs/{job_id}", "a", lambda s: f"/certificates/jobs/{s.ids['job']}"),
    Case("/courses/{course_id}/certificate", "v",
         lambda s: f"/courses/{s.ids['cert_cid']}/certificate"),
    Case("/certificates/{public_id}/verify", "anon",
         lambda s: f"/certificates/{_my_cert(s)['id']}/verify"),
    Case("/certificates/{public_id}/pdf", "anon",
         lambda s: _signed(s, "v", f"/courses/{s.ids['cert_cid']}/certificate", "pdf_url")),
    Case("/certificates/{public_id}/credential", "anon",
         lambda s: _signed(s, "v", f"/courses/{s.ids['cert_cid']}/certificate",
                           "credential_url")),
    Case("/certificates/issuers/{slug}", "anon",
         lambda s: f"/certificates/issuers/{s.tenant.slug}"),
    Case("/certificates/issuers/{slug}/achievements/{achievement_id}", "anon",
         lambda s: f"/certificates/issuers/{s.tenant.slug}/achievements/"
                   f"course-{s.ids['cert_cid']}"),
    Case("/certificates/issuers/{slug}/did.json", "anon",
         lambda s: f"/certificates/issuers/{s.tenant.slug}/did.json"),
    Case("/certificates/issuers/{slug}/jwks.json", "anon",
         lambda s: f"/certificates/issuers/{s.tenant.slug}/jwks.json"),
    Case("/certificates/issuers/{slug}/status/revocation", "anon",
         lambda s: f"/certificates/issuers/{s.tenant.slug}/status/revocation"),
    # webhooks
    Case("/webhooks/endpoints", "a", lambda s: "/webhooks/endpoints"),
    Case("/webhooks/endpoints/{endpoint_id}", "a",
         lambda s: f"/webhooks/endpoints/{s.ids['endpoint']}"),
    Case("/webhooks/endpoints/{endpoint_id}/deliveries", "a",
         lambda s: f"/webhooks/endpoints/{s.ids['endpoint']}/deliveries", is_list=True),
    Case("/webhooks/deliveries/{delivery_id}", "a",
         lambda s: f"/webhooks/deliveries/{_one_delivery(s)}"),
    Case("/webhooks/event-types", "a", lambda s: "/webhooks/event-types"),
    # xapi
    Case("/xapi/lrs", "a", lambda s: "/xapi/lrs"),
    Case("/xapi/statements", "a", lambda s: "/xapi/statements", is_list=True),
    Case("/xapi/statements/{statement_id}", "a",
         lambda s: f"/xapi/statements/{_one_statement(s)}"),
    # lti
    Case("/lti/config", "a", lambda s: "/lti/config"),
    Case("/lti/schools/{school}/jwks", "anon", lambda s: f"/lti/schools/{s.tenant.slug}/jwks"),
    Case("/lti/schools/{school}/tool/login", "anon", _tool_login, codes=(302,)),
    Case("/lti/platforms", "a", lambda s: "/lti/platforms", is_list=True),
    Case("/lti/platforms/{platform_id}", "a", lambda s: f"/lti/platforms/{s.ids['platform']}"),
    Case("/lti/passbacks", "a", lambda s: "/lti/passbacks", is_list=True),
    Case("/lti/passbacks", "t", lambda s: "/lti/passbacks", is_list=True,
         label="the course's instructor"),
    Case("/lti/passbacks/{passback_id}", "a", lambda s: f"/lti/passbacks/{_one_passback(s)}"),
    Case("/lti/tools", "a", lambda s: "/lti/tools", is_list=True),
    Case("/lti/tools/{tool_id}", "a", lambda s: f"/lti/tools/{s.ids['tool']}"),
    Case("/courses/{course_id}/modules/{module_id}/lti", "v",
         lambda s: f"{_mod(s, 'm_lti')}/lti", label="enrolled student"),
    Case("/courses/{course_id}/modules/{module_id}/lti", "t", lambda s: f"{_mod(s, 'm_lti')}/lti",
         label="the course's owner"),
    Case("/lti/schools/{school}/platform/auth", "anon", _authorize, once=True),
    Case("/lti/scores", "t", lambda s: f"/lti/scores?course_id={s.ids['cid']}", is_list=True),
    Case("/lti/schools/{school}/platform/contexts/{course_id}/lineitems", "tc",
         lambda s: f"{_ctx(s, s.ids['cid'])}/lineitems"),
    Case("/lti/schools/{school}/platform/contexts/{course_id}/lineitems/{lineitem_id}", "tc",
         lambda s: s.ids["lineitem"]),
    Case("/lti/schools/{school}/platform/contexts/{course_id}/lineitems/{lineitem_id}/results",
         "tc", lambda s: f"{s.ids['lineitem']}/results"),
    Case("/lti/schools/{school}/platform/contexts/{course_id}/memberships", "tc",
         lambda s: f"{_ctx(s, s.ids['cid'])}/memberships"),
]


def _key(case: Case) -> str:
    return f"{case.path} ({case.who}{', ' + case.label if case.label else ''})"


def _measure(school: School, case: Case, limit: int | None = None) -> int:
    client = getattr(school, case.who)
    url = case.url(school)
    if limit is not None:
        url += ("&" if "?" in url else "?") + f"limit={limit}"
    ok(client.get(url), *case.codes)  # warm: signing keys, caches outside the count
    if case.once:
        url = case.url(school)
    with count_queries() as q:
        r = client.get(url)
    assert r.status_code in case.codes, (url, r.status_code, r.text[:300])
    if case.is_list and limit is not None:
        items = r.json["items"]
        assert len(items) == limit, (url, len(items))  # a full page: the rows are there
    return q.count


def _get_paths(runtime: Any) -> set[str]:
    from learnplat.http.openapi import build_document

    return {p for p, ops in build_document(runtime)["paths"].items() if "get" in ops}


def test_every_get_route_has_a_query_count(lp_runtime):
    """A new GET route fails here until it has a query-count case (or an exemption)."""
    paths = _get_paths(lp_runtime)
    measured = {c.path for c in CASES}
    assert not (measured & set(EXEMPT)), "measured and exempt"
    missing = paths - measured - set(EXEMPT)
    assert not missing, f"GET routes without a query-count case: {sorted(missing)}"
    assert set(BOUNDS) == measured, sorted(set(BOUNDS) ^ measured)
    assert not (measured | set(EXEMPT)) - paths, "cases for routes that do not exist"


def test_every_get_costs_constant_queries(lp_runtime, lp_app):
    school = School(lp_runtime, lp_app)
    school.setup()
    school.grow(3)
    small = {_key(c): _measure(school, c, 2 if c.is_list else None) for c in CASES}
    school.grow(22)
    big = {_key(c): _measure(school, c, 2 if c.is_list else None) for c in CASES}
    page = {_key(c): _measure(school, c, 20) for c in CASES if c.is_list}
    table = "\n".join(f"{k}: {small[k]} -> {big[k]}" + (f" (limit=20: {page[k]})" if k in page
                                                         else "") for k in small)
    print("\nqueries per GET (3 -> 25 of everything)\n" + table)
    grew = [k for k in small if small[k] != big[k]]
    paged = [k for k in page if page[k] != big[k]]
    over = [f"{_key(c)}: {big[_key(c)]} > {BOUNDS[c.path]}" for c in CASES
            if max(big[_key(c)], page.get(_key(c), 0)) > BOUNDS[c.path]]
    assert not grew, f"query count grows with the school's data: {grew}\n{table}"
    assert not paged, f"query count grows with the page size: {paged}\n{table}"
    assert not over, f"over the recorded bound: {over}\n{table}"

