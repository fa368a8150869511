"""Fixtures for the core's tests (defined in corehelpers.py, a uniquely named module, so test
modules can import its helpers without clashing with other directories' conftest.py)."""

from __future__ import annotations

from corehelpers import (  # noqa: F401
    _core_app,
    _core_runtime,
    client,
    core_app,
    core_database,
    core_runtime,
    fresh_db,
    module_server,
    tenant_a,
    tenant_b,
)
