"""Idempotency-Key on every POST (learnplat.idempotency, issue 26 item 3): a retry replays the
first answer and writes nothing, another request under the same key is a 422, a request while
the first still runs a 409, keys belong to one caller in one school, answers expire after the
retention, a refused first request is not replayed, uploads (routes that run their own
transactions) too, and the OpenAPI document says so. Across two gunicorn servers, with a
worker killed between the commit and the answer: tests/hardening/test_idempotency_servers.py.

The core runtime with `testnotes` and the small plugin below (an upload route without a
request transaction that sets Location, ETag and Link; an anonymous route)."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import falcon
import pydantic
import pytest
import testnotes
from corehelpers import build_runtime, fresh_database, token
from pydantic import BaseModel

from learnplat import db, hookimpl, idempotency
from learnplat.auth import PUBLIC
from learnplat.http.app import create_app
from learnplat.http.endpoint import MULTIPART, endpoint, multipart_file
from learnplat.migrate import tenant_tables
from learnplat.models import IdempotentAnswer
from learnplat.registry import Route
from learnplat.runtime import Runtime
from learnplat.settings import Settings
from learnplat.tenancy import TenantInfo, tenant_context
from learnplat.testing import Client, make_tenant, use_runtime

Note = testnotes.Note


# -- a test plugin: an upload without a request transaction, an anonymous POST ----------------


class UploadOut(BaseModel):
    id: int
    sha256: str


class Uploads:
    @endpoint(permission="testnotes.create", content_type=MULTIPART, max_body=1_000_000,
              multipart_fields={"file": "file"}, response=UploadOut, status=201,
              errors=(413, 415, 422), transaction=False)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> UploadOut:
        """Store a file's hash as a note, in a transaction of its own (as uploads do)."""
        data = multipart_file(req).read()
        digest = hashlib.sha256(data).hexdigest()
        with db.transaction():
            note = Note.create(title="upload", body=digest, author=req.context.principal.user_id)
        resp.set_header("Location", f"/notes/{note.id}")
        resp.set_header("ETag", f'"{digest[:16]}"')
        resp.append_header("Link", f'</notes/{note.id}>; rel="item"')
        return UploadOut(id=note.id, sha256=digest)


class Greeting(BaseModel):
    name: str


class Guestbook:
    @endpoint(permission=PUBLIC, body=Greeting, response=UploadOut, status=201)
    def on_post(self, req: falcon.Request, resp: falcon.Response, *, body: Greeting) -> UploadOut:
        """Sign the guestbook, no token needed (as register and login are)."""
        note = Note.create(title=body.name, body="guest")
        return UploadOut(id=note.id, sha256="")


class IdemPlugin:
    """The plugin's hooks (a class: a module's functions would be collected as tests)."""

    @staticmethod
    @hookimpl
    def register_routes(runtime: Any) -> list[Route]:
        return [Route("/idem/uploads", Uploads()), Route("/idem/guestbook", Guestbook())]


@pytest.fixture(scope="module")
def idem_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    tdb = fresh_database(tmp_path_factory.mktemp("idemdb"), "idem")
    rt = build_runtime(tmp_path_factory.mktemp("idem"), tdb,
                       plugins=[("testnotes", testnotes), ("idemtest", IdemPlugin())])
    yield rt
    tdb.drop()


@pytest.fixture
def rt(idem_runtime: Runtime) -> Iterator[Runtime]:
    with use_runtime(idem_runtime):
        yield idem_runtime


@pytest.fixture(scope="module")
def app(idem_runtime: Runtime) -> Any:
    return create_app(idem_runtime)


@pytest.fixture
def school(rt: Runtime) -> TenantInfo:
    return make_tenant(rt)


@pytest.fixture
def other_school(rt: Runtime) -> TenantInfo:
    return make_tenant(rt)


def as_user(app: Any, school: TenantInfo, user: int = 1, role: str = "student") -> Client:
    return Client(app, school, token(school, role, user))


def count(school: TenantInfo, model: Any = Note) -> int:
    with db.connection(), tenant_context(school), db.transaction(write=False):
        return model.select().count()


def key() -> str:
    return str(uuid.uuid4())


def post(client: Client, path: str, idem: str | None, **kw: Any) -> Any:
    headers = dict(kw.pop("headers", {}))
    if idem is not None:
        headers["Idempotency-Key"] = idem
    return client.post(path, headers=headers, **kw)


# -- replays ---------------------------------------------------------------------------------


def test_a_retry_replays_the_first_answer_and_writes_nothing(app, school):
    c, k = as_user(app, school), key()
    first = post(c, "/notes", k, json={"title": "Once", "body": "only once"})
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    assert count(school) == 1
    for _ in range(2):
        again = post(c, "/notes", k, json={"title": "Once", "body": "only once"})
        assert again.status_code == 201
        assert again.content == first.content  # the same bytes, the same id
        assert again.headers["Content-Type"] == first.headers["Content-Type"]
        assert again.headers["Idempotent-Replayed"] == "true"
    assert count(school) == 1
    # Without the key, or with a new one, the same body runs again: a new note.
    assert post(c, "/notes", None, json={"title": "Once", "body": "only once"}
                ).status_code == 201
    assert post(c, "/notes", key(), json={"title": "Once", "body": "only once"}
                ).json["id"] != first.json["id"]
    assert count(school) == 3


def test_another_request_with_the_same_key_is_422_and_runs_nothing(app, school):
    c, k = as_user(app, school), key()
    assert post(c, "/notes", k, json={"title": "A"}).status_code == 201
    for other in ({"json": {"title": "B"}},  # another body
                  {"json": {"title": "A"}, "params": {"limit": "5"}}):  # another query
        r = post(c, "/notes", k, **other)
        assert r.status_code == 422, r.text
        assert r.headers["Content-Type"].startswith("application/problem+json")
        assert r.json["code"] == "idempotency_key_reused"
        assert r.json["errors"][0]["field"] == "Idempotency-Key"
        assert "Idempotent-Replayed" not in r.headers
    # Another route under the same key: another request too.
    r = post(c, "/idem/guestbook", k, json={"name": "A"})
    assert r.status_code == 422 and r.json["code"] == "idempotency_key_reused"
    assert count(school) == 1


def test_keys_belong_to_one_caller_in_one_school(app, school, other_school):
    k, body = key(), {"title": "Mine"}
    first = post(as_user(app, school, 1), "/notes", k, json=body)
    # Another user of the school, and the same user id in another school: their own key.
    second = post(as_user(app, school, 2), "/notes", k, json=body)
    elsewhere = post(as_user(app, other_school, 1), "/notes", k, json=body)
    for r in (first, second, elsewhere):
        assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers
    assert first.json["id"] != second.json["id"]
    assert count(school) == 2 and count(other_school) == 1
    # Each replays its own answer.
    assert post(as_user(app, school, 2), "/notes", k, json=body).content == second.content
    assert post(as_user(app, other_school, 1), "/notes", k, json=body
                ).content == elsewhere.content


def test_callers_without_a_token_are_told_apart_by_address(app, school):
    c, k, body = Client(app, school), key(), {"name": "Ada"}
    a = post(c, "/idem/guestbook", k, json=body, remote_addr="10.1.1.1")
    b = post(c, "/idem/guestbook", k, json=body, remote_addr="10.2.2.2")
    assert a.status_code == b.status_code == 201 and a.json["id"] != b.json["id"]
    again = post(c, "/idem/guestbook", k, json=body, remote_addr="10.1.1.1")
    assert again.headers["Idempotent-Replayed"] == "true" and again.content == a.content
    # A signed-in user's key is not a visitor's, even from the same address.
    signed = post(as_user(app, school), "/idem/guestbook", k, json=body,
                  remote_addr="10.1.1.1")
    assert signed.status_code == 201 and "Idempotent-Replayed" not in signed.headers
    assert count(school) == 3


# -- while the first runs, after it failed, after the retention ------------------------------


def hold_lease(rt: Runtime, school: TenantInfo, caller: str, k: str) -> str:
    """Take the lease a running request with key `k` would hold."""
    store_key = idempotency.lease_key(school.id, idempotency.key_hash(caller, k))
    assert rt.kv.add(store_key, "another-request", 60)
    return store_key


def test_a_request_while_the_first_runs_is_409_and_runs_nothing(rt, app, school):
    c, k = as_user(app, school, 7), key()
    store_key = hold_lease(rt, school, "user:7", k)
    r = post(c, "/notes", k, json={"title": "Busy"})
    assert r.status_code == 409, r.text
    assert r.json["code"] == "idempotency_key_in_use"
    assert r.headers["Retry-After"] == "1"
    assert count(school) == 0
    # The refused request did not free the first one's lease.
    assert rt.kv.get(store_key) == "another-request"
    rt.kv.delete(store_key)  # the first request ended (and stored nothing: it failed)
    r = post(c, "/notes", k, json={"title": "Busy"})
    assert r.status_code == 201 and count(school) == 1
    # And its own lease is given back once its transaction ended.
    assert rt.kv.get(store_key) is None


def test_a_refused_first_request_is_not_replayed(app, school):
    c, k = as_user(app, school), key()
    refused = post(c, "/notes", k, json={"title": "forbidden"})  # a plugin's veto: 409
    assert refused.status_code == 409 and refused.json["code"] == "vetoed"
    again = post(c, "/notes", k, json={"title": "forbidden"})
    assert again.status_code == 409 and "Idempotent-Replayed" not in again.headers
    invalid = post(c, "/notes", k, json={"title": ""})  # 422 validation: nothing stored either
    assert invalid.json["code"] == "validation_failed"
    # Nothing was stored under the key, so a corrected request under it runs.
    ok = post(c, "/notes", k, json={"title": "allowed"})
    assert ok.status_code == 201 and count(school) == 1
    assert count(school, IdempotentAnswer) == 1


def age(school: TenantInfo, hours: float) -> None:
    """Move every stored answer of the school `hours` into the past."""
    with db.connection(), tenant_context(school), db.transaction():
        for row in IdempotentAnswer.select():
            IdempotentAnswer.update(created_at=row.created_at - dt.timedelta(hours=hours)
                                    ).where(IdempotentAnswer.id == row.id).execute()


def test_answers_expire_after_the_retention(rt, app, school):
    c, k = as_user(app, school), key()
    first = post(c, "/notes", k, json={"title": "Old"})
    age(school, 23.5)  # within the 24 h: still replayed
    assert post(c, "/notes", k, json={"title": "Old"}).content == first.content
    age(school, 1)  # 24.5 h old: never replayed, even before the purge removed it
    fresh = post(c, "/notes", k, json={"title": "Old"})
    assert fresh.status_code == 201 and "Idempotent-Replayed" not in fresh.headers
    assert fresh.json["id"] != first.json["id"] and count(school) == 2
    # The fresh answer replaced the expired one; the periodic purge removes what expired.
    assert count(school, IdempotentAnswer) == 1
    post(c, "/notes", key(), json={"title": "Another"})
    age(school, 25)
    post(c, "/notes", key(), json={"title": "Recent"})
    assert count(school, IdempotentAnswer) == 3
    task = rt.queue.wrappers[idempotency.PURGE_TASK]
    assert task.call_local() >= 2  # what the worker runs every hour
    assert count(school, IdempotentAnswer) == 1


def test_the_retention_is_a_setting_of_at_least_a_day():
    assert Settings().server.idempotency_retention_hours == 24
    assert Settings(server={"idempotency_retention_hours": 72}
                    ).server.idempotency_retention_hours == 72
    with pytest.raises(pydantic.ValidationError):
        Settings(server={"idempotency_retention_hours": 23})


def test_an_unreachable_store_does_not_refuse_the_request(rt, app, school, monkeypatch):
    """The lease fails open (logged); the stored answer still makes the retry a replay."""
    def down(*args: Any) -> bool:
        raise ConnectionError("the key-value store is down")

    monkeypatch.setattr(rt.kv, "add", down)
    c, k = as_user(app, school), key()
    first = post(c, "/notes", k, json={"title": "Degraded"})
    assert first.status_code == 201, first.text
    again = post(c, "/notes", k, json={"title": "Degraded"})
    assert again.headers["Idempotent-Replayed"] == "true" and again.content == first.content
    assert count(school) == 1


def test_the_unique_index_stops_a_second_commit_when_the_lease_was_lost(rt, app, school,
                                                                       monkeypatch):
    """Two requests with one key that both got past the lease (it expired, or the store was
    down) and past the look-up: the second to store its answer gets 409 and its writes roll
    back, so the operation still happened once."""
    c, k = as_user(app, school), key()
    first = post(c, "/notes", k, json={"title": "Raced"})
    assert first.status_code == 201
    monkeypatch.setattr(idempotency.Claim, "stored", lambda self: None)  # it looked too early
    r = post(c, "/notes", k, json={"title": "Raced"})
    assert r.status_code == 409, r.text
    assert r.json["code"] == "idempotency_key_in_use"
    assert count(school) == 1 and count(school, IdempotentAnswer) == 1


# -- the key itself --------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "   ", "x" * 256, "has space", "caf\u00e9", "tab\there",
                                 '"a b"'])
def test_a_malformed_key_is_400_and_runs_nothing(app, school, bad):
    r = post(as_user(app, school), "/notes", bad, json={"title": "x"})
    assert r.status_code == 400, r.text
    assert r.json["code"] == "idempotency_key_malformed"
    assert count(school) == 0


def test_the_drafts_quoted_form_is_the_same_key(app, school):
    c, k = as_user(app, school), key()
    first = post(c, "/notes", k, json={"title": "q"})
    again = post(c, "/notes", f'"{k}"', json={"title": "q"})
    assert again.headers["Idempotent-Replayed"] == "true" and again.content == first.content
    assert post(c, "/notes", "x" * 255, json={"title": "q"}).status_code == 201


def test_other_methods_ignore_the_header(app, school):
    c = as_user(app, school)
    r = c.get("/notes", headers={"Idempotency-Key": "not valid here"})
    assert r.status_code == 200 and "Idempotent-Replayed" not in r.headers


def test_a_browser_app_may_send_the_key_and_read_the_replay_header(rt, app):
    """CORS: the preflight allows the header, and a replay's marker is exposed to scripts."""
    school = make_tenant(rt, settings={"cors": {"origins": ["https://app.example"]}})
    origin = {"Origin": "https://app.example"}
    pre = Client(app, school).request("OPTIONS", "/notes", headers={
        **origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "idempotency-key"})
    assert "Idempotency-Key" in pre.headers["access-control-allow-headers"]
    c, k = as_user(app, school), key()
    post(c, "/notes", k, json={"title": "x"}, headers=origin)
    again = post(c, "/notes", k, json={"title": "x"}, headers=origin)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" in again.headers["access-control-expose-headers"]


def test_the_stored_answer_is_unreadable_without_the_key(app, school):
    c, k = as_user(app, school), key()
    first = post(c, "/notes", k, json={"title": "Secret title", "body": "s3cret"})
    with db.connection(), tenant_context(school), db.transaction(write=False):
        row = IdempotentAnswer.select().get()
    assert row.caller == "user:1" and row.status == 201
    # A tenant-owned table: scoped queries, and row-level security on PostgreSQL.
    assert "learnplat_idempotency" in tenant_tables(app.runtime)
    assert k not in row.key_hash and b"s3cret" not in bytes(row.body)
    assert first.json["body"] == "s3cret"


# -- uploads: routes that run their own transactions --------------------------------------------


def multipart(data: bytes, boundary: str) -> tuple[bytes, dict[str, str]]:
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"a.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def upload(c: Client, k: str, data: bytes, boundary: str | None = None) -> Any:
    body, headers = multipart(data, boundary or uuid.uuid4().hex)
    return post(c, "/idem/uploads", k, body=body, headers=headers)


def test_an_upload_retried_with_a_new_multipart_encoding_is_replayed(app, school):
    c, k, data = as_user(app, school), key(), b"\x00\x01 file bytes " * 5000
    first = upload(c, k, data)
    assert first.status_code == 201, first.text
    # A client library encodes the retry anew, with another boundary: the same upload.
    again = upload(c, k, data)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    for name in ("Location", "ETag", "Link", "Content-Type"):
        assert again.headers[name] == first.headers[name], name
    assert count(school) == 1
    # Another file under the same key: 422, nothing stored.
    r = upload(c, k, data + b"!")
    assert r.status_code == 422 and r.json["code"] == "idempotency_key_reused"
    assert count(school) == 1


def test_an_upload_while_the_first_runs_is_409(rt, app, school):
    c, k = as_user(app, school, 9), key()
    store_key = hold_lease(rt, school, "user:9", k)
    r = upload(c, k, b"data")
    assert r.status_code == 409 and r.json["code"] == "idempotency_key_in_use"
    assert count(school) == 0
    rt.kv.delete(store_key)
    assert upload(c, k, b"data").status_code == 201 and count(school) == 1


def test_the_body_hash_ignores_only_the_boundary():
    class Req:
        method, path, query_string = "POST", "/x", ""

    req: Any = Req()

    boundary = b"--abc123"
    pieces = [b"--abc", b"123\r\npart one", b"\r\n--abc123--\r\n"]
    one = idempotency.BodyHash(req, boundary)
    for p in pieces:  # the boundary split across two reads
        one.update(p)
    whole = idempotency.BodyHash(req, boundary)
    whole.update(b"".join(pieces))
    other = idempotency.BodyHash(req, b"--zzz999")
    other.update(b"".join(pieces).replace(b"abc123", b"zzz999"))
    changed = idempotency.BodyHash(req, boundary)
    changed.update(b"".join(pieces).replace(b"one", b"two"))
    assert one.hexdigest() == whole.hexdigest() == other.hexdigest() != changed.hexdigest()


# -- the OpenAPI document --------------------------------------------------------------------


def test_every_post_documents_the_header_and_its_answers(app, school):
    doc = Client(app).get("/openapi.json").json
    posts = 0
    for path, item in doc["paths"].items():
        for method, op in item.items():
            names = [p.get("name") for p in op.get("parameters", [])]
            if method != "post":
                assert "Idempotency-Key" not in names, (method, path)
                continue
            posts += 1
            assert "Idempotency-Key" in names, path
            param = next(p for p in op["parameters"] if p.get("name") == "Idempotency-Key")
            assert param["in"] == "header" and param["required"] is False
            assert param["schema"]["maxLength"] == 255
            assert "idempotency_key_in_use" in op["responses"]["409"]["description"]
            assert "Retry-After" in op["responses"]["409"]["headers"]
            assert "idempotency_key_reused" in op["responses"]["422"]["description"]
            assert "idempotency_key_malformed" in op["responses"]["400"]["description"]
            success = [s for s in op["responses"] if s.startswith("2")]
            assert all("Idempotent-Replayed" in op["responses"][s]["headers"] for s in success)
    assert posts >= 3
