"""Hookspecs the sample plugin publishes for other plugins (like pytest_addhooks)."""

from __future__ import annotations

from learnplat.plugin import hookspec


@hookspec
def sample_decorate_greeting(greeting: str) -> str:
    """Return a decorated greeting; every answer is joined by the /sample/hello route."""
