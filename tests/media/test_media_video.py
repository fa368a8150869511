"""Module videos on local storage: upload, signed URLs, range requests, access, bad input."""

from __future__ import annotations

import hashlib
import time
from contextlib import contextmanager
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from learnplat_media import signing
from learnplat_media.models import MediaObject
from mediahelpers import MULTIPART, PDF, WEBM, make_stage, mp4_bytes, multipart, upload

from learnplat import db
from learnplat.tenancy import tenant_context
from learnplat.testing import Client, make_tenant


@contextmanager
def _in(runtime, tenant):
    with db.connection(), tenant_context(tenant), db.transaction():
        yield


def _stored(runtime, tenant) -> list[str]:
    with _in(runtime, tenant):
        return sorted(o.key for o in runtime.storage.list("media/"))


def _rows(runtime, tenant) -> list[MediaObject]:
    with _in(runtime, tenant):
        return list(MediaObject.select().order_by(MediaObject.id))


def _local(url: str) -> str:
    """The path and query of a signed URL, for the in-process test client."""
    parsed = urlparse(url)
    return f"{parsed.path}?{parsed.query}"


def _fetch(lp_client, url: str, headers: dict[str, str] | None = None):
    # No token and no tenant header: the URL must work on its own.
    return Client(lp_client.app).get(_local(url), headers=headers)


def test_upload_makes_a_video_module_and_heartbeats_work(stage, lp_runtime, lp_tenant,
                                                         event_recorder):
    data = mp4_bytes(95, payload=50_000)
    r = upload(stage.t, stage.course_id, stage.module_ids[0], data)
    assert r.status_code == 201, r.text
    body = r.json
    assert body["content_type"] == "video/mp4" and body["size"] == len(data)
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["duration_seconds"] == 95  # read from moov/mvhd at the end of the file
    assert body["uploader_id"] == stage.teacher.id and body["filename"] == "clip.mp4"
    module = stage.s.get(f"/courses/{stage.course_id}/modules/{stage.module_ids[0]}").json
    assert module["kind"] == "video" and module["estimated_minutes"] == 2
    r = stage.s.post(f"/progress/{stage.course_id}", json={
        "module_id": stage.module_ids[0], "position_seconds": 10, "duration_seconds": 95})
    assert r.status_code in (200, 201), r.text
    # The key is built from the tenant and ids, never from the client's file name.
    [row] = _rows(lp_runtime, lp_tenant)
    assert row.key.startswith(f"media/c{stage.course_id}/m{stage.module_ids[0]}/video-")
    assert "clip" not in row.key
    assert _stored(lp_runtime, lp_tenant) == [row.key]
    lp_runtime.events.dispatch_pending()
    assert "media.video_uploaded.v1" in event_recorder.names()


def test_signed_url_streams_with_ranges_and_validators(stage, lp_client):
    data = bytes(range(256)) * 400
    data = mp4_bytes(30, payload=len(data)) + data
    assert upload(stage.t, stage.course_id, stage.module_ids[0], data).status_code == 201
    r = stage.s.get(stage.path())
    assert r.status_code == 200, r.text
    url, expires_at = r.json["url"], r.json["expires_at"]
    assert urlparse(url).scheme == "http" and expires_at.endswith("Z")
    r = _fetch(lp_client, url)
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-type"] == "video/mp4"
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["content-length"] == str(len(data))
    etag, modified = r.headers["etag"], r.headers["last-modified"]
    assert etag.startswith('"') and modified.endswith("GMT")
    r = _fetch(lp_client, url, {"Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == data[100:200]
    assert r.headers["content-range"] == f"bytes 100-199/{len(data)}"
    r = _fetch(lp_client, url, {"Range": "bytes=-10"})
    assert r.status_code == 206 and r.content == data[-10:]
    r = _fetch(lp_client, url, {"Range": f"bytes={len(data) - 5}-"})
    assert r.status_code == 206 and r.content == data[-5:]
    r = _fetch(lp_client, url, {"Range": f"bytes=0-{len(data) + 1000}"})
    assert r.status_code == 206 and r.content == data
    r = _fetch(lp_client, url, {"Range": f"bytes={len(data)}-"})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(data)}"
    assert _fetch(lp_client, url, {"If-None-Match": etag}).status_code == 304
    # A stale If-Range gets the whole object, not a piece of the new one.
    r = _fetch(lp_client, url, {"Range": "bytes=0-9", "If-Range": '"other"'})
    assert r.status_code == 200 and r.content == data
    head = Client(lp_client.app).request("HEAD", _local(url))
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data))


def test_owner_admin_enrolled_only(stage, outsider, lp_users, lp_client):
    assert upload(stage.t, stage.course_id, stage.module_ids[0], mp4_bytes()).status_code == 201
    for client in (stage.t, stage.a, stage.s):
        assert client.get(stage.path()).status_code == 200
    r = stage.stranger.get(stage.path())
    assert r.status_code == 403 and r.json["code"] == "not_enrolled"
    other_teacher = lp_client.as_(lp_users.make("instructor").token)
    assert other_teacher.get(stage.path()).status_code == 403
    assert stage.client.as_(None).get(stage.path()).status_code == 401
    # The upload authenticates in its own short transaction: bad or no token, 401.
    assert upload(stage.client.as_("not-a-token"), stage.course_id, stage.module_ids[0],
                  mp4_bytes()).status_code == 401
    assert upload(stage.client.as_(None), stage.course_id, stage.module_ids[0],
                  mp4_bytes()).status_code == 401
    # Another school sees nothing: its admin gets 404, for reading and for uploading.
    assert outsider.get(stage.path()).status_code == 404
    assert upload(outsider, stage.course_id, stage.module_ids[0], mp4_bytes()).status_code == 404
    # Students and other instructors may not upload.
    assert upload(stage.s, stage.course_id, stage.module_ids[0], mp4_bytes()).status_code == 403
    assert upload(other_teacher, stage.course_id, stage.module_ids[0],
                  mp4_bytes()).status_code == 404
    # A module without a video, and a module of another course: 404.
    assert stage.s.get(stage.path(1)).status_code == 404
    assert stage.t.get(f"/courses/{stage.course_id}/modules/999999/video").status_code == 404


def test_forged_altered_or_expired_urls_are_refused(stage, lp_client, lp_runtime, lp_tenant,
                                                    lp_other_tenant):
    assert upload(stage.t, stage.course_id, stage.module_ids[0], mp4_bytes()).status_code == 201
    url = stage.s.get(stage.path()).json["url"]
    assert _fetch(lp_client, url).status_code == 200
    parsed = urlparse(url)
    q = {k: v[0] for k, v in parse_qs(parsed.query).items()}
    media_id = int(parsed.path.rsplit("/", 1)[1])

    def variant(path: str = parsed.path, **changes: str) -> str:
        return f"{path}?{urlencode({**q, **changes})}"

    bad = [
        variant(sig="0" * 64),
        variant(sig=q["sig"][:-1] + ("0" if q["sig"][-1] != "0" else "1")),
        variant(u=str(int(q["u"]) + 1)),
        variant(exp=str(int(q["exp"]) + 3600)),
        variant(exp="soon"),
        variant(sig=""),
        variant(path=f"/media/{lp_tenant.id}/{media_id + 1}"),
        variant(path=f"/media/{lp_other_tenant.id}/{media_id}"),
    ]
    for candidate in bad:
        r = _fetch(lp_client, candidate)
        assert r.status_code == 403, (candidate, r.status_code)
        assert r.headers["content-type"] == "application/problem+json"
    # Correctly signed, but expired.
    past = int(time.time()) - 1
    sig = signing.signature(lp_runtime.secret_key, lp_tenant.id, media_id, past, int(q["u"]))
    r = _fetch(lp_client, variant(exp=str(past), sig=sig))
    assert r.status_code == 403 and r.json["code"] == "expired"
    # Signed with another secret key: refused.
    sig = signing.signature(b"another-secret-key-of-16+", lp_tenant.id, media_id,
                            int(q["exp"]), int(q["u"]))
    assert _fetch(lp_client, variant(sig=sig)).status_code == 403


def test_replacing_keeps_the_old_video_until_the_new_one_is_stored(stage, lp_runtime,
                                                                   lp_tenant, lp_client):
    first = mp4_bytes(30, payload=1000, fill=b"a")
    assert upload(stage.t, stage.course_id, stage.module_ids[0], first).status_code == 201
    old_url = stage.s.get(stage.path()).json["url"]
    [old] = _rows(lp_runtime, lp_tenant)
    # A refused replacement (wrong type) leaves the old video playing.
    assert upload(stage.t, stage.course_id, stage.module_ids[0], PDF,
                  filename="x.pdf").status_code == 415
    assert _stored(lp_runtime, lp_tenant) == [old.key]
    assert _fetch(lp_client, old_url).content == first
    second = mp4_bytes(40, payload=1000, fill=b"b")
    r = upload(stage.a, stage.course_id, stage.module_ids[0], second)
    assert r.status_code == 201 and r.json["duration_seconds"] == 40
    [new] = _rows(lp_runtime, lp_tenant)
    assert new.id != old.id and new.key != old.key
    # The old object is deleted by a task after commit (immediate in tests).
    assert _stored(lp_runtime, lp_tenant) == [new.key]
    assert _fetch(lp_client, old_url).status_code == 404
    assert _fetch(lp_client, stage.s.get(stage.path()).json["url"]).content == second


def test_webm_takes_the_instructors_duration(stage):
    r = upload(stage.t, stage.course_id, stage.module_ids[1], WEBM, filename="talk.webm",
               content_type="video/webm", query="duration_seconds=600")
    assert r.status_code == 201, r.text
    assert r.json["content_type"] == "video/webm" and r.json["duration_seconds"] == 600
    r = upload(stage.t, stage.course_id, stage.module_ids[1], WEBM, query="duration_seconds=0")
    assert r.status_code == 422


@pytest.mark.parametrize("data, kwargs, status", [
    (PDF, {}, 415),  # a PDF named clip.mp4 with Content-Type video/mp4
    (b"<html>" * 100, {"filename": "x.mp4"}, 415),
    (b"", {}, 422),
    (mp4_bytes(), {"filename": "../../etc/passwd.mp4"}, 422),
    (mp4_bytes(), {"filename": "a\\b.mp4"}, 422),
    (mp4_bytes(), {"filename": "bell\x07.mp4"}, 422),
    (mp4_bytes(), {"filename": "x" * 300 + ".mp4"}, 422),
    (mp4_bytes(), {"name": "video"}, 422),  # no part named "file"
])
def test_bad_uploads_store_nothing(stage, lp_runtime, lp_tenant, data, kwargs, status):
    r = upload(stage.t, stage.course_id, stage.module_ids[0], data, **kwargs)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert _stored(lp_runtime, lp_tenant) == [] and _rows(lp_runtime, lp_tenant) == []
    module = stage.t.get(f"/courses/{stage.course_id}/modules/{stage.module_ids[0]}").json
    assert module["kind"] != "video"


def test_truncated_and_non_multipart_bodies(stage, lp_runtime, lp_tenant):
    path = stage.path()
    body = multipart(mp4_bytes(payload=200_000))
    r = stage.t.post(path, body=body[:-5000], headers={"Content-Type": MULTIPART})
    assert r.status_code == 400, r.text
    r = stage.t.post(path, body=body, headers={"Content-Type": "video/mp4"})
    assert r.status_code == 415
    r = stage.t.post(path, body=body, headers={"Content-Type": "multipart/form-data"})
    assert r.status_code == 400
    assert _stored(lp_runtime, lp_tenant) == [] and _rows(lp_runtime, lp_tenant) == []


def test_tenant_size_limit(lp_runtime, lp_app, lp_users):
    tenant = make_tenant(lp_runtime, settings={"media": {"max_video_bytes": 100_000}})
    users = lp_users.__class__(lp_runtime, tenant)
    stage = make_stage(Client(lp_app, tenant), users)
    # Declared too large by Content-Length: refused before reading.
    r = upload(stage.t, stage.course_id, stage.module_ids[0], mp4_bytes(payload=300_000))
    assert r.status_code == 413, r.text
    # Within the framing allowance of Content-Length, but over the limit: refused while
    # streaming, and the partial object is removed.
    r = upload(stage.t, stage.course_id, stage.module_ids[0], mp4_bytes(payload=100_500))
    assert r.status_code == 413, r.text
    assert _stored(lp_runtime, tenant) == [] and _rows(lp_runtime, tenant) == []
    r = upload(stage.t, stage.course_id, stage.module_ids[0], mp4_bytes(payload=90_000))
    assert r.status_code == 201


def test_direct_upload_needs_s3(stage):
    r = stage.t.post(stage.path(0, "video/direct"), json={"size": 1000})
    assert r.status_code == 409 and r.json["code"] == "direct_unsupported"
