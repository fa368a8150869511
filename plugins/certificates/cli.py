"""`learnplat certificates ...`: issue, revoke and list certificates, regenerate a course's,
rotate the credential-signing key."""

from __future__ import annotations

from typing import Any

import click

from learnplat.cli.main import AppContext, echo_json, pass_app  # not in learnplat.plugin
from learnplat.plugin import LearnplatError, db, tenant_context

from .models import Certificate
from .services import CertificatesService

TENANT = click.option("--tenant", "tenant_slug", required=True, metavar="SLUG",
                      help="The school (tenant) to act in.")
ID = click.IntRange(min=1, max=2_147_483_647)


@click.group()
def certificates() -> None:
    """Issue, revoke, list and regenerate certificates."""


def _service(app: AppContext) -> CertificatesService:
    from .hooks import service

    return service(app.runtime)


def _user_id(app: AppContext, who: str) -> int:
    from learnplat_identity.api import IDENTITY

    if who.isdigit():
        return int(who)
    found = app.runtime.service(IDENTITY).users_by_email([who.lower()])
    if who.lower() not in found:
        raise LearnplatError(f"no user {who!r} in this school")
    return found[who.lower()].id


def _row_out(svc: CertificatesService, row: Certificate) -> dict[str, Any]:
    return {"id": row.public_id, "course_id": row.course_id, "user_id": row.user_id,
            "status": row.status, "learner_name": row.learner_name,
            "course_title": row.course_title, "issued_at": row.issued_at,
            "revoked_at": row.revoked_at, "revoked_reason": row.revoked_reason,
            "verify_url": svc.verify_url(row.public_id)}


@certificates.command("issue")
@TENANT
@click.option("--course", "course_id", required=True, type=ID, metavar="ID")
@click.option("--user", "who", required=True, metavar="EMAIL|ID", help="The learner.")
@click.option("--force", is_flag=True, help="Issue even if the course is not completed.")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def issue(app: AppContext, tenant_slug: str, course_id: int, who: str, force: bool,
          as_json: bool) -> None:
    """Issue a learner's certificate for a course now (in this process), or show the one
    that exists. Without --force the learner must have completed the course."""
    from learnplat_courses.api import COURSES
    from learnplat_progress.api import PROGRESS

    rt, svc = app.runtime, _service(app)
    with db.connection():
        tenant = rt.tenants.require(tenant_slug)
        with tenant_context(tenant), db.transaction():
            user_id = _user_id(app, who)
            if rt.service(COURSES).get_course(course_id) is None:
                raise LearnplatError(f"no course with id {course_id} in {tenant_slug}")
            summary = rt.service(PROGRESS).summary(course_id, user_id)
            if not force and (summary is None or not summary.completed):
                raise LearnplatError("the learner has not completed this course "
                                     "(--force issues anyway)")
            row, _ = svc.ensure_queued(course_id, user_id)
            outcome = svc.issue(row.id)
            row = Certificate.get_by_id(row.id)
            out = _row_out(svc, row)
    if as_json:
        echo_json({**out, "outcome": outcome})
    else:
        click.echo(f"{out['id']}\t{outcome}\t{out['verify_url']}")


@certificates.command("revoke")
@TENANT
@click.argument("certificate_id")
@click.option("--reason", required=True, help="Why (kept with the certificate).")
@pass_app
def revoke(app: AppContext, tenant_slug: str, certificate_id: str, reason: str) -> None:
    """Revoke certificate CERTIFICATE_ID (its public id)."""
    reason = reason.strip()
    if not reason or len(reason) > 500:
        raise LearnplatError("--reason: give 1 to 500 characters")
    rt, svc = app.runtime, _service(app)
    with db.connection():
        tenant = rt.tenants.require(tenant_slug)
        with tenant_context(tenant), db.transaction():
            row = svc.revoke(certificate_id.strip().lower(), reason, None)
    click.echo(f"{row.public_id}\trevoked")


@certificates.command("list")
@TENANT
@click.option("--course", "course_id", type=ID, default=None, metavar="ID")
@click.option("--status", type=click.Choice(["pending", "issued", "revoked"]), default=None)
@click.option("--json", "as_json", is_flag=True)
@pass_app
def list_(app: AppContext, tenant_slug: str, course_id: int | None, status: str | None,
          as_json: bool) -> None:
    """List the school's certificates, newest first."""
    rt, svc = app.runtime, _service(app)
    with db.connection():
        tenant = rt.tenants.require(tenant_slug)
        with tenant_context(tenant), db.transaction(write=False):
            q = Certificate.select().order_by(Certificate.id.desc())
            if course_id is not None:
                q = q.where(Certificate.course_id == course_id)
            if status is not None:
                q = q.where(Certificate.status == status)
            rows = [_row_out(svc, r) for r in q]
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        when = r["issued_at"].isoformat() if r["issued_at"] else "-"
        click.echo(f"{r['id']}\t{r['status']}\tcourse {r['course_id']}\tuser {r['user_id']}\t"
                   f"{when}\t{r['learner_name']}")


@certificates.command("regenerate")
@TENANT
@click.option("--course", "course_id", required=True, type=ID, metavar="ID")
@pass_app
def regenerate(app: AppContext, tenant_slug: str, course_id: int) -> None:
    """Queue the re-rendering of every issued certificate of a course (same ids)."""
    rt, svc = app.runtime, _service(app)
    with db.connection():
        tenant = rt.tenants.require(tenant_slug)
        with tenant_context(tenant), db.transaction():
            job = svc.start_regeneration(course_id, None)
    click.echo(f"job {job.id}: {job.total} certificates queued for regeneration")


@certificates.command("rotate-key")
@TENANT
@pass_app
def rotate_key(app: AppContext, tenant_slug: str) -> None:
    """Sign new credentials with a fresh Ed25519 key; old credentials stay verifiable."""
    rt, svc = app.runtime, _service(app)
    with db.connection():
        tenant = rt.tenants.require(tenant_slug)
        with tenant_context(tenant), db.transaction():
            kid = svc.keys.rotate()
    click.echo(kid)
