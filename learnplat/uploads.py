"""Receiving uploaded files, for every plugin that takes them (course images, media, photos):
the type is decided by the file's first bytes, never by its name or the client's
Content-Type; sizes are bounded while reading (413), empty files refused (422), names checked,
and bodies streamed to storage with a SHA-256 computed on the way, never held whole in memory.
"""

from __future__ import annotations

import hashlib
import tempfile
import unicodedata
import warnings
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import IO, Any

from .errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed

CHUNK = 1024 * 1024  # what one read takes from the request: bounded memory per upload
SNIFF_BYTES = 4096
MAX_FILENAME = 255


def sniff(head: bytes) -> str | None:
    """The media type the leading bytes of a file show, or None when unknown."""
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return "video/quicktime"
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        return "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"  # EBML: WebM or Matroska; browsers play WebM
    if head.startswith(b"OggS"):
        return "video/ogg"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "application/zip"  # also .docx/.pptx/.xlsx/.odp: see refine_zip()
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "application/x-ole-storage"  # legacy .doc/.ppt/.xls
    if head.startswith(b"\x1f\x8b"):
        return "application/gzip"
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "application/x-7z-compressed"
    return None


_OFFICE = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "odp": "application/vnd.oasis.opendocument.presentation",
    "odt": "application/vnd.oasis.opendocument.text",
}
_LEGACY_OFFICE = {"doc": "application/msword", "ppt": "application/vnd.ms-powerpoint",
                  "xls": "application/vnd.ms-excel"}


def refine(sniffed: str | None, filename: str) -> str | None:
    """Office documents are zip or OLE containers: the bytes say which container, the name
    which document. The name only narrows a type the bytes already proved."""
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if sniffed == "application/zip" and ext in _OFFICE:
        return _OFFICE[ext]
    if sniffed == "application/x-ole-storage" and ext in _LEGACY_OFFICE:
        return _LEGACY_OFFICE[ext]
    return sniffed


def check_filename(name: str | None, field: str = "file") -> str:
    """A client's file name, kept only as metadata (never in a storage key): refused (422)
    when it has path separators, control characters or is over 255 characters."""
    name = unicodedata.normalize("NFC", (name or "").strip())
    if not name:
        return ""
    if len(name) > MAX_FILENAME:
        raise ValidationFailed.field(field, f"the file name is over {MAX_FILENAME} characters",
                                     "filename_too_long")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise ValidationFailed.field(field, "the file name must not contain path separators",
                                     "bad_filename")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        raise ValidationFailed.field(field, "the file name must not contain control characters",
                                     "bad_filename")
    return name


class UploadReader:
    """Reads an upload stream chunk by chunk: counts it (413 past `limit`), hashes it, and
    lets the caller look at its first bytes before anything is stored."""

    def __init__(self, stream: Any, limit: int, what: str = "the file"):
        self._stream, self.limit, self.what = stream, limit, what
        self.size = 0
        self._sha = hashlib.sha256()
        self._head = b""
        self._peeked = False

    def _read(self) -> bytes:
        chunk: bytes = self._stream.read(CHUNK)
        if chunk:
            self.size += len(chunk)
            if self.size > self.limit:
                raise PayloadTooLarge(f"{self.what} is over {self.limit} bytes", limit=self.limit)
            self._sha.update(chunk)
        return chunk

    def head(self) -> bytes:
        """The first bytes (up to SNIFF_BYTES, fewer for a small file); b"" when empty."""
        if not self._peeked:
            self._peeked = True
            head = b""
            while len(head) < SNIFF_BYTES:
                chunk = self._read()
                if not chunk:
                    break
                head += chunk
            self._head = head
        return self._head[:SNIFF_BYTES]

    def chunks(self) -> Iterator[bytes]:
        """Every byte of the upload, the peeked head first."""
        self.head()
        if self._head:
            yield self._head
            self._head = b""
        while chunk := self._read():
            yield chunk

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


@dataclass(frozen=True)
class Received:
    key: str
    size: int
    sha256: str
    content_type: str


def receive(storage: Any, key: str, stream: Any, *, limit: int, allowed: Collection[str],
            filename: str = "", what: str = "the file") -> Received:
    """Stream an upload into `storage` under `key`: 422 when empty, 415 when its bytes are not
    one of `allowed` (checked before anything is stored), 413 past `limit`. On any failure
    nothing stays stored under `key`."""
    reader = UploadReader(stream, limit, what)
    head = reader.head()
    if not head:
        raise ValidationFailed.field("file", f"{what} is empty", "empty")
    content_type = refine(sniff(head), filename)
    if content_type is None or content_type not in allowed:
        raise UnsupportedMediaType(
            f"{what} is {content_type or 'of an unknown type'}; accepted: "
            f"{', '.join(sorted(allowed))}", code="unsupported_type", allowed=sorted(allowed))
    try:
        storage.put(key, reader.chunks(), content_type)
    except BaseException:
        # A partial object (a client gone mid-way, over the limit, the store full or
        # unreachable: 507 / 503). Storage.put removes it already; other stores may not.
        getattr(storage, "discard", storage.delete)(key)
        raise
    return Received(key=key, size=reader.size, sha256=reader.sha256, content_type=content_type)


def spool(stream: Any, limit: int, what: str = "the file") -> IO[bytes]:
    """Copy an upload stream to a temporary file (in memory while small) for a parser that needs
    to seek (Pillow); 413 past `limit`, 422 when empty."""
    out = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)
    reader = UploadReader(stream, limit, what)
    try:
        for chunk in reader.chunks():
            out.write(chunk)
    except BaseException:
        out.close()
        raise
    if reader.size == 0:
        out.close()
        raise ValidationFailed.field("file", f"{what} is empty", "empty")
    out.seek(0)
    return out


@dataclass(frozen=True)
class ImageLimits:
    formats: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF")
    max_width: int = 8000
    max_height: int = 8000
    min_side: int = 1


def inspect_image(fp: IO[bytes], limits: ImageLimits) -> tuple[str, int, int]:
    """(format, width, height) of a real, whole image within `limits`: 415 for what is not an
    image or another format, 422 for a damaged, too large or too small one."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fp) as im:
                fmt, (width, height) = im.format or "", im.size
                if fmt not in limits.formats:
                    raise UnsupportedMediaType(
                        f"{fmt} images are not accepted; use one of "
                        f"{', '.join(limits.formats)}", allowed=list(limits.formats))
                if width > limits.max_width or height > limits.max_height:
                    raise ValidationFailed.field(
                        "file", f"the image is {width}x{height}; at most "
                        f"{limits.max_width}x{limits.max_height}", "too_large")
                if min(width, height) < limits.min_side:
                    raise ValidationFailed.field(
                        "file", f"the image is {width}x{height}; each side needs at least "
                        f"{limits.min_side} pixels", "too_small")
                im.verify()
            fp.seek(0)
            with Image.open(fp) as im:
                im.load()  # a truncated or corrupt file fails here, not later
    except UnidentifiedImageError:
        raise UnsupportedMediaType("the file is not an image", code="not_an_image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValidationFailed.field("file", "the image has too many pixels",
                                     "too_large") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ValidationFailed.field("file", f"the image is damaged: {exc}", "corrupt") from None
    fp.seek(0)
    return fmt, width, height


def file_chunks(fp: IO[bytes], size: int = 65536) -> Iterator[bytes]:
    while chunk := fp.read(size):
        yield chunk
