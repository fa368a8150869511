"""Domain logic of certificates: requesting, issuing (the task body), revoking, verifying,
signed download URLs, the status list and course-wide regeneration. No Falcon here."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import peewee
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from learnplat_courses.api import COURSES, LEARNER_GENERATION
from learnplat_identity.api import IDENTITY
from learnplat_progress.api import PROGRESS

from learnplat.plugin import (
    Conflict,
    LearnplatError,
    NotFound,
    Principal,
    TenantInfo,
    bump_generation,
    current_tenant,
    db,
    tenant_context,
    utcnow,
)

from .api import CertificateInfo, CertificateStatus
from .credential import (
    OB_CONTEXT,
    STATUS_LIST_MIN_BITS,
    VC_CONTEXT,
    CredentialFacts,
    Issuer,
    achievement,
    build_credential,
    did_document,
    did_web_problem,
    issuer_profile,
    sign,
    status_list_credential,
    subject_id,
)
from .events import CertificateIssued, CertificateRevoked
from .keys import credential_keys
from .models import Certificate, CertificateIndex, CertificateTemplate, RegenerationJob
from .render import CertificateContent, Template, render_pdf
from .schemas import (
    AchievementOut,
    CourseRef,
    IssuerOut,
    IssuerProfileOut,
    Party,
    VerificationOut,
    VerifiedStatus,
)
from .settings import CertificatesSettings

if TYPE_CHECKING:
    from learnplat.plugin import Runtime

log = logging.getLogger(__name__)

ISSUE_TASK = "certificates.issue"
REQUEUE_TASK = "certificates.requeue_pending"
REGENERATE_TASK = "certificates.regenerate_course"
# Public ids: 20 characters of Crockford's base32 (no i, l, o, u: nothing to misread when
# typed from paper), 100 random bits.
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
PUBLIC_ID = re.compile(r"^[0-9a-hjkmnp-tv-z]{20}$")
DOWNLOAD_KINDS = ("pdf", "credential")


def _aware(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class PublicUrlNotSet(LearnplatError):
    """No public base URL to print on certificates and sign into credentials (or one a did:web
    cannot be made of): nothing is issued until it is set. 503: the server's configuration,
    not the request, is what is wrong."""

    status, code, title = 503, "public_url_not_set", "The public URL of the API is not set"


@dataclass(frozen=True)
class StatusList:
    """The signed revocation list and its version: `etag` is the same in every process for the
    same revocations and key (the list is signed deterministically), and changes with them."""

    etag: str
    credential: dict[str, Any]
    token: str


def new_public_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(20))


def valid_public_id(value: str) -> bool:
    return bool(PUBLIC_ID.match(value or ""))


# Asked on every course page view (learnplat.db.Prepared: SQL generated once).
_ROW = db.Prepared(lambda course_id, user_id: Certificate.select().where(
    (Certificate.course_id == course_id) & (Certificate.user_id == user_id)).limit(1))


class CertificatesService:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.keys = credential_keys(runtime.secret_keys)
        self._images: dict[str, bytes] = {}
        # Download links are signed with app.secret_key and checked against it and each of
        # app.old_secret_keys, so links handed out before a rotation work until they expire.
        self._url_keys = [HKDF(algorithm=hashes.SHA256(), length=32, salt=b"learnplat-keys",
                               info=b"certificates-download-urls").derive(secret)
                          for secret in runtime.secret_keys]
        # Always the current secret: after a rotation, credentials issued from then on name
        # their learner with another subject id (docs/certificates.md).
        self._subject_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"learnplat-keys",
                                 info=b"certificates-subject-ids").derive(runtime.secret_key)
        # Signed status lists by version: signing (and gzip) once per change and process.
        self._lists: dict[tuple[int, str], StatusList] = {}
        self._lists_lock = threading.Lock()

    @property
    def settings(self) -> CertificatesSettings:
        return self.runtime.settings_of(CertificatesSettings)

    # -- the contract (CertificatesAPI) -------------------------------------------------------

    def certificate_of(self, course_id: int, user_id: int) -> CertificateInfo | None:
        row = self._row(course_id, user_id)
        return self.info(row) if row else None

    def certificates_of_user(self, user_id: int) -> list[CertificateInfo]:
        rows = Certificate.select().where(Certificate.user_id == user_id).order_by(
            Certificate.id.desc())
        return [self.info(r) for r in rows]

    def _learner_changed(self, row: Certificate) -> None:
        """The learner's course page shows their certificate's id and status
        (course_detail_extras): every change to either passes here."""
        bump_generation(self.runtime, LEARNER_GENERATION, user_id=row.user_id)

    def info(self, row: Certificate) -> CertificateInfo:
        # No request to take an address from: a path when no public URL is known (then
        # nothing can be issued anyway, PublicUrlNotSet).
        return CertificateInfo(id=row.public_id, course_id=row.course_id,
                               user_id=row.user_id,
                               status=cast(CertificateStatus, row.status),
                               issued_at=row.issued_at, revoked_at=row.revoked_at,
                               verify_url=self.verify_url(row.public_id, fallback=""))

    # -- addresses ----------------------------------------------------------------------------

    def public_base(self, tenant: TenantInfo | None = None) -> str:
        """The base of every certificate URL, "" when unknown: the school's setting
        certificates.base_url, else certificates.public_base_url, else the API's public URL
        (app.public_url, or derived from a loopback bind: Settings.public_url_in_force)."""
        tenant = tenant or current_tenant()
        own = tenant.setting("certificates.base_url")
        if own:
            return str(own).rstrip("/")
        return (self.settings.public_base_url
                or self.runtime.settings.public_url_in_force().url)

    def base_url(self, tenant: TenantInfo | None = None) -> str:
        """public_base(), or PublicUrlNotSet naming the settings to set."""
        base = self.public_base(tenant)
        if not base:
            why = self.runtime.settings.public_url_in_force().source
            raise PublicUrlNotSet(
                "certificates need the address the API is reached at (it is printed in QR "
                f"codes and signed into credentials), and it is {why}; or set "
                "certificates.public_base_url, or the school's setting certificates.base_url")
        return base

    def issuing_base(self, tenant: TenantInfo | None = None) -> str:
        """base_url(), also refused when a did:web cannot be made of it (an IP address):
        checked before anything is printed or signed."""
        base = self.base_url(tenant)
        problem = did_web_problem(base)
        if problem:
            raise PublicUrlNotSet(
                f"certificates cannot be issued: the public URL {problem}; set app.public_url "
                "(or certificates.public_base_url, or the school's setting "
                "certificates.base_url) to a URL with a host name")
        return base

    def issuer(self, tenant: TenantInfo | None = None) -> Issuer:
        tenant = tenant or current_tenant()
        return Issuer(tenant.slug, tenant.name, self.base_url(tenant))

    def verify_url(self, public_id: str, tenant: TenantInfo | None = None,
                   fallback: str | None = None) -> str:
        """Absolute; `fallback` (a request's own address) is the base when no public URL is
        known, else PublicUrlNotSet."""
        return f"{self._link_base(tenant, fallback)}/certificates/{public_id}/verify"

    def _link_base(self, tenant: TenantInfo | None, fallback: str | None) -> str:
        base = self.public_base(tenant)
        if base:
            return base
        return self.base_url(tenant) if fallback is None else fallback.rstrip("/")

    def download_url(self, row: Certificate, kind: str, fallback: str | None = None
                     ) -> str | None:
        """A URL that works on its own (no header) for download_ttl_seconds: the storage's own
        presigned URL for the PDF on S3, else our signed /certificates/{id}/{kind}, absolute
        on the same base as verify_url."""
        if row.status == "pending" or (kind == "pdf" and not row.pdf_key):
            return None
        ttl = self.settings.download_ttl_seconds
        if kind == "pdf":
            direct = self.runtime.storage.presigned_url(row.pdf_key, ttl)
            if direct:
                return direct
        expires = int(time.time()) + ttl
        sig = self._signature(row.public_id, kind, expires)
        base = self._link_base(None, fallback)
        return f"{base}/certificates/{row.public_id}/{kind}?expires={expires}&sig={sig}"

    def _signature(self, public_id: str, kind: str, expires: int, key: bytes | None = None
                   ) -> str:
        msg = f"{public_id}\n{kind}\n{expires}".encode()
        return hmac.new(key or self._url_keys[0], msg, hashlib.sha256).hexdigest()[:43]

    def check_signature(self, public_id: str, kind: str, expires: int, sig: str) -> bool:
        if expires < time.time():
            return False
        return any(hmac.compare_digest(self._signature(public_id, kind, expires, key), sig)
                   for key in self._url_keys)

    # -- requesting ---------------------------------------------------------------------------

    def _row(self, course_id: int, user_id: int) -> Certificate | None:
        return _ROW.first(course_id, user_id)

    def by_public_id(self, public_id: str) -> Certificate | None:
        if not valid_public_id(public_id):
            return None
        return Certificate.select().where(Certificate.public_id == public_id).first()

    def ensure_queued(self, course_id: int, user_id: int) -> tuple[Certificate, bool]:
        """The learner's certificate row, made (pending) and queued if it did not exist.
        Exactly once: the unique (tenant, course, user) index turns a concurrent second insert
        (another worker, a redelivered event) into a read of the first one's row."""
        row = self._row(course_id, user_id)
        if row is not None:
            return row, False
        try:
            with db.transaction():  # a savepoint: the IntegrityError leaves the outer one usable
                row = Certificate.create(public_id=new_public_id(), course_id=course_id,
                                         user_id=user_id)
                CertificateIndex.create(public_id=row.public_id, tenant_id=current_tenant().id)
                self._learner_changed(row)
        except peewee.IntegrityError:
            row = self._row(course_id, user_id)
            if row is None:
                raise
            return row, False
        self.runtime.queue.enqueue_for_tenant(ISSUE_TASK, row.id)
        return row, True

    def request(self, principal: Principal, course_id: int) -> tuple[str, Certificate]:
        """POST /courses/{id}/certificate: ("exists", row) or ("queued", row); Conflict when
        the course is not completed."""
        self.runtime.service(COURSES).visible_course(course_id, principal)
        row = self._row(course_id, principal.user_id)
        if row is not None and row.status != "pending":
            return "exists", row
        self.issuing_base()  # nothing can be issued without it: say so now, not in a log
        if row is not None:
            stale = utcnow() - dt.timedelta(seconds=self.settings.pending_retry_seconds)
            if row.updated_at < stale:  # the first task may have died: queue it again
                row.updated_at = utcnow()
                row.save()
                self.runtime.queue.enqueue_for_tenant(ISSUE_TASK, row.id)
            return "queued", row
        summary = self.runtime.service(PROGRESS).summary(course_id, principal.user_id)
        if summary is None or not summary.completed:
            done = summary.completed_modules if summary else 0
            # Counted from the course: a progress row made at enrollment has not counted yet.
            modules = self.runtime.service(COURSES).list_modules(course_id)
            # As the progress plugin counts: with no required module, every module counts.
            required = sum(1 for m in modules if m.required) or len(modules)
            detail = ("you have not started this course" if summary is None else
                      f"the course is not completed: {done} of {required} required modules "
                      "done")
            raise Conflict(detail, code="course_not_completed", completed_modules=done,
                           required_modules=required)
        row, _ = self.ensure_queued(course_id, principal.user_id)
        # A concurrent request may have made and issued it meanwhile.
        return ("queued" if row.status == "pending" else "exists"), row

    def requeue_stale(self, limit: int = 500) -> int:
        """Queue again the issuing of certificates still pending after pending_retry_seconds,
        and regeneration jobs without progress for as long (the periodic and worker-start
        sweep, in the tenant's transaction; returns how many were queued): a worker killed
        while it held the task took it with it, and Redis never hands it out again. Each row
        is queued again at most once per pending_retry_seconds (its updated_at is bumped); a
        task that was only waiting in the queue finds the row issued and does nothing."""
        stale = utcnow() - dt.timedelta(seconds=self.settings.pending_retry_seconds)
        ids = [c.id for c in Certificate.select(Certificate.id).where(
            (Certificate.status == "pending") & (Certificate.updated_at < stale))
            .order_by(Certificate.id).limit(limit)]
        if ids:
            Certificate.update(updated_at=utcnow()).where(Certificate.id.in_(ids)).execute()
        for certificate_id in ids:
            self.runtime.queue.enqueue_for_tenant(ISSUE_TASK, certificate_id)
        if ids:
            log.info("certificates: %d pending certificates queued again", len(ids))
        return len(ids) + self._resume_regenerations(stale)

    def _resume_regenerations(self, stale: dt.datetime) -> int:
        """Queue again regeneration jobs that stopped (no certificate of theirs re-rendered
        since `stale`): their worker died. They resume where they were (run_regeneration)."""
        resumed = 0
        for job in RegenerationJob.select().where(
                RegenerationJob.status.in_(("queued", "running"))
                & (RegenerationJob.created_at < stale)):
            last = Certificate.select(peewee.fn.MAX(Certificate.updated_at)).where(
                (Certificate.course_id == job.course_id)
                & (Certificate.updated_at >= job.created_at)).scalar()
            if last is not None and _aware(last) >= stale:
                continue  # moving
            self.runtime.queue.enqueue_for_tenant(REGENERATE_TASK, job.id)
            resumed += 1
        if resumed:
            log.warning("certificates: %d stopped regeneration jobs resumed", resumed)
        return resumed

    # -- issuing (the task) -------------------------------------------------------------------

    def issue(self, certificate_id: int, regenerate: bool = False) -> str:
        """Render and sign a certificate; runs in the tenant's transaction (a task). The row
        lock (PostgreSQL; SQLite's write lock is taken at BEGIN) makes a second worker wait and
        then find it issued. Returns what happened."""
        query = Certificate.select().where(Certificate.id == certificate_id)
        if db.is_postgres():
            query = query.for_update()
        row = query.first()
        if row is None:
            return "gone"
        if row.status == "revoked" or (row.status == "issued" and not regenerate):
            return "unchanged"
        self.issuing_base()  # PublicUrlNotSet before anything is printed or signed
        identity, courses = self.runtime.service(IDENTITY), self.runtime.service(COURSES)
        course = courses.get_course(row.course_id)
        learner = identity.user(row.user_id)
        if course is None or learner is None:
            log.warning("certificate %s: course or learner is gone; not issued", row.public_id)
            return "gone"
        instructor = identity.user(course.owner_id)
        first = row.status == "pending"
        # Cut to the columns' size (PostgreSQL refuses longer text; a task must not fail on it).
        row.learner_name = (learner.name or learner.email)[:300]
        row.course_title = course.title[:300]
        row.instructor_name = (instructor.name if instructor else "")[:300]
        row.issued_at = row.issued_at or utcnow()
        row.revision += 1
        tenant = current_tenant()
        template, logo, signature = self.template_assets()
        pdf = render_pdf(CertificateContent(
            public_id=row.public_id, school_name=tenant.name, learner_name=row.learner_name,
            course_title=row.course_title, instructor_name=row.instructor_name,
            issued_at=row.issued_at, verify_url=self.verify_url(row.public_id),
            logo=logo, signature=signature), template, self.settings.font_path)
        old_key = row.pdf_key
        # A new key per revision: a download in flight keeps reading the old bytes, and a
        # rolled-back transaction leaves the row pointing at a PDF that exists.
        row.pdf_key = f"certificates/{row.public_id}/r{row.revision}.pdf"
        self.runtime.storage.put(row.pdf_key, [pdf], "application/pdf")
        row.credential = self.sign_credential(row, learner.email)
        row.status = "issued"
        row.updated_at = utcnow()
        row.save()
        if first:
            self._learner_changed(row)
            self.runtime.events.record(CertificateIssued(
                certificate_id=row.public_id, course_id=row.course_id, user_id=row.user_id,
                issued_at=row.issued_at))
        if old_key and old_key != row.pdf_key:
            storage, tenant_now = self.runtime.storage, tenant

            def drop_old() -> None:
                with tenant_context(tenant_now):
                    storage.delete(old_key)

            db.on_commit(drop_old)
        return "issued" if first else "regenerated"

    def sign_credential(self, row: Certificate, email: str) -> str:
        issuer = self.issuer()
        credential = build_credential(issuer, CredentialFacts(
            public_id=row.public_id, course_id=row.course_id, course_title=row.course_title,
            learner_name=row.learner_name, learner_email=email, issued_at=row.issued_at,
            verify_url=self.verify_url(row.public_id), status_index=row.id,
            subject_id=self.subject_id(row.user_id)))
        kid, key = self.keys.signing_key()
        return sign(credential, issuer, kid, key)

    def subject_id(self, user_id: int, tenant: TenantInfo | None = None) -> str:
        """The learner's stable, opaque credentialSubject.id at this school (credential.py)."""
        return subject_id(self._subject_key, (tenant or current_tenant()).id, user_id)

    def template_assets(self) -> tuple[Template, bytes | None, bytes | None]:
        """The school's template: tenant setting certificates.template, overridden by what an
        admin saved through the API; plus its logo and signature images."""
        raw: dict[str, Any] = dict(current_tenant().setting("certificates.template", {}) or {})
        row = CertificateTemplate.select().first()
        logo = signature = None
        if row is not None:
            raw.update(row.settings or {})
            logo = self._read(row.logo_key)
            signature = self._read(row.signature_key)
        return Template.from_settings(raw), logo, signature

    def _read(self, key: str) -> bytes | None:
        """A template image. Cached by key: an upload always gets a new key (the tenant prefix
        comes from the storage layer, so the cache key adds the tenant)."""
        if not key:
            return None
        cache_key = f"{current_tenant().id}/{key}"
        hit = self._images.get(cache_key)
        if hit is not None:
            return hit
        try:
            data = b"".join(self.runtime.storage.open(key))
        except NotFound:
            return None
        if len(self._images) >= 64:
            self._images.clear()
        self._images[cache_key] = data
        return data

    # -- revoking -----------------------------------------------------------------------------

    def revoke(self, public_id: str, reason: str, by: int | None) -> Certificate:
        row = self.by_public_id(public_id)
        if row is None:
            raise NotFound("no such certificate")
        if row.status == "revoked":
            raise Conflict("the certificate is already revoked", code="already_revoked")
        if row.status == "pending":
            raise Conflict("the certificate is not issued yet", code="certificate_pending")
        row.status = "revoked"
        row.revoked_at = utcnow()
        row.revoked_reason = reason
        row.revoked_by = by
        row.updated_at = utcnow()
        row.save()
        self._learner_changed(row)
        self.runtime.events.record(CertificateRevoked(
            certificate_id=row.public_id, course_id=row.course_id, user_id=row.user_id,
            reason=reason))
        return row

    # -- public verification --------------------------------------------------------------------

    def locate(self, public_id: str) -> TenantInfo | None:
        """The enabled tenant that issued `public_id` (outside any tenant: the index)."""
        if not valid_public_id(public_id):
            return None
        entry = CertificateIndex.get_or_none(CertificateIndex.public_id == public_id)
        if entry is None:
            return None
        tenant = self.runtime.tenants.get_by_id(entry.tenant_id)
        if tenant is None or not tenant.enabled or not tenant.plugin_enabled("certificates"):
            return None
        return tenant

    def verification(self, row: Certificate) -> VerificationOut:
        """What GET /certificates/{id}/verify answers of an issued (or revoked) certificate."""
        tenant = current_tenant()
        issuer = self.issuer(tenant)
        return VerificationOut(
            id=row.public_id,
            valid=row.status == "issued",
            status=cast(VerifiedStatus, row.status),  # never pending: issued() is a 404
            learner=Party(name=row.learner_name),
            course=CourseRef(id=row.course_id, title=row.course_title),
            instructor=Party(name=row.instructor_name),
            issuer=IssuerOut(name=tenant.name, slug=tenant.slug, id=issuer.did,
                             url=issuer.url),
            issued_at=row.issued_at,
            revoked_at=row.revoked_at,
            verify_url=self.verify_url(row.public_id),
            status_list=issuer.status_list_url,
            jwks_url=f"{issuer.url}/jwks.json",
        )

    # -- keys and the status list -----------------------------------------------------------------

    def did_document(self) -> dict[str, Any]:
        issuer = self.issuer()
        return did_document(issuer, self.keys.jwks(issuer.public_jwk)["keys"])

    def jwks(self) -> dict[str, Any]:
        return self.keys.jwks(self.issuer().public_jwk)

    def issuer_profile(self) -> IssuerProfileOut:
        """The school's OB 3.0 Profile, served at the `issuer.url` credentials name."""
        return IssuerProfileOut.model_validate(
            {"@context": [VC_CONTEXT, OB_CONTEXT], **issuer_profile(self.issuer())})

    def achievement(self, course_id: int) -> AchievementOut:
        """The Achievement served at the `achievement.id` credentials name. Only for a course
        this school has issued a certificate of (a draft course's title stays private), and
        named as the newest certificate printed it."""
        row = (Certificate.select(Certificate.course_title)
               .where((Certificate.course_id == course_id) & (Certificate.status != "pending"))
               .order_by(Certificate.updated_at.desc()).first())
        if row is None:
            raise NotFound("no such achievement")
        issuer = self.issuer()
        return AchievementOut.model_validate(
            {"@context": [VC_CONTEXT, OB_CONTEXT],
             **achievement(issuer, course_id, row.course_title),
             "creator": issuer_profile(issuer)})

    def status_list(self) -> StatusList:
        """The BitstringStatusListCredential and the same signed as a VC-JWT. Nothing in it
        depends on the clock: validFrom is the last moment the list changed (the newest
        revocation, the signing key's creation, or the certificate that made it grow), so the
        same revocations give the same bytes in every process until one changes them."""
        revoked = list(Certificate.select(Certificate.id, Certificate.revoked_at).where(
            Certificate.status == "revoked").order_by(Certificate.id))
        highest = Certificate.select(peewee.fn.MAX(Certificate.id)).scalar() or 0
        issuer = self.issuer()
        active = self.keys.active()
        kid, key, since = active.kid, active.private_key, active.created_at
        # Grown in whole blocks, so the list changes length (and version) rarely.
        size = -(-(highest + 1) // STATUS_LIST_MIN_BITS) * STATUS_LIST_MIN_BITS
        moments = [since, *(r.revoked_at for r in revoked if r.revoked_at)]
        if size > STATUS_LIST_MIN_BITS:
            grew = Certificate.select(peewee.fn.MIN(Certificate.requested_at)).where(
                Certificate.id >= size - STATUS_LIST_MIN_BITS).scalar()
            if grew is not None:
                moments.append(_aware(grew))
        valid_from = max(moments).replace(microsecond=0)
        ids = [r.id for r in revoked]
        version = hashlib.sha256(json.dumps(
            [issuer.did, issuer.status_list_url, kid, size, valid_from.isoformat(), ids],
            separators=(",", ":")).encode()).hexdigest()[:32]
        cache_key = (current_tenant().id, version)
        hit = self._lists.get(cache_key)
        if hit is not None:
            return hit
        credential = status_list_credential(issuer, ids, size, valid_from)
        listed = StatusList(version, credential, sign(credential, issuer, kid, key))
        with self._lists_lock:
            if len(self._lists) >= 256:
                self._lists.clear()
            self._lists[cache_key] = listed
        return listed

    # -- regeneration -----------------------------------------------------------------------------

    def start_regeneration(self, course_id: int, by: int | None) -> RegenerationJob:
        self.issuing_base()
        total = Certificate.select().where((Certificate.course_id == course_id)
                                           & (Certificate.status == "issued")).count()
        job = RegenerationJob.create(course_id=course_id, total=total, requested_by=by)
        self.runtime.queue.enqueue_for_tenant(REGENERATE_TASK, job.id)
        return job

    def run_regeneration(self, tenant: TenantInfo, job_id: int, batch: int = 20) -> None:
        """Re-render a course's issued certificates (same public ids). Runs outside a
        transaction (a task that is not tenant-scoped) and commits after each batch, so
        GET /certificates/jobs/{id} shows it moving and a crash keeps what was done.

        Resumable: a certificate re-rendered by this job (or issued since it started) has
        `updated_at` after the job's `created_at` and is skipped, so a job resumed after its
        worker died (requeue_stale) re-renders only what is left."""
        with tenant_context(tenant):
            with db.transaction():
                job = RegenerationJob.get_or_none(RegenerationJob.id == job_id)
                if job is None or job.status == "done":
                    return
                since, course_id = job.created_at, job.course_id
                issued = (Certificate.course_id == course_id) & (Certificate.status == "issued")
                job.status = "running"
                job.done = Certificate.select().where(
                    issued & (Certificate.updated_at >= since)).count()
                job.save()
            after = 0
            while True:
                with db.transaction():
                    ids = [r.id for r in Certificate.select(Certificate.id).where(
                        issued & (Certificate.id > after) & (Certificate.updated_at < since))
                        .order_by(Certificate.id).limit(batch)]
                    for cid in ids:
                        self.issue(cid, regenerate=True)
                    (RegenerationJob.update(done=RegenerationJob.done + len(ids))
                     .where(RegenerationJob.id == job_id).execute())
                if len(ids) < batch:
                    break
                after = ids[-1]
            with db.transaction():
                (RegenerationJob.update(status="done", finished_at=utcnow())
                 .where(RegenerationJob.id == job_id).execute())
