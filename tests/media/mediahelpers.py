"""Helpers for the media tests: multipart bodies and small but real video files."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

BOUNDARY = "lpmediaboundary9f2c"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mp4_bytes(duration_seconds: int = 95, payload: int = 4096, moov_last: bool = True,
              fill: bytes = b"\x00") -> bytes:
    """An MP4 whose mvhd says `duration_seconds` (timescale 1000), with `payload` bytes of
    mdat; moov after mdat when `moov_last` (not "fast start"), as cameras write it."""
    ftyp = _box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41")
    mvhd = _box(b"mvhd", b"\x00\x00\x00\x00" + struct.pack(">IIII", 0, 0, 1000,
                                                            duration_seconds * 1000) + b"\x00" * 80)
    moov = _box(b"moov", mvhd)
    mdat = _box(b"mdat", (fill * payload)[:payload])
    return ftyp + (mdat + moov if moov_last else moov + mdat)


WEBM = b"\x1a\x45\xdf\xa3" + b"\x00" * 2000
PDF = b"%PDF-1.4\n" + b"1 0 obj << >> endobj\n" * 50 + b"%%EOF\n"


def multipart(data: bytes, filename: str = "clip.mp4", name: str = "file",
              content_type: str = "video/mp4") -> bytes:
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n").encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def _stream_head(filename: str) -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\nContent-Type: video/mp4\r\n\r\n").encode()


_TRAILER = f"\r\n--{BOUNDARY}--\r\n".encode()


def multipart_stream(size: int, filename: str = "big.mp4", chunk: int = 1 << 20
                     ) -> Iterator[bytes]:
    """A multipart body with an MP4 of `size` bytes, generated on the fly (never whole)."""
    head = mp4_bytes(60, payload=0, moov_last=False)
    yield _stream_head(filename) + head
    left = size - len(head)
    block = bytes(range(256)) * (chunk // 256)
    while left > 0:
        piece = block[:min(chunk, left)]
        left -= len(piece)
        yield piece
    yield _TRAILER


def multipart_stream_length(size: int, filename: str = "big.mp4") -> int:
    return len(_stream_head(filename)) + size + len(_TRAILER)


def upload(client: Any, cid: int, mid: int, data: bytes, what: str = "video",
           query: str = "", **kw: Any) -> Any:
    path = f"/courses/{cid}/modules/{mid}/{'video' if what == 'video' else 'attachments'}"
    return client.post(path + (f"?{query}" if query else ""), body=multipart(data, **kw),
                       headers={"Content-Type": MULTIPART})


@dataclass
class Stage:
    client: Any
    users: Any
    course_id: int
    module_ids: list[int]
    teacher: Any
    admin: Any
    student: Any
    t: Any
    a: Any
    s: Any
    stranger: Any  # a student of the tenant, not enrolled

    def path(self, i: int = 0, what: str = "video") -> str:
        return f"/courses/{self.course_id}/modules/{self.module_ids[i]}/{what}"


def make_stage(client: Any, users: Any, modules: int = 2) -> Stage:
    teacher, admin, student = users.make("instructor"), users.make("admin"), users.make("student")
    t, a, s = (client.as_(u.token) for u in (teacher, admin, student))
    cid = t.post("/courses", json={"title": "Filmed course"}).json["id"]
    mids = []
    for i in range(modules):
        r = t.post(f"/courses/{cid}/modules", json={"title": f"M{i}"})
        assert r.status_code == 201, r.text
        mids.append(r.json["id"])
    assert t.post(f"/courses/{cid}/submit").status_code == 200
    assert a.post(f"/courses/{cid}/approve").status_code == 200
    assert s.post(f"/courses/{cid}/enroll").status_code == 201
    stranger = client.as_(users.make("student").token)
    return Stage(client, users, cid, mids, teacher, admin, student, t, a, s, stranger)
