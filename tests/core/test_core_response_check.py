"""`server.check_responses`: an answer that is not the model its @endpoint declares (a missing
field, a key the model does not declare, a value of another type) is a 500 while the check is
on (learnplat.testing turns it on for every test request), and goes out unchecked when it is
off (production's default)."""

from __future__ import annotations

import datetime as dt
import logging
from types import SimpleNamespace
from typing import Any

import falcon
import falcon.testing
import pytest
from pydantic import BaseModel

from learnplat.core_plugin import Health, HealthResource
from learnplat.http.app import create_app
from learnplat.http.endpoint import ResponseMismatch, check_response, endpoint, spec_of
from learnplat.settings import ServerSettings, Settings, load_settings
from learnplat.testing import Client


class ItemOut(BaseModel):
    id: int
    title: str
    at: dt.datetime
    note: str | None = None
    tags: dict[str, Any] = {}


class PageOut(BaseModel):
    items: list[ItemOut]
    next_cursor: str | None


class QueuedOut(BaseModel):
    queued: int


GOOD = {"id": 1, "title": "t", "at": dt.datetime(2026, 12, 7, tzinfo=dt.UTC)}


def _app(answer: Any, *, check: bool, response: type[BaseModel] = ItemOut,
         status: int | None = None) -> falcon.testing.TestClient:
    """A bare app whose one responder answers `answer` (with `status`), the check `check`."""
    settings = Settings(server=ServerSettings(check_responses=check))
    passage = SimpleNamespace(gate=SimpleNamespace(runtime=SimpleNamespace(settings=settings)))

    class Context:  # what RequestContextMiddleware puts on req.context for a route
        def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
            req.context.principal = None
            req.context.max_body = 1 << 20
            req.context.passage = passage

    class Thing:
        @endpoint(permission="public", response=response, also=(202,),
                  response_for={202: QueuedOut})
        def on_get(self, req: falcon.Request, resp: falcon.Response) -> Any:
            if status is not None:
                resp.status = status
            return answer

    app = falcon.App(middleware=[Context()])
    app.add_route("/thing", Thing())

    def reraise(req: Any, resp: Any, ex: Exception, params: Any) -> None:
        raise ex  # out of the test client, to be read (the app answers 500: see the last test)

    app.add_error_handler(ResponseMismatch, reraise)
    return falcon.testing.TestClient(app)


def _get(answer: Any, **kw: Any) -> falcon.testing.Result:
    return _app(answer, **kw).simulate_get("/thing")


@pytest.mark.parametrize("answer, says", [
    ({"title": "t", "at": GOOD["at"]}, "id\n  Field required"),  # a field missing
    ({**GOOD, "colour": "red"}, "keys ItemOut does not declare: colour"),  # undeclared key
    ({**GOOD, "id": "1"}, "Input should be a valid integer"),  # a number as a string
    ({**GOOD, "id": 1.0}, "Input should be a valid integer"),  # a float for an integer
    ({**GOOD, "title": 5}, "Input should be a valid string"),
    ({**GOOD, "at": "yesterday"}, "at\n"),
], ids=["missing", "extra", "string-for-int", "float-for-int", "int-for-str", "not-a-time"])
def test_a_dict_that_is_not_the_declared_model_fails_under_the_check(answer, says):
    with pytest.raises(ResponseMismatch, match="ItemOut") as caught:
        _get(answer, check=True)
    assert says in str(caught.value)
    assert "Thing.on_get" in str(caught.value)  # names the responder


def test_the_same_dict_goes_out_unchecked_with_the_flag_off():
    r = _get({**GOOD, "colour": "red", "id": "1"}, check=False)
    assert r.status_code == 200 and r.json["colour"] == "red"


def test_the_declared_shape_passes_as_a_dict_or_a_model():
    for answer in (GOOD, {**GOOD, "note": None, "tags": {"free": {"form": [1, 2]}}},
                   ItemOut.model_validate(GOOD)):
        r = _get(answer, check=True)
        assert r.status_code == 200 and r.json["id"] == 1


def test_nested_items_and_free_form_objects():
    page = {"items": [GOOD, {**GOOD, "tags": {"anything": {"goes": 1}}}], "next_cursor": None}
    assert _get(page, check=True, response=PageOut).status_code == 200
    bad = {"items": [GOOD, {**GOOD, "secret": "x"}], "next_cursor": None}
    with pytest.raises(ResponseMismatch, match=r"items\[1\]\.secret"):
        _get(bad, check=True, response=PageOut)


def test_response_for_another_status_is_checked_against_its_own_model():
    assert _get({"queued": 3}, check=True, status=202).status_code == 202
    with pytest.raises(ResponseMismatch, match="QueuedOut"):
        _get(GOOD, check=True, status=202)  # an ItemOut where 202 declares QueuedOut


def test_resp_data_set_by_the_responder_is_checked_too():
    spec = spec_of(HealthResource.on_get)
    assert spec is not None
    resp = falcon.Response()
    resp.status, resp.data = 200, b'{"status": "ok", "uptime": 3}'
    with pytest.raises(ResponseMismatch, match="uptime"):
        check_response(spec, resp)
    resp.data = b'{"status": "ok"}'
    check_response(spec, resp)


def test_the_flag_is_off_by_default_and_on_in_test_settings(lp_runtime):
    assert load_settings(environ={}).server.check_responses is False
    assert lp_runtime.settings.server.check_responses is True


def test_through_the_whole_app(lp_runtime, monkeypatch, caplog):
    """The real pipeline (middleware, gate, problems): a mismatch is a logged 500; with the
    flag off the same answer goes out."""

    @endpoint(permission="public", response=Health, rate_limited=False)
    def drifted(self: Any, req: falcon.Request, resp: falcon.Response) -> Any:
        return {"status": "ok", "uptime": 3}

    monkeypatch.setattr(HealthResource, "on_get", drifted)
    client = Client(create_app(lp_runtime))
    with caplog.at_level(logging.ERROR):
        r = client.get("/healthz")
    assert r.status_code == 500 and r.json["code"] == "internal_error"
    assert any("does not declare: uptime" in (rec.exc_text or "") for rec in caplog.records)

    off = lp_runtime.settings.model_copy(update={
        "server": lp_runtime.settings.server.model_copy(update={"check_responses": False})})
    monkeypatch.setattr(lp_runtime, "settings", off)
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json == {"status": "ok", "uptime": 3}
