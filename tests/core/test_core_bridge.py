"""The buffered ASGI→WSGI bridge (learnplat/http/bridge.py): one hand-off for a small answer,
bounded streaming for a large one, a 500 when the app lets an error out."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from learnplat.http.bridge import BUFFER_BYTES, BufferedBridge

SCOPE = {"type": "http", "method": "POST", "path": "/echo", "query_string": b"",
         "http_version": "1.1", "headers": [(b"content-type", b"application/json"),
                                             (b"content-length", b"7")]}


def run(app: Any, body: bytes = b'{"a":1}') -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with ThreadPoolExecutor(2) as pool:
        asyncio.run(BufferedBridge(app, pool)(dict(SCOPE), body, send))
    return sent


def test_a_small_answer_is_sent_whole_with_the_request_body_read_by_the_app() -> None:
    def echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        size = int(environ["CONTENT_LENGTH"])
        data = environ["wsgi.input"].read(size)
        start_response("201 Created", [("Content-Type", "application/json")])
        return [b"[", data, b"]"]

    sent = run(echo)
    assert sent == [
        {"type": "http.response.start", "status": 201,
         "headers": [(b"content-type", b"application/json")]},
        {"type": "http.response.body", "body": b'[{"a":1}]'},
    ]


def test_a_large_answer_streams_and_its_iterable_is_closed() -> None:
    closed = []
    chunk = b"x" * 65536
    count = (BUFFER_BYTES // len(chunk)) * 4

    class Download:
        def __iter__(self):
            for _ in range(count):
                yield chunk

        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: Any) -> Download:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return Download()

    sent = run(app)
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert sent[0]["status"] == 200
    assert b"".join(m["body"] for m in bodies) == chunk * count
    assert all(len(m["body"]) <= len(chunk) for m in bodies)  # never the whole file at once
    assert bodies[-1] == {"type": "http.response.body", "body": b""}
    assert closed == [True]


def test_write_callable_and_an_escaping_error() -> None:
    def writer(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [])
        write(b"a")
        return [b"b"]

    assert run(writer)[-1]["body"] == b"ab"

    def broken(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise RuntimeError("boom")

    sent = run(broken)
    assert sent[0]["status"] == 500 and b"internal_error" in sent[1]["body"]
