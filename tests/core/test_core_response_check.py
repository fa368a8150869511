"""`server.check_responses`: an answer that is not the model its @endpoint declares (a missing
field, a key the model does not declare, a value of another type), or a responder that returns
anything but that model (a dict of the right keys included), is a 500 while the check is on
(learnplat.testing turns it on for every test request), and goes out unchecked when it is off
(production's default)."""

from __future__ import annotations

import datetime as dt
import logging
from types import SimpleNamespace
from typing import Any

import falcon
import falcon.testing
import orjson
import pytest
from pydantic import BaseModel, Field, RootModel

from learnplat.core_plugin import Health, HealthResource
from learnplat.http.app import create_app
from learnplat.http.endpoint import ResponseMismatch, check_response, dump, endpoint, spec_of
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


class OtherOut(BaseModel):
    other: str


class EitherOut(RootModel[ItemOut | QueuedOut]):
    pass


GOOD = {"id": 1, "title": "t", "at": dt.datetime(2026, 12, 7, tzinfo=dt.UTC)}


def _app(answer: Any, *, check: bool, response: type[BaseModel] = ItemOut,
         status: int | None = None, written: bool = True) -> falcon.testing.TestClient:
    """A bare app whose one responder answers `answer` (with `status`), the check `check`:
    `written`, it writes a dict's bytes to resp.data itself (as a cached answer is sent);
    otherwise it returns `answer`."""
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
            if written and isinstance(answer, dict):
                resp.data = dump(answer)
                return None
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


def test_the_declared_shape_passes_as_written_bytes_or_a_returned_model():
    for answer in (GOOD, {**GOOD, "note": None, "tags": {"free": {"form": [1, 2]}}},
                   ItemOut.model_validate(GOOD)):
        r = _get(answer, check=True)
        assert r.status_code == 200 and r.json["id"] == 1


def test_a_responder_returns_its_declared_model_not_a_dict_of_its_keys():
    with pytest.raises(ResponseMismatch, match="returned a dict for its 200 answer, not the "
                                               "declared ItemOut"):
        _get(GOOD, check=True, written=False)
    with pytest.raises(ResponseMismatch, match="returned a OtherOut"):
        _get(OtherOut(other="x"), check=True, written=False)
    r = _get(GOOD, check=False, written=False)  # production: it goes out as it is
    assert r.status_code == 200 and r.json["id"] == 1


def test_a_root_model_of_a_union_admits_each_member():
    for answer in (ItemOut.model_validate(GOOD), QueuedOut(queued=2),
                   EitherOut(QueuedOut(queued=2))):
        assert _get(answer, check=True, response=EitherOut).status_code == 200
    with pytest.raises(ResponseMismatch, match="not the declared EitherOut or ItemOut or "
                                               "QueuedOut"):
        _get(OtherOut(other="x"), check=True, response=EitherOut)


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
        resp.data = dump({"status": "ok", "uptime": 3})

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


class AliasedOut(BaseModel):
    fifty: str | None = Field(None, alias="50")
    context: str = Field(alias="@context")


def test_a_returned_model_goes_out_by_its_aliases_as_the_document_shows_it():
    answer = AliasedOut.model_validate({"50": "2026-12-07T09:00:00Z", "@context": "x"})
    r = _get(answer, check=True, response=AliasedOut)
    assert r.status_code == 200 and r.json == {"50": "2026-12-07T09:00:00Z", "@context": "x"}


def test_a_returned_model_writes_times_as_a_dict_does():
    naive = ItemOut(id=1, title="t", at=dt.datetime(2026, 12, 7, 9, 0, 0, 250))
    assert _get(naive, check=True).json["at"] == "2026-12-07T09:00:00.000250Z"


def test_models_inside_plain_data_write_times_as_a_dict_does():
    naive = ItemOut(id=1, title="t", at=dt.datetime(2026, 12, 7, 9, 0, 0, 250))
    body = orjson.loads(dump({"items": [naive], "one": naive}))
    assert body["items"][0]["at"] == body["one"]["at"] == "2026-12-07T09:00:00.000250Z"
