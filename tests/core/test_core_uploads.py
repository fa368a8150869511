"""The core's file helpers: types by content, file names, bounded streamed uploads, ranges."""

from __future__ import annotations

import hashlib
import io

import pytest

from learnplat.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from learnplat.http.serving import parse_range
from learnplat.uploads import check_filename, receive, refine, sniff


@pytest.mark.parametrize("head, expected", [
    (b"\x00\x00\x00\x18ftypisom", "video/mp4"),
    (b"\x00\x00\x00\x14ftypqt  ", "video/quicktime"),
    (b"\x1a\x45\xdf\xa3\x01", "video/webm"),
    (b"OggS\x00", "video/ogg"),
    (b"%PDF-1.7", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff\xe0", "image/jpeg"),
    (b"GIF89a", "image/gif"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
    (b"PK\x03\x04", "application/zip"),
    (b"<html>", None),
    (b"", None),
])
def test_sniff(head, expected):
    assert sniff(head) == expected


def test_a_name_only_narrows_a_container():
    assert refine("application/zip", "deck.pptx").endswith("presentationml.presentation")
    assert refine("application/zip", "deck.pdf") == "application/zip"
    assert refine("application/pdf", "x.pptx") == "application/pdf"
    assert refine(None, "clip.mp4") is None


@pytest.mark.parametrize("name", ["../x", "a/b", "a\\b", "..", "nul\x00", "bell\x07",
                                  "rtl\u202etxt.exe", "x" * 256])
def test_bad_filenames(name):
    with pytest.raises(ValidationFailed):
        check_filename(name)


def test_good_filenames():
    assert check_filename("  Übung 1 (final).pdf ") == "Übung 1 (final).pdf"
    assert check_filename(None) == ""


class FakeStorage:
    def __init__(self):
        self.objects: dict[str, bytes] = {}

    def put(self, key, chunks, content_type=None):
        data = b""
        for chunk in chunks:
            data += chunk
            self.objects[key] = data  # partially written, as a driver would
        return None

    def delete(self, key):
        return self.objects.pop(key, None) is not None


def test_receive_streams_hashes_and_cleans_up():
    store = FakeStorage()
    data = b"%PDF-1.4 " + bytes(range(256)) * 10_000
    got = receive(store, "k", io.BytesIO(data), limit=len(data), allowed={"application/pdf"})
    assert got.size == len(data) and got.sha256 == hashlib.sha256(data).hexdigest()
    assert store.objects["k"] == data
    with pytest.raises(PayloadTooLarge):
        receive(store, "big", io.BytesIO(data), limit=len(data) - 1, allowed={"application/pdf"})
    assert "big" not in store.objects  # the partial object was deleted
    with pytest.raises(UnsupportedMediaType):
        receive(store, "t", io.BytesIO(b"<html>" * 100), limit=10**6, allowed={"application/pdf"})
    with pytest.raises(ValidationFailed):
        receive(store, "e", io.BytesIO(b""), limit=10, allowed={"application/pdf"})
    assert set(store.objects) == {"k"}


@pytest.mark.parametrize("header, size, expected", [
    (None, 100, None),
    ("bytes=0-9", 100, (0, 10)),
    ("bytes=90-", 100, (90, 100)),
    ("bytes=-10", 100, (90, 100)),
    ("bytes=-1000", 100, (0, 100)),
    ("bytes=0-1000", 100, (0, 100)),
    ("bytes=99-99", 100, (99, 100)),
    ("bytes=100-", 100, False),
    ("bytes=-0", 100, False),
    ("bytes=5-2", 100, None),      # invalid: ignored, the whole object
    ("bytes=0-1,5-9", 100, None),  # several ranges: the whole object
    ("items=0-9", 100, None),
    ("bytes=0-", 0, False),
])
def test_parse_range(header, size, expected):
    assert parse_range(header, size) == expected
