"""The public face of the core for plugin authors: ``from learnplat.plugin import ...``.

Everything a plugin needs is re-exported here and listed in ``__all__``; these names follow
semantic versioning. Anything else under ``learnplat`` is internal and may change between
releases. docs/plugins.md documents each name.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from . import db
from .auth import AUTHENTICATED, PUBLIC, Principal
from .cli.helpers import echo_pages, echo_rows, json_option, read_pages, tenant_command, with_tenant
from .contracts import Action, Event, ServiceKey, Veto
from .each_tenant import EachTenantResult, each_tenant
from .errors import (
    BadRequest,
    Conflict,
    LearnplatError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
    Vetoed,
)
from .events import EventMessage
from .hookspecs import hookimpl, hookspec
from .http.endpoint import endpoint
from .models import JSONField, TenantModel, UTCDateTimeField, utcnow
from .pagination import Page, PageQuery, paginate
from .registry import EventHandler, HealthCheck, Permission, Route, TaskSpec
from .runtime import Runtime
from .tenancy import TenantInfo, current_tenant, tenant_context


class Schema(BaseModel):
    """Base class of request bodies: unknown fields are refused (422 naming the field) instead
    of silently ignored, and surrounding white space is stripped from strings. Response models
    may use plain ``pydantic.BaseModel``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def merge_extras(answers: list[dict[str, Any] | None], into: dict[str, Any] | None = None,
                 protected: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    """The one rule for merging what several plugins' "extras" hooks return (course detail,
    analytics, progress, enrollment summaries): answers are merged in plugin order; nested
    dicts merge key by key, other values replace; keys in `protected` (the document's own
    fields) are never replaced; None answers add nothing."""
    out: dict[str, Any] = into if into is not None else {}
    for answer in answers:
        for key, value in (answer or {}).items():
            if key in protected:
                continue
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                merge_extras([value], out[key])
            else:
                out[key] = value
    return out


__all__ = [  # noqa: RUF022  (grouped by use, as docs/plugins.md lists them)
    # hooks and what they return
    "hookimpl", "hookspec", "Route", "Permission", "TaskSpec", "EventHandler", "HealthCheck",
    # contracts between plugins
    "ServiceKey", "Event", "EventMessage", "Action", "Veto",
    # HTTP
    "endpoint", "Schema", "Field", "PUBLIC", "AUTHENTICATED", "Principal",
    "Page", "PageQuery", "paginate", "merge_extras",
    # data and tenancy
    "db", "TenantModel", "JSONField", "UTCDateTimeField", "utcnow", "TenantInfo",
    "current_tenant", "tenant_context", "Runtime",
    # commands and work across schools
    "tenant_command", "with_tenant", "json_option", "echo_pages", "echo_rows", "read_pages",
    "each_tenant", "EachTenantResult",
    # errors (problem+json with the right status)
    "LearnplatError", "BadRequest", "Unauthorized", "PermissionDenied", "NotFound", "Conflict",
    "Vetoed", "PayloadTooLarge", "UnsupportedMediaType", "ValidationFailed", "RateLimited",
]
