"""Keyset (cursor) pagination: `?limit=` (1..100, default 20) and an opaque `?cursor=`.

The cursor encodes the sort values of the last row sent, so a page costs one indexed query
however deep it is, and rows inserted meanwhile neither repeat nor vanish.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import orjson
import peewee
from pydantic import BaseModel, Field

from .errors import ValidationFailed

T = TypeVar("T")


class PageQuery(BaseModel):
    limit: int = Field(20, ge=1, le=100, description="Items per page (max 100).")
    # Cursors are base64url: the pattern lets clients and fuzzers know what one looks like.
    cursor: str | None = Field(None, max_length=1000, pattern=r"^[A-Za-z0-9_-]+$",
                               description="The next_cursor of the previous page.")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def _encode_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"dt": value.isoformat()}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and "dt" in value:
        return dt.datetime.fromisoformat(value["dt"])
    return value


def _order_tag(order: Sequence[tuple[peewee.Field, bool]]) -> str:
    names = ",".join(f"{f.model.__name__}.{f.name}{'-' if desc else ''}" for f, desc in order)
    return hashlib.blake2s(names.encode(), digest_size=4).hexdigest()


def encode_cursor(values: Sequence[Any], order: Sequence[tuple[peewee.Field, bool]]) -> str:
    raw = orjson.dumps({"o": _order_tag(order), "v": [_encode_value(v) for v in values]})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_INT_MAX = 2**63 - 1


def _fits(field: peewee.Field, value: Any) -> bool:
    """A forged cursor must not reach the database with a value its column cannot compare
    (an overflowing integer, a string for an integer column): that would be a 500."""
    if isinstance(field, peewee.DateTimeField):
        return isinstance(value, dt.datetime)
    if isinstance(field, (peewee.IntegerField, peewee.AutoField, peewee.ForeignKeyField)):
        return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= _INT_MAX
    if isinstance(field, (peewee.CharField, peewee.TextField)):
        return isinstance(value, str) and "\x00" not in value
    return value is None or isinstance(value, (str, int, float))


def decode_cursor(cursor: str, order: Sequence[tuple[peewee.Field, bool]]) -> list[Any]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        values = [_decode_value(v) for v in data["v"]]
        ok = (data["o"] == _order_tag(order) and len(values) == len(order)
              and all(_fits(f, v) for (f, _), v in zip(order, values, strict=True)))
    except (ValueError, TypeError, KeyError):
        ok = False
    if not ok:
        raise ValidationFailed.field("cursor", "not a cursor of this list", "invalid_cursor")
    return values


def _after(order: Sequence[tuple[peewee.Field, bool]], values: Sequence[Any]) -> Any:
    """Rows strictly after `values` in `order`: (a > x) OR (a = x AND (b > y OR ...))."""
    field, desc = order[0]
    value = values[0]
    beyond = field < value if desc else field > value
    if len(order) == 1:
        return beyond
    return beyond | ((field == value) & _after(order[1:], values[1:]))


OrderItem = peewee.Field | peewee.Ordering | tuple[peewee.Field, bool]


def _normalize(order: Sequence[OrderItem]) -> list[tuple[peewee.Field, bool]]:
    """peewee's own `Model.field.desc()` / `.asc()` (or a bare field, ascending) as
    (field, descending) pairs."""
    out: list[tuple[peewee.Field, bool]] = []
    for item in order:
        if isinstance(item, peewee.Ordering):
            out.append((item.node, item.direction.upper() == "DESC"))
        elif isinstance(item, peewee.Field):
            out.append((item, False))
        else:
            field, descending = item
            out.append((field, bool(descending)))
    return out


def paginate(
    query: peewee.ModelSelect[Any],
    order: Sequence[OrderItem],
    page: PageQuery,
    serialize: Callable[[Any], Any] = lambda row: row,
    key: Callable[[Any], Sequence[Any]] | None = None,
) -> dict[str, Any]:
    """One page of `query` in `order`, written as for peewee's ``order_by``:
    ``[Note.created_at.desc(), Note.id.desc()]`` (a bare field is ascending); the last field
    must be unique so that the order is total.

    Returns ``{"items": [serialize(row), ...], "next_cursor": str | None}``. `key(row)` gives a
    row's sort values (default: the row's attributes named like the order fields).
    """
    order = _normalize(order)
    if page.cursor:
        query = query.where(_after(order, decode_cursor(page.cursor, order)))
    query = query.order_by(*[f.desc() if desc else f.asc() for f, desc in order])
    rows = list(query.limit(page.limit + 1))
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        values = key(last) if key else [getattr(last, f.name) for f, _ in order]
        next_cursor = encode_cursor(values, order)
    return {"items": [serialize(r) for r in rows], "next_cursor": next_cursor}
