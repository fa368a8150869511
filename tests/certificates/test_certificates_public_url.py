"""The address certificates carry (issue 24, item 8): with app.public_url empty, a loopback bind
gives http://localhost:PORT (the port actually bound; a did:web names a host, never an IP
address), any other bind refuses to issue with a message naming the setting; `learnplat serve
--bind` passes its bind to the processes it starts; `learnplat config` shows the value in
force; pdf_url, credential_url and verify_url are absolute on that one base."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jwt as pyjwt
import pytest
from certhelpers import qr_codes

from learnplat.settings import AppSettings, ServerSettings
from learnplat.testing import Client


def _configure(monkeypatch: pytest.MonkeyPatch, runtime: Any, *, bind: str = "127.0.0.1:8000",
               public_url: str = "") -> None:
    """The runtime as a process started with this bind and app.public_url would have it."""
    settings = runtime.settings.model_copy(update={
        "server": runtime.settings.server.model_copy(update={"bind": bind}),
        "app": runtime.settings.app.model_copy(update={"public_url": public_url})})
    monkeypatch.setattr(runtime, "settings", settings)


@pytest.mark.parametrize(("bind", "public_url", "expected"), [
    ("127.0.0.1:9000", "", "http://localhost:9000"),
    ("[::1]:9000", "", "http://localhost:9000"),
    ("localhost:80", "", "http://localhost"),
    ("127.0.0.1:9000", "https://learn.example.org/", "https://learn.example.org"),
    ("0.0.0.0:9000", "https://learn.example.org", "https://learn.example.org"),
    ("0.0.0.0:9000", "", ""),
    ("192.0.2.7:8000", "", ""),
    ("[::]:8000", "", ""),
    ("unix:/run/learnplat.sock", "", ""),
])
def test_the_public_url_in_force(bind, public_url, expected):
    from learnplat.settings import Settings

    settings = Settings(app=AppSettings(public_url=public_url),
                        server=ServerSettings(bind=bind))
    public = settings.public_url_in_force()
    assert public.url == expected
    if not expected:
        assert "app.public_url" in public.source and bind in public.source
    # serve passes its own --bind, which wins over server.bind.
    assert Settings(app=AppSettings(public_url=public_url)).public_url_in_force(
        bind).url == expected


def test_certificates_follow_the_bound_port(school, monkeypatch, lp_runtime):
    """`bin/serve --bind 127.0.0.1:9000`, app.public_url empty: the QR code, verify_url,
    pdf_url, credential_url and the DID all name http://localhost:9000."""
    _configure(monkeypatch, lp_runtime, bind="127.0.0.1:9000")
    student = school.graduate("Port Nine Thousand")
    doc = student.client.get(f"/courses/{school.course_id}/certificate").json
    base = "http://localhost:9000"
    assert doc["verify_url"] == f"{base}/certificates/{doc['id']}/verify"
    for key in ("pdf_url", "credential_url"):
        assert doc[key].startswith(f"{base}/certificates/{doc['id']}/"), doc[key]
    pdf = urlparse(doc["pdf_url"])
    pdf_bytes = Client(school.client.app).get(pdf.path, query_string=pdf.query).content
    assert qr_codes(pdf_bytes) == [doc["verify_url"]]
    cred = urlparse(doc["credential_url"])
    token = Client(school.client.app).get(cred.path, query_string=cred.query).text
    claims = pyjwt.decode(token, options={"verify_signature": False})
    did = f"did:web:localhost%3A9000:certificates:issuers:{school.tenant.slug}"
    assert claims["iss"] == did
    assert pyjwt.get_unverified_header(token)["kid"].startswith(did + "#")
    assert claims["credentialStatus"]["statusListCredential"].startswith(base + "/")
    # The course page's certificate link too (the contract's CertificateInfo).
    page = student.client.get(f"/courses/{school.course_id}").json
    assert page["certificate"]["verify_url"] == doc["verify_url"]


def test_a_non_loopback_bind_refuses_to_issue_until_the_public_url_is_set(
        school, monkeypatch, lp_runtime, caplog):
    """0.0.0.0 says nothing of the name clients use: nothing is printed or signed; the task
    logs why (naming the setting) and leaves the certificate pending; asking answers a 503
    problem naming it. Once app.public_url is set, it is issued on that address."""
    _configure(monkeypatch, lp_runtime, bind="0.0.0.0:9000")
    with caplog.at_level(logging.ERROR, logger="learnplat_certificates"):
        student = school.graduate("Waiting")
    assert any("app.public_url" in r.getMessage() for r in caplog.records), caplog.text
    doc = student.client.get(f"/courses/{school.course_id}/certificate").json
    assert doc["status"] == "pending" and doc["pdf_url"] is None
    r = student.client.post(f"/courses/{school.course_id}/certificate")
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json["code"] == "public_url_not_set"
    assert "app.public_url" in r.json["detail"] and "0.0.0.0:9000" in r.json["detail"]
    r = Client(school.client.app).get(f"/certificates/issuers/{school.tenant.slug}/did.json")
    assert r.status_code == 503 and r.json["code"] == "public_url_not_set"
    r = school.a.post(f"/courses/{school.course_id}/certificates/regenerate")
    assert r.status_code == 503 and r.json["code"] == "public_url_not_set"

    _configure(monkeypatch, lp_runtime, bind="0.0.0.0:9000",
               public_url="https://learn.example.org")
    r = student.client.post(f"/courses/{school.course_id}/certificate")
    assert r.status_code in (200, 202), r.text
    doc = student.client.get(f"/courses/{school.course_id}/certificate").json
    if doc["status"] == "pending":  # queued again only after pending_retry_seconds
        from learnplat_certificates.models import Certificate
        from learnplat_certificates.plugin import CertificatesPlugin

        with school.in_tenant():
            row = Certificate.get(Certificate.public_id == doc["id"])
            assert lp_runtime.plugin(CertificatesPlugin).certificates.issue(row.id) == "issued"
        doc = student.client.get(f"/courses/{school.course_id}/certificate").json
    assert doc["status"] == "issued"
    assert doc["verify_url"] == f"https://learn.example.org/certificates/{doc['id']}/verify"
    assert doc["credential_url"].startswith("https://learn.example.org/certificates/")


def test_an_ip_address_is_no_did_web_host(school, monkeypatch, lp_runtime):
    from learnplat_certificates.settings import CertificatesSettings

    _configure(monkeypatch, lp_runtime, public_url="http://192.0.2.7:8000")
    student = school.learner("Numbered")
    school.complete(student)
    r = student.client.post(f"/courses/{school.course_id}/certificate")
    assert r.status_code == 503 and r.json["code"] == "public_url_not_set", r.text
    assert "IP address" in r.json["detail"] and "did:web" in r.json["detail"]
    with pytest.raises(ValueError, match="did:web"):
        CertificatesSettings(public_base_url="http://10.1.2.3:8000")
    assert CertificatesSettings(public_base_url="").public_base_url == ""


def test_serve_passes_its_bind_to_the_processes_it_starts(lp_cli, monkeypatch):
    """`learnplat serve --bind 127.0.0.1:9000`: gunicorn's workers and the embedded queue
    worker load their settings afresh, so the bind must reach them (here: the environment
    os.execv hands on), and serve says which public URL is in force."""
    started: dict[str, Any] = {}

    def fake_execv(path: str, args: list[str]) -> None:
        started.update(args=args, bind=os.environ.get("LEARNPLAT_SERVER_BIND"))

    monkeypatch.setattr(os, "execv", fake_execv)
    # serve sets these in this process's environment: monkeypatch puts them back.
    for name in ("LEARNPLAT_SERVER_BIND", "LEARNPLAT_HOME", "PYTHONSAFEPATH"):
        monkeypatch.setenv(name, os.environ.get(name, ""))
    monkeypatch.delenv("LEARNPLAT_SERVER_BIND")
    result = lp_cli("serve", "--no-migrate", "--bind", "127.0.0.1:9000")
    assert started, result.stdout + result.stderr
    assert "public URL: http://localhost:9000" in result.stdout, result.stdout
    assert started["bind"] == "127.0.0.1:9000"
    assert started["args"][started["args"].index("--bind") + 1] == "127.0.0.1:9000"


def test_learnplat_config_shows_the_public_url_in_force(tmp_path: Path):
    """As a process from a fresh home: the derived value and where it comes from."""
    cli = [sys.executable, "-m", "learnplat.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNPLAT_")}
    env.update(LEARNPLAT_HOME=str(tmp_path), LEARNPLAT_SERVER_BIND="127.0.0.1:9000")
    out = subprocess.run([*cli, "config"], env=env, capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "public URL: http://localhost:9000 (derived from the loopback bind 127.0.0.1:9000"\
        in out.stdout, out.stdout
    env.update(LEARNPLAT_SERVER_BIND="0.0.0.0:9000")
    out = subprocess.run([*cli, "config", "--json"], env=env, capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)["public_url"]
    assert shown["url"] == "" and "app.public_url" in shown["source"]
