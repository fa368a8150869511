"""Hook implementations of the courses plugin (the module its entry point registers)."""

from __future__ import annotations
