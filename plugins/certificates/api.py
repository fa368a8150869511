"""The certificates plugin's contract: ``runtime.service(CERTIFICATES)`` is a
``CertificatesAPI``; plain data, never model objects. Events: ``learnplat_certificates.events``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from learnplat.plugin import ServiceKey


@dataclass(frozen=True)
class CertificateInfo:
    id: str  # the stable public id (printed on the PDF, in the verification URL)
    course_id: int
    user_id: int
    status: str  # pending | issued | revoked
    issued_at: dt.datetime | None
    revoked_at: dt.datetime | None
    verify_url: str


class CertificatesAPI(Protocol):
    def certificate_of(self, course_id: int, user_id: int) -> CertificateInfo | None:
        """A learner's certificate for a course (whatever its status); None if none yet."""

    def certificates_of_user(self, user_id: int) -> list[CertificateInfo]:
        """Every certificate of a learner in the current tenant, newest first."""


CERTIFICATES: ServiceKey[CertificatesAPI] = ServiceKey("certificates", CertificatesAPI)
