"""Hook implementations of the progress plugin (the module its entry point registers)."""

from __future__ import annotations
