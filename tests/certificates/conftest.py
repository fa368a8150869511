"""Fixtures for the certificates tests: a published course (made through the API), learners
who complete it, and helpers to look inside the PDF and the credential."""

from __future__ import annotations

from typing import Any

import pytest
from certhelpers import School


@pytest.fixture
def school(lp_client, lp_users, lp_runtime, lp_tenant) -> School:
    return School(lp_client, lp_users, lp_runtime, lp_tenant)


@pytest.fixture
def certs(lp_runtime) -> Any:
    from learnplat_certificates.plugin import CertificatesPlugin

    return lp_runtime.plugin(CertificatesPlugin).certificates
