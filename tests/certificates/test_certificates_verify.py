"""Public verification, revocation, the credential (VC-JWT), keys and the status list."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

import pytest
from certhelpers import School, verify_jwt

from learnplat.testing import Client


def _public(school):
    """A client with no tenant and no token (a phone that scanned the QR code)."""
    return Client(school.client.app)


def _fetch(school, url, **kw):
    parsed = urlparse(url)
    return _public(school).get(parsed.path, query_string=parsed.query, **kw)


def _cert(school, student):
    r = student.client.get(f"/courses/{school.course_id}/certificate")
    assert r.status_code == 200, r.text
    return r.json


def test_verify_json_and_html(school):
    student = school.graduate("Ελένη <Παπαδοπούλου>")
    doc = _cert(school, student)
    r = _public(school).get(f"/certificates/{doc['id']}/verify",
                            headers={"Accept": "application/json"})
    assert r.status_code == 200, r.text
    v = r.json
    assert v["valid"] is True and v["status"] == "issued"
    assert v["learner"]["name"] == "Ελένη <Παπαδοπούλου>"
    assert v["course"] == {"id": school.course_id, "title": "Введение в Python"}
    assert v["instructor"]["name"] == "José Müller"
    assert v["issuer"]["slug"] == school.tenant.slug
    assert v["issuer"]["name"] == school.tenant.name
    # The test runtime's bind is 127.0.0.1:8000 and app.public_url is empty: localhost,
    # since a did:web names a domain, never an IP address.
    assert v["issuer"]["id"] == ("did:web:localhost%3A8000:certificates:issuers:"
                                 + school.tenant.slug)
    assert v["issued_at"] == doc["issued_at"]
    # curl and clients that say nothing get JSON too.
    assert _public(school).get(f"/certificates/{doc['id']}/verify").json["valid"] is True
    # A browser gets a page, with the name escaped.
    r = _public(school).get(f"/certificates/{doc['id']}/verify", headers={
        "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "Genuine certificate" in r.text
    assert "Ελένη &lt;Παπαδοπούλου&gt;" in r.text and "<Παπαδοπούλου>" not in r.text
    assert "Введение в Python" in r.text and school.tenant.name in r.text


@pytest.mark.parametrize("bad", ["nope", "0" * 20 + "x", "ILOU" * 5, "%00", "a" * 500,
                                 "0123456789abcdefghjk"])
def test_verify_unknown_or_malformed_is_404(school, bad):
    r = _public(school).get(f"/certificates/{bad}/verify")
    assert r.status_code == 404, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    r = _public(school).get(f"/certificates/{bad}/verify", headers={"Accept": "text/html"})
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "No certificate has this id" in r.text


def test_revoke(school, lp_client):
    student = school.graduate()
    doc = _cert(school, student)
    url = f"/certificates/{doc['id']}/revoke"
    assert student.client.post(url, json={"reason": "x"}).status_code == 403
    assert lp_client.as_(school.teacher.token).post(url, json={"reason": "x"}
                                                    ).status_code == 403
    r = school.a.post(url, json={})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "reason"
    assert school.a.post(url, json={"reason": ""}).status_code == 422
    assert school.a.post(url, json={"reason": "a\x00b"}).status_code == 422
    assert school.a.post("/certificates/zzzzzzzzzzzzzzzzzzzz/revoke",
                         json={"reason": "x"}).status_code == 404
    assert school.a.post("/certificates/bad/revoke", json={"reason": "x"}).status_code == 404
    r = school.a.post(url, json={"reason": "Plagiarised final project"})
    assert r.status_code == 200, r.text
    assert r.json["status"] == "revoked" and r.json["revoked_reason"] == (
        "Plagiarised final project")
    assert school.a.post(url, json={"reason": "again"}).status_code == 409
    v = _public(school).get(f"/certificates/{doc['id']}/verify").json
    assert v["valid"] is False and v["status"] == "revoked" and v["revoked_at"]
    assert "reason" not in str(v)  # the reason stays with the school
    page = _public(school).get(f"/certificates/{doc['id']}/verify",
                               headers={"Accept": "text/html"}).text
    assert "revoked" in page and "Genuine" not in page
    # The learner sees it revoked; asking again does not make a new one.
    assert _cert(school, student)["status"] == "revoked"
    r = student.client.post(f"/courses/{school.course_id}/certificate")
    assert r.status_code == 200 and r.json["id"] == doc["id"]
    assert r.json["status"] == "revoked"
    listed = school.a.get("/certificates?status=revoked").json["items"]
    assert [c["id"] for c in listed] == [doc["id"]]


def test_signed_download_urls(school):
    student = school.graduate()
    doc = _cert(school, student)
    assert _fetch(school, doc["pdf_url"]).status_code == 200
    parsed = urlparse(doc["pdf_url"])
    q = {k: v[0] for k, v in parse_qs(parsed.query).items()}
    base = parsed.path
    tampered = [
        f"{base}?expires={int(q['expires']) + 1}&sig={q['sig']}",
        # the last character changed (to a different one: "0" when it was already "0" would
        # leave the signature as it was)
        f"{base}?expires={q['expires']}&sig={q['sig'][:-1]}{'1' if q['sig'][-1] == '0' else '0'}",
        f"{base.replace('/pdf', '/credential')}?expires={q['expires']}&sig={q['sig']}",
    ]
    for url in tampered:
        assert _fetch(school, url).status_code == 403, url
    assert _fetch(school, f"{base}?expires=1&sig=00").status_code == 403
    assert _fetch(school, f"{base}?expires=abc&sig=00").status_code == 422
    assert _fetch(school, base).status_code == 422
    # Another certificate's signature does not open this one.
    other = _cert(school, school.graduate("Other"))
    oq = parse_qs(urlparse(other["pdf_url"]).query)
    assert _fetch(school, f"{base}?expires={oq['expires'][0]}&sig={oq['sig'][0]}"
                  ).status_code == 403


def test_expired_download_url(school, certs, monkeypatch):
    student = school.graduate()
    doc = _cert(school, student)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3 * 86_400)
    assert _fetch(school, doc["pdf_url"]).status_code == 403


def _issuer(school):
    base = f"/certificates/issuers/{school.tenant.slug}"
    did = _public(school).get(f"{base}/did.json").json
    jwks = _public(school).get(f"{base}/jwks.json").json
    return did, jwks


def test_credential_is_an_open_badge_verifiable_with_published_keys(school):
    student = school.graduate("Дмитрий Шостакович")
    doc = _cert(school, student)
    r = _fetch(school, doc["credential_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/vc+jwt"
    did_doc, jwks = _issuer(school)
    claims = verify_jwt(r.text, jwks, did_doc["id"])
    assert claims["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    assert claims["iss"] == claims["issuer"]["id"] == did_doc["id"]
    assert claims["issuer"]["name"] == school.tenant.name
    assert claims["jti"] == claims["id"] == f"urn:learnplat:certificate:{doc['id']}"
    subject = claims["credentialSubject"]
    assert subject["achievement"]["name"] == "Введение в Python"
    assert {"type": "IdentityObject", "identityType": "name", "hashed": False,
            "identityHash": "Дмитрий Шостакович"} in subject["identifier"]
    status = claims["credentialStatus"]
    assert status["type"] == "BitstringStatusListEntry"
    assert status["statusListCredential"].endswith(
        f"/certificates/issuers/{school.tenant.slug}/status/revocation")
    # The DID document lists the signing key as an assertion method.
    kid = jwks["keys"][0]["kid"]
    assert kid.startswith(did_doc["id"] + "#") and kid in did_doc["assertionMethod"]
    assert did_doc["verificationMethod"][0]["publicKeyJwk"]["crv"] == "Ed25519"
    assert "d" not in did_doc["verificationMethod"][0]["publicKeyJwk"]
    assert all("d" not in k for k in jwks["keys"])


def test_status_list_marks_revoked(school):
    from learnplat_certificates.credential import decode_bitstring, is_set

    a, b = school.graduate("A"), school.graduate("B")
    ca, cb = _cert(school, a), _cert(school, b)
    assert school.a.post(f"/certificates/{ca['id']}/revoke",
                         json={"reason": "error"}).status_code == 200
    did_doc, jwks = _issuer(school)
    url = f"/certificates/issuers/{school.tenant.slug}/status/revocation"
    r = _public(school).get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "application/vc+jwt"
    status_vc = verify_jwt(r.text, jwks, did_doc["id"])
    bits = decode_bitstring(status_vc["credentialSubject"]["encodedList"])
    assert len(bits) * 8 >= 131_072

    def index(cert):
        token = _fetch(school, cert["credential_url"]).text
        return int(verify_jwt(token, jwks, did_doc["id"])["credentialStatus"]["statusListIndex"])

    assert is_set(bits, index(ca)) and not is_set(bits, index(cb))
    plain = _public(school).get(url, headers={"Accept": "application/json"}).json
    assert plain["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    assert _public(school).get("/certificates/issuers/no-such-school/did.json"
                               ).status_code == 404


def test_old_credentials_verify_after_rotation(school, certs, lp_runtime):
    first = _cert(school, school.graduate("Before"))
    token1 = _fetch(school, first["credential_url"]).text
    with school.in_tenant():
        new_kid = certs.keys.rotate()
    # The identity plugin's token keys rotate independently: logins keep working.
    with school.in_tenant():
        lp_runtime.service("identity").keys.rotate()
    second = _cert(school, school.graduate("After"))
    token2 = _fetch(school, second["credential_url"]).text
    did_doc, jwks = _issuer(school)
    assert len(jwks["keys"]) == 2
    one = verify_jwt(token1, jwks, did_doc["id"])
    two = verify_jwt(token2, jwks, did_doc["id"])
    assert one["jti"] != two["jti"]
    import jwt as pyjwt

    assert pyjwt.get_unverified_header(token2)["kid"].endswith("#" + new_kid)
    assert pyjwt.get_unverified_header(token1)["kid"] != pyjwt.get_unverified_header(
        token2)["kid"]
    # Credential keys are not the token keys (and the token JWKS does not list them).
    token_jwks = school.client.get("/.well-known/jwks.json").json
    assert not {k["kid"] for k in token_jwks["keys"]} & {k["kid"] for k in jwks["keys"]}


def test_a_school_with_its_own_base_url(lp_runtime, lp_app, lp_client):
    """Tenant setting certificates.base_url: the school's own address in the verification URL
    (the QR code), the did:web and the status list."""
    from learnplat_identity.testing import UserFactory

    from learnplat.testing import make_tenant

    tenant = make_tenant(lp_runtime, settings={"certificates": {
        "base_url": "https://certs.school.example:8443/api/"}})
    client = lp_client.as_(None, tenant)
    school = School(client, UserFactory(lp_runtime, tenant), lp_runtime, tenant)
    doc = _cert(school, school.graduate())
    assert doc["verify_url"] == (
        f"https://certs.school.example:8443/api/certificates/{doc['id']}/verify")
    v = _public(school).get(f"/certificates/{doc['id']}/verify").json
    assert v["issuer"]["id"] == (
        f"did:web:certs.school.example%3A8443:api:certificates:issuers:{tenant.slug}")
    assert v["status_list"] == (f"https://certs.school.example:8443/api/certificates/issuers/"
                                f"{tenant.slug}/status/revocation")


def test_verify_names_the_issuing_school_whatever_tenant_is_asked(school, lp_other_tenant,
                                                                  lp_client):
    doc = _cert(school, school.graduate())
    r = lp_client.as_(None, lp_other_tenant).get(f"/certificates/{doc['id']}/verify")
    assert r.status_code == 200 and r.json["issuer"]["slug"] == school.tenant.slug
