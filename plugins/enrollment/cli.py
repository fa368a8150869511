"""`learnplat enrollments ...`: bulk enrollment from a CSV file and a course's roster."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import click
from email_validator import EmailNotValidError, validate_email
from learnplat_courses.api import COURSES

from learnplat import db
from learnplat.cli.main import AppContext, echo_json, pass_app, read_text_file
from learnplat.errors import LearnplatError
from learnplat.pagination import PageQuery
from learnplat.tenancy import tenant_context

from .services import BulkEntry, EnrollmentService

TENANT = click.option("--tenant", "tenant_slug", required=True, metavar="SLUG",
                      help="The school (tenant) to act in.")
COURSE = click.option("--course", "course_id", required=True,
                      type=click.IntRange(min=1, max=2_147_483_647),
                      metavar="ID", help="The course's id.")


@click.group()
def enrollments() -> None:
    """Enroll learners in bulk and list a course's learners."""


def read_csv(path: Path) -> list[BulkEntry]:
    """One learner per line, by email. A first row with a cell "email" is a header naming the
    email column (so a users-import file works as is); otherwise the email is the first cell.
    Blank lines are skipped."""
    text = read_text_file(path)
    entries: list[BulkEntry] = []
    column = 0
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for record in reader:
            cells = [c.strip() for c in record]
            if not any(cells):
                continue
            lowered = [c.lower() for c in cells]
            if not entries and reader.line_num == 1 and "email" in lowered:
                column = lowered.index("email")
                continue
            ref = str(reader.line_num)
            raw = cells[column] if column < len(cells) else ""
            if not raw:
                entries.append(BulkEntry(ref, error="no email in this row"))
                continue
            try:
                email = validate_email(raw, check_deliverability=False).normalized.lower()
            except EmailNotValidError as exc:
                entries.append(BulkEntry(ref, email=raw, error=f"not an email address: {exc}"))
                continue
            entries.append(BulkEntry(ref, email=email))
    except csv.Error as exc:
        raise LearnplatError(f"{path}: line {reader.line_num}: {exc}") from None
    return entries


def _service(app: AppContext) -> EnrollmentService:
    from .hooks import service

    return service(app.runtime)


@enrollments.command("import")
@TENANT
@COURSE
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Report what would happen; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_app
def enrollments_import(app: AppContext, tenant_slug: str, course_id: int, file: Path,
                       dry_run: bool, as_json: bool) -> None:
    """Enroll the students listed in FILE.csv (one email per line) in course ID.

    Valid rows are applied and invalid ones reported: each line ends created, existing
    (already enrolled), reactivated (had dropped) or rejected with the reason (unknown email,
    not a student, deactivated account, repeated line, no seat left under the course's cap).
    The enrollment window does not apply. Exit status 1 when any line was rejected (the valid
    ones are still enrolled), 0 otherwise.
    """
    entries = read_csv(file)
    if not entries:
        raise LearnplatError(f"{file}: no rows to import")
    rt = app.runtime
    with db.connection():
        tenant = rt.tenants.require(tenant_slug)
        with tenant_context(tenant), db.transaction():
            report = _service(app).bulk_enroll(None, course_id, entries, dry_run=dry_run)
    if as_json:
        echo_json(report.as_dict())
    else:
        for row in report.rows:
            who = row.email or "-"
            if row.outcome == "rejected":
                click.echo(f"{file}:{row.ref}: {who}: rejected: {row.reason}")
            else:
                click.echo(f"{file}:{row.ref}: {who}: {row.outcome} "
                           f"(enrollment {row.enrollment_id or '-'})")
        counts = report.as_dict()
        verb = "would be " if dry_run else ""
        click.echo(f"{counts['created']} {verb}created, {counts['reactivated']} {verb}"
                   f"reactivated, {counts['existing']} existing, {counts['rejected']} rejected"
                   + (" (dry run: nothing written)" if dry_run else ""))
    if report.count("rejected"):
        raise SystemExit(1)


@enrollments.command("list")
@TENANT
@COURSE
@click.option("--status", type=click.Choice(["active", "dropped"]), default=None)
@click.option("--json", "as_json", is_flag=True)
@pass_app
def enrollments_list(app: AppContext, tenant_slug: str, course_id: int, status: str | None,
                     as_json: bool) -> None:
    """List a course's learners, newest first."""
    rt = app.runtime
    svc = _service(app)
    rows: list[dict[str, Any]] = []
    with db.connection():
        tenant = rt.tenants.require(tenant_slug)
        with tenant_context(tenant), db.transaction(write=False):
            if rt.service(COURSES).get_course(course_id) is None:
                raise LearnplatError(f"no course with id {course_id} in {tenant_slug}")
            cursor = None
            while True:
                page = svc.roster(course_id, PageQuery(limit=100, cursor=cursor), status)
                rows.extend(page["items"])
                if not (cursor := page["next_cursor"]):
                    break
    if as_json:
        echo_json(rows)
        return
    for e in rows:
        user = e["user"] or {}
        click.echo(f"{e['id']}\t{user.get('email', e['user_id'])}\t{e['status']}\t"
                   f"{e['source']}\t{e['created_at'].isoformat()}")
