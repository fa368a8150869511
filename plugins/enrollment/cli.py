"""`learnplat enrollments ...`: bulk enrollment from a CSV file and a course's roster."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING

import click
from email_validator import EmailNotValidError, validate_email
from learnplat_courses.api import COURSES

from learnplat.plugin import LearnplatError
from learnplat.plugin.cli import echo_json, echo_pages, json_option, read_text_file, tenant_command

from .schemas import BulkOut
from .services import BulkEntry

if TYPE_CHECKING:
    from learnplat.plugin import TenantInfo

    from .plugin import EnrollmentPlugin

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


# allow_disabled=True: operators enroll a school's learners before enabling it.
@tenant_command(enrollments, "import", allow_disabled=True, plugin=True)
@COURSE
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Report what would happen; change nothing.")
@json_option
def enrollments_import(plugin: EnrollmentPlugin, tenant: TenantInfo, course_id: int, file: Path,
                       dry_run: bool, as_json: bool) -> int:
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
    report = plugin.enrollment.bulk_enroll(None, course_id, entries, dry_run=dry_run)
    if as_json:
        echo_json(BulkOut.of(report))
    else:
        for row in report.rows:
            who = row.email or "-"
            if row.outcome == "rejected":
                click.echo(f"{file}:{row.ref}: {who}: rejected: {row.reason}")
            else:
                click.echo(f"{file}:{row.ref}: {who}: {row.outcome} "
                           f"(enrollment {row.enrollment_id or '-'})")
        verb = "would be " if dry_run else ""
        click.echo(f"{report.count('created')} {verb}created, {report.count('reactivated')} "
                   f"{verb}reactivated, {report.count('existing')} existing, "
                   f"{report.count('rejected')} rejected"
                   + (" (dry run: nothing written)" if dry_run else ""))
    return 1 if report.count("rejected") else 0


@tenant_command(enrollments, "list", write=False, allow_disabled=True, plugin=True)
@COURSE
@click.option("--status", type=click.Choice(["active", "dropped"]), default=None)
@json_option
def enrollments_list(plugin: EnrollmentPlugin, tenant: TenantInfo, course_id: int,
                     status: str | None, as_json: bool) -> None:
    """List a course's learners, newest first."""
    if plugin.runtime.service(COURSES).get_course(course_id) is None:
        raise LearnplatError(f"no course with id {course_id} in {tenant.slug}")
    echo_pages(lambda page: plugin.enrollment.roster(course_id, page, status),
               lambda e: (e.id, e.user.email if e.user else e.user_id, e.status, e.source,
                          e.created_at),
               as_json=as_json)
