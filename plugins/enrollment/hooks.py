"""Hook implementations of the enrollment plugin (the module its entry point registers)."""

from __future__ import annotations
