"""The media plugin under real gunicorn servers: signed URLs accepted by another process, and a
200 MB upload streamed with the worker's peak memory bounded."""

from __future__ import annotations

import http.client
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import requests
from mediahelpers import MULTIPART, mp4_bytes, multipart, multipart_stream, multipart_stream_length

from learnplat.testing import serve_with_gunicorn

pytestmark = pytest.mark.e2e


def _post_multipart(base: str, path: str, token: str, tenant: str, body: bytes
                    ) -> requests.Response:
    return requests.post(base + path, data=body, timeout=60, headers={
        "Authorization": f"Bearer {token}", "X-Tenant": tenant, "Content-Type": MULTIPART})


def test_two_servers_accept_each_others_urls(stage, lp_runtime, lp_database, lp_tenant,
                                             tmp_path_factory):
    data = mp4_bytes(42, payload=200_000, fill=b"q")
    tmp = tmp_path_factory.mktemp("two")
    (tmp / "a").mkdir()
    (tmp / "b").mkdir()
    with serve_with_gunicorn(lp_runtime, lp_database, tmp / "a", workers=1) as a, \
            serve_with_gunicorn(lp_runtime, lp_database, tmp / "b", workers=1) as b:
        body = multipart(data)
        # Chunked transfer encoding (no Content-Length), as a streaming client sends it.
        r = requests.post(a + stage.path(), timeout=60,
                          data=(body[i:i + 65536] for i in range(0, len(body), 65536)),
                          headers={"Authorization": f"Bearer {stage.teacher.token}",
                                   "X-Tenant": lp_tenant.slug, "Content-Type": MULTIPART})
        assert r.status_code == 201, r.text
        assert r.json()["size"] == len(data) and r.json()["duration_seconds"] == 42
        for issuer, other in ((a, b), (b, a)):
            r = requests.get(issuer + stage.path(), timeout=10, headers={
                "Authorization": f"Bearer {stage.student.token}", "X-Tenant": lp_tenant.slug})
            assert r.status_code == 200, r.text
            url = urlparse(r.json()["url"])
            assert url.netloc == urlparse(issuer).netloc
            # The same URL on the other process, with no header at all.
            got = requests.get(f"{other}{url.path}?{url.query}", timeout=10)
            assert got.status_code == 200 and got.content == data
            part = requests.get(f"{other}{url.path}?{url.query}", timeout=10,
                                headers={"Range": "bytes=5-14"})
            assert part.status_code == 206 and part.content == data[5:15]
            flipped = url.query[:-1] + ("0" if url.query[-1] != "0" else "1")
            forged = requests.get(f"{other}{url.path}?{flipped}", timeout=10)
            assert forged.status_code == 403


def _workers_of(master: int) -> list[int]:
    """Pids of the gunicorn workers of the master process `master` (its children)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == master:
            children.append(int(entry.name))
    return children


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


SIZE = int(os.environ.get("LEARNPLAT_TEST_BIG_UPLOAD_MB", "200")) * 1024 * 1024


def test_200mb_upload_keeps_the_workers_memory_bounded(stage, lp_runtime, lp_database,
                                                       lp_tenant, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("big")
    with serve_with_gunicorn(lp_runtime, lp_database, tmp, workers=1) as base:
        [worker] = _workers_of(base.pid)
        started = _status_kb(worker, "VmRSS")
        # Warm the worker up (imports, first request).
        small = _post_multipart(base, stage.path(1), stage.teacher.token, lp_tenant.slug,
                                multipart(mp4_bytes(5)))
        assert small.status_code == 201, small.text
        # The worker's peak so far comes from booting the app; reset it (clear_refs "5" resets
        # VmHWM to the current RSS) so the peak read after the upload is the upload's own.
        (Path(f"/proc/{worker}/clear_refs")).write_text("5")
        before = _status_kb(worker, "VmHWM")
        assert before <= _status_kb(worker, "VmRSS") + 1024
        conn = http.client.HTTPConnection("127.0.0.1", urlparse(base).port, timeout=300)
        conn.request("POST", stage.path(), body=multipart_stream(SIZE), headers={
            "Authorization": f"Bearer {stage.teacher.token}", "X-Tenant": lp_tenant.slug,
            "Content-Type": MULTIPART, "Content-Length": str(multipart_stream_length(SIZE))})
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 201, body
        peak = _status_kb(worker, "VmHWM")
        grown_mb = (peak - before) / 1024
        print(f"\n{SIZE >> 20} MB upload: worker RSS at start {started / 1024:.1f} MB, "
              f"{before / 1024:.1f} MB before the upload, peak during it {peak / 1024:.1f} MB "
              f"(+{grown_mb:.1f} MB)")
        # Bounded: a few MB of buffers, nowhere near the 200 MB that was sent.
        assert grown_mb < 40, f"the worker's peak memory grew by {grown_mb:.0f} MB"
    r = stage.s.get(stage.path())
    assert r.status_code == 200


def test_chunked_upload_over_the_limit_stores_nothing(lp_runtime, lp_database, lp_app, lp_users,
                                                      tmp_path_factory):
    """No Content-Length to refuse early: the stream is cut at the school's limit."""
    from learnplat_media.models import MediaObject
    from mediahelpers import make_stage

    from learnplat import db
    from learnplat.tenancy import tenant_context
    from learnplat.testing import Client, make_tenant

    tenant = make_tenant(lp_runtime, settings={"media": {"max_video_bytes": 1_000_000}})
    stage = make_stage(Client(lp_app, tenant), lp_users.__class__(lp_runtime, tenant))
    body = multipart(mp4_bytes(payload=3_000_000))
    with serve_with_gunicorn(lp_runtime, lp_database, tmp_path_factory.mktemp("limit"),
                             workers=1) as base:
        # The server reads and discards the rest of the body after its 413 (a lingering
        # close, learnplat/http/asgi.py), so the client sending on gets the answer, not a reset.
        r = requests.post(base + stage.path(), timeout=60,
                          data=(body[i:i + 65536] for i in range(0, len(body), 65536)),
                          headers={"Authorization": f"Bearer {stage.teacher.token}",
                                   "X-Tenant": tenant.slug, "Content-Type": MULTIPART})
        assert r.status_code == 413, r.text
        with db.connection(), tenant_context(tenant), db.transaction():
            assert list(lp_runtime.storage.list("media/")) == []
            assert MediaObject.select().count() == 0


def test_a_slow_upload_blocks_no_other_write(stage, lp_runtime, lp_database, lp_tenant,
                                            tmp_path_factory):
    """The upload holds no transaction while its bytes arrive: on SQLite a request
    transaction would hold the database's write lock, and every other write would wait."""
    import threading
    import time

    body = multipart(mp4_bytes(payload=400_000))
    half = len(body) // 2
    paused, resume = threading.Event(), threading.Event()

    def slow() -> Iterator[bytes]:
        yield body[:half]
        paused.set()
        resume.wait(30)
        yield body[half:]

    result: dict[str, Any] = {}

    def send(base: str) -> None:
        result["upload"] = requests.post(base + stage.path(), data=slow(), timeout=60, headers={
            "Authorization": f"Bearer {stage.teacher.token}", "X-Tenant": lp_tenant.slug,
            "Content-Type": MULTIPART})  # chunked

    with serve_with_gunicorn(lp_runtime, lp_database, tmp_path_factory.mktemp("slow")) as base:
        sender = threading.Thread(target=send, args=(base,))
        sender.start()
        try:
            assert paused.wait(30)
            time.sleep(0.3)  # the server is now inside the responder, reading the body
            started = time.monotonic()
            r = requests.post(base + "/courses", json={"title": "Written meanwhile"},
                              timeout=30, headers={"Authorization": f"Bearer {stage.teacher.token}",
                                                   "X-Tenant": lp_tenant.slug})
            took = time.monotonic() - started
            assert r.status_code == 201, r.text
            assert took < 3, f"a write waited {took:.1f} s behind an upload"
        finally:
            resume.set()
            sender.join(60)
    assert result["upload"].status_code == 201, result["upload"].text
