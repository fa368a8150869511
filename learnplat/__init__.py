"""learnplat: a multi-tenant backend for online learning platforms; every feature a plugin.

Plugins write ``from learnplat import hookimpl``.
"""

from __future__ import annotations

from .hookspecs import hookimpl, hookspec

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl", "hookspec"]
