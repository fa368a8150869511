"""The public face of the core for plugin authors: ``from learnplat.plugin import ...``.

Everything a plugin needs is re-exported here and listed in ``__all__``, with two sub-faces
where they read better: ``learnplat.plugin.cli`` (click commands) and
``learnplat.plugin.testing`` (pytest fixtures and servers for a plugin's tests). These names
follow semantic versioning; anything else under ``learnplat`` is internal and may change
between releases, and ``python -m learnplat.boundaries`` refuses a plugin that imports it.
docs/plugins.md documents each name.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Set
from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    ValidationInfo,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from .. import db, uploads
from ..answers import bump_generation, computing, valid_until
from ..auth import AUTHENTICATED, PUBLIC, Principal
from ..cli.helpers import (
    echo_json,
    echo_pages,
    echo_rows,
    json_option,
    read_pages,
    tenant_command,
    with_tenant,
)
from ..client_address import rate_limit_key
from ..contracts import Action, Event, Plugin, Record, ServiceKey, Sibling, Veto
from ..each_tenant import EachTenantResult, each_tenant
from ..errors import (
    BadRequest,
    Conflict,
    LearnplatError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ProblemCode,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
    UnsafeURL,
    UnsupportedMediaType,
    ValidationFailed,
    Vetoed,
)
from ..events import EventMessage
from ..hookspecs import hookimpl, hookspec
from ..http import conditional
from ..http.endpoint import (
    FORM,
    JSON,
    MULTIPART,
    body_stream,
    dump,
    endpoint,
    multipart_file,
    multipart_parts,
)
from ..http.serving import send_object
from ..keyring import ActiveKey, RsaKeyRing, TenantKeyRing
from ..kv import RedisScript, StoreUnavailable
from ..models import UTC, JSONField, TenantModel, UTCDateTimeField, utcnow
from ..models import BaseModel as SharedModel
from ..outbound.sink import (
    MESSAGE_STATUSES,
    Answer,
    AttemptInfo,
    DestinationInfo,
    MessageInfo,
    NotReady,
    OutboundRequest,
    Sink,
    Verdict,
)
from ..pagination import Page, PageQuery, paginate
from ..registry import ROLES, EventHandler, HealthCheck, Permission, Route, TaskSpec
from ..runtime import Runtime
from ..schema_doc import (
    OMIT,
    Variant,
    Variants,
    describe_strings,
    not_nullable,
    union_schema,
    variant_models,
)
from ..secret_keys import EncryptedAtRest, SecretBox, SecretScan
from ..seeding import Seed
from ..tenancy import TenantInfo, current_tenant, tenant_context
from ..timestamps import api_timestamp


class Schema(BaseModel):
    """Base class of request bodies: unknown fields are refused (422 naming the field) instead
    of silently ignored, surrounding white space is stripped from strings, and a NUL character
    in any string is a 422 (PostgreSQL cannot store one: it would be a 500). Response models
    may use plain ``pydantic.BaseModel``.

    A body whose fields combine in a few ways only (a rule its model validator checks:
    exactly one audience, a completion or a heartbeat) is documented as the union of those
    shapes, so that generated clients get one typed class per shape: ``documented_as =
    Variants(Variant("HeartbeatIn", "A video heartbeat.", completed=(None, None), ...), ...,
    keyword="oneOf", discriminator=None)``. Each `Variant` is a model of the class's own
    fields with the overrides given (``Field(...)``: same type, other constraints;
    ``(annotation, default)``; ``OMIT``: no such field), made for the document only (it
    never validates: the class and its validators do); the class's schema is then its title,
    description, the ``oneOf``/``anyOf`` of the variants (with OpenAPI's ``discriminator``
    when a field is a one-value ``Literal`` in each) and its ``json_schema_extra`` (its
    ``examples``)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    # Fields a client may omit but not send as null (PATCH bodies): the OpenAPI document
    # leaves null out of their schema (the model still refuses it with a validator).
    omit_not_null: ClassVar[tuple[str, ...]] = ()
    # The shapes the document gives this body (see the class docstring); None: its fields.
    documented_as: ClassVar[Variants | None] = None

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        if cls.documented_as is not None:
            models = variant_models(cls, Schema, cls.documented_as)
            return union_schema(cls, models, cls.documented_as, handler)
        # The document says what the API accepts: strings are stripped before their length
        # is checked and may hold no NUL.
        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        describe_strings(target)
        not_nullable(target, cls.omit_not_null)
        return schema

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_as_number(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic's lax mode reads true/false as 1/0 for a number field; the document says
        # "integer" or "number", and so does the API.
        if isinstance(value, bool) and info.field_name is not None and not _admits_bool(
                cls.model_fields[info.field_name].annotation):
            raise ValueError("expected a number, not true or false")
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if _has_nul(value):
            raise ValueError("must not contain NUL (\\u0000) characters")
        return _no_tiny(value)


# Near the smallest normal single-precision float: PostgreSQL's REAL (a peewee FloatField)
# refuses smaller ones ("value out of range: underflow"), which was a 500. Nothing a request
# means is that small; a non-zero magnitude below it is read as _TINY (same sign), so that
# bounds such as "> 0" still hold.
_TINY = 1e-30


def _admits_bool(annotation: Any) -> bool:
    """Whether a field's type takes a JSON boolean as itself (bool, Any, a union or Literal
    with one, or anything that is not a plain number)."""
    if annotation in (bool, Any):
        return True
    if annotation in (int, float):
        return False
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return any(isinstance(a, bool) for a in args)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_admits_bool(a) for a in args if a is not type(None))
    if typing.get_origin(annotation) is typing.Annotated:
        return _admits_bool(args[0])
    return True


def _no_tiny(value: Any) -> Any:
    if isinstance(value, float) and value != 0.0 and abs(value) < _TINY:
        return math.copysign(_TINY, value)
    if isinstance(value, list) and any(isinstance(v, float) for v in value):
        return [_no_tiny(v) for v in value]
    return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_has_nul(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False


def merge_extras(answers: list[dict[str, Any] | None], into: dict[str, Any] | None = None,
                 protected: Set[str] = frozenset()) -> dict[str, Any]:
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
    # the plugin object, hooks and what they return
    "Plugin", "hookimpl", "hookspec", "Route", "Permission", "ROLES", "TaskSpec",
    "EventHandler", "HealthCheck",
    # contracts between plugins
    "ServiceKey", "Sibling", "Record", "Event", "EventMessage", "Action", "Veto",
    # HTTP
    "endpoint", "JSON", "FORM", "dump", "Schema", "Field", "PUBLIC", "AUTHENTICATED", "Principal",
    # a body documented as the union of its shapes (Schema.documented_as)
    "Variant", "Variants", "OMIT",
    "rate_limit_key", "StoreUnavailable", "bump_generation", "conditional",
    "computing", "valid_until", "RedisScript", "Page", "PageQuery", "paginate", "merge_extras",
    # files: receiving uploads (type by content, limits, sha256) and sending stored objects
    "MULTIPART", "body_stream", "multipart_parts", "multipart_file", "uploads", "send_object",
    # data and tenancy
    "db", "TenantModel", "SharedModel", "JSONField", "UTCDateTimeField", "utcnow", "UTC",
    "api_timestamp",
    "TenantInfo", "current_tenant", "tenant_context", "Runtime",
    # keys and secrets at rest: a per-tenant Ed25519 key ring, register_encrypted_at_rest
    "TenantKeyRing", "RsaKeyRing", "ActiveKey", "EncryptedAtRest", "SecretScan", "SecretBox",
    # commands and work across schools
    "tenant_command", "with_tenant", "json_option", "echo_json", "echo_pages", "echo_rows",
    "read_pages", "each_tenant", "EachTenantResult",
    # generated data sets: the seed_tenant hook's argument
    "Seed",
    # errors (problem+json with the right status)
    "LearnplatError", "BadRequest", "Unauthorized", "PermissionDenied", "NotFound", "Conflict",
    "Vetoed", "PayloadTooLarge", "UnsupportedMediaType", "ValidationFailed", "RateLimited",
    "ServiceUnavailable",
    # the problem codes a plugin declares (Plugin.problems; the reference page's catalogue)
    "ProblemCode",
    # delivery to a school's other systems (register_sinks; runtime.outbound)
    "Sink", "OutboundRequest", "Answer", "Verdict", "DestinationInfo", "MessageInfo",
    "AttemptInfo", "MESSAGE_STATUSES", "UnsafeURL", "NotReady",
]
