"""The benchmark's baseline: a bare Falcon app answering a fixed 20-course JSON body (the shape
and size of a catalogue page), served like learnplat by gunicorn (gthread, 2 workers):

    gunicorn --no-control-socket -k gthread --threads 4 -w 2 bench.baseline:app

Every learnplat figure of bin/bench is also given as a ratio to this app's requests/s measured
in the same round: the ratio says what learnplat's own work costs, whatever the machine.
"""

from __future__ import annotations

from typing import Any

import falcon
import orjson


def _course(i: int) -> dict[str, Any]:
    return {
        "id": 1000 + i, "title": f"Course {i}: data for everyone", "status": "published",
        "description": "A benchmark course. " * 8, "language": "en", "level": "beginner",
        "owner_id": 7, "tags": ["python", "data"], "image_url": None, "thumbnail_url": None,
        "rating": {"average": 4.2, "count": 12}, "published_at": "2026-11-01T10:00:00Z",
        "created_at": "2026-10-01T10:00:00Z", "updated_at": "2026-11-01T10:00:00Z",
    }


BODY = orjson.dumps({"items": [_course(i) for i in range(20)], "next_cursor": "MTAyMA"})


class Courses:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.data = BODY
        resp.content_type = falcon.MEDIA_JSON


class Health:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.data = b'{"status":"ok"}'
        resp.content_type = falcon.MEDIA_JSON


app = falcon.App()
app.add_route("/courses", Courses())
app.add_route("/healthz", Health())
