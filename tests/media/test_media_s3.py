"""The media plugin on S3-compatible storage: a real moto server on 127.0.0.1 (on a
non-default port), uploads through the API, presigned playback URLs checked by an independent
SigV4 verifier (botocore's signer, which moto's server does not run for query signatures),
downloads, ranges and deletes."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urlparse

import pytest
import requests
from mediahelpers import PDF, mp4_bytes, upload

from learnplat import db
from learnplat.storage import S3CompatibleDriver, Storage
from learnplat.tenancy import tenant_context
from learnplat.testing import moto_s3_server
from learnplat.testing import test_settings as make_settings

KEY, SECRET, REGION = "mediakey", "mediasecret", "us-east-1"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3(lp_runtime, moto_endpoint, tmp_path, monkeypatch) -> Storage:
    """The test runtime's storage swapped for a bucket on the moto server."""
    bucket = "media-" + tmp_path.name[-10:].lower().replace("_", "-")
    url = f"s3://{KEY}:{SECRET}@{moto_endpoint}/{bucket}?secure=false"
    storage = Storage(make_settings(tmp_path, "sqlite:///:memory:", storage={"url": url}))
    monkeypatch.setattr(lp_runtime, "storage", storage)
    return storage


def sigv4_query_problems(url: str, now: dt.datetime | None = None, method: str = "GET"
                         ) -> list[str]:
    """What is wrong with a presigned GET URL for our credentials: recomputed with botocore's
    SigV4 signer over exactly the host:port the client will send, and checked for expiry."""
    from botocore.auth import S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    parsed = urlparse(url)
    params = dict(parse_qsl(parsed.query))
    given = params.pop("X-Amz-Signature", "")
    auth = S3SigV4QueryAuth(Credentials(KEY, SECRET), "s3", REGION,
                            expires=int(params["X-Amz-Expires"]))
    request = AWSRequest(method=method, url=f"{parsed.scheme}://{parsed.netloc}{parsed.path}",
                         params=params, headers={"host": parsed.netloc})
    request.context["timestamp"] = params["X-Amz-Date"]
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)),
                              request)
    problems = []
    if given != expected:
        problems.append("signature does not match")
    signed_at = dt.datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=dt.UTC)
    if (now or dt.datetime.now(dt.UTC)) > signed_at + dt.timedelta(
            seconds=int(params["X-Amz-Expires"])):
        problems.append("expired")
    return problems


def _objects(storage, tenant) -> list[str]:
    with db.connection(), tenant_context(tenant):
        return sorted(o.key for o in storage.list("media/"))


def test_upload_presign_download_replace_delete_on_s3(stage, s3, lp_tenant, lp_runtime):
    data = mp4_bytes(75, payload=300_000)
    r = upload(stage.t, stage.course_id, stage.module_ids[0], data)
    assert r.status_code == 201, r.text
    assert r.json["duration_seconds"] == 75  # probed with range reads from S3
    [key] = _objects(s3, lp_tenant)
    with tenant_context(lp_tenant):
        assert s3.stat(key).size == len(data)

    r = stage.s.get(stage.path())
    assert r.status_code == 200, r.text
    url, expires_at = r.json["url"], dt.datetime.fromisoformat(r.json["expires_at"])
    parsed = urlparse(url)
    assert parsed.netloc == s3.driver.connection.host + f":{s3.driver.connection.port}"
    assert parsed.path.endswith(f"/t{lp_tenant.id}/{key}")
    params = dict(parse_qsl(parsed.query))
    ttl = lp_runtime.settings.storage.signing_ttl_seconds
    assert int(params["X-Amz-Expires"]) == ttl
    assert abs((expires_at - dt.datetime.now(dt.UTC)).total_seconds() - ttl) < 30
    # The signature is right for host:port, and would be refused once expired...
    assert sigv4_query_problems(url) == []
    assert sigv4_query_problems(url, now=expires_at + dt.timedelta(seconds=5)) == ["expired"]
    # ...and the verifier does fail an altered URL, and libcloud's own presign, which signs
    # the host without its port.
    altered = url.replace(f"/t{lp_tenant.id}/", f"/t{lp_tenant.id + 1}/")
    assert "signature does not match" in sigv4_query_problems(altered)
    tampered = f"{url.split('?')[0]}?{urlencode({**params, 'X-Amz-Expires': str(ttl * 10)})}"
    assert "signature does not match" in sigv4_query_problems(tampered)
    with tenant_context(lp_tenant):
        stock = super(S3CompatibleDriver, s3.driver).get_object_cdn_url(
            s3.driver.get_object(s3.container_name, s3.tenant_key(key)), ex_expiry=1)
    assert "signature does not match" in sigv4_query_problems(stock)

    got = requests.get(url, timeout=10)
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"] == "video/mp4"
    part = requests.get(url, headers={"Range": "bytes=1000-1999"}, timeout=10)
    assert part.status_code == 206 and part.content == data[1000:2000]

    # Replacing deletes the old object from the bucket once the new one is stored.
    second = mp4_bytes(20, payload=1000, fill=b"z")
    assert upload(stage.t, stage.course_id, stage.module_ids[0], second).status_code == 201
    [new_key] = _objects(s3, lp_tenant)
    assert new_key != key
    # Deleting the module removes its objects through the delete task.
    assert stage.t.delete(f"/courses/{stage.course_id}/modules/{stage.module_ids[0]}"
                          ).status_code == 204
    lp_runtime.events.dispatch_pending()
    assert _objects(s3, lp_tenant) == []


def test_media_check_on_s3(stage, s3, lp_tenant, lp_cli):
    assert upload(stage.t, stage.course_id, stage.module_ids[0], mp4_bytes()).status_code == 201
    assert lp_cli("media", "check", "--tenant", lp_tenant.slug).exit_code == 0
    with tenant_context(lp_tenant):
        s3.put("media/c9/m9/video-stray", [b"stray"])
        [stray] = [o for o in s3.list("media/c9/") if o.key.endswith("stray")]
    assert stray.modified is not None
    assert abs((dt.datetime.now(dt.UTC) - stray.modified).total_seconds()) < 120
    r = lp_cli("media", "check", "--tenant", lp_tenant.slug, "--json", "--delete-orphans",
               "--min-age", "0")
    assert r.exit_code == 0, r.stdout  # the only orphan was deleted
    assert '"media/c9/m9/video-stray"' in r.stdout
    assert [k for k in _objects(s3, lp_tenant) if "stray" in k] == []


def test_attachment_downloads_from_s3_under_their_name(stage, s3):
    r = upload(stage.t, stage.course_id, stage.module_ids[0], PDF, what="attachment",
               filename="Week 1 notes.pdf")
    assert r.status_code == 201, r.text
    url = stage.s.get(stage.path(0, f"attachments/{r.json['id']}")).json["url"]
    assert sigv4_query_problems(url) == []
    assert "signature does not match" in sigv4_query_problems(
        url.replace("Week%25201", "Week%25202"))
    got = requests.get(url, timeout=10)
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["content-disposition"] == (
        "attachment; filename*=UTF-8''Week%201%20notes.pdf")


def test_refused_upload_leaves_nothing_in_the_bucket(stage, s3, lp_tenant):
    r = upload(stage.t, stage.course_id, stage.module_ids[0], b"GIF89a" + b"\x00" * 5000)
    assert r.status_code == 415
    assert _objects(s3, lp_tenant) == []


def test_direct_upload_with_a_presigned_put(stage, s3, lp_tenant, lp_runtime):
    path = stage.path(0, "video/direct")
    data = mp4_bytes(33, payload=500_000, fill=b"d")
    assert stage.s.post(path, json={"size": len(data)}).status_code == 403
    too_big = lp_runtime.plugin_settings["media"].max_video_bytes + 1
    assert stage.t.post(path, json={"size": too_big}).status_code == 413
    r = stage.t.post(path, json={"size": len(data), "filename": "lecture.mp4"})
    assert r.status_code == 201, r.text
    url, token = r.json["upload_url"], r.json["upload_token"]
    assert r.json["method"] == "PUT"
    assert sigv4_query_problems(url, method="PUT") == []
    assert "signature does not match" in sigv4_query_problems(url, method="GET")
    confirm = path + "/confirm"
    r = stage.t.post(confirm, json={"upload_token": token})
    assert r.status_code == 409 and r.json["code"] == "not_uploaded"
    put = requests.put(url, data=data, timeout=30)
    assert put.status_code == 200, put.text
    # A token altered, or for another module, or confirmed by someone else: refused.
    assert stage.t.post(confirm, json={"upload_token": token[:-2] + "AA"}).status_code == 403
    assert stage.t.post(stage.path(1, "video/direct/confirm"),
                        json={"upload_token": token}).status_code == 403
    assert stage.a.post(confirm, json={"upload_token": token}).status_code == 403
    r = stage.t.post(confirm, json={"upload_token": token})
    assert r.status_code == 201, r.text
    assert r.json["size"] == len(data) and r.json["duration_seconds"] == 33
    assert r.json["filename"] == "lecture.mp4"
    assert r.json["sha256"] == hashlib.sha256(data).hexdigest()
    got = requests.get(stage.s.get(stage.path()).json["url"], timeout=10)
    assert got.status_code == 200 and got.content == data

    # A PDF put through a direct upload is refused on confirm, and deleted from the bucket.
    r = stage.t.post(path, json={"size": 1000})
    assert requests.put(r.json["upload_url"], data=b"%PDF-1.4 " * 100, timeout=10
                        ).status_code == 200
    before = _objects(s3, lp_tenant)
    bad = stage.t.post(confirm, json={"upload_token": r.json["upload_token"]})
    assert bad.status_code == 415
    assert len(_objects(s3, lp_tenant)) == len(before) - 1
