"""The certificates plugin's contract: ``runtime.service(CERTIFICATES)`` is a
``CertificatesAPI``; plain data, never model objects. Events: ``learnplat_certificates.events``.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal, Protocol

from pydantic import Field

from learnplat.plugin import Record, ServiceKey

CertificateStatus = Literal["pending", "issued", "revoked"]


class CertificateInfo(Record):
    id: str = Field(description="The stable public id (printed on the PDF, in verify_url).")
    course_id: int
    user_id: int
    status: CertificateStatus
    issued_at: dt.datetime | None
    verify_url: str
    revoked_at: dt.datetime | None = None


class CertificatesAPI(Protocol):
    def certificate_of(self, course_id: int, user_id: int) -> CertificateInfo | None:
        """A learner's certificate for a course (whatever its status); None if none yet."""

    def certificates_of_user(self, user_id: int) -> list[CertificateInfo]:
        """Every certificate of a learner in the current tenant, newest first."""


CERTIFICATES: ServiceKey[CertificatesAPI] = ServiceKey("certificates", CertificatesAPI)
