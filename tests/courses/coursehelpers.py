"""Helpers for the courses tests: a SQL query counter and image uploads."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from PIL import Image


class QueryCounter(logging.Handler):
    """Counts the SQL statements peewee runs (it logs each one at DEBUG on 'peewee')."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.queries: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.queries.append(str(record.msg))


@contextmanager
def count_queries() -> Iterator[QueryCounter]:
    logger = logging.getLogger("peewee")
    counter = QueryCounter()
    level = logger.level
    logger.addHandler(counter)
    logger.setLevel(logging.DEBUG)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
        logger.setLevel(level)


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (64, 48), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (200, 30, 30) if mode == "RGB" else None).save(out, fmt)
    return out.getvalue()


def upload(client: Any, cid: int, data: bytes, name: str = "file", filename: str = "a.png",
           content_type: str = "image/png") -> Any:
    boundary = "lpboundary7d3f"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n").encode() \
        + data + f"\r\n--{boundary}--\r\n".encode()
    return client.post(f"/courses/{cid}/image", body=body,
                       headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
