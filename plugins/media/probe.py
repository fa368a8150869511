"""The duration of an uploaded video, read from its container where we can do that cheaply:
MP4/QuickTime keep it in moov/mvhd, found by walking box headers with a few small range reads
(moov may sit at the end of the file). Other formats: the instructor says it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

Reader = Callable[[int, int], bytes]  # the bytes [start, end) of the object
_MAX_BOXES = 256


def _boxes(read: Reader, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    pos, seen = start, 0
    while pos + 8 <= end and seen < _MAX_BOXES:
        seen += 1
        head = read(pos, min(end, pos + 16))
        if len(head) < 8:
            return
        size, kind, header = int.from_bytes(head[:4], "big"), head[4:8], 8
        if size == 1:
            if len(head) < 16:
                return
            size, header = int.from_bytes(head[8:16], "big"), 16
        elif size == 0:
            size = end - pos
        if size < header:
            return
        yield kind, pos + header, min(end, pos + size)
        pos += size


def mp4_duration(read: Reader, size: int) -> int | None:
    """Whole seconds (rounded up), or None when the file does not say."""
    try:
        for kind, body, end in _boxes(read, 0, size):
            if kind != b"moov":
                continue
            for child, cbody, _cend in _boxes(read, body, end):
                if child != b"mvhd":
                    continue
                data = read(cbody, cbody + 32)
                if data[:1] == b"\x01":
                    timescale = int.from_bytes(data[20:24], "big")
                    duration = int.from_bytes(data[24:32], "big")
                else:
                    timescale = int.from_bytes(data[12:16], "big")
                    duration = int.from_bytes(data[16:20], "big")
                if timescale <= 0 or duration in (0, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF):
                    return None
                return -(-duration // timescale)
            return None
    except (ValueError, OSError):
        return None
    return None
