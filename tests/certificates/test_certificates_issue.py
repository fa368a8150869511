"""Issuing: completion queues the certificate, the task renders and signs it, exactly once."""

from __future__ import annotations

import threading
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
    # app.public_url empty and the test runtime's bind 127.0.0.1:8000: derived, on localhost.
    base = "http://localhost:8000/certificates/"
    assert doc["verify_url"] == f"{base}{doc['id']}/verify"
    assert doc["pdf_url"].startswith(f"{base}{doc['id']}/pdf?")
    assert doc["credential_url"].startswith(f"{base}{doc['id']}/credential?")
    pdf = _get(school.client, doc["pdf_url"])
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    text = pdf_text(pdf.content)
    for expected in ("Ada Lovelace", "Введение в Python", "José Müller", school.tenant.name,
                     doc["id"]):
        assert expected in text
    assert qr_codes(pdf.content) == [doc["verify_url"]]
    # The course page shows it to its learner (the courses plugin's extras hook), and the
    # plugin's contract gives it to other plugins.
    course = student.client.get(f"/courses/{school.course_id}").json
    assert course["certificate"] == {"id": doc["id"], "status": "issued",
                                     "verify_url": doc["verify_url"]}
    assert "certificate" not in school.a.get(f"/courses/{school.course_id}").json
    from learnplat_certificates.api import CERTIFICATES

    with school.in_tenant():
        api = school.runtime.service(CERTIFICATES)
        assert api.certificate_of(school.course_id, student.id).id == doc["id"]
        assert [c.id for c in api.certificates_of_user(student.id)] == [doc["id"]]
        assert api.certificate_of(school.course_id, school.admin.id) is None


def _issued_events(school):
    from learnplat.models import OutboxEvent

    with school.in_tenant():
        return [e.payload for e in OutboxEvent.select().where(
            (OutboxEvent.tenant_id == school.tenant.id)
            & (OutboxEvent.name == "certificate.issued.v1"))]


def _rows(school, user_id):
    from learnplat_certificates.models import Certificate, CertificateIndex

    with school.in_tenant():
        rows = list(Certificate.select().where(Certificate.user_id == user_id))
        index = [CertificateIndex.get_or_none(CertificateIndex.public_id == r.public_id)
                 for r in rows]
    return rows, index


def test_post_certificate_409_then_202_then_200(school, lp_runtime, monkeypatch):
    # Completion events wait in the outbox (no dispatch after commit) until this test says.
    monkeypatch.setattr(lp_runtime.events, "notify", lambda: None)
    student = school.learner("Grace Hopper")
    url = f"/courses/{school.course_id}/certificate"
    r = student.client.post(url)
    assert r.status_code == 409, r.text
    assert r.json["code"] == "course_not_completed"
    assert r.json["completed_modules"] == 0 and r.json["required_modules"] == 2
    assert r.headers["content-type"].startswith("application/problem+json")
    assert student.client.get(url).status_code == 404
    # Half way: still 409, saying how far.
    student.client.post(f"/progress/{school.course_id}",
                        json={"module_id": school.module_ids[0], "completed": True})
    r = student.client.post(url)
    assert r.status_code == 409 and r.json["completed_modules"] == 1
    # Completed, the event not delivered yet: the request itself queues it (202)...
    school.complete(student)
    r = student.client.post(url)
    assert r.status_code == 202, r.text
    first_id = r.json["id"]
    # ...the task ran inline after the commit, so the next ask finds it (200), same id.
    r = student.client.post(url)
    assert r.status_code == 200, r.text
    assert r.json["id"] == first_id and r.json["status"] == "issued"
    # The completion event arrives later: nothing new.
    assert lp_runtime.events.dispatch_pending() >= 1
    rows, index = _rows(school, student.id)
    assert [r.public_id for r in rows] == [first_id] and index[0] is not None
    assert [e["certificate_id"] for e in _issued_events(school)] == [first_id]


def test_pending_certificate_202_until_the_task_runs(school, lp_runtime, monkeypatch):
    """With the task not run (a worker is busy), POST and GET say pending; pdf_url is null."""
    sent = []
    monkeypatch.setattr(lp_runtime.queue, "enqueue_for_tenant",
                        lambda name, *args: sent.append((name, args)))
    student = school.learner()
    school.complete(student)
    lp_runtime.events.dispatch_pending()
    assert sent and sent[0][0] == "certificates.issue"
    url = f"/courses/{school.course_id}/certificate"
    r = student.client.post(url)
    assert r.status_code == 202 and r.json["status"] == "pending"
    r = student.client.get(url)
    assert r.status_code == 200 and r.json["pdf_url"] is None and r.json["issued_at"] is None
    # Verification knows nothing of a certificate that is not issued.
    assert school.client.as_(None).get(f"/certificates/{r.json['id']}/verify").status_code == 404


def test_duplicate_event_delivery_issues_once(school, lp_runtime):
    from learnplat_certificates.plugin import CertificatesPlugin
    from learnplat_progress.events import CourseCompleted

    from learnplat.events import EventMessage
    from learnplat.models import OutboxEvent

    student = school.learner()
    school.complete(student)
    lp_runtime.events.dispatch_pending()
    with school.in_tenant():
        event = OutboxEvent.select().where((OutboxEvent.tenant_id == school.tenant.id)
                                           & (OutboxEvent.name == "course.completed.v1")).get()
    message = EventMessage(event.id, event.name, school.tenant.id, event.payload,
                           event.created_at, 2, CourseCompleted.model_validate(event.payload))
    for _ in range(2):  # redelivered twice more, after the first delivery issued it
        with school.in_tenant():
            lp_runtime.plugin(CertificatesPlugin).on_course_completed(lp_runtime, message)
    rows, _ = _rows(school, student.id)
    assert len(rows) == 1 and rows[0].status == "issued" and rows[0].revision == 1
    assert len(_issued_events(school)) == 1


def test_two_workers_issue_once(school, certs, lp_runtime, monkeypatch):
    """Two workers take the same completion at the same moment (the event handler twice, then
    the issuing task twice), each in its own connection and transaction: one row, one PDF
    revision, one certificate.issued.v1."""
    monkeypatch.setattr(lp_runtime.queue, "enqueue_for_tenant", lambda *a, **k: None)
    student = school.learner()
    school.complete(student)
    errors: list[BaseException] = []
    results: list[object] = []

    def run(fn):
        def body():
            try:
                barrier.wait()
                with school.in_tenant():
                    results.append(fn())
            except BaseException as exc:
                errors.append(exc)
        return body

    barrier = threading.Barrier(2, timeout=30)
    threads = [threading.Thread(target=run(lambda: certs.ensure_queued(
        school.course_id, student.id)[0].id)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert results[0] == results[1]
    cert_id = results[0]
    results.clear()
    barrier = threading.Barrier(2, timeout=30)
    threads = [threading.Thread(target=run(lambda: certs.issue(cert_id))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(results) == ["issued", "unchanged"]
    rows, _ = _rows(school, student.id)
    assert len(rows) == 1 and rows[0].revision == 1
    assert len(_issued_events(school)) == 1


NAMES = ("Ελένη Παπαδοπούλου", "Дмитрий Шостакович", "Zoë Ñúñez-Łukasiewicz")


def test_the_certificate_font_has_every_glyph():
    """Text extraction alone would not notice missing glyphs (the PDF's ToUnicode map keeps
    the characters even when the font draws empty boxes): the embedded font itself must cover
    them. CI installs fonts-dejavu-core when it is missing (.ci/run)."""
    from learnplat_certificates.render import REGULAR, ensure_fonts, find_fonts
    from reportlab.pdfbase import pdfmetrics

    regular, _bold, unicode_ok = find_fonts()
    assert unicode_ok, f"no Unicode font found; using {regular}"
    assert ensure_fonts()
    face = pdfmetrics.getFont(REGULAR).face
    missing = {ch for name in NAMES for ch in name if ch != " " and ord(ch) not in
               face.charToGlyph}
    assert not missing


def test_non_latin_names_render(school):
    """Greek, Cyrillic and accented Latin names print with the embedded Unicode font."""
    for name in NAMES:
        student = school.graduate(name)
        doc = student.client.get(f"/courses/{school.course_id}/certificate").json
        text = pdf_text(_get(school.client, doc["pdf_url"]).content)
        assert name in text, text
        assert "Введение в Python" in text


def test_cannot_see_or_ask_in_another_tenant(school, lp_users, lp_other_tenant, lp_client):
    student = school.graduate()
    url = f"/courses/{school.course_id}/certificate"
    stranger = lp_users.make("student", tenant=lp_other_tenant)
    other = lp_client.as_(stranger.token, tenant=lp_other_tenant)
    assert other.get(url).status_code == 404
    assert other.post(url).status_code == 404
    other_admin = lp_client.as_(lp_users.make("admin", tenant=lp_other_tenant).token,
                                tenant=lp_other_tenant)
    assert other_admin.get("/certificates").json["items"] == []
    doc = student.client.get(url).json
    r = other_admin.post(f"/certificates/{doc['id']}/revoke", json={"reason": "x"})
    assert r.status_code == 404
    # The learner's token is refused in the other school.
    assert lp_client.as_(student.token, tenant=lp_other_tenant).get(url).status_code == 401


def test_roles_and_bad_input(school, lp_client):
    student = school.graduate()
    url = f"/courses/{school.course_id}/certificate"
    assert lp_client.as_(None).get(url).status_code == 401
    assert lp_client.as_(school.teacher.token).post(url).status_code == 403
    assert student.client.get("/courses/999999/certificate").status_code == 404
    assert student.client.post("/courses/999999/certificate").status_code == 404
    # A draft course is invisible to students.
    t = lp_client.as_(school.teacher.token)
    draft = t.post("/courses", json={"title": "Draft"}).json["id"]
    assert student.client.post(f"/courses/{draft}/certificate").status_code == 404
    # Another learner of the course, not enrolled: 409 (not started), never someone else's.
    other = school.users.make("student")
    r = lp_client.as_(other.token).post(url)
    assert r.status_code == 409 and "not started" in r.json["detail"]
    assert student.client.get("/certificates").status_code == 403
    huge = "99999999999999999999"
    assert student.client.get(f"/courses/{huge}/certificate").status_code == 404
    assert student.client.post(f"/courses/{huge}/certificate").status_code == 404
    assert school.a.post(f"/courses/{huge}/certificates/regenerate").status_code == 404
    assert school.a.get(f"/certificates/jobs/{huge}").status_code == 404
    assert school.a.get(f"/certificates?course_id={huge}").status_code == 422
