"""Shared fixtures for learnplat's own tests (the generic ones come from learnplat.testing)."""

from __future__ import annotations
