"""The certificates plugin's object: its hooks, and its service once the runtime is built
(the class its entry point names)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from learnplat_courses.api import cacheable_detail_extras
from learnplat_progress.events import CourseCompleted

from learnplat.plugin import (
    EncryptedAtRest,
    Event,
    EventHandler,
    EventMessage,
    Permission,
    Plugin,
    Principal,
    ProblemCode,
    Route,
    ServiceKey,
    TaskSpec,
    hookimpl,
)

from . import events as ev
from . import resources as r
from .api import CERTIFICATES
from .cli import certificates
from .models import MODELS
from .services import ISSUE_TASK, CertificatesService
from .settings import CertificatesSettings, CertificatesTenantSettings
from .tasks import tasks
from .templates import Templates

if TYPE_CHECKING:
    from learnplat.plugin import Runtime


class CertificatesPlugin(Plugin):
    """Certificates of completion: PDFs, signed Open Badges credentials, verification,
    revocation and regeneration."""

    tenant_settings = CertificatesTenantSettings  # [settings.certificates] of a school
    requires = ("identity", "courses", "progress")
    # The problem codes of its answers (the reference page's catalogue, /docs#problem-<code>).
    problems = {
        "no_certificate": ProblemCode(
            404, "The caller has no certificate for this course (yet): complete the course, "
            "then ask for it with `POST /courses/{course_id}/certificate`."),
        "course_not_completed": ProblemCode(
            409, "A certificate was asked for a course the caller has not completed; "
            "`completed_modules` and `required_modules` say how far they are."),
        "already_revoked": ProblemCode(409, "The certificate is revoked already."),
        "certificate_pending": ProblemCode(
            409, "The certificate is still being made (status `pending`): it cannot be "
            "revoked before it is issued; try again shortly."),
        "invalid_signature": ProblemCode(
            403, "A certificate download link that was altered or whose time ran out: ask "
            "for the certificate again for fresh links."),
        "public_url_not_set": ProblemCode(
            503, "The server's public URL (setting `app.public_url`) is not set, so no "
            "certificate can be issued: a problem of the server's configuration, not of the "
            "request. Tell the school's operator.",
            title="The public URL of the API is not set"),
    }
    certificates: CertificatesService  # built by register_services

    @hookimpl
    def register_models(self) -> list[type]:
        return list(MODELS)

    @hookimpl
    def register_encrypted_at_rest(self) -> list[EncryptedAtRest]:
        # The private halves of the schools' credential-signing keys (keys.credential_keys).
        return [EncryptedAtRest("credential-signing keys",
                                lambda rt: self.certificates.keys.scan(),
                                lambda rt: self.certificates.keys.reencrypt())]

    @hookimpl
    def register_settings(self) -> dict[str, type]:
        return {"certificates": CertificatesSettings}

    @hookimpl
    def register_permissions(self) -> list[Permission]:
        return [
            Permission("certificate.own", "Ask for and download one's own certificates",
                       {"student": "any"}),
            Permission("certificate.manage", "List, revoke and regenerate the school's "
                                             "certificates", {"admin": "any"}),
        ]

    @hookimpl
    def register_events(self) -> list[type[Event]]:
        return ev.EVENTS

    @hookimpl
    def register_services(self, runtime: Runtime) -> dict[ServiceKey[Any], Any]:
        self.certificates = CertificatesService(runtime)
        return {CERTIFICATES: self.certificates}

    @hookimpl
    def register_routes(self, runtime: Runtime) -> list[Route]:
        svc = self.certificates
        templates = Templates(runtime)
        c = "/courses/{course_id:int}"
        cert = "/certificates/{public_id}"
        issuer = "/certificates/issuers/{slug}"
        return [
            Route(f"{c}/certificate", r.CourseCertificate(svc)),
            Route(f"{c}/certificates/regenerate", r.RegenerateResource(svc)),
            Route("/certificates", r.CertificateCollection(svc)),
            Route("/certificates/jobs/{job_id:int}", r.JobResource(svc)),
            Route("/certificates/template", r.TemplateResource(templates)),
            Route("/certificates/template/logo", r.TemplateImage(templates, "logo")),
            Route("/certificates/template/signature", r.TemplateImage(templates, "signature")),
            Route(f"{cert}/revoke", r.RevokeResource(svc)),
            Route(f"{cert}/verify", r.Verify(svc), tenant_scoped=False),
            Route(f"{cert}/pdf", r.CertificatePdf(svc), tenant_scoped=False),
            Route(f"{cert}/credential", r.CertificateCredential(svc), tenant_scoped=False),
            Route(issuer, r.IssuerProfile(svc), tenant_scoped=False),
            Route(f"{issuer}/achievements/{{achievement_id}}", r.IssuerAchievement(svc),
                  tenant_scoped=False),
            Route(f"{issuer}/did.json", r.IssuerDid(svc), tenant_scoped=False),
            Route(f"{issuer}/jwks.json", r.IssuerJwks(svc), tenant_scoped=False),
            Route(f"{issuer}/status/revocation", r.IssuerStatusList(svc), tenant_scoped=False),
        ]

    @hookimpl
    def register_tasks(self) -> list[TaskSpec]:
        return tasks()

    def on_course_completed(self, runtime: Runtime,
                            event: EventMessage[CourseCompleted]) -> None:
        """Queue the learner's certificate. A redelivered event finds the row and does
        nothing more than (harmlessly) queue the idempotent task again if it is still
        pending."""
        row, created = self.certificates.ensure_queued(event.data.course_id,
                                                       event.data.user_id)
        if not created and row.status == "pending":
            runtime.queue.enqueue_for_tenant(ISSUE_TASK, row.id)

    @hookimpl
    def register_event_handlers(self) -> list[EventHandler]:
        return [EventHandler(CourseCompleted, "issue_certificate", self.on_course_completed)]

    @hookimpl
    def register_commands(self, cli: click.Group) -> None:
        cli.add_command(certificates)

    # -- hooks of the courses plugin ------------------------------------------------------------

    @hookimpl
    @cacheable_detail_extras  # CertificatesService bumps LEARNER_GENERATION (_learner_changed)
    def course_detail_extras(self, runtime: Runtime, course_id: int,
                             principal: Principal | None) -> dict[str, Any] | None:
        """The caller's certificate on GET /courses/{id}: ``certificate: {id, status,
        verify_url}`` once there is one (the courses plugin's hook)."""
        if principal is None or not principal.has("certificate.own"):
            return None
        info = self.certificates.certificate_of(course_id, principal.user_id)
        if info is None:
            return None
        return {"certificate": {"id": info.id, "status": info.status,
                                "verify_url": info.verify_url}}
