"""Broken multipart uploads against every multipart operation of the OpenAPI document (course
image, module video and attachments, assignment submissions, profile photos, certificate logo
and signature): truncated bodies, a missing closing boundary, missing parts, a wrong boundary,
huge part headers, zero-byte files. Each answers a 4xx problem document and leaves no row and
no stored object behind. Then over a real gunicorn: a client that disconnects in the middle
of an upload leaves nothing either."""

from __future__ import annotations

import io
import socket
import time
from typing import Any
from urllib.parse import urlparse

import pytest
import requests
from bodyhelpers import (
    BOUNDARY,
    MULTIPART,
    broken_uploads,
    closing,
    count_rows,
    is_problem,
    multipart_operations,
    part,
    stored_keys,
    tenant_tables,
)

from learnplat.testing import serve_with_gunicorn


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 120, 200)).save(out, "PNG")
    return out.getvalue()


PDF = b"%PDF-1.4\n" + b"1 0 obj << >> endobj\n" * 50 + b"%%EOF\n"


def _mp4(payload: int = 4096) -> bytes:
    import struct

    def box(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", 8 + len(data)) + kind + data

    mvhd = box(b"mvhd", b"\x00" * 4 + struct.pack(">IIII", 0, 0, 1000, 60_000) + b"\x00" * 80)
    return (box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41") + box(b"moov", mvhd)
            + box(b"mdat", b"\x00" * payload))


def _file_for(path: str) -> tuple[bytes, str, str]:
    if path.endswith("/video"):
        return _mp4(), "clip.mp4", "video/mp4"
    if path.endswith(("/attachments", "/submission")):
        return PDF, "notes.pdf", "application/pdf"
    return _png(), "picture.png", "image/png"


@pytest.fixture
def school(lp_client: Any, lp_users: Any) -> dict[str, Any]:
    """A published course with two modules (the second with an assignment), its instructor,
    an admin and an enrolled student."""
    admin, teacher, student = (lp_users.make(r) for r in ("admin", "instructor", "student"))
    a, t, s = (lp_client.as_(u.token) for u in (admin, teacher, student))
    cid = t.post("/courses", json={"title": "Uploads"}).json["id"]
    mids = [t.post(f"/courses/{cid}/modules", json={"title": f"M{i}"}).json["id"]
            for i in range(2)]
    assert t.post(f"/courses/{cid}/submit").status_code == 200
    assert a.post(f"/courses/{cid}/approve").status_code == 200
    assert s.post(f"/courses/{cid}/enroll").status_code == 201
    r = t.put(f"/courses/{cid}/modules/{mids[1]}/assignment", json={"instructions": "Do it"})
    assert r.status_code == 200, r.text
    return {"clients": {"admin": a, "instructor": t, "student": s},
            "users": {"admin": admin, "instructor": teacher, "student": student},
            "course_id": cid, "module_ids": mids, "teacher": teacher}


def _url(op: Any, school: dict[str, Any], role: str) -> str:
    module = school["module_ids"][1 if "assignment" in op.path else 0]
    return op.url({"course_id": school["course_id"], "module_id": module,
                   "user_id": school["users"][role].id})


def _reachable(op: Any, school: dict[str, Any]) -> tuple[str, str] | None:
    """The role (and URL) that gets past permission and lookups: a body without a file part
    then answers 422."""
    for role in ("instructor", "admin", "student"):
        url = _url(op, school, role)
        r = school["clients"][role].request(op.method, url, body=part(b"x", "other", None)
                                            + closing(), headers={"Content-Type": MULTIPART})
        if r.status_code == 422:
            return role, url
    return None


def test_broken_multipart_uploads_answer_4xx_and_leave_nothing(
        lp_runtime: Any, lp_tenant: Any, school: dict[str, Any]) -> None:
    doc = school["clients"]["admin"].get("/openapi.json").json
    ops = multipart_operations(doc)
    assert len(ops) >= 7, [str(o) for o in ops]
    tables = tenant_tables(lp_runtime)
    failures, unreached, sent = [], [], 0
    for op in ops:
        found = _reachable(op, school)
        if found is None:
            unreached.append(str(op))
            continue
        role, url = found
        client = school["clients"][role]
        data, filename, ctype = _file_for(op.path)
        before, keys = count_rows(tables, lp_tenant), stored_keys(lp_runtime, lp_tenant)
        for case in broken_uploads(data, filename, ctype):
            r = client.request(op.method, url, body=case.body, headers=case.headers)
            sent += 1
            if r.status_code not in case.expect or not is_problem(r):
                failures.append(f"{op} as {role}, {case.name}: {r.status_code} {r.text[:200]}")
        after, now = count_rows(tables, lp_tenant), stored_keys(lp_runtime, lp_tenant)
        if after != before:
            changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
            failures.append(f"{op}: rows written {changed}")
        if now != keys:
            failures.append(f"{op}: objects left {set(now) - set(keys)}")
        # And the same route takes the file when the body is whole (the cases were the cause).
        whole = part(data, filename=filename, content_type=ctype) + closing()
        r = client.request(op.method, url, body=whole, headers={"Content-Type": MULTIPART})
        if r.status_code not in (200, 201):
            failures.append(f"{op} as {role}: a whole upload answered {r.status_code} {r.text}")
    print(f"\n{len(ops)} multipart operations, {sent} broken uploads")
    assert not failures, "\n".join(failures)
    assert not unreached, unreached


def _raw_request(port: int, head: bytes, body: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(head + body)
    return sock


def test_client_gone_in_the_middle_of_uploads_leaves_nothing(
        lp_runtime: Any, lp_database: Any, lp_tenant: Any, school: dict[str, Any],
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """Real sockets: a client announces a video and a course image, sends part of each and
    hangs up, or half-closes and waits for an answer. No row, no stored object; the
    half-closed ones get a 4xx or a closed connection, never a 5xx."""
    tables = tenant_tables(lp_runtime)
    before, keys = count_rows(tables, lp_tenant), stored_keys(lp_runtime, lp_tenant)
    cid, mid = school["course_id"], school["module_ids"][0]
    token = school["teacher"].token
    video = part(_mp4(3_000_000), filename="clip.mp4", content_type="video/mp4") + closing()
    image = part(_png() + b"\x00" * 400_000, filename="p.png", content_type="image/png") \
        + closing()
    with serve_with_gunicorn(lp_runtime, lp_database, tmp_path_factory.mktemp("gone"),
                             workers=1) as base:
        port = urlparse(base).port
        assert port is not None
        sockets = []
        for path, body in ((f"/courses/{cid}/modules/{mid}/video", video),
                           (f"/courses/{cid}/image", image)):
            head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nX-Tenant: {lp_tenant.slug}\r\n"
                    f"Authorization: Bearer {token}\r\nContent-Type: {MULTIPART}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode()
            # Hung up after half the body.
            sock = _raw_request(port, head, body[: len(body) // 2])
            time.sleep(0.2)
            sock.close()
            # Half the body, then the write side closed (the server reads EOF early).
            sock = _raw_request(port, head, body[: len(body) // 3])
            sock.shutdown(socket.SHUT_WR)
            sockets.append(sock)
        # The half-closed clients get an answer: a 4xx, not a hang and not a 5xx.
        for sock in sockets:
            sock.settimeout(20)
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
            sock.close()
            status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else None
            assert status is None or 400 <= status < 500, answer[:300]
        # The server is still fine, and took nothing from the broken uploads.
        deadline = time.monotonic() + 10
        while True:
            rows, left = count_rows(tables, lp_tenant), stored_keys(lp_runtime, lp_tenant)
            if (rows, left) == (before, keys) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert rows == before
        assert left == keys, set(left) - set(keys)
        # A chunked upload (no Content-Length) of an image is taken whole (it was a 500: falcon's
        # req.get_media() needs a Content-Length).
        body = part(_png(), filename="p.png", content_type="image/png") + closing()
        for path, who in ((f"/courses/{cid}/image", token),
                          ("/certificates/template/logo", school["users"]["admin"].token)):
            r = requests.post(base + path, data=iter([body[:100], body[100:]]), timeout=30,
                              headers={"Authorization": f"Bearer {who}", "X-Tenant":
                                       lp_tenant.slug, "Content-Type": MULTIPART})
            assert r.status_code == 201, r.text


def test_a_boundary_inside_the_file_is_not_an_end(lp_runtime: Any, lp_tenant: Any,
                                                  school: dict[str, Any]) -> None:
    """A file whose bytes contain the boundary string without the leading CRLF is stored
    whole (the parser only splits on CRLF--boundary)."""
    t = school["clients"]["instructor"]
    cid, mid = school["course_id"], school["module_ids"][0]
    data = PDF[:-6] + f"--{BOUNDARY}--".encode() * 3 + b"%%EOF\n"
    r = t.post(f"/courses/{cid}/modules/{mid}/attachments", headers={"Content-Type": MULTIPART},
               body=part(data, filename="b.pdf", content_type="application/pdf") + closing())
    assert r.status_code == 201, r.text
    assert r.json["size"] == len(data)
