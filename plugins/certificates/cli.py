"""`learnplat certificates ...`: issue, revoke and list certificates, regenerate a course's,
rotate the credential-signing key."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from learnplat_courses.api import COURSES
from learnplat_identity.api import IDENTITY
from learnplat_progress.api import PROGRESS

from learnplat.plugin import (
    LearnplatError,
    Runtime,
    TenantInfo,
    echo_json,
    echo_rows,
    json_option,
    tenant_command,
)
from learnplat.plugin.cli import key_command

from .models import Certificate
from .services import CertificatesService

if TYPE_CHECKING:
    from .plugin import CertificatesPlugin

ID = click.IntRange(min=1, max=2_147_483_647)


@click.group()
def certificates() -> None:
    """Issue, revoke, list and regenerate certificates."""


def _user_id(runtime: Runtime, who: str) -> int:
    if who.isdigit():
        return int(who)
    found = runtime.service(IDENTITY).users_by_email([who.lower()])
    if who.lower() not in found:
        raise LearnplatError(f"no user {who!r} in this school")
    return found[who.lower()].id


def _row_out(svc: CertificatesService, row: Certificate) -> dict[str, Any]:
    return {"id": row.public_id, "course_id": row.course_id, "user_id": row.user_id,
            "status": row.status, "learner_name": row.learner_name,
            "course_title": row.course_title, "issued_at": row.issued_at,
            "revoked_at": row.revoked_at, "revoked_reason": row.revoked_reason,
            "verify_url": svc.verify_url(row.public_id)}


# Every command takes allow_disabled=True: operators settle a school's certificates whether or
# not it is enabled.
@tenant_command(certificates, "issue", allow_disabled=True, plugin=True)
@click.option("--course", "course_id", required=True, type=ID, metavar="ID")
@click.option("--user", "who", required=True, metavar="EMAIL|ID", help="The learner.")
@click.option("--force", is_flag=True, help="Issue even if the course is not completed.")
@json_option
def issue(plugin: CertificatesPlugin, tenant: TenantInfo, course_id: int, who: str,
          force: bool, as_json: bool) -> None:
    """Issue a learner's certificate for a course now (in this process), or show the one
    that exists. Without --force the learner must have completed the course."""
    runtime, svc = plugin.runtime, plugin.certificates
    user_id = _user_id(runtime, who)
    if runtime.service(COURSES).get_course(course_id) is None:
        raise LearnplatError(f"no course with id {course_id} in {tenant.slug}")
    summary = runtime.service(PROGRESS).summary(course_id, user_id)
    if not force and (summary is None or not summary.completed):
        raise LearnplatError("the learner has not completed this course "
                             "(--force issues anyway)")
    row, _ = svc.ensure_queued(course_id, user_id)
    outcome = svc.issue(row.id)
    out = _row_out(svc, Certificate.get_by_id(row.id))
    if as_json:
        echo_json({**out, "outcome": outcome})
    else:
        click.echo(f"{out['id']}\t{outcome}\t{out['verify_url']}")


@tenant_command(certificates, "revoke", allow_disabled=True, plugin=True)
@click.argument("certificate_id")
@click.option("--reason", required=True, help="Why (kept with the certificate).")
def revoke(plugin: CertificatesPlugin, tenant: TenantInfo, certificate_id: str,
           reason: str) -> None:
    """Revoke certificate CERTIFICATE_ID (its public id)."""
    reason = reason.strip()
    if not reason or len(reason) > 500:
        raise LearnplatError("--reason: give 1 to 500 characters")
    row = plugin.certificates.revoke(certificate_id.strip().lower(), reason, None)
    click.echo(f"{row.public_id}\trevoked")


@tenant_command(certificates, "list", write=False, allow_disabled=True, plugin=True)
@click.option("--course", "course_id", type=ID, default=None, metavar="ID")
@click.option("--status", type=click.Choice(["pending", "issued", "revoked"]), default=None)
@json_option
def list_(plugin: CertificatesPlugin, tenant: TenantInfo, course_id: int | None,
          status: str | None, as_json: bool) -> None:
    """List the school's certificates, newest first."""
    svc = plugin.certificates
    q = Certificate.select().order_by(Certificate.id.desc())
    if course_id is not None:
        q = q.where(Certificate.course_id == course_id)
    if status is not None:
        q = q.where(Certificate.status == status)
    echo_rows([_row_out(svc, r) for r in q],
              lambda r: (r["id"], r["status"], f"course {r['course_id']}", f"user {r['user_id']}",
                         r["issued_at"] or "-", r["learner_name"]), as_json=as_json)


@tenant_command(certificates, "regenerate", allow_disabled=True, plugin=True)
@click.option("--course", "course_id", required=True, type=ID, metavar="ID")
def regenerate(plugin: CertificatesPlugin, tenant: TenantInfo, course_id: int) -> None:
    """Queue the re-rendering of every issued certificate of a course (same ids)."""
    job = plugin.certificates.start_regeneration(course_id, None)
    click.echo(f"job {job.id}: {job.total} certificates queued for regeneration")


@key_command(certificates, "rotate-key", plugin=True)
def rotate_key(plugin: CertificatesPlugin, tenant: TenantInfo) -> None:
    """Sign new credentials with a fresh Ed25519 key; old credentials stay verifiable."""
    click.echo(plugin.certificates.keys.rotate())
