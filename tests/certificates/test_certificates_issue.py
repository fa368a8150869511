"""Issuing: completion queues the certificate, the task renders and signs it, exactly once."""

from __future__ import annotations

from urllib.parse import urlparse

from certhelpers import pdf_text, qr_codes

from learnplat.testing import Client


def _get(client, url):
    """Fetch a signed URL as a browser would: no tenant header, no token."""
    parsed = urlparse(url)
    return Client(client.app).get(parsed.path, query_string=parsed.query)


def test_completion_issues_certificate_with_pdf(school):
    student = school.graduate("Ada Lovelace")
    r = student.client.get(f"/courses/{school.course_id}/certificate")
    assert r.status_code == 200, r.text
    doc = r.json
    assert doc["status"] == "issued" and doc["issued_at"]
    assert doc["verify_url"] == f"http://127.0.0.1:8000/certificates/{doc['id']}/verify"
    pdf = _get(school.client, doc["pdf_url"])
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    text = pdf_text(pdf.content)
    for expected in ("Ada Lovelace", "Введение в Python", "José Müller", school.tenant.name,
                     doc["id"]):
        assert expected in text
    assert qr_codes(pdf.content) == [doc["verify_url"]]
