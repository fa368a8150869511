"""The API's timestamp format has one definition: `learnplat.plugin.api_timestamp` writes a
datetime exactly as every JSON answer holds it (UTC as "Z", not isoformat()'s "+00:00")."""

from __future__ import annotations

import datetime as dt
import json

import falcon
import falcon.testing
import pytest
from pydantic import BaseModel

import learnplat.plugin as face
from learnplat.http.app import _json_handler
from learnplat.http.endpoint import dump

MOMENTS = [
    dt.datetime(2026, 12, 7, 9, 17, 41, 250000, tzinfo=dt.UTC),
    dt.datetime(2026, 12, 7, 9, 17, 41, tzinfo=dt.UTC),
    dt.datetime(2026, 12, 7, 9, 17, 41),  # naive: the database's UTC
    dt.datetime(2026, 12, 7, 11, 17, 41, tzinfo=dt.timezone(dt.timedelta(hours=2))),
]


def test_api_timestamp_writes_utc_with_z():
    assert face.api_timestamp(MOMENTS[0]) == "2026-12-07T09:17:41.250000Z"
    assert face.api_timestamp(MOMENTS[1]) == "2026-12-07T09:17:41Z"
    assert face.api_timestamp(MOMENTS[2]) == "2026-12-07T09:17:41Z"
    assert face.api_timestamp(MOMENTS[3]) == "2026-12-07T11:17:41+02:00"
    assert MOMENTS[1].isoformat() == "2026-12-07T09:17:41+00:00"  # what it replaces
    now = face.utcnow()
    assert dt.datetime.fromisoformat(face.api_timestamp(now)) == now  # reads back
    with pytest.raises(TypeError):
        face.api_timestamp(dt.date(2026, 12, 7))  # type: ignore[arg-type]


@pytest.mark.parametrize("moment", MOMENTS, ids=["micro", "whole", "naive", "offset"])
def test_api_timestamp_is_what_every_json_answer_holds(moment):
    expected = face.api_timestamp(moment)
    # @endpoint's encoder, and Falcon's JSON media handler (resp.media) of the app.
    assert json.loads(dump({"t": moment}))["t"] == expected
    assert json.loads(_json_handler().serialize({"t": moment}, falcon.MEDIA_JSON))["t"] == (
        expected)
    # A real answer through that handler.
    app = falcon.App()
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = _json_handler()

    class Clock:
        def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
            resp.media = {"t": moment}

    app.add_route("/clock", Clock())
    assert falcon.testing.TestClient(app).simulate_get("/clock").json["t"] == expected


@pytest.mark.parametrize("moment", [m for m in MOMENTS if m.tzinfo is not None],
                         ids=["micro", "whole", "offset"])
def test_response_models_write_the_same(moment):
    """`@endpoint(response=Model)` answers go through pydantic's serializer: same format."""

    class Out(BaseModel):
        t: dt.datetime

    assert json.loads(dump(Out(t=moment)))["t"] == face.api_timestamp(moment)


def test_api_timestamp_is_public_and_documented():
    from learnplat.plugin import api_timestamp  # the public face

    assert "api_timestamp" in face.__all__ and api_timestamp is face.api_timestamp
