"""Base models every plugin builds on, and the core's own tables.

`TenantModel` is the base of every tenant-owned table: its select/update/delete/insert are
scoped to the current tenant, so plugin code cannot forget the filter; on PostgreSQL the same
tables also carry a row-level security policy (see migrations.ensure_rls).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Self

import orjson
import peewee

from .db import database
from .tenancy import current_tenant

UTC = dt.UTC


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


class UTCDateTimeField(peewee.DateTimeField):
    """Stores naive UTC, returns aware UTC: the same values on SQLite and PostgreSQL."""

    def db_value(self, value: Any) -> Any:
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return super().db_value(value)

    def python_value(self, value: Any) -> Any:
        value = super().python_value(value)
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class JSONField(peewee.TextField):
    """JSON stored as text: portable, and nothing in learnplat queries inside it."""

    def db_value(self, value: Any) -> Any:
        return None if value is None else orjson.dumps(value).decode()

    def python_value(self, value: Any) -> Any:
        return None if value is None else orjson.loads(value)


def default_table_name(model: type) -> str:
    """A model's table when it names none: ``<plugin>_<model>`` for a model of a plugin
    package ``learnplat_<plugin>`` (``Note`` in ``learnplat_notes`` -> ``notes_note``), so
    plugins never clash on a table; otherwise peewee's snake_case class name."""
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", model.__name__).lower()
    package = model.__module__.split(".")[0]
    if package.startswith("learnplat_"):
        return f"{package.removeprefix('learnplat_')}_{name}"
    return name


class BaseModel(peewee.Model):
    class Meta:
        database = database
        table_function = default_table_name


class Tenant(BaseModel):
    """A school. Not tenant-owned itself; operators manage it through the CLI."""

    slug = peewee.CharField(max_length=63, unique=True)
    name = peewee.CharField(max_length=200)
    enabled = peewee.BooleanField(default=True)
    disabled_plugins = JSONField(default=list)
    settings = JSONField(default=dict)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "learnplat_tenant"


class TenantDomain(BaseModel):
    tenant = peewee.ForeignKeyField(Tenant, backref="domain_rows", on_delete="CASCADE")
    domain = peewee.CharField(max_length=253, unique=True)

    class Meta:
        table_name = "learnplat_tenant_domain"


class TenantModel(BaseModel):
    """Base of tenant-owned tables: every query is limited to the current tenant."""

    tenant = peewee.ForeignKeyField(
        Tenant, on_delete="CASCADE", index=True, lazy_load=False, column_name="tenant_id"
    )

    @classmethod
    def _tenant_id(cls) -> int:
        return current_tenant().id

    @classmethod
    def select(cls, *fields: Any) -> peewee.ModelSelect[Self]:
        return super().select(*fields).where(cls.tenant == cls._tenant_id())

    @classmethod
    def update(cls, __data: Any = None, **update: Any) -> peewee.ModelUpdate:
        return super().update(__data, **update).where(cls.tenant == cls._tenant_id())

    @classmethod
    def delete(cls) -> peewee.ModelDelete:
        return super().delete().where(cls.tenant == cls._tenant_id())

    @classmethod
    def insert(cls, __data: Any = None, **insert: Any) -> peewee.ModelInsert:
        row = dict(__data or {}, **insert)
        return super().insert(cls._with_tenant(row))

    @classmethod
    def insert_many(cls, rows: Any, fields: Any = None) -> peewee.ModelInsert:
        if fields is not None:
            raise TypeError("TenantModel.insert_many takes dicts, so the tenant can be added")
        return super().insert_many([cls._with_tenant(dict(r)) for r in rows])

    @classmethod
    def _with_tenant(cls, row: dict[Any, Any]) -> dict[Any, Any]:
        tenant_id = cls._tenant_id()
        out: dict[Any, Any] = {}
        for key, value in row.items():
            # Field objects overload ==, so compare them by identity, names as strings.
            is_tenant = key is cls.tenant if isinstance(key, peewee.Field) else key in (
                "tenant", "tenant_id")
            if not is_tenant:
                out[key] = value
            elif value is not None and getattr(value, "id", value) != tenant_id:
                raise PermissionError("refusing to write a row for another tenant")
        out[cls.tenant] = tenant_id
        return out

    @classmethod
    def unscoped(cls) -> peewee.ModelSelect[Self]:
        """All tenants' rows. Only for operator code; RLS still applies on PostgreSQL."""
        return super().select()


class OutboxEvent(BaseModel):
    """The outbox: an event is written in the transaction of the change it describes (one
    row per recorded learnplat.contracts.Event, the payload type plugins declare)."""

    id = peewee.BigAutoField()
    tenant_id = peewee.IntegerField(index=True)
    name = peewee.CharField(max_length=120)
    payload = JSONField(default=dict)
    created_at = UTCDateTimeField(default=utcnow)
    status = peewee.CharField(max_length=10, default="pending", index=True)  # pending|done|failed
    attempts = peewee.IntegerField(default=0)
    next_attempt_at = UTCDateTimeField(default=utcnow, index=True)

    class Meta:
        table_name = "learnplat_event"


class EventDelivery(BaseModel):
    """One handler's delivery of one event: makes retries skip handlers that succeeded."""

    event = peewee.ForeignKeyField(OutboxEvent, on_delete="CASCADE", lazy_load=False)
    handler = peewee.CharField(max_length=200)
    status = peewee.CharField(max_length=10, default="pending")  # pending|done|failed
    attempts = peewee.IntegerField(default=0)
    last_error = peewee.TextField(null=True)
    delivered_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "learnplat_event_delivery"
        indexes = ((("event", "handler"), True),)


class IdempotentAnswer(TenantModel):
    """The first answer to a POST that carried an ``Idempotency-Key`` (learnplat.idempotency):
    written in the request's own transaction, replayed to a retry with the same key, caller
    and body until the retention (``server.idempotency_retention_hours``) has passed.

    The client's key is never stored: `key_hash` is a hash of it, and the body is encrypted
    with a key derived from it, so the table alone (a backup, a dump) reveals no answer (a
    login's tokens included)."""

    id = peewee.BigAutoField()
    caller = peewee.CharField(max_length=80)  # "user:<id>", or "addr:<client address>"
    key_hash = peewee.CharField(max_length=64)
    fingerprint = peewee.CharField(max_length=64)  # of method, path, query and body
    status = peewee.IntegerField()
    headers = JSONField(default=list)  # [[name, value], ...]: the ones worth replaying
    body = peewee.BlobField()  # nonce + AES-GCM ciphertext of the body bytes
    created_at = UTCDateTimeField(default=utcnow, index=True)

    class Meta:
        table_name = "learnplat_idempotency"
        indexes = ((("tenant", "caller", "key_hash"), True),)


CORE_MODELS: tuple[type[BaseModel], ...] = (Tenant, TenantDomain, OutboxEvent, EventDelivery,
                                            IdempotentAnswer)
