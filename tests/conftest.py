"""Shared fixtures for learnplat's own tests (the generic ones come from learnplat.testing)."""

from __future__ import annotations

import pytest

from learnplat.testing import backend

ONE_BACKEND_REASON = "backend-independent: runs in the SQLite pass"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`@pytest.mark.one_backend`: the test runs in the SQLite pass only, skipped in the
    PostgreSQL + Redis pass (bin/test runs the suite twice; a second run of such a test costs
    minutes and can catch nothing the first did not).

    What qualifies: a test whose outcome cannot depend on the database or the cache behind it,
    because it never reaches them, or reaches them only the way hundreds of tests on both
    backends do (a school looked up by host) while what it checks is elsewhere: code or document
    generation, a page rendered in a browser, docs and text checks, a setting refused at
    start-up before the database is used. Anything that writes or queries data, migrates,
    runs a worker, or runs a plugin's own tests on "the current backend" does not qualify."""
    if backend() == "sqlite":
        return
    skip = pytest.mark.skip(reason=ONE_BACKEND_REASON)
    for item in items:
        if item.get_closest_marker("one_backend") is not None:
            item.add_marker(skip)
