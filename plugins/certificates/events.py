"""Events the certificates plugin records (versioned names; never renamed).

It consumes the progress plugin's CourseCompleted ("course.completed.v1"): each completion
queues the learner's certificate.

Both leave learnplat (webhooks, xAPI) with every field: the certificate id is the public one
its verification page shows; nothing here names internal storage (the PDF's key stays in the
certificates table).
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from learnplat.plugin import Event


class CertificateIssued(Event):
    """A learner's certificate for a course was issued (its PDF and credential exist)."""
    name: ClassVar[str] = "certificate.issued.v1"
    certificate_id: str
    course_id: int
    user_id: int
    issued_at: dt.datetime


class CertificateRevoked(Event):
    """An admin revoked a certificate; verification now says so."""
    name: ClassVar[str] = "certificate.revoked.v1"
    certificate_id: str
    course_id: int
    user_id: int
    reason: str


EVENTS: list[type[Event]] = [CertificateIssued, CertificateRevoked]
