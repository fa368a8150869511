"""A student's app downloads their certificate as it calls every route: with the school named
(X-Tenant) and their token (issue 24: on PostgreSQL + Redis this answered 500, as the route's
own connection block emptied the transaction stack of the request's unit of work). The
requests run on one server thread (learnplat.testing.ServedApp), with the tenant cache on as
in production, and the thread's next requests must be served."""

from __future__ import annotations

from urllib.parse import urlparse


def test_the_student_downloads_their_pdf_and_credential_with_their_apps_headers(
        school, lp_tenant_cache):
    student = school.graduate("Ada Lovelace")
    doc = student.client.get(f"/courses/{school.course_id}/certificate").json
    for _ in range(3):  # the same thread serves each, one after the other
        for url in (doc["pdf_url"], doc["credential_url"], doc["verify_url"]):
            parsed = urlparse(url)
            r = student.client.get(parsed.path, query_string=parsed.query)
            assert r.status_code == 200, (url, r.text[:300])
        pdf = student.client.get(urlparse(doc["pdf_url"]).path,
                                 query_string=urlparse(doc["pdf_url"]).query)
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")
        assert student.client.get(f"/courses/{school.course_id}/certificate").status_code == 200
        assert student.client.get("/readyz").status_code == 200
