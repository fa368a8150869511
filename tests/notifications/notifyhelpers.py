"""Helpers shared by the notifications tests (a module of its own: several test directories'
conftest modules cannot be imported by name in one pytest run)."""

from __future__ import annotations

from typing import Any


def kinds(client: Any, **params: Any) -> list[str]:
    """The kinds of the caller's notifications, newest first."""
    return [n["kind"] for n in client.get("/notifications", params=params).json["items"]]
