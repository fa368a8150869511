"""Fixtures for the webhooks tests: the test events of webhookhelpers.py registered, a
school's admin (Hooks) and receivers on loopback (receivers.py, also used by other suites)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from receivers import Receiver
from webhookhelpers import TEST_EVENTS, Hooks

from learnplat.tenancy import TenantInfo


@pytest.fixture
def wb_events(lp_runtime: Any) -> Iterator[None]:
    for e in TEST_EVENTS:
        lp_runtime.registry.add_event(e, "tests")
    yield
    for e in TEST_EVENTS:
        lp_runtime.registry.remove_event(e.name)


@pytest.fixture
def hooks(lp_runtime: Any, lp_client: Any, lp_tenant: TenantInfo, wb_events: None
          ) -> Iterator[Hooks]:
    outbound = lp_runtime.outbound
    clock = outbound.now
    yield Hooks(lp_runtime, lp_client, lp_tenant)
    outbound.now = clock


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as rx:
        yield rx
