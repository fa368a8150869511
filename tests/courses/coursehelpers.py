"""Helpers for the courses tests: image uploads (the query counter is
learnplat.testing.count_queries)."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image


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
