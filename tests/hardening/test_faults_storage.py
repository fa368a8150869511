"""Storage faults during an upload: the local disk full (a 1 MB tmpfs), S3 unreachable (a
closed port) and S3 gone in the middle of an upload (a moto server killed while the body
streams). Each answers a problem document (507 `storage_full`, 503 `storage_unavailable` with
Retry-After), records nothing (no media row, the course keeps its image) and leaves no
partial object behind; the next upload after the fault works.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from workerfaults import course_with_module, multipart_body, pdf, png

from learnplat import db
from learnplat.storage import Storage
from learnplat.tenancy import tenant_context
from learnplat.testing import backend, free_port, moto_s3_process
from learnplat.testing import test_settings as make_settings

PROBLEM = "application/problem+json"


def _use_storage(lp_runtime, monkeypatch, tmp_path: Path, url: str) -> Storage:
    storage = Storage(make_settings(tmp_path, "sqlite:///:memory:", storage={"url": url}))
    monkeypatch.setattr(lp_runtime, "storage", storage)
    return storage


def _media_rows(tenant) -> list:
    from learnplat_media.models import MediaObject

    with db.connection(), tenant_context(tenant), db.transaction(write=False):
        return list(MediaObject.select())


def _keys(storage: Storage, tenant, prefix: str = "") -> list[str]:
    with db.connection(), tenant_context(tenant):
        return sorted(o.key for o in storage.list(prefix))


def _attach(client, course_id: int, module_id: int, data: bytes):
    body, headers = multipart_body(data, "notes.pdf", "application/pdf")
    return client.post(f"/courses/{course_id}/modules/{module_id}/attachments", body=body,
                        headers=headers)


def _image(client, course_id: int, data: bytes):
    body, headers = multipart_body(data, "cover.png", "image/png")
    return client.post(f"/courses/{course_id}/image", body=body, headers=headers)


def _problem(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json["code"] == code and r.json["status"] == status
    assert "Traceback" not in r.text
    return r.json


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MB tmpfs (root only: skipped where mounting is not allowed)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_is_507_and_nothing_is_half_recorded(full_disk, lp_runtime, lp_client,
                                                         lp_users, lp_tenant, monkeypatch,
                                                         tmp_path):
    from learnplat_courses.models import Course

    storage = _use_storage(lp_runtime, monkeypatch, tmp_path, f"file://{full_disk}")
    t, course_id, module_id = course_with_module(lp_client, lp_users)

    # Over the disk's size: it fills up in the middle of the upload.
    doc = _problem(_attach(t, course_id, module_id, pdf(1_500_000)), 507, "storage_full")
    assert "full" in doc["detail"]
    assert _media_rows(lp_tenant) == []
    assert _keys(storage, lp_tenant) == []  # the partial file is gone
    assert shutil.disk_usage(full_disk).used < 64 * 1024  # and its space is back

    # A course image on a disk with 40 KB left.
    (full_disk / "filler").write_bytes(b"\0" * (shutil.disk_usage(full_disk).free - 40_000))
    image = png(200)  # ~120 KB
    _problem(_image(t, course_id, image), 507, "storage_full")
    with db.connection(), tenant_context(lp_tenant), db.transaction(write=False):
        course = Course.get_by_id(course_id)
    assert course.image_key == "" and course.thumbnail_key == ""
    assert _keys(storage, lp_tenant) == []

    # Room again: the same uploads go through.
    (full_disk / "filler").unlink()
    r = _attach(t, course_id, module_id, pdf(300_000))
    assert r.status_code == 201, r.text
    assert _image(t, course_id, image).status_code == 201
    rows = _media_rows(lp_tenant)
    assert [row.key for row in rows] == [k for k in _keys(storage, lp_tenant, "media/")]


def test_unreachable_s3_is_503_with_retry_after(lp_runtime, lp_client, lp_users, lp_tenant,
                                               monkeypatch, tmp_path):
    from learnplat_courses.models import Course

    # Nothing listens on this port: connections are refused at once.
    _use_storage(lp_runtime, monkeypatch, tmp_path,
                 f"s3://k:s@127.0.0.1:{free_port()}/media?secure=false")
    t, course_id, module_id = course_with_module(lp_client, lp_users)
    started = time.monotonic()
    r = _attach(t, course_id, module_id, pdf(200_000))
    _problem(r, 503, "storage_unavailable")
    assert int(r.headers["retry-after"]) >= 1
    r = _image(t, course_id, png(100))
    _problem(r, 503, "storage_unavailable")
    assert time.monotonic() - started < 20  # failed fast, not hung
    assert _media_rows(lp_tenant) == []
    with db.connection(), tenant_context(lp_tenant), db.transaction(write=False):
        assert Course.get_by_id(course_id).image_key == ""


@pytest.mark.skipif(backend() != "postgres", reason="starts a moto server: PostgreSQL run only")
def test_s3_gone_mid_upload_is_503_and_records_nothing(lp_runtime, lp_client, lp_users,
                                                      lp_tenant, monkeypatch, tmp_path):
    from learnplat import uploads

    t, course_id, module_id = course_with_module(lp_client, lp_users)
    with moto_s3_process() as (endpoint, moto):
        storage = _use_storage(lp_runtime, monkeypatch, tmp_path,
                               f"s3://k:s@{endpoint}/media?secure=false")
        # Healthy first: an upload through S3 works (and makes the bucket).
        assert _attach(t, course_id, module_id, pdf(100_000)).status_code == 201
        kept = _keys(storage, lp_tenant, "media/")
        assert len(kept) == 1
        original = uploads.UploadReader._read
        read = {"bytes": 0}

        def read_then_kill(self):
            chunk = original(self)
            read["bytes"] += len(chunk)
            if read["bytes"] > 6 * 1024 * 1024 and moto.poll() is None:
                moto.kill()  # S3 goes away after the first 5 MB part went up
                moto.wait(10)
            return chunk

        monkeypatch.setattr(uploads.UploadReader, "_read", read_then_kill)
        r = _attach(t, course_id, module_id, pdf(12 * 1024 * 1024))
        _problem(r, 503, "storage_unavailable")
        assert moto.poll() is not None  # it really died mid-way
    assert len(_media_rows(lp_tenant)) == 1  # only the first upload's
