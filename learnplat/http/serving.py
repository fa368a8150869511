"""Sending a stored object as an HTTP response: validators (ETag, Last-Modified, 304), single
byte ranges (206, 416) and streaming from storage, never reading the object whole."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from email.utils import format_datetime, parsedate_to_datetime

import falcon

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")

Opener = Callable[[int | None, int | None], Iterator[bytes]]


def parse_range(header: str | None, size: int) -> tuple[int, int] | bool | None:
    """The [start, end) of a single-range header within `size`; None to send the whole object
    (no header, several ranges or a syntax we ignore, as RFC 9110 allows); False when the
    range cannot be satisfied (416)."""
    if not header:
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if match is None:
        return None  # multiple ranges or another unit: the whole object
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # a suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            return False
        return max(0, size - n), size
    start = int(first)
    if start >= size:
        return False
    end = size if not last else min(size, int(last) + 1)
    if end <= start:
        return None  # last < first is a syntax error: ignore the header
    return start, end


def _http_date(when: dt.datetime) -> str:
    return format_datetime(when.astimezone(dt.UTC).replace(microsecond=0), usegmt=True)


def _not_modified(req: falcon.Request, etag: str, last_modified: dt.datetime | None) -> bool:
    inm = req.get_header("If-None-Match")
    if inm:
        return etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*"
    ims = req.get_header("If-Modified-Since")
    if ims and last_modified is not None:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
        return last_modified.replace(microsecond=0) <= since
    return False


def send_object(req: falcon.Request, resp: falcon.Response, *, size: int, content_type: str,
                etag: str, last_modified: dt.datetime | None, opener: Opener,
                cache_control: str = "private, max-age=3600") -> None:
    """Answer GET or HEAD for an object of `size` bytes; `opener(start, end)` streams the bytes
    [start, end) (None, None: all). `etag` is a quoted strong validator."""
    resp.set_header("ETag", etag)
    resp.set_header("Accept-Ranges", "bytes")
    resp.set_header("Cache-Control", cache_control)
    if last_modified is not None:
        resp.set_header("Last-Modified", _http_date(last_modified))
    if _not_modified(req, etag, last_modified):
        resp.status = 304
        return
    wanted = parse_range(req.get_header("Range"), size)
    if_range = req.get_header("If-Range")
    if wanted is not None and if_range and if_range.strip() != etag:
        wanted = None  # the client's copy is stale: send the whole new object
    resp.content_type = content_type
    if wanted is False:
        raise falcon.HTTPRangeNotSatisfiable(size)
    if wanted is None:
        resp.status = 200
        start, end = None, None
        resp.content_length = size
    else:
        assert isinstance(wanted, tuple)
        start, end = wanted
        resp.status = 206
        resp.content_length = end - start
        resp.set_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
    if req.method == "HEAD":
        return
    resp.stream = opener(start, end)
