"""The API's timestamp format, defined once: the HTTP layer encodes JSON with `JSON_OPTIONS`,
and `api_timestamp()` writes a datetime exactly as that encoder does, for the places where a
plugin puts a time into a string (an error's fields, a JSON column, a message) by hand."""

from __future__ import annotations

import datetime as dt

import orjson

# UTC as "Z" rather than "+00:00"; a naive datetime is taken as UTC (the database's columns
# are UTC, see models.UTCDateTimeField).
JSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def api_timestamp(moment: dt.datetime) -> str:
    """`moment` as the API writes it: RFC 3339 / ISO 8601, UTC as ``Z``, microseconds only when
    there are any (``2026-12-07T09:17:41Z``, ``2026-12-07T09:17:41.250000Z``); a naive
    datetime is taken as UTC; another offset is kept (``+02:00``). The same string the JSON
    of a response holds for the same value, where ``moment.isoformat()`` gives ``+00:00``."""
    if not isinstance(moment, dt.datetime):
        raise TypeError(f"api_timestamp() takes a datetime, not {type(moment).__name__}")
    return orjson.dumps(moment, option=JSON_OPTIONS).decode()[1:-1]
