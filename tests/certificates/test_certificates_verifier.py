"""Certificates as a verifier sees them (issue 24, items 4-7), with code nobody here wrote:
stock JOSE libraries (joserfc, jwcrypto) verify a credential from the published JWKS alone and
from the did:web document alone; `sub` is the subject's stable opaque id; the issuer profile and
the achievement the credential names are served; the status list is the same signed list until
a revocation changes it."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any
from urllib.parse import urlparse

import jwt as pyjwt
import pytest
from certhelpers import (
    School,
    did_document_keys,
    did_web_path,
    verify_with_joserfc,
    verify_with_jwcrypto,
)

from learnplat.testing import Client

VERIFIERS = {"joserfc": verify_with_joserfc, "jwcrypto": verify_with_jwcrypto}


def _public(school: School) -> Client:
    """No tenant, no token: a verifier or a wallet following the credential's links."""
    return Client(school.client.app)


def _get(school: School, url: str, **kw: Any) -> Any:
    parsed = urlparse(url)
    return _public(school).get(parsed.path, query_string=parsed.query, **kw)


def _token(school: School, student: Any, course_id: int | None = None) -> str:
    doc = student.client.get(f"/courses/{course_id or school.course_id}/certificate").json
    r = _get(school, doc["credential_url"])
    assert r.status_code == 200, r.text
    return str(r.text)


def _jwks(school: School) -> dict[str, Any]:
    r = _public(school).get(f"/certificates/issuers/{school.tenant.slug}/jwks.json")
    assert r.status_code == 200, r.text
    return dict(r.json)


# -- 4. a stock JOSE library, the published keys, and nothing else ---------------------------


@pytest.mark.parametrize("library", sorted(VERIFIERS))
def test_a_stock_jose_library_verifies_from_the_jwks_alone(school, certs, library):
    """The header's kid is a DID URL; the JWKS carries the same string as kid, so the library
    picks the key itself, old keys included after a rotation."""
    verify = VERIFIERS[library]
    before = _token(school, school.graduate("Before Rotation"))
    with school.in_tenant():
        certs.keys.rotate()
    after = _token(school, school.graduate("After Rotation"))
    jwks = _jwks(school)
    assert len(jwks["keys"]) == 2
    for token in (before, after):
        claims = verify(token, jwks)
        kid = pyjwt.get_unverified_header(token)["kid"]
        assert kid in {k["kid"] for k in jwks["keys"]}
        assert kid.startswith(claims["iss"] + "#")
        assert claims["iss"] == claims["issuer"]["id"]
    assert pyjwt.get_unverified_header(before)["kid"] != pyjwt.get_unverified_header(
        after)["kid"]


@pytest.mark.parametrize("library", sorted(VERIFIERS))
def test_a_stock_jose_library_verifies_from_the_did_document_alone(school, certs, library):
    """did:web resolution of `iss`, then the document's assertion methods' publicKeyJwk as
    they are: the header's kid is a method id listed in assertionMethod."""
    verify = VERIFIERS[library]
    old = _token(school, school.graduate("Old Key"))
    with school.in_tenant():
        certs.keys.rotate()
    new = _token(school, school.graduate("New Key"))
    for token in (old, new):
        did = pyjwt.decode(token, options={"verify_signature": False})["iss"]
        r = _public(school).get(did_web_path(did))
        assert r.status_code == 200, (did, r.text)
        doc = r.json
        assert doc["id"] == did
        kid = pyjwt.get_unverified_header(token)["kid"]
        assert kid in doc["assertionMethod"]
        method = next(m for m in doc["verificationMethod"] if m["id"] == kid)
        assert method["controller"] == did and method["publicKeyJwk"]["kid"] == kid
        assert "d" not in method["publicKeyJwk"]
        claims = verify(token, did_document_keys(doc))
        assert claims["iss"] == did


# -- 5. sub: the subject's stable, opaque id ----------------------------------------------------


def test_sub_is_the_subjects_stable_opaque_id(school, certs):
    ada = school.graduate("Ada Lovelace")
    token = _token(school, ada)
    claims = verify_with_jwcrypto(token, _jwks(school))
    subject = claims["credentialSubject"]
    assert claims["sub"] == subject["id"]
    assert subject["id"].startswith("urn:uuid:")
    assert uuid.UUID(subject["id"].removeprefix("urn:uuid:")).version == 8
    # No e-mail address in clear anywhere in the credential (only its salted hash).
    payload = json.dumps(claims, ensure_ascii=False)
    assert ada.email not in payload, payload
    # Stable: the same learner's certificate of another course names the same subject...
    cid, mids = school.course("Second Course", 1)
    assert ada.client.post(f"/courses/{cid}/enroll").status_code == 201
    school.complete(ada, cid, mids)
    school.runtime.events.dispatch_pending()
    second = pyjwt.decode(_token(school, ada, cid), options={"verify_signature": False})
    assert second["sub"] == claims["sub"]
    # ...another learner another one.
    other = pyjwt.decode(_token(school, school.graduate("Grace Hopper")),
                         options={"verify_signature": False})
    assert other["sub"] != claims["sub"]
    # Keyed per school: the same user id in another school would not be the same subject.
    with school.in_tenant():
        assert certs.subject_id(ada.id) == claims["sub"]
    assert certs.subject_id(ada.id, tenant=_OtherTenant(school.tenant.id + 1)) != claims["sub"]


class _OtherTenant:
    """Only what subject_id reads of a tenant."""

    def __init__(self, tenant_id: int):
        self.id = tenant_id


# -- 6. issuer.url and achievement.id answer -----------------------------------------------------


def test_issuer_url_and_achievement_id_are_served(school):
    title = "Kurs <b>& mehr</b>"
    cid, mids = school.course(title, 1)
    student = school.learner("Lin", course_id=cid)
    school.complete(student, cid, mids)
    school.runtime.events.dispatch_pending()
    claims = pyjwt.decode(_token(school, student, cid), options={"verify_signature": False})
    issuer, achievement = claims["issuer"], claims["credentialSubject"]["achievement"]

    r = _get(school, issuer["url"])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    profile = r.json
    assert profile["id"] == issuer["id"] == claims["iss"]
    assert profile["type"] == ["Profile"] and profile["name"] == school.tenant.name
    assert profile["url"] == issuer["url"]
    assert "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json" in profile["@context"]

    r = _get(school, achievement["id"])
    assert r.status_code == 200, r.text
    served = r.json
    # What the credential embeds is what its id serves.
    assert {k: served[k] for k in achievement} == achievement
    assert served["name"] == title and served["creator"]["id"] == claims["iss"]

    browser = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    for url, expected in ((issuer["url"], school.tenant.name),
                          (achievement["id"], "Kurs &lt;b&gt;&amp; mehr&lt;/b&gt;")):
        r = _get(school, url, headers=browser)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert expected in r.text and "<b>&" not in r.text
        assert "Accept" in r.headers.get("vary", "")


@pytest.mark.parametrize("achievement_id", [
    "course-0", "course-abc", "course-", "course-01", "course-99999999999", "x", "%00",
    "course-2147483648", "a" * 300])
def test_bad_achievement_ids_are_404_problems(school, achievement_id):
    school.graduate()
    r = _public(school).get(
        f"/certificates/issuers/{school.tenant.slug}/achievements/{achievement_id}")
    assert r.status_code == 404, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json["code"] == "not_found"


def test_a_course_without_certificates_shows_nothing(school):
    """A course nobody has a certificate of (here: a fresh, unpublished one) keeps its title
    private; an unknown school answers 404 for both routes."""
    school.graduate()
    draft = school.client.as_(school.teacher.token).post(
        "/courses", json={"title": "Secret Draft"}).json["id"]
    base = f"/certificates/issuers/{school.tenant.slug}"
    r = _public(school).get(f"{base}/achievements/course-{draft}")
    assert r.status_code == 404 and "Secret Draft" not in r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    for path in ("/certificates/issuers/no-such-school",
                 f"/certificates/issuers/no-such-school/achievements/course-{school.course_id}",
                 "/certificates/issuers/" + "a" * 64):
        r = _public(school).get(path)
        assert r.status_code == 404, (path, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")


def test_another_schools_slug_shows_nothing_of_this_school(school, lp_other_tenant):
    """B's slug with A's course id: 404; B's profile names B only."""
    school.graduate()
    other = f"/certificates/issuers/{lp_other_tenant.slug}"
    r = _public(school).get(f"{other}/achievements/course-{school.course_id}")
    assert r.status_code == 404, r.text
    assert school.title not in r.text and school.tenant.slug not in r.text
    r = _public(school).get(other)
    assert r.status_code == 200, r.text
    assert r.json["name"] == lp_other_tenant.name
    assert school.tenant.slug not in r.text and school.tenant.name not in r.text
    # A school's own request (X-Tenant: B) changes nothing: these routes are tenant-free.
    r = school.client.as_(None, lp_other_tenant).get(
        f"/certificates/issuers/{school.tenant.slug}/achievements/course-{school.course_id}")
    assert r.status_code == 200 and r.json["name"] == school.title


def test_the_new_routes_are_in_the_openapi_document(lp_runtime):
    from learnplat.http.openapi import build_document

    paths = build_document(lp_runtime)["paths"]
    for path in ("/certificates/issuers/{slug}",
                 "/certificates/issuers/{slug}/achievements/{achievement_id}"):
        get = paths[path]["get"]
        assert "404" in get["responses"] and "200" in get["responses"]
        assert not get.get("security"), path  # public
    status = paths["/certificates/issuers/{slug}/status/revocation"]["get"]["responses"]
    assert "304" in status


# -- 7. the status list: the same signed list until a revocation ---------------------------------


def _status(school: School, **headers: str) -> Any:
    return _public(school).get(f"/certificates/issuers/{school.tenant.slug}/status/revocation",
                               headers=headers)


def test_the_status_list_is_the_same_signed_list_until_a_revocation(school, lp_runtime,
                                                                   monkeypatch):
    from learnplat_certificates import services
    from learnplat_certificates.credential import decode_bitstring, is_set
    from learnplat_certificates.services import CertificatesService

    a, b = school.graduate("A"), school.graduate("B")
    first = _status(school)
    assert first.status_code == 200 and first.headers["content-type"] == "application/vc+jwt"
    etag = first.headers["etag"]
    assert etag.startswith('W/"')
    # Seconds later (the clock moved): the very same bytes and version.
    real = services.utcnow
    monkeypatch.setattr(services, "utcnow", lambda: real() + dt.timedelta(seconds=7))
    again = _status(school)
    assert again.text == first.text and again.headers["etag"] == etag
    # A client that has it is told so, with nothing to download.
    cached = _status(school, **{"If-None-Match": etag})
    assert cached.status_code == 304 and cached.text == ""
    assert cached.headers["etag"] == etag
    assert _status(school, **{"If-None-Match": 'W/"other", ' + etag}).status_code == 304
    assert _status(school, **{"If-None-Match": 'W/"other"'}).status_code == 200
    # The JSON representation is another representation: another ETag.
    plain = _status(school, Accept="application/json")
    assert plain.headers["etag"] != etag and "Accept" in plain.headers.get("vary", "")
    # Another process (fresh caches: signing key, signed lists) signs the same bytes.
    other_process = CertificatesService(lp_runtime)
    with school.in_tenant():
        listed = other_process.status_list()
    assert listed.token == first.text and f'W/"{listed.etag}-jwt"' == etag
    monkeypatch.setattr(services, "utcnow", real)

    doc_a = a.client.get(f"/courses/{school.course_id}/certificate").json
    assert school.a.post(f"/certificates/{doc_a['id']}/revoke",
                         json={"reason": "error"}).status_code == 200
    changed = _status(school, **{"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    claims = verify_with_joserfc(changed.text, _jwks(school))
    old_claims = verify_with_joserfc(first.text, _jwks(school))
    assert claims["validFrom"] >= old_claims["validFrom"]  # (whole seconds)
    revoked_at = _public(school).get(f"/certificates/{doc_a['id']}/verify").json["revoked_at"]
    assert claims["validFrom"] == dt.datetime.fromisoformat(revoked_at).replace(
        microsecond=0).isoformat().replace("+00:00", "Z")
    bits = decode_bitstring(claims["credentialSubject"]["encodedList"])
    index_a = int(pyjwt.decode(_token(school, a), options={"verify_signature": False})
                  ["credentialStatus"]["statusListIndex"])
    index_b = int(pyjwt.decode(_token(school, b), options={"verify_signature": False})
                  ["credentialStatus"]["statusListIndex"])
    assert is_set(bits, index_a) and not is_set(bits, index_b)
    # ...and the other process sees the change at once (nothing cached to invalidate there).
    with school.in_tenant():
        assert other_process.status_list().token == changed.text
    # A new certificate (its bit not set, the list not grown) leaves the list as it is.
    school.graduate("C")
    assert _status(school).text == changed.text


@pytest.mark.e2e
def test_server_processes_serve_the_same_list_as_this_one(school, lp_live_server):
    """gunicorn (two worker processes, on the test database: PostgreSQL + Redis in CI) and this
    process serve byte-identical lists with one ETag, and both follow a revocation made here
    with nothing shared but the database."""
    import requests

    student = school.graduate("Across Processes")
    url = f"{lp_live_server}/certificates/issuers/{school.tenant.slug}/status/revocation"

    def served() -> set[tuple[str, str]]:
        # A new connection each time: gunicorn's workers take turns accepting them.
        answers = set()
        for _ in range(8):
            r = requests.get(url, timeout=10, headers={"Connection": "close"})
            assert r.status_code == 200, r.text
            answers.add((r.text, r.headers["etag"]))
        return answers

    here = _status(school)
    assert served() == {(here.text, here.headers["etag"])}
    doc = student.client.get(f"/courses/{school.course_id}/certificate").json
    assert school.a.post(f"/certificates/{doc['id']}/revoke",
                         json={"reason": "test"}).status_code == 200
    changed = _status(school)
    assert changed.headers["etag"] != here.headers["etag"]
    assert served() == {(changed.text, changed.headers["etag"])}
    r = requests.get(url, timeout=10, headers={"If-None-Match": changed.headers["etag"]})
    assert r.status_code == 304
