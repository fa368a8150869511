"""Admins: the template (colours, logo, signature), regeneration as a background job with
progress, the admin list, and the `learnplat certificates` commands."""

from __future__ import annotations

from urllib.parse import urlparse

from certhelpers import pdf_text, png, upload, verify_jwt

from learnplat.testing import Client

HEADING = "Диплом об окончании"  # noqa: RUF001  (Cyrillic on purpose)


def _pdf(school, doc):
    parsed = urlparse(doc["pdf_url"])
    r = Client(school.client.app).get(parsed.path, query_string=parsed.query)
    assert r.status_code == 200, r.text
    return r.content


def _cert(student, school):
    return student.client.get(f"/courses/{school.course_id}/certificate").json


def test_template_and_regeneration_keep_the_id(school, lp_client):
    a, b = school.graduate("Alan Turing"), school.graduate("Joan Clarke")
    before = {s.id: _cert(s, school) for s in (a, b)}
    old_pdf = _pdf(school, before[a.id])
    # Only admins touch the template; bad values are 422.
    assert lp_client.as_(school.teacher.token).get("/certificates/template").status_code == 403
    assert school.a.put("/certificates/template", json={"primary_color": "red"}
                        ).status_code == 422
    assert school.a.put("/certificates/template", json={"layout": "x"}).status_code == 422
    r = school.a.put("/certificates/template", json={
        "heading": HEADING, "primary_color": "#8a1538", "orientation": "portrait"})
    assert r.status_code == 200, r.text
    assert r.json["heading"] == HEADING and r.json["logo"] is False
    assert school.a.put("/certificates/template", json={"accent_color": "#000000"}
                        ).json["heading"] == HEADING
    # A logo that is not an image: 422 at upload time; a real one is stored.
    r = upload(school.a, "/certificates/template/logo", b"%PDF-1.4 not an image")
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "file"
    assert upload(school.a, "/certificates/template/logo", png()[:40]).status_code == 422
    assert upload(school.a, "/certificates/template/logo", b"").status_code == 422
    assert upload(school.a, "/certificates/template/logo", png(), name="other"
                  ).status_code == 422
    r = upload(school.a, "/certificates/template/logo", png())
    assert r.status_code == 201 and r.json["logo"] is True
    r = upload(school.a, "/certificates/template/signature", png((400, 100), (0, 0, 0)))
    assert r.status_code == 201 and r.json["signature"] is True
    # Issued certificates keep their PDF until regenerated.
    assert _pdf(school, _cert(a, school)) == old_pdf
    r = school.a.post(f"/courses/{school.course_id}/certificates/regenerate")
    assert r.status_code == 202, r.text
    job = school.a.get(f"/certificates/jobs/{r.json['id']}").json
    assert job["status"] == "done" and job["total"] == 2 and job["done"] == 2
    for s in (a, b):
        after = _cert(s, school)
        assert after["id"] == before[s.id]["id"]
        assert after["issued_at"] == before[s.id]["issued_at"]
        text = pdf_text(_pdf(school, after))
        assert HEADING in text
    new_pdf = _pdf(school, _cert(a, school))
    assert new_pdf != old_pdf and b"/Subtype /Image" in new_pdf  # logo and signature drawn
    # Verification and the credential still hold, under the same id.
    v = Client(school.client.app).get(f"/certificates/{before[a.id]['id']}/verify").json
    assert v["valid"] is True
    base = f"/certificates/issuers/{school.tenant.slug}"
    did = Client(school.client.app).get(f"{base}/did.json").json
    jwks = Client(school.client.app).get(f"{base}/jwks.json").json
    cred = urlparse(_cert(a, school)["credential_url"])
    token = Client(school.client.app).get(cred.path, query_string=cred.query).text
    assert verify_jwt(token, jwks, did["id"])["jti"].endswith(before[a.id]["id"])
    # Removing the logo; removing it again is 404.
    assert school.a.delete("/certificates/template/logo").status_code == 204
    assert school.a.delete("/certificates/template/logo").status_code == 404
    assert school.a.get("/certificates/template").json["logo"] is False
    # Regenerating an unknown course: 404; a job of another school: 404.
    assert school.a.post("/courses/999999/certificates/regenerate").status_code == 404
    assert school.a.get("/certificates/jobs/999999").status_code == 404


def test_template_of_another_tenant_is_separate(school, lp_users, lp_other_tenant, lp_client):
    assert school.a.put("/certificates/template", json={"heading": "Ours"}).status_code == 200
    other = lp_client.as_(lp_users.make("admin", tenant=lp_other_tenant).token,
                          tenant=lp_other_tenant)
    assert other.get("/certificates/template").json["heading"] == "Certificate of Completion"
    r = school.a.post(f"/courses/{school.course_id}/certificates/regenerate")
    assert other.get(f"/certificates/jobs/{r.json['id']}").status_code == 404
    assert other.post(f"/courses/{school.course_id}/certificates/regenerate"
                      ).status_code == 404


def test_admin_list(school, lp_client):
    a = school.graduate("Ada")
    school.graduate("Bob")
    r = school.a.get("/certificates?limit=1")
    assert r.status_code == 200, r.text
    assert len(r.json["items"]) == 1 and r.json["next_cursor"]
    r2 = school.a.get(f"/certificates?limit=1&cursor={r.json['next_cursor']}")
    assert r2.json["items"][0]["id"] != r.json["items"][0]["id"]
    mine = school.a.get(f"/certificates?user_id={a.id}").json["items"]
    assert [c["learner_name"] for c in mine] == ["Ada"]
    assert school.a.get("/certificates?status=nope").status_code == 422
    assert school.a.get("/certificates?course_id=0").status_code == 422
    assert school.a.get("/certificates?cursor=!!").status_code == 422
    assert lp_client.as_(school.teacher.token).get("/certificates").status_code == 403


def test_cli_issue_list_revoke(school, lp_cli, lp_users):
    slug = school.tenant.slug
    learner = school.learner("Λίνα")
    r = lp_cli("certificates", "issue", "--tenant", slug, "--course", str(school.course_id),
               "--user", learner.email)
    assert r.exit_code == 1 and "not completed" in r.stderr
    r = lp_cli("certificates", "issue", "--tenant", slug, "--course", str(school.course_id),
               "--user", "nobody@example.org")
    assert r.exit_code == 1 and "no user" in r.stderr
    r = lp_cli("certificates", "issue", "--tenant", slug, "--course", str(school.course_id),
               "--user", learner.email, "--force", "--json")
    assert r.exit_code == 0, r.stderr
    import json

    issued = json.loads(r.stdout)
    assert issued["outcome"] == "issued" and issued["learner_name"] == "Λίνα"
    r = lp_cli("certificates", "issue", "--tenant", slug, "--course", str(school.course_id),
               "--user", str(learner.id), "--force")
    assert r.exit_code == 0 and "unchanged" in r.stdout and issued["id"] in r.stdout
    r = lp_cli("certificates", "list", "--tenant", slug, "--json")
    assert [c["id"] for c in json.loads(r.stdout)] == [issued["id"]]
    r = lp_cli("certificates", "revoke", "--tenant", slug, issued["id"], "--reason", "typo")
    assert r.exit_code == 0, r.stderr
    r = lp_cli("certificates", "revoke", "--tenant", slug, issued["id"], "--reason", "again")
    assert r.exit_code == 1 and "already revoked" in r.stderr
    r = lp_cli("certificates", "list", "--tenant", slug, "--status", "revoked")
    assert issued["id"] in r.stdout and "revoked" in r.stdout
    r = lp_cli("certificates", "list", "--tenant", "no-such-school")
    assert r.exit_code == 1
    r = lp_cli("certificates", "regenerate", "--tenant", slug, "--course",
               str(school.course_id))
    assert r.exit_code == 0 and "0 certificates" in r.stdout
    r = lp_cli("certificates", "rotate-key", "--tenant", slug)
    assert r.exit_code == 0 and r.stdout.startswith(f"{slug}-cred-")


def test_regeneration_commits_progress_batch_by_batch(school, certs, monkeypatch):
    """What another connection sees of the job while it runs: `done` moves after each batch
    (here of one certificate), not only at the end."""
    import threading

    from learnplat_certificates.models import RegenerationJob
    from learnplat_certificates.services import CertificatesService

    from learnplat import db
    from learnplat.tenancy import tenant_context

    for name in ("A", "B", "C"):
        school.graduate(name)
    with school.in_tenant():
        job = RegenerationJob.create(course_id=school.course_id, total=3)
    seen: list[tuple[str, int]] = []
    real_issue = CertificatesService.issue

    def observe() -> None:
        with db.connection(), tenant_context(school.tenant), db.transaction(write=False):
            row = RegenerationJob.get_by_id(job.id)
            seen.append((row.status, row.done))

    def issue(self, certificate_id, regenerate=False):
        t = threading.Thread(target=observe)  # its own connection: sees only what committed
        t.start()
        t.join()
        return real_issue(self, certificate_id, regenerate)

    monkeypatch.setattr(CertificatesService, "issue", issue)
    certs.run_regeneration(school.tenant, job.id, batch=1)
    assert seen == [("running", 0), ("running", 1), ("running", 2)]
    observe()
    assert seen[-1] == ("done", 3)
