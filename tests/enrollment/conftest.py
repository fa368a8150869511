"""Fixtures of the enrollment tests: a published course, the CLI and a real gunicorn serving
the test database (helpers in enrollhelpers.py; the query counter is learnplat.testing's
`lp_queries`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from enrollhelpers import PublishedCourse, publish_course

from learnplat.testing import serve_with_gunicorn


@pytest.fixture
def published(lp_client: Any, lp_users: Any) -> PublishedCourse:
    return publish_course(lp_client, lp_users)


@pytest.fixture
def enroll_cli(lp_cli: Any) -> Any:
    return lp_cli


@pytest.fixture
def live_server(lp_runtime: Any, lp_database: Any, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[str]:
    """gunicorn (3 workers x 4 threads) serving the test database; yields its base URL.
    Booting takes ~3 s on two cores, so the race scenarios share one test (and one server)."""
    with serve_with_gunicorn(lp_runtime, lp_database, tmp_path_factory.mktemp("gunicorn"),
                             workers=3) as url:
        yield url
