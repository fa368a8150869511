"""Fixtures of the xAPI tests: Ralph, a real LRS, on a loopback port for the module (started
once: ~3 s), and a school with a published course, made through the API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from xapihelpers import Ralph, start_ralph, stop_ralph

from learnplat.testing import free_port


@pytest.fixture(scope="module")
def ralph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ralph]:
    lrs = start_ralph(tmp_path_factory.mktemp("ralph"), free_port())
    yield lrs
    stop_ralph(lrs)


@pytest.fixture
def xapi_service(lp_runtime: Any) -> Any:
    from learnplat_xapi.plugin import XapiPlugin

    return lp_runtime.plugin(XapiPlugin).xapi
