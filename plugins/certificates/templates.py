"""A school's certificate template: layout and colours (JSON) and its logo and signature
images, validated with Pillow at upload time and stored re-encoded as PNG (so what reportlab
reads later is always a clean image, never the uploaded bytes)."""

from __future__ import annotations

import io
import secrets
import warnings
from typing import Any

from PIL import Image, UnidentifiedImageError

from learnplat.plugin import (
    NotFound,
    PayloadTooLarge,
    Runtime,
    ValidationFailed,
    current_tenant,
    db,
    tenant_context,
    utcnow,
)

from .models import CertificateTemplate
from .render import Template
from .schemas import TemplateOut

IMAGE_MAX_BYTES = 2 * 1024 * 1024
IMAGE_MAX_SIDE = 4000
IMAGE_STORED_SIDE = 800  # 300 dpi at the 160 pt a signature gets; keeps every render fast
IMAGES = ("logo", "signature")


def read_upload(stream: Any, limit: int = IMAGE_MAX_BYTES) -> bytes:
    data = bytearray()
    while chunk := stream.read(65536):
        data += chunk
        if len(data) > limit:
            raise PayloadTooLarge(f"the image is over {limit} bytes", limit=limit)
    if not data:
        raise ValidationFailed.field("file", "the file is empty", "empty")
    return bytes(data)


def normalized_png(data: bytes) -> bytes:
    """The upload as a PNG at most IMAGE_STORED_SIDE pixels wide; 422 when it is not a whole
    PNG, JPEG or WebP image within IMAGE_MAX_SIDE."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                if im.format not in ("PNG", "JPEG", "WEBP"):
                    raise ValidationFailed.field(
                        "file", f"{im.format} images are not accepted; use PNG, JPEG or WebP",
                        "unsupported_format")
                if max(im.size) > IMAGE_MAX_SIDE:
                    raise ValidationFailed.field(
                        "file", f"the image is {im.size[0]}x{im.size[1]}; at most "
                                f"{IMAGE_MAX_SIDE} pixels a side", "too_large")
                im.load()
                image = im.convert("RGBA")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValidationFailed.field("file", "the file is not an image (PNG, JPEG or WebP)",
                                     "not_an_image") from None
    image.thumbnail((IMAGE_STORED_SIDE, IMAGE_STORED_SIDE))
    out = io.BytesIO()
    image.save(out, "PNG", optimize=False)
    return out.getvalue()


class Templates:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    def _row(self, create: bool = False) -> CertificateTemplate | None:
        row = CertificateTemplate.select().first()
        if row is None and create:
            row = CertificateTemplate.create(settings={})
        return row

    def describe(self) -> TemplateOut:
        raw: dict[str, Any] = dict(current_tenant().setting("certificates.template", {}) or {})
        row = self._row()
        if row is not None:
            raw.update(row.settings or {})
        tpl = Template.from_settings(raw)
        return TemplateOut(orientation=tpl.orientation, heading=tpl.heading,
                           statement=tpl.statement, signature_label=tpl.signature_label,
                           primary_color=tpl.primary_color, accent_color=tpl.accent_color,
                           text_color=tpl.text_color, logo=bool(row and row.logo_key),
                           signature=bool(row and row.signature_key))

    def update(self, fields: dict[str, Any]) -> TemplateOut:
        with db.transaction():
            row = self._row(create=True)
            assert row is not None
            row.settings = {**(row.settings or {}), **fields}
            row.updated_at = utcnow()
            row.save()
        return self.describe()

    def set_image(self, which: str, stream: Any) -> TemplateOut:
        png = normalized_png(read_upload(stream))
        key = f"certificates/template/{which}-{secrets.token_hex(8)}.png"
        storage = self.runtime.storage
        storage.put(key, [png], "image/png")
        try:
            with db.transaction():
                row = self._row(create=True)
                assert row is not None
                old = getattr(row, f"{which}_key")
                setattr(row, f"{which}_key", key)
                row.updated_at = utcnow()
                row.save()
                self._delete_after_commit(old)
        except BaseException:
            storage.discard(key)  # nothing points at it
            raise
        return self.describe()

    def remove_image(self, which: str) -> None:
        with db.transaction():
            row = self._row()
            old = getattr(row, f"{which}_key") if row else ""
            if row is None or not old:
                raise NotFound(f"the template has no {which}")
            setattr(row, f"{which}_key", "")
            row.save()
            self._delete_after_commit(old)

    def _delete_after_commit(self, key: str) -> None:
        if not key:
            return
        storage, tenant = self.runtime.storage, current_tenant()

        def drop() -> None:
            with tenant_context(tenant):
                storage.delete(key)

        db.on_commit(drop)
