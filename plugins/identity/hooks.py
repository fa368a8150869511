"""Hook implementations of the identity plugin (the module its entry point registers)."""

from __future__ import annotations
