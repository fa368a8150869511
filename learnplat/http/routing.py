"""Helpers on Falcon URI templates shared by the registry, the app and the OpenAPI builder."""

from __future__ import annotations

import re

_FIELD = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+)(?:\([^)]*\))?)?}")

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def canonical_path(template: str) -> str:
    """'/courses/{id:int}' and '/courses/{course_id}' are the same route."""
    return _FIELD.sub("{}", template.rstrip("/") or "/")


def path_fields(template: str) -> list[tuple[str, str | None]]:
    """[(name, converter)] of a URI template."""
    return [(m.group(1), m.group(2)) for m in _FIELD.finditer(template)]


def openapi_path(template: str) -> str:
    return _FIELD.sub(lambda m: "{" + m.group(1) + "}", template)
