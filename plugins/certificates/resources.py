"""Falcon resources of the certificates plugin: thin, they validate (through @endpoint), call
the service and shape the answer.

Tenant-scoped: the learner's /courses/{id}/certificate and the admin routes. Not
tenant-scoped (a phone scanning the QR code, a verifier, a browser following a signed link send
no X-Tenant): /certificates/{id}/verify|pdf|credential and /certificates/issuers/{slug}/...,
which find the school from the public id or the slug themselves.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import falcon
from learnplat_courses.api import COURSES
from pydantic import BaseModel, Field

from learnplat.plugin import (
    PUBLIC,
    NotFound,
    PageQuery,
    PermissionDenied,
    TenantInfo,
    db,
    endpoint,
    multipart_file,
    paginate,
    tenant_context,
)

from .models import Certificate, RegenerationJob
from .schemas import (
    AchievementOut,
    AdminCertificateOut,
    CertificateOut,
    CertificatePage,
    CertificateQuery,
    IssuerProfileOut,
    JobOut,
    JobStatus,
    JWKSOut,
    RevokeIn,
    TemplateIn,
    TemplateOut,
    VerificationOut,
)
from .services import CertificatesService
from .templates import IMAGE_MAX_BYTES, Templates

JWT_MEDIA_TYPE = "application/vc+jwt"
MULTIPART = "multipart/form-data"


def _certificate_fields(svc: CertificatesService, row: Certificate, req: falcon.Request
                        ) -> dict[str, Any]:
    """Every URL absolute, on the certificates' public base URL (the request's own address
    only when none is known: then nothing can be issued, PublicUrlNotSet)."""
    return {"id": row.public_id, "course_id": row.course_id, "user_id": row.user_id,
            "status": row.status, "issued_at": row.issued_at,
            "pdf_url": svc.download_url(row, "pdf", req.prefix),
            "credential_url": svc.download_url(row, "credential", req.prefix),
            "verify_url": svc.verify_url(row.public_id, fallback=req.prefix),
            "revoked_at": row.revoked_at}


def certificate_out(svc: CertificatesService, row: Certificate, req: falcon.Request
                    ) -> CertificateOut:
    return CertificateOut(**_certificate_fields(svc, row, req))


def admin_out(svc: CertificatesService, row: Certificate, req: falcon.Request
              ) -> AdminCertificateOut:
    return AdminCertificateOut(**_certificate_fields(svc, row, req),
                               learner_name=row.learner_name, course_title=row.course_title,
                               revoked_reason=row.revoked_reason)


def job_out(job: RegenerationJob) -> JobOut:
    return JobOut(id=job.id, course_id=job.course_id, status=cast(JobStatus, job.status),
                  total=job.total, done=job.done, created_at=job.created_at,
                  finished_at=job.finished_at)


class _Resource:
    def __init__(self, service: CertificatesService):
        self.service = service


# -- the learner ----------------------------------------------------------------------------


class CourseCertificate(_Resource):
    @endpoint(permission="certificate.own", response=CertificateOut, errors=(409,),
              also=(202,), status=200,
              summary="Ask for one's certificate: 200 it exists, 202 queued, 409 not completed")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int
                ) -> CertificateOut:
        """Completing a course queues the certificate by itself; this asks again (idempotent:
        never a second certificate). 409 `course_not_completed` says how far the caller is."""
        outcome, row = self.service.request(req.context.principal, course_id)
        resp.status = 200 if outcome == "exists" else 202
        return certificate_out(self.service, row, req)

    @endpoint(permission="certificate.own", response=CertificateOut,
              summary="One's certificate for a course: {id, issued_at, pdf_url, verify_url}")
    def on_get(self, req: falcon.Request, resp: falcon.Response, course_id: int
               ) -> CertificateOut:
        """`status` is pending until the background task has made it (pdf_url null then);
        404 when there is none (yet)."""
        principal = req.context.principal
        self.service.runtime.service(COURSES).visible_course(course_id, principal)
        row = self.service._row(course_id, principal.user_id)
        if row is None:
            raise NotFound("no certificate for this course yet", code="no_certificate")
        return certificate_out(self.service, row, req)


# -- public, found by public id ----------------------------------------------------------------


@contextmanager
def issued(svc: CertificatesService, public_id: str) -> Iterator[Certificate]:
    """The issued (or revoked) certificate `public_id`, inside its tenant; 404 otherwise,
    malformed ids included."""
    with db.connection():
        tenant = svc.locate(public_id)
        if tenant is None:
            raise NotFound("no such certificate")
        with tenant_context(tenant), db.transaction(write=False):
            row = svc.by_public_id(public_id)
            if row is None or row.status == "pending":
                raise NotFound("no such certificate")
            yield row


def wants_html(req: falcon.Request) -> bool:
    """A browser (the QR code's reader) asks for text/html first; API clients, curl (*/*) and
    clients saying nothing get JSON."""
    accept = req.get_header("Accept") or ""
    if "text/html" not in accept:
        return False
    return req.client_prefers(["application/json", "text/html"]) == "text/html"


class Verify(_Resource):
    @endpoint(permission=PUBLIC, response=VerificationOut, errors=(404,),
              summary="Whether a certificate is genuine (JSON, or an HTML page for browsers)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, public_id: str
               ) -> VerificationOut | None:
        """Public and tenant-free: the QR code on the PDF leads here. Names the issuing
        school; a revoked certificate says so (`valid: false`, `status: revoked`). Unknown or
        malformed ids, and certificates not issued yet: 404. Content negotiation: a browser's
        `Accept: text/html` gets a small readable page."""
        resp.vary = ["Accept"]
        try:
            with issued(self.service, public_id) as row:
                doc = self.service.verification(row)
        except NotFound:
            if not wants_html(req):
                raise
            # A person who typed the id from paper gets a page, not a problem document.
            resp.status = 404
            resp.content_type = falcon.MEDIA_HTML
            resp.text = NOT_FOUND_PAGE
            return None
        resp.cache_control = ["no-cache"]
        if wants_html(req):
            resp.content_type = falcon.MEDIA_HTML
            resp.text = verification_page(doc)
            return None
        return doc


def verification_page(doc: VerificationOut) -> str:
    e = html.escape
    issued_on = doc.issued_at.strftime("%d %B %Y") if doc.issued_at else ""
    if doc.valid:
        verdict = '<p class="ok">&#10004; Genuine certificate</p>'
    else:
        when = doc.revoked_at.strftime("%d %B %Y") if doc.revoked_at else ""
        verdict = f'<p class="bad">&#10008; This certificate was revoked on {e(when)}.</p>'
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Certificate {e(doc.id)}: {e(doc.issuer.name)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;
color:#222}}.ok{{color:#11703a;font-weight:bold;font-size:1.3rem}}.bad{{color:#a4161a;
font-weight:bold;font-size:1.3rem}}dt{{color:#666;margin-top:.8rem}}dd{{margin:0;
font-size:1.1rem}}code{{font-size:.9rem}}</style></head>
<body><h1>Certificate verification</h1>{verdict}
<dl><dt>Awarded to</dt><dd>{e(doc.learner.name)}</dd>
<dt>Course</dt><dd>{e(doc.course.title)}</dd>
<dt>Instructor</dt><dd>{e(doc.instructor.name)}</dd>
<dt>Issued by</dt><dd>{e(doc.issuer.name)}</dd>
<dt>Date of issue</dt><dd>{e(issued_on)}</dd>
<dt>Certificate id</dt><dd><code>{e(doc.id)}</code></dd></dl>
<p><small>Issuer: <code>{e(doc.issuer.id)}</code></small></p></body></html>
"""


NOT_FOUND_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Certificate not found</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;
color:#222}.bad{color:#a4161a;font-weight:bold;font-size:1.3rem}</style></head>
<body><h1>Certificate verification</h1>
<p class="bad">&#10008; No certificate has this id.</p>
<p>Check the id printed under the QR code, or ask the school that issued it.</p></body></html>
"""


class DownloadQuery(BaseModel):
    expires: int = Field(ge=0, le=2**40)
    sig: str = Field(min_length=1, max_length=100, pattern=r"^[0-9a-f]+$")


class _Download(_Resource):
    kind = ""

    def _check(self, public_id: str, query: DownloadQuery) -> None:
        if not self.service.check_signature(public_id, self.kind, query.expires, query.sig):
            raise PermissionDenied("this link is invalid or has expired; ask for a new one",
                                   code="invalid_signature")


class CertificatePdf(_Download):
    kind = "pdf"

    @endpoint(permission=PUBLIC, query=DownloadQuery, response_content_type="application/pdf",
              errors=(403, 404),
              summary="The certificate PDF (the signed pdf_url; no header needed)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, public_id: str, *,
               query: DownloadQuery) -> None:
        """403 when the signature does not match or has expired."""
        self._check(public_id, query)
        with issued(self.service, public_id) as row:
            storage = self.service.runtime.storage
            stored = storage.stat(row.pdf_key)
            data = b"".join(storage.open(row.pdf_key))
        resp.content_type = "application/pdf"
        resp.content_length = stored.size
        resp.downloadable_as = f"certificate-{public_id}.pdf"
        resp.cache_control = ["private", "max-age=300"]
        resp.data = data


class CertificateCredential(_Download):
    kind = "credential"

    @endpoint(permission=PUBLIC, query=DownloadQuery, response_content_type=JWT_MEDIA_TYPE,
              errors=(403, 404),
              summary="The Open Badges 3.0 credential as a VC-JWT (the signed credential_url)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, public_id: str, *,
               query: DownloadQuery) -> None:
        self._check(public_id, query)
        with issued(self.service, public_id) as row:
            token = row.credential
        resp.content_type = JWT_MEDIA_TYPE
        resp.downloadable_as = f"certificate-{public_id}.jwt"
        resp.cache_control = ["private", "max-age=300"]
        resp.text = token


# -- public, per issuing school -------------------------------------------------------------------


@contextmanager
def issuer_tenant(svc: CertificatesService, slug: str) -> Iterator[TenantInfo]:
    with db.connection():
        tenant = svc.runtime.tenants.get_by_slug(slug.lower()) if len(slug) <= 63 else None
        if tenant is None or not tenant.enabled or not tenant.plugin_enabled("certificates"):
            raise NotFound("no such issuer")
        with tenant_context(tenant), db.transaction(write=False):
            yield tenant


def etag_matches(req: falcon.Request, etag: str) -> bool:
    """If-None-Match with the weak comparison RFC 9110 13.1.2 prescribes for it."""
    header = req.get_header("If-None-Match")
    if not header:
        return False
    if header.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    return any(t.strip().removeprefix("W/") == opaque for t in header.split(","))


ACHIEVEMENT_ID = re.compile(r"^course-([1-9][0-9]{0,9})$")


class IssuerProfile(_Resource):
    @endpoint(permission=PUBLIC, response=IssuerProfileOut, errors=(404,),
              summary="The school as an Open Badges 3.0 issuer Profile (the credentials' "
                      "issuer.url; an HTML page for browsers)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, slug: str
               ) -> IssuerProfileOut | None:
        """Public and tenant-free, like the DID document. A browser's `Accept: text/html`
        gets a small page."""
        with issuer_tenant(self.service, slug):
            doc = self.service.issuer_profile()
        return json_or_page(req, resp, doc, issuer_page)


class IssuerAchievement(_Resource):
    @endpoint(permission=PUBLIC, response=AchievementOut, errors=(404,),
              summary="A course's Open Badges 3.0 Achievement (the credentials' "
                      "achievement.id; an HTML page for browsers)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, slug: str,
               achievement_id: str) -> AchievementOut | None:
        """`achievement_id` is `course-{courseId}`. 404 unless the school has issued a
        certificate of that course (a course nobody completed keeps its title private)."""
        match = ACHIEVEMENT_ID.match(achievement_id)
        if match is None or int(match.group(1)) >= 2**31:
            raise NotFound("no such achievement")
        with issuer_tenant(self.service, slug):
            doc = self.service.achievement(int(match.group(1)))
        return json_or_page(req, resp, doc, achievement_page)


Doc = TypeVar("Doc", IssuerProfileOut, AchievementOut)


def json_or_page(req: falcon.Request, resp: falcon.Response, doc: Doc,
                 page: Callable[[Doc], str]) -> Doc | None:
    """A public document as JSON, or as `page(doc)` for a browser (Accept: text/html);
    cacheable for five minutes either way."""
    resp.vary = ["Accept"]
    resp.cache_control = ["public", "max-age=300"]
    if wants_html(req):
        resp.content_type = falcon.MEDIA_HTML
        resp.text = page(doc)
        return None
    return doc


_PAGE_STYLE = ("body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;"
               "padding:0 1rem;color:#222}dt{color:#666;margin-top:.8rem}dd{margin:0;"
               "font-size:1.1rem}code{font-size:.9rem}")


def _page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{_PAGE_STYLE}</style></head>
<body>{body}</body></html>
"""


def issuer_page(doc: IssuerProfileOut) -> str:
    e = html.escape
    return _page(doc.name, f"""<h1>{e(doc.name)}</h1>
<p>Issues certificates of completion as Open Badges 3.0 credentials.</p>
<dl><dt>Issuer id (did:web)</dt><dd><code>{e(doc.id)}</code></dd>
<dt>Published keys and revocations</dt><dd><a href="{e(doc.url)}/did.json">DID document</a>,
<a href="{e(doc.url)}/jwks.json">JWKS</a>,
<a href="{e(doc.url)}/status/revocation">revocation list</a></dd></dl>""")


def achievement_page(doc: AchievementOut) -> str:
    e = html.escape
    return _page(f"{doc.name}: {doc.creator.name}", f"""<h1>{e(doc.name)}</h1>
<p>{e(doc.description)}</p>
<dl><dt>Criteria</dt><dd>{e(doc.criteria.narrative)}</dd>
<dt>Issued by</dt><dd><a href="{e(doc.creator.url)}">{e(doc.creator.name)}</a>
</dd></dl>""")


class IssuerDid(_Resource):
    @endpoint(permission=PUBLIC, response=dict[str, Any], errors=(404,),
              summary="The school's did:web DID document (its credential keys, old ones too)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, slug: str) -> Any:
        with issuer_tenant(self.service, slug):
            doc = self.service.did_document()
        resp.cache_control = ["public", "max-age=300"]
        return doc


class IssuerJwks(_Resource):
    @endpoint(permission=PUBLIC, response=JWKSOut, errors=(404,),
              summary="The school's credential-signing public keys (JWKS), retired ones too")
    def on_get(self, req: falcon.Request, resp: falcon.Response, slug: str) -> JWKSOut:
        with issuer_tenant(self.service, slug):
            keys = self.service.jwks()
        resp.cache_control = ["public", "max-age=300"]
        return JWKSOut(keys=keys["keys"])


class IssuerStatusList(_Resource):
    @endpoint(permission=PUBLIC, response_content_type=JWT_MEDIA_TYPE, errors=(404,),
              also=(304,),
              summary="The revocation status list (BitstringStatusListCredential, VC-JWT)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, slug: str) -> Any:
        """A VC-JWT by default (what credentialStatus.statusListCredential points at); with
        `Accept: application/json`, the unsigned credential as JSON. The same signed list is
        served until a revocation changes it, with an ETag (If-None-Match: 304)."""
        with issuer_tenant(self.service, slug):
            listed = self.service.status_list()
        accept = req.get_header("Accept") or ""
        as_json = "application/json" in accept and JWT_MEDIA_TYPE not in accept
        resp.vary = ["Accept"]
        resp.cache_control = ["public", "max-age=60"]
        # Weak: every process signs the same list, but equal bytes also need the same zlib.
        etag = f'W/"{listed.etag}-{"json" if as_json else "jwt"}"'
        resp.set_header("ETag", etag)
        if etag_matches(req, etag):
            resp.status = falcon.HTTP_304
            return None
        if as_json:
            return listed.credential
        resp.content_type = JWT_MEDIA_TYPE
        resp.text = listed.token
        return None


# -- admins -------------------------------------------------------------------------------------


class CertificateCollection(_Resource):
    @endpoint(permission="certificate.manage", query=CertificateQuery, response=CertificatePage,
              summary="The school's certificates, newest first (admin)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, *,
               query: CertificateQuery) -> CertificatePage:
        q = Certificate.select()
        if query.course_id is not None:
            q = q.where(Certificate.course_id == query.course_id)
        if query.user_id is not None:
            q = q.where(Certificate.user_id == query.user_id)
        if query.status is not None:
            q = q.where(Certificate.status == query.status)
        page = PageQuery(limit=query.limit, cursor=query.cursor)
        return CertificatePage(**paginate(q, [Certificate.id.desc()], page,
                                          lambda row: admin_out(self.service, row, req)))


class RevokeResource(_Resource):
    @endpoint(permission="certificate.manage", body=RevokeIn, response=AdminCertificateOut,
              errors=(409,), summary="Revoke a certificate with a reason (admin)")
    def on_post(self, req: falcon.Request, resp: falcon.Response, public_id: str, *,
                body: RevokeIn) -> AdminCertificateOut:
        """Verification then says revoked, and the status list has its bit set. 409 when it
        is already revoked or not issued yet."""
        row = self.service.revoke(public_id, body.reason, req.context.principal.user_id)
        return admin_out(self.service, row, req)


class RegenerateResource(_Resource):
    @endpoint(permission="certificate.manage", response=JobOut, status=202,
              summary="Re-render a course's issued certificates (same ids) in the background")
    def on_post(self, req: falcon.Request, resp: falcon.Response, course_id: int) -> JobOut:
        """After a template change. Follow the job at /certificates/jobs/{id}."""
        if self.service.runtime.service(COURSES).get_course(course_id) is None:
            raise NotFound("no such course")
        job = self.service.start_regeneration(course_id, req.context.principal.user_id)
        return job_out(job)


class JobResource(_Resource):
    @endpoint(permission="certificate.manage", response=JobOut,
              summary="A regeneration job's progress (admin)")
    def on_get(self, req: falcon.Request, resp: falcon.Response, job_id: int) -> JobOut:
        job = RegenerationJob.get_or_none(RegenerationJob.id == job_id) \
            if 0 < job_id < 2**31 else None
        if job is None:
            raise NotFound("no such job")
        return job_out(job)



class TemplateResource:
    def __init__(self, templates: Templates):
        self.templates = templates

    @endpoint(permission="certificate.manage", response=TemplateOut,
              summary="The school's certificate template (admin)")
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> TemplateOut:
        return self.templates.describe()

    @endpoint(permission="certificate.manage", body=TemplateIn, response=TemplateOut,
              summary="Change the template's layout, wording or colours (admin)")
    def on_put(self, req: falcon.Request, resp: falcon.Response, *, body: TemplateIn
               ) -> TemplateOut:
        """Absent fields stay. Certificates already issued keep their PDF until a course's
        certificates are regenerated (POST /courses/{id}/certificates/regenerate)."""
        return self.templates.update(body.model_dump(exclude_none=True))


class TemplateImage:
    def __init__(self, templates: Templates, which: str):
        self.templates = templates
        self.which = which

    @endpoint(permission="certificate.manage", content_type=MULTIPART,
              max_body=IMAGE_MAX_BYTES + 64 * 1024,
              multipart_fields={"file": "file: image/png, image/jpeg, image/webp"},
              response=TemplateOut, status=201, errors=(413, 415, 422),
              summary="Upload the template's logo or signature image: multipart, part `file`")
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> TemplateOut:
        """PNG, JPEG or WebP, at most 2 MB and 4000 pixels a side; anything else that is not
        such an image: 422."""
        # The whole body first: one cut before its closing boundary must not replace the image.
        with multipart_file(req, "file", "send the image in a multipart part named 'file'") as fp:
            return self.templates.set_image(self.which, fp)

    @endpoint(permission="certificate.manage", status=204,
              summary="Remove the template's logo or signature image")
    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.templates.remove_image(self.which)
