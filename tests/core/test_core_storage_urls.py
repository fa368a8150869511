"""storage.url for Azure Blob Storage and Google Cloud Storage: parsed and validated at start
(the drivers are libcloud's); against a real Azurite emulator when one is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from corehelpers import free_port
from libcloud.storage.drivers.azure_blobs import AzureBlobsStorageDriver
from libcloud.storage.drivers.google_storage import GoogleStorageDriver

from learnplat.settings import ConfigError, load_settings
from learnplat.storage import Storage
from learnplat.tenancy import TenantInfo, tenant_context

# Azurite's published development account (not a secret).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
           "K1SZFPTOtr/KBHBeksoGMGw==")
A = TenantInfo(id=301, slug="az", name="Az")


def storage_for(url: str) -> Storage:
    return Storage(load_settings(overrides={"storage": {"url": url}}, environ={}))


def test_azure_and_gcs_urls_are_parsed():
    s = storage_for(f"azure://{DEV_ACCOUNT}:{quote(DEV_KEY, safe='')}@/videos")
    assert isinstance(s.driver, AzureBlobsStorageDriver) and s.container_name == "videos"
    assert s.driver.connection.host == f"{DEV_ACCOUNT}.blob.core.windows.net"
    s = storage_for(f"azure://{DEV_ACCOUNT}:{quote(DEV_KEY, safe='')}@127.0.0.1:10000/v"
                    "?secure=false")
    assert s.driver.connection.host == "127.0.0.1" and not s.driver.secure
    s = storage_for("gs://GOOGHMACID:c2VjcmV0@/my-bucket?project=school")
    assert isinstance(s.driver, GoogleStorageDriver) and s.container_name == "my-bucket"
    assert s.driver.project == "school"


@pytest.mark.parametrize("url, words", [
    ("azure://acct:not*base64@/c", "base64"),
    (f"azure://{DEV_ACCOUNT}:{quote(DEV_KEY, safe='')}@/", "container"),
    ("gs://@/bucket", "credentials"),
    ("ftp://x/y", "unsupported scheme"),
])
def test_bad_cloud_urls_stop_start_up(url, words):
    with pytest.raises(ConfigError, match=words):
        storage_for(url)


def _azurite() -> str | None:
    found = os.environ.get("LEARNPLAT_TEST_AZURITE") or shutil.which("azurite-blob")
    return found if found and Path(found).exists() else None


@pytest.fixture(scope="module")
def azurite(tmp_path_factory) -> Iterator[str]:
    exe = _azurite()
    if exe is None:
        pytest.skip("Azurite is not installed (npm install azurite; LEARNPLAT_TEST_AZURITE="
                    "path/to/azurite-blob)")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--skipApiVersionCheck",
         "--loose", "--location", str(tmp_path_factory.mktemp("azurite"))],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "azurite exited"
            try:
                requests.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, "azurite did not start"
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        proc.kill()  # azurite ignores SIGTERM while it has open connections
        proc.wait(timeout=10)


def test_azure_blob_storage_against_azurite(azurite):
    s = storage_for(f"azure://{DEV_ACCOUNT}:{quote(DEV_KEY, safe='')}@{azurite}/learnplat"
                    "?secure=false")
    s.ping()
    data = bytes(range(256)) * 2000
    with tenant_context(A):
        chunks = (data[i:i + 65536] for i in range(0, len(data), 65536))
        assert s.put("media/v.bin", chunks, "video/mp4").size == len(data)
        assert b"".join(s.open("media/v.bin")) == data
        assert b"".join(s.open("media/v.bin", 1000, 2000)) == data[1000:2000]
        assert [o.key for o in s.list("media/")] == ["media/v.bin"]
        url = s.presigned_url("media/v.bin", 60)
        assert url and azurite in url
        got = requests.get(url, timeout=10)
        assert got.status_code == 200 and got.content == data
        # An altered SAS signature is refused by the emulator.
        assert requests.get(url.replace("sig=", "sig=A"), timeout=10).status_code == 403
        assert s.delete("media/v.bin") and not s.exists("media/v.bin")
