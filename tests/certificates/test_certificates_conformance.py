"""An independent Open Badges 3.0 verifier (openbadgeslib's OB3Verifier, test extra) accepts
our credentials and reads our revocation status list: a check of the format by code we did not
write."""

from __future__ import annotations

from urllib.parse import urlparse

import openbadgeslib.ob3 as ob3
import pytest
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import OKPAlgorithm

from learnplat.testing import Client


def _fetcher(school):
    client = Client(school.client.app)

    def download(url: str) -> bytes:
        parsed = urlparse(url)
        r = client.get(parsed.path, query_string=parsed.query)
        assert r.status_code == 200, (url, r.text)
        return r.content

    return download


def _verifier(school, did):
    jwks = Client(school.client.app).get(
        f"/certificates/issuers/{school.tenant.slug}/jwks.json").json
    key = OKPAlgorithm.from_jwk(jwks["keys"][-1])
    pem = key.public_bytes(serialization.Encoding.PEM,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return ob3.OB3Verifier(pem, issuer_did=did)


def test_open_badges_verifier_accepts_ours_and_sees_revocation(school):
    student = school.graduate("Ελένη Παπαδοπούλου")
    doc = student.client.get(f"/courses/{school.course_id}/certificate").json
    download = _fetcher(school)
    token = download(doc["credential_url"]).decode()
    did = Client(school.client.app).get(f"/certificates/{doc['id']}/verify").json["issuer"]["id"]
    verifier = _verifier(school, did)
    credential = verifier.verify(token, check_status=True, download=download)
    assert credential.issuer.id == did
    assert credential.achievement.name == "Введение в Python"
    # Revoked: the same verifier now refuses it, from the status list alone.
    assert school.a.post(f"/certificates/{doc['id']}/revoke",
                         json={"reason": "test"}).status_code == 200
    verifier.verify(token)  # the signature is still good...
    with pytest.raises(ob3.OB3VerificationError, match="status 'revocation' is set"):
        verifier.verify(token, check_status=True, download=download)  # ...but it is revoked
