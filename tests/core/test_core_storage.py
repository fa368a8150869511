"""Storage on libcloud: local disk and S3-compatible (a real moto server), tenant-prefixed keys,
streamed put/open/range/delete, presigned URLs that work on a non-default port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from learnplat.errors import NotFound
from learnplat.settings import load_settings
from learnplat.storage import Storage
from learnplat.tenancy import TenantInfo, tenant_context
from learnplat.testing import moto_s3_server

A = TenantInfo(id=101, slug="a", name="A")
B = TenantInfo(id=102, slug="b", name="B")


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_s3_server() as endpoint:
        yield endpoint


@pytest.fixture(params=["file", "s3"])
def storage(request, tmp_path) -> Storage:
    if request.param == "file":
        url = f"file://{tmp_path / 'store'}"
    else:
        bucket = "bucket-" + tmp_path.name[-8:].lower().replace("_", "-")
        url = f"s3://key:secret@{request.getfixturevalue('moto_url')}/{bucket}?secure=false"
    return Storage(load_settings(overrides={"storage": {"url": url}}, environ={}))


def chunks(n: int, size: int = 64 * 1024) -> Iterator[bytes]:
    for i in range(n):
        yield bytes([i % 251]) * size


def test_put_open_range_delete_streamed(storage):
    with tenant_context(A):
        stored = storage.put("videos/1.bin", chunks(5), content_type="video/mp4")
        assert stored.size == 5 * 64 * 1024
        stream = storage.open("videos/1.bin")
        assert not isinstance(stream, bytes | bytearray)  # an iterator of chunks
        data = b"".join(stream)
        assert data == b"".join(chunks(5))
        assert b"".join(storage.open("videos/1.bin", 65530, 65540)) == data[65530:65540]
        assert b"".join(storage.open("videos/1.bin", 300000)) == data[300000:]
        assert storage.stat("videos/1.bin").size == len(data)
        assert storage.exists("videos/1.bin")
        assert storage.delete("videos/1.bin") is True
        assert not storage.exists("videos/1.bin")
        assert storage.delete("videos/1.bin") is False
        with pytest.raises(NotFound):
            storage.open("videos/1.bin")


def test_keys_are_tenant_prefixed_and_isolated(storage):
    with tenant_context(A):
        storage.put("doc.txt", [b"A's"])
        assert Storage.tenant_key("doc.txt") == "t101/doc.txt"
    with tenant_context(B):
        assert not storage.exists("doc.txt")
        storage.put("doc.txt", [b"B's"])
        assert b"".join(storage.open("doc.txt")) == b"B's"
        with pytest.raises(ValueError):
            storage.put("../t101/doc.txt", [b"sneak"])
    with tenant_context(A):
        assert b"".join(storage.open("doc.txt")) == b"A's"
    names = sorted(o.name for o in storage.driver.list_container_objects(storage.container))
    assert names == ["t101/doc.txt", "t102/doc.txt"]


def test_storage_needs_a_tenant(storage):
    from learnplat.tenancy import NoTenant

    with pytest.raises(NoTenant):
        storage.put("x", [b"x"])


def test_ping(storage):
    storage.ping()


def test_presigned_url_on_a_non_default_port(storage):
    with tenant_context(A):
        storage.put("p.txt", [b"presigned"])
        url = storage.presigned_url("p.txt", 60)
    if storage.is_local:
        assert url is None  # the API serves local bytes itself
        return
    assert f"{storage.driver.connection.host}:{storage.driver.connection.port}" in url
    r = requests.get(url, timeout=5)
    assert r.status_code == 200 and r.content == b"presigned"


def test_presigned_signature_matches_botocore(moto_url):
    """Sign the same request with botocore (the reference implementation, which signs the Host
    header with its port) and compare signatures."""
    import datetime as dt
    from unittest import mock

    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials

    req = botocore.awsrequest.AWSRequest(
        method="GET", url=f"http://{moto_url}/sigcheck/t101/obj.bin")
    signer = botocore.auth.S3SigV4QueryAuth(botocore.credentials.Credentials("key", "secret"),
                                            "s3", "us-east-1", expires=300)
    signer.add_auth(req)
    theirs = dict(p.split("=", 1) for p in req.url.split("?", 1)[1].split("&"))
    when = dt.datetime.strptime(theirs["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    storage = Storage(load_settings(overrides={"storage": {
        "url": f"s3://key:secret@{moto_url}/sigcheck?secure=false"}}, environ={}))
    with mock.patch("learnplat.storage.dt") as fake_dt, tenant_context(A):
        fake_dt.datetime.now.return_value = when
        fake_dt.UTC = dt.UTC
        url = storage.presigned_url("obj.bin", 300)
    ours = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))
    assert {k: v for k, v in ours.items() if k != "X-Amz-Signature"} == {
        k: v for k, v in theirs.items() if k != "X-Amz-Signature"}
    assert ours["X-Amz-Signature"] == theirs["X-Amz-Signature"]
