"""Helpers of the cross-tenant sweep: a tenant populated through the real API (every feature
plugin has rows in it), and generic views of a tenant's data (every table with a tenant column,
whatever plugin declares it) for snapshots, id lookups and identifier scans."""

from __future__ import annotations

import datetime as dt
import io
import struct
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import peewee

from learnplat import db
from learnplat.tenancy import TenantInfo, tenant_context

BOUNDARY = "lpsweepboundary7c1e"


# --- files for uploads --------------------------------------------------------------------

def png_bytes(size: tuple[int, int] = (64, 48)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, (30, 90, 160)).save(out, "PNG")
    return out.getvalue()


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mp4_bytes(duration_seconds: int = 60) -> bytes:
    """A small MP4 whose mvhd says `duration_seconds` (as the media tests build them)."""
    ftyp = _box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41")
    mvhd = _box(b"mvhd", b"\x00\x00\x00\x00" + struct.pack(">IIII", 0, 0, 1000,
                                                            duration_seconds * 1000) + b"\x00" * 80)
    return ftyp + _box(b"moov", mvhd) + _box(b"mdat", b"\x00" * 1024)


PDF = b"%PDF-1.4\n" + b"1 0 obj << >> endobj\n" * 20 + b"%%EOF\n"


def multipart(data: bytes, filename: str, content_type: str, name: str = "file"
              ) -> tuple[bytes, dict[str, str]]:
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n").encode() \
        + data + f"\r\n--{BOUNDARY}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def upload_for(path: str, name: str = "file") -> tuple[bytes, dict[str, str]]:
    """A small valid upload for a multipart route, chosen by what the path names."""
    if "video" in path:
        return multipart(mp4_bytes(), "clip.mp4", "video/mp4", name)
    if any(word in path for word in ("image", "thumbnail", "photo", "logo", "signature")):
        return multipart(png_bytes(), "picture.png", "image/png", name)
    return multipart(PDF, "work.pdf", "application/pdf", name)


# --- a populated tenant ---------------------------------------------------------------------

def _ok(r: Any, *codes: int) -> Any:
    assert r.status_code in (codes or (200, 201, 202)), (r.status_code, r.text[:500])
    return r.json if r.content and r.headers.get("content-type", "").startswith(
        "application/json") else None


QUESTIONS: list[dict[str, Any]] = [
    {"type": "single_choice", "prompt": "Capital of France?", "options": ["Lyon", "Paris"],
     "answer": 1, "points": 2},
    {"type": "short_text", "prompt": "Name the zebra", "answer": "Zorblax", "points": 1},
]


@dataclass
class Population:
    """One tenant with a row in every feature's tables, made through the API as its users
    would; `clients` are A-style clients (tenant host + token) by role."""

    tenant: TenantInfo
    tag: str
    users: dict[str, Any] = field(default_factory=dict)
    clients: dict[str, Any] = field(default_factory=dict)
    course_id: int = 0
    module_ids: list[int] = field(default_factory=list)
    draft_course_id: int = 0
    archived_course_id: int = 0
    lti_token: str = ""  # an LTI access token of the school's tool (AGS and NRPS calls)


def populate(runtime: Any, app_client: Any, user_factory: Any, tenant: TenantInfo,
             tag: str) -> Population:
    """Fill `tenant` with courses (published, draft, archived), modules (text, video, quiz,
    assignment), enrollments, progress (completions and a playback heartbeat), a quiz with a
    submitted attempt, media (video, attachment, course image, user photo, assignment
    submission), ratings and feedback, notifications (a broadcast), an issued certificate, a
    certificate template and a regeneration job. Every name and title carries `tag`."""
    pop = Population(tenant, tag)
    client = app_client.as_(tenant=tenant)
    for role in ("admin", "instructor", "student", "student2"):
        real = "student" if role == "student2" else role
        user = user_factory.make(real, email=f"{role}-{tag}@{tag}.example.org",
                                 name=f"{role.title()} {tag}", tenant=tenant)
        pop.users[role] = user
        pop.clients[role] = client.as_(user.token)
    a, t = pop.clients["admin"], pop.clients["instructor"]
    s, s2 = pop.clients["student"], pop.clients["student2"]
    # A learning record store (a closed loopback port): what follows becomes xAPI statements
    # that stay pending, their failed attempts logged.
    _ok(a.put("/xapi/lrs", json={"endpoint": "http://127.0.0.1:9/xapi", "key": f"lrs-{tag}",
                                 "secret": f"secret-{tag}",
                                 "home_page": f"https://{tag}.example.org"}))

    cid = _ok(t.post("/courses", json={"title": f"Course {tag}",
                                       "description": f"About {tag}"}))["id"]
    kinds = ("text", "video", "quiz", "assignment")
    mids = [_ok(t.post(f"/courses/{cid}/modules",
                       json={"title": f"Module {kind} {tag}", "kind": kind}))["id"]
            for kind in kinds]
    _ok(t.post(f"/courses/{cid}/image", body=upload_for("image")[0],
               headers=upload_for("image")[1]))
    _ok(t.post(f"/courses/{cid}/modules/{mids[1]}/video", body=upload_for("video")[0],
               headers=upload_for("video")[1]))
    _ok(t.post(f"/courses/{cid}/modules/{mids[0]}/attachments",
               body=upload_for("attachments")[0], headers=upload_for("attachments")[1]))
    quiz_path = f"/courses/{cid}/modules/{mids[2]}/quiz"
    quiz = _ok(t.post(quiz_path, json={"title": f"Quiz {tag}", "pass_mark": 50,
                                       "questions": QUESTIONS}))
    _ok(t.put(f"/courses/{cid}/modules/{mids[3]}/assignment",
              json={"instructions": f"Write about {tag}"}))
    lti_module, tool = _lti_tool(pop, cid)
    _ok(t.post(f"/courses/{cid}/submit"))
    _ok(a.post(f"/courses/{cid}/approve"))
    _ok(a.put(f"/courses/{cid}/enrollment-rules", json={"cap": 1000}))
    pop.course_id, pop.module_ids = cid, mids
    _lti(pop, cid)

    for student in (s, s2):
        _ok(student.post(f"/courses/{cid}/enroll"))
    # A launch of the tool (its login URL a closed port: the launch waits, unused), and
    # the tool's own calls: an access token, a line item, the student's score.
    _ok(s.post("/lti/launches", json={"module_id": lti_module}), 201)
    _lti_services(runtime, pop, cid, lti_module, tool, pop.users["student"].id)
    # Progress: completions, a playback heartbeat, a quiz attempt, an assignment submission.
    _ok(s.post(f"/progress/{cid}", json={"module_id": mids[1], "position_seconds": 10,
                                         "duration_seconds": 60}))
    attempt = _ok(s.post(f"{quiz_path}/{quiz['id']}/attempts"))
    qids = [q["id"] for q in quiz["questions"]]
    _ok(s.put(f"{quiz_path}/{quiz['id']}/attempts/{attempt['id']}/answers",
              json={"answers": {str(qids[0]): 1}}))
    _ok(s.post(f"{quiz_path}/{quiz['id']}/submit",
               json={"answers": {str(qids[1]): "Zorblax"}, "attempt_id": attempt["id"]}))
    body, headers = upload_for("submission")
    _ok(s.post(f"/courses/{cid}/modules/{mids[3]}/assignment/submission", body=body,
               headers=headers))
    subs = _ok(t.get(f"/courses/{cid}/modules/{mids[3]}/assignment/submissions"))
    _ok(t.post(f"/courses/{cid}/modules/{mids[3]}/assignment/submissions/"
               f"{subs['items'][0]['id']}/grade", json={"points": 90, "feedback": f"Good {tag}"}))
    for mid in mids:
        _ok(s.post(f"/progress/{cid}", json={"module_id": mid, "completed": True}))
    _ok(s2.post(f"/progress/{cid}", json={"module_id": mids[0], "completed": True}))
    _ok(s.post(f"/courses/{cid}/ratings", json={"stars": 4, "comment": f"Nice {tag}"}))
    thread = _ok(s.post(f"/courses/{cid}/feedback",
                        json={"subject": f"Question {tag}", "body": f"Why {tag}?"}))
    _ok(t.post(f"/courses/{cid}/feedback/{thread['id']}/messages",
               json={"body": f"Because {tag}"}))
    body, headers = upload_for("photo")
    _ok(s.post(f"/users/{pop.users['student'].id}/photo", body=body, headers=headers))
    _ok(a.post("/notifications", json={"title": f"News {tag}", "body": f"Hello {tag}",
                                          "course_id": cid}))
    _ok(a.put("/certificates/template", json={"heading": f"Certificate {tag}"}))
    body, headers = upload_for("logo")
    _ok(a.post("/certificates/template/logo", body=body, headers=headers))
    runtime.events.dispatch_pending()  # completion -> certificate, notifications
    _ok(a.post(f"/courses/{cid}/certificates/regenerate"), 200, 201, 202)
    # A webhook endpoint and a delivery of it (a ping to a closed loopback port: it stays
    # pending, its failed attempt logged).
    hook = _ok(a.post("/webhooks/endpoints", json={
        "url": "http://127.0.0.1:9/hook", "event_types": ["enrollment.*"],
        "description": f"Hook {tag}"}), 201)
    _ok(a.post(f"/webhooks/endpoints/{hook['id']}/test"), 202)

    pop.draft_course_id = _ok(t.post("/courses", json={"title": f"Draft {tag}"}))["id"]
    _ok(t.post(f"/courses/{pop.draft_course_id}/modules", json={"title": f"Draft module {tag}"}))
    arch = _ok(t.post("/courses", json={"title": f"Archived {tag}"}))["id"]
    _ok(t.post(f"/courses/{arch}/submit"))
    _ok(a.post(f"/courses/{arch}/approve"))
    _ok(a.post(f"/courses/{arch}/archive"))
    pop.archived_course_id = arch
    settle(runtime)
    return pop


LTI_SCOPES = ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
              "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
              "https://purl.imsglobal.org/spec/lti-ags/scope/score",
              "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"]


def _lti_tool(pop: Population, cid: int) -> tuple[int, dict[str, Any]]:
    """LTI (learnplat as platform): a tool registered (its URLs on a closed loopback port,
    its key given as a JWK) with the Advantage scopes, and an optional module of the course
    that launches it: (the module's id, the tool's registration and private key)."""
    import json

    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    tag, t = pop.tag, pop.clients["instructor"]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())),
           "kid": f"tool-{tag}", "alg": "RS256", "use": "sig"}
    tool = _ok(pop.clients["admin"].post("/lti/tools", json={
        "name": f"Tool {tag}", "description": f"Lab {tag}",
        "login_url": "http://127.0.0.1:9/login", "launch_url": f"http://127.0.0.1:9/{tag}",
        "public_jwk": jwk, "scopes": LTI_SCOPES, "custom": {"lab": f"lab-{tag}"}}), 201)
    mid = _ok(t.post(f"/courses/{cid}/modules", json={"title": f"Lab {tag}",
                                                      "required": False}), 201)["id"]
    _ok(t.put(f"/courses/{cid}/modules/{mid}/lti", json={"tool_id": tool["id"],
                                                         "custom": {"bench": f"bench-{tag}"}}))
    return int(mid), {**tool, "key": key}


def _lti_services(runtime: Any, pop: Population, cid: int, mid: int, tool: dict[str, Any],
                  learner_id: int) -> None:
    """The tool's calls to the school (AGS): an access token for its signed client
    assertion, a line item of the module, a score for `learner_id`."""
    import json
    import time

    import jwt
    from learnplat_lti.plugin import LtiPlugin

    anonymous = pop.clients["admin"].as_(None)
    token_url = runtime.plugin(LtiPlugin).urls.platform_token(pop.tenant)
    now = int(time.time())
    assertion = jwt.encode({"iss": tool["client_id"], "sub": tool["client_id"],
                            "aud": token_url, "iat": now, "exp": now + 300,
                            "jti": uuid.uuid4().hex}, tool["key"], algorithm="RS256",
                           headers={"kid": f"tool-{pop.tag}"})
    form = {"grant_type": "client_credentials", "client_assertion": assertion,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "scope": " ".join(LTI_SCOPES)}
    token = _ok(anonymous.post(f"/lti/schools/{pop.tenant.slug}/platform/token",
                               body=urlencode(form), headers={
                                   "Content-Type": "application/x-www-form-urlencoded"}))
    pop.lti_token = token["access_token"]
    tool_client = anonymous.as_(pop.lti_token)
    items = f"/lti/schools/{pop.tenant.slug}/platform/contexts/{cid}/lineitems"
    r = tool_client.post(items, body=json.dumps({
        "scoreMaximum": 10, "label": f"Lab {pop.tag}", "resourceLinkId": str(mid),
        "tag": f"tag-{pop.tag}"}), headers={
            "Content-Type": "application/vnd.ims.lis.v2.lineitem+json"})
    _ok(r, 201)
    path = urlsplit(json.loads(r.text)["id"]).path
    _ok(tool_client.post(f"{path}/scores", body=json.dumps({
        "userId": str(learner_id), "scoreGiven": 7, "scoreMaximum": 10,
        "activityProgress": "InProgress", "gradingProgress": "Pending",
        "comment": f"Well done {pop.tag}",
        "timestamp": dt.datetime.now(dt.UTC).isoformat()}), headers={
            "Content-Type": "application/vnd.ims.lis.v1.score+json"}), 204)


def _lti(pop: Population, cid: int) -> None:
    """LTI (learnplat as tool): an LMS registered through the API, its token URL a closed
    loopback port (the grades sent back to it, queued by the progress that follows, stay
    pending with their failed attempts logged), and the student launched from it. A launch
    needs an id_token the LMS signs (tests/lti drives real ones): its two rows, the account
    link and the grade target, are written here as the launch writes them."""
    from learnplat_lti.models import GradeTarget, PlatformAccount

    tag, a = pop.tag, pop.clients["admin"]
    platform = _ok(a.post("/lti/platforms", json={
        "name": f"LMS {tag}", "issuer": f"https://lms-{tag}.example.org",
        "client_id": f"client-{tag}", "deployment_ids": [f"deployment-{tag}"],
        "auth_login_url": "http://127.0.0.1:9/auth", "token_url": "http://127.0.0.1:9/token",
        "jwks_url": "http://127.0.0.1:9/jwks"}), 201)
    student = pop.users["student"]
    with db.connection(), tenant_context(pop.tenant), db.transaction():
        PlatformAccount.insert(platform=platform["id"], sub=f"sub-{tag}",
                               user_id=student.id).execute()
        GradeTarget.insert(
            platform=platform["id"], user_id=student.id, sub=f"sub-{tag}", course_id=cid,
            resource_link_id=f"link-{tag}", deployment_id=f"deployment-{tag}",
            lineitem_url=f"http://127.0.0.1:9/lineitems/{tag}",
            scopes=["https://purl.imsglobal.org/spec/lti-ags/scope/score"]).execute()


def fresh_token(runtime: Any, tenant: TenantInfo, user_id: int) -> str:
    """A new access token of an existing user (no password hashing: cheap)."""
    from learnplat_identity.models import User
    from learnplat_identity.plugin import IdentityPlugin

    with db.connection(), tenant_context(tenant), db.transaction():
        return runtime.plugin(IdentityPlugin).identity.issue_pair(
            User.get_by_id(user_id))["access_token"]


def settle(runtime: Any) -> None:
    """Deliver every pending event, so nothing changes the tenants' rows behind a snapshot."""
    for _ in range(10):
        if not runtime.events.dispatch_pending():
            return


# --- generic views of a tenant's data ---------------------------------------------------------

def tenant_tables(runtime: Any) -> list[type[peewee.Model]]:
    """Every model of every plugin (and the core) that has a tenant column."""
    seen: dict[str, type[peewee.Model]] = {}
    for models in runtime.registry.models.values():
        for model in models:
            if any(f.column_name == "tenant_id" for f in model._meta.sorted_fields):
                seen.setdefault(model._meta.table_name, model)
    return [seen[name] for name in sorted(seen)]


def _rows(model: type[peewee.Model], tenant_id: int) -> list[dict[str, Any]]:
    fields = model._meta.sorted_fields
    column = next(f for f in fields if f.column_name == "tenant_id")
    query = model.select(*fields).where(column == tenant_id)
    return [{f.column_name: value for f, value in zip(fields, row, strict=True)}
            for row in query.tuples()]


def snapshot(runtime: Any, tenant: TenantInfo) -> dict[str, list[dict[str, Any]]]:
    """Every row of `tenant` in every table with a tenant column, sorted, by table name, and
    the tenant's own row."""
    from learnplat.models import Tenant

    out: dict[str, list[dict[str, Any]]] = {}
    with db.connection(), tenant_context(tenant), db.transaction():
        for model in tenant_tables(runtime):
            rows = _rows(model, tenant.id)
            out[model._meta.table_name] = sorted(rows, key=lambda r: repr(sorted(r.items())))
        # The school's own row (settings, enabled, disabled plugins).
        out[Tenant._meta.table_name] = list(Tenant.select().where(Tenant.id == tenant.id).dicts())
    return out


def storage_snapshot(runtime: Any, tenant: TenantInfo) -> dict[str, int]:
    """The tenant's stored files (local storage: path -> size)."""
    url = runtime.settings.storage.url
    if not url.startswith("file://"):
        return {}
    root = Path(url.removeprefix("file://"))
    found: dict[str, int] = {}
    for prefix in root.rglob(f"t{tenant.id}"):
        if prefix.is_dir():
            for path in prefix.rglob("*"):
                if path.is_file():
                    found[str(path.relative_to(root))] = path.stat().st_size
    return found


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(k) + _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, uuid.UUID):
        return [str(value), value.hex]
    return []


def identifiers(snap: dict[str, list[dict[str, Any]]], other: dict[str, list[dict[str, Any]]],
                tenant: TenantInfo, min_length: int = 8) -> set[str]:
    """The strings that name `snap`'s tenant's data (uuids, emails, names, slugs, codes,
    titles): every string value of its rows of at least `min_length` characters that the
    other tenant's rows do not hold too (shared vocabulary: statuses, kinds, mime types)."""
    mine = {s for rows in snap.values() for row in rows for v in row.values()
            for s in _strings(v) if len(s) >= min_length}
    theirs = {s for rows in other.values() for row in rows for v in row.values()
              for s in _strings(v)}
    found = mine - theirs
    found |= {tenant.slug, tenant.name}
    return {s for s in found if not s.isdigit() and not _is_timestamp(s)}


def _is_timestamp(text: str) -> bool:
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True

