"""API evolution (issue 26, item 5): the served document carries learnplat's version; the
committed snapshot (docs/api/openapi.json) is the served document, with no breaking change
against it, and each breaking change the snapshot's git history records is named in
docs/api/CHANGELOG.md; learnplat.api_changes finds each kind of breaking change (and not a
compatible change); an operation marked deprecated says so in the document and in every
answer's Deprecation, Sunset and Link headers (RFC 9745, RFC 8594), read here with parsers
nobody here wrote (http_sf, email.utils, requests)."""

from __future__ import annotations

import copy
import datetime as dt
import email.utils
import importlib.metadata
import itertools
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import falcon
import http_sf
import pytest
import requests.utils
import testnotes
from click.testing import CliRunner
from corehelpers import REPO, build_runtime, fresh_database, token
from openapi_spec_validator import validate
from testnotes import NoteIn, NoteOut

import learnplat
from learnplat import hookimpl
from learnplat.api_changes import breaking_changes
from learnplat.auth import PUBLIC
from learnplat.cli import core_commands  # noqa: F401  (registers the core commands)
from learnplat.cli.main import AppContext, cli
from learnplat.errors import NotFound
from learnplat.http.app import create_app
from learnplat.http.endpoint import endpoint, spec_of
from learnplat.http.openapi import build_document
from learnplat.ratelimit import Limiter
from learnplat.registry import Route
from learnplat.runtime import Runtime
from learnplat.settings import LimitSettings
from learnplat.testing import Client, make_tenant, use_runtime

SNAPSHOT = REPO / "docs" / "api" / "openapi.json"
CHANGELOG = REPO / "docs" / "api" / "CHANGELOG.md"
WRITE = "learnplat openapi --write docs/api/openapi.json"

# -- synthetic documents ---------------------------------------------------------------------


def document(*, body: Any = None, response: Any = None, params: tuple[Any, ...] = (),
             statuses: tuple[str, ...] = ("200",), schemas: dict[str, Any] | None = None,
             path: str = "/things/{thing_id}", method: str = "post",
             more_paths: dict[str, Any] | None = None) -> dict[str, Any]:
    """A one-operation OpenAPI 3.1 document: `body` and `response` are JSON schemas."""
    answer = {"description": "Success", "content": {"application/json": {"schema": response}}}
    op: dict[str, Any] = {
        "summary": "A thing",
        "parameters": [*({"name": name, "in": "path", "required": True,
                          "schema": {"type": "integer"}} for name in re.findall(r"{(\w+)}", path)),
                       *params],
        "responses": {**{s: answer if response is not None else {"description": "Done"}
                         for s in statuses},
                      "404": {"description": "Not found"}},
    }
    if body is not None:
        op["requestBody"] = {"required": True,
                             "content": {"application/json": {"schema": body}}}
    return {"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
            "paths": {path: {method: op}, **(more_paths or {})},
            "components": {"schemas": schemas or {}}}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: tuple[str, ...] = (), **props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(required)}


def without_404(doc: dict[str, Any]) -> dict[str, Any]:
    for item in doc["paths"].values():
        for op in item.values():
            op["responses"].pop("404", None)
    return doc


def with_security(doc: dict[str, Any], security: list[Any]) -> dict[str, Any]:
    doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    for item in doc["paths"].values():
        for op in item.values():
            op["security"] = security
    return doc


STR = {"type": "string"}
INT = {"type": "integer"}
NULLABLE_STR = {"anyOf": [STR, {"type": "null"}]}


def query(name: str, schema: Any = None, required: bool = False,
          where: str = "query") -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "schema": schema or STR}


# Each rule both ways: (old, a breaking new, what the report says, a compatible new).
RULES: dict[str, tuple[dict[str, Any], dict[str, Any], str, dict[str, Any]]] = {
    "operation removed": (
        document(body=obj(title=STR)),
        document(body=obj(title=STR), path="/others/{thing_id}"),
        "POST /things/{thing_id}: the operation was removed",
        # another operation added, the path parameter renamed: the URL is the same
        document(body=obj(title=STR), path="/things/{id}",
                 more_paths={"/others": {"get": {"responses": {"200": {"description": "x"}}}}}),
    ),
    "response field removed, through $ref": (
        document(response=ref("Thing"), schemas={"Thing": obj(("id", "title"), id=INT,
                                                              title=STR)}),
        document(response=ref("Thing"), schemas={"Thing": obj(("id",), id=INT)}),
        "POST /things/{thing_id}: response 200 field `title` was removed",
        # renamed component, a new field, a description: none is a change to a client
        document(response=ref("ThingOut"), schemas={"ThingOut": {
            **obj(("id", "title", "colour"), id=INT, title=STR, colour=STR),
            "description": "A thing, now described"}}),
    ),
    "response field removed, through allOf": (
        document(response={"allOf": [ref("Base"), obj(("extra",), extra=STR)]},
                 schemas={"Base": obj(("id",), id=INT, slug=STR)}),
        document(response={"allOf": [ref("Base"), obj(("extra",), extra=STR)]},
                 schemas={"Base": obj(("id",), id=INT)}),
        "response 200 field `slug` was removed",
        document(response={"allOf": [ref("Base"), obj(("extra",), extra=STR)]},
                 schemas={"Base": obj(("id",), id=INT, slug=STR, more=STR)}),
    ),
    "response field removed, in an array of nested objects": (
        document(response=obj(items={"type": "array", "items": ref("Row")}),
                 schemas={"Row": obj(course=ref("Course")),
                          "Course": obj(("title",), title=STR, code=STR)}),
        document(response=obj(items={"type": "array", "items": ref("Row")}),
                 schemas={"Row": obj(course=ref("Course")),
                          "Course": obj(("title",), title=STR)}),
        "response 200 field `items[].course.code` was removed",
        document(response=obj(items={"type": "array", "items": ref("Row")}),
                 schemas={"Row": obj(course=ref("Course")),
                          "Course": obj(("title",), title=STR, code=STR, level=INT)}),
    ),
    "response field removed, behind a nullable reference": (
        document(response=obj(note={"anyOf": [ref("Note"), {"type": "null"}]}),
                 schemas={"Note": obj(("text",), text=STR)}),
        document(response=obj(note={"anyOf": [ref("Note"), {"type": "null"}]}),
                 schemas={"Note": obj()}),
        "response 200 field `note.text` was removed",
        document(response=obj(note={"anyOf": [ref("Note2"), {"type": "null"}]}),
                 schemas={"Note2": obj(("text",), text=STR)}),
    ),
    "response field no longer always present": (
        document(response=obj(("id",), id=INT)),
        document(response=obj((), id=INT)),
        "response 200 field `id` is no longer always present",
        document(response=obj(("id", "new"), id=INT, new=STR)),
    ),
    "new required body property": (
        document(body=obj(("title",), title=STR)),
        document(body=obj(("title", "code"), title=STR, code=STR)),
        "a new required body field `code`",
        document(body=obj(("title",), title=STR, code=STR)),  # an optional one
    ),
    "optional body property now required": (
        document(body=obj(("title",), title=STR, code=STR)),
        document(body=obj(("title", "code"), title=STR, code=STR)),
        "body field `code` is now required",
        document(body=obj((), title=STR, code=STR)),  # a required one now optional
    ),
    "new required nested body property": (
        document(body=obj(address=obj(city=STR))),
        document(body=obj(address=obj(("city", "zip"), city=STR, zip=STR))),
        "a new required body field `address.zip`",
        # a new optional object whose own fields are required: nothing an old client sends
        document(body=obj(address=obj(city=STR), extra=obj(("zip",), zip=STR))),
    ),
    "new required query parameter": (
        document(params=(query("page"),)),
        document(params=(query("page"), query("school", required=True))),
        "a new required query parameter `school`",
        document(params=(query("page"), query("school"))),
    ),
    "optional query parameter now required": (
        document(params=(query("page"),)),
        document(params=(query("page", required=True),)),
        "the query parameter `page` is now required",
        document(params=()),  # a parameter no longer read is ignored
    ),
    "new required header": (
        document(),
        document(params=(query("X-School", required=True, where="header"),)),
        "a new required header parameter `X-School`",
        document(params=(query("X-School", where="header"),)),
    ),
    "a request body now required": (
        document(),
        document(body=obj(title=STR)),
        "a request body is now required",
        document(body=None, params=(query("title"),)),
    ),
    "input type changed": (
        document(body=obj(title=STR, count=INT)),
        document(body=obj(title=INT, count=INT)),
        "body field `title`: the type changed from string to integer",
        # wider: null accepted too, a number where an integer was
        document(body=obj(title=NULLABLE_STR, count={"type": "number"})),
    ),
    "parameter type changed": (
        document(params=(query("page", INT),)),
        document(params=(query("page", {"type": "boolean"}),)),
        "query parameter `page`: the type changed from integer to boolean",
        document(params=(query("page", {"type": ["integer", "string"]}),)),
    ),
    "output type changed": (
        document(response=obj(("count", "name"), count=INT, name=STR)),
        document(response=obj(("count", "name"), count=INT, name=NULLABLE_STR)),
        "response 200 field `name`: the type changed from string to null or string",
        # narrower: always an integer where a number was promised
        document(response=obj(("count", "name"), count=INT, name=STR)),
    ),
    "enum value removed from an input": (
        document(body=obj(kind={"enum": ["video", "text", "quiz"], "type": "string"})),
        document(body=obj(kind={"enum": ["video", "text"], "type": "string"})),
        "body field `kind`: no longer accepts 'quiz'",
        document(body=obj(kind={"enum": ["video", "text", "quiz", "pdf"], "type": "string"})),
    ),
    "enum value removed behind a nullable reference": (
        document(body=obj(kind={"anyOf": [ref("Kind"), {"type": "null"}]}),
                 schemas={"Kind": {"enum": ["a", "b"], "type": "string"}}),
        document(body=obj(kind={"anyOf": [ref("Kind"), {"type": "null"}]}),
                 schemas={"Kind": {"const": "a", "type": "string"}}),
        "body field `kind`: no longer accepts 'b'",
        document(body=obj(kind={"anyOf": [ref("Kind2"), {"type": "null"}]}),
                 schemas={"Kind2": {"enum": ["b", "a"], "type": "string"}}),
    ),
    "format added to an input": (
        document(body=obj(email=STR)),
        document(body=obj(email={"type": "string", "format": "email"})),
        "body field `email`: the format 'email' was added",
        document(body=obj(email={"type": "string", "description": "Where to write"})),
    ),
    "maximum lowered": (
        document(body=obj(points={"type": "integer", "maximum": 100})),
        document(body=obj(points={"type": "integer", "maximum": 50})),
        "body field `points`: maximum lowered from 100 to 50",
        document(body=obj(points={"type": "integer", "maximum": 1000})),
    ),
    "minimum raised": (
        document(params=(query("limit", {"type": "integer", "minimum": 1}),)),
        document(params=(query("limit", {"type": "integer", "minimum": 5}),)),
        "query parameter `limit`: minimum raised from 1 to 5",
        document(params=(query("limit", {"type": "integer", "minimum": 0}),)),
    ),
    "maxLength lowered": (
        document(body=obj(title={"type": "string", "maxLength": 200})),
        document(body=obj(title={"type": "string", "maxLength": 100})),
        "body field `title`: maxLength lowered from 200 to 100",
        document(body=obj(title=STR)),  # no limit at all
    ),
    "a token now required": (
        with_security(document(), []),
        with_security(document(), [{"bearer": []}]),
        "POST /things/{thing_id}: a token is now required",
        with_security(document(), [{}, {"bearer": []}]),  # a token optional: still open
    ),
    "success status removed": (
        document(statuses=("200", "201")),
        document(statuses=("200",)),
        "the success status 201 was removed",
        # a success status added, an error status no longer documented
        without_404(document(statuses=("200", "201", "202"))),
    ),
}


@pytest.mark.parametrize("rule", list(RULES))
def test_each_rule_reports_the_breaking_change_and_not_the_compatible_one(rule):
    old, broken, says, compatible = RULES[rule]
    for doc in (old, broken, compatible):
        validate(doc)  # each a valid OpenAPI 3.1 document (openapi-spec-validator)
    assert breaking_changes(old, old) == []
    found = breaking_changes(old, broken)
    assert any(says in line for line in found), found
    assert all(line.startswith("POST /things/{thing_id}: ") for line in found), found
    assert breaking_changes(old, compatible) == []


def test_a_narrowed_output_and_a_widened_input_are_compatible_the_other_way_round():
    """The direction matters: what a client sends may accept more, what it reads may promise
    less; the reverse of each is the break."""
    loose = document(body=obj(n={"type": "number"}), response=obj(("n",), n={"type": "number"}))
    tight = document(body=obj(n=INT), response=obj(("n",), n=INT))
    assert breaking_changes(loose, tight) == [
        "POST /things/{thing_id}: body field `n`: the type changed from number to integer"]
    assert breaking_changes(tight, loose) == [
        "POST /things/{thing_id}: response 200 field `n`: the type changed from integer to "
        "number"]


def test_a_recursive_schema_is_compared_without_end():
    tree = {"Module": obj(("title",), title=STR, children={"type": "array",
                                                           "items": ref("Module")})}
    old = document(response=ref("Module"), schemas=tree)
    pruned = copy.deepcopy(tree)
    del pruned["Module"]["properties"]["title"]
    pruned["Module"]["required"] = []
    assert breaking_changes(old, old) == []
    assert breaking_changes(old, document(response=ref("Module"), schemas=pruned)) == [
        "POST /things/{thing_id}: response 200 field `title` was removed"]


# -- the real document -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(lp_app: Any) -> dict[str, Any]:
    r = Client(lp_app).get("/openapi.json")
    assert r.status_code == 200
    return dict(r.json)


def test_the_document_carries_the_version_a_client_sees(served, lp_runtime):
    """info.version is learnplat's version, the installed distribution's: the one a client
    reads at /openapi.json and `learnplat openapi` prints."""
    assert served["info"]["version"] == learnplat.__version__
    assert served["info"]["version"] == importlib.metadata.version("learnplat")
    out = invoke(lp_runtime, "openapi")
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["info"]["version"] == learnplat.__version__


def test_the_checker_finds_a_field_removed_from_the_real_document(served):
    """Against the real document, not only synthetic ones: drop one property of a component a
    success answer refers to, and the operation and field are named."""
    assert breaking_changes(served, served) == []
    schemas = served["components"]["schemas"]

    def answered(item: dict[str, Any]) -> str:
        answer = (item.get("get", {}).get("responses", {}).get("200", {}).get("content", {})
                  .get("application/json", {}).get("schema", {}))
        return str(answer.get("$ref", "")).rpartition("/")[2]

    path, name = next(((p, answered(i)) for p, i in served["paths"].items()
                       if schemas.get(answered(i), {}).get("properties")), ("", ""))
    assert path, "no GET answers a component with properties"
    field = sorted(schemas[name]["properties"])[0]
    broken = copy.deepcopy(served)
    del broken["components"]["schemas"][name]["properties"][field]
    assert f"GET {path}: response 200 field `{field}` was removed" in breaking_changes(
        served, broken)


def test_the_served_document_has_no_breaking_change_against_the_snapshot(served):
    snapshot = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    changes = breaking_changes(snapshot, served)
    assert not changes, (
        "the API breaks clients of the committed snapshot:\n  " + "\n  ".join(changes)
        + f"\nIf that is deliberate: {WRITE}, and name each change in docs/api/CHANGELOG.md "
        "(docs/api-clients.md, \"API evolution\").")


def test_the_snapshot_is_the_served_document(served):
    """So a change to the API and its snapshot land in the same commit, where review sees it."""
    snapshot = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    if snapshot != served:
        diff = _differences(snapshot, served)
        pytest.fail(f"docs/api/openapi.json is not the served document (first differences: "
                    f"{', '.join(diff[:8])}): run `{WRITE}` and commit it with the change")


def _differences(old: Any, new: Any, where: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += _differences(old.get(key), new.get(key), f"{where}/{key}")
        return out
    return [] if old == new else [where or "/"]


def _snapshot_history(repo: Path, snapshot: Path) -> list[tuple[str, dict[str, Any]]]:
    """(where, document) of each committed version of `snapshot` that the clone at `repo` has
    (a shallow CI clone has only the last), oldest first, then the working tree's."""
    git = shutil.which("git")
    if git is None or not (repo / ".git").exists():
        pytest.skip("not a git checkout: no snapshot history to read")
    relative = snapshot.relative_to(repo).as_posix()

    def run(*args: str) -> str:
        return subprocess.run([git, "-C", str(repo), *args], check=True, text=True,
                              capture_output=True).stdout

    versions = []
    for rev in reversed(run("log", "--format=%H", "--", relative).split()):
        try:
            versions.append((rev[:10], json.loads(run("show", f"{rev}:{relative}"))))
        except (subprocess.CalledProcessError, ValueError):
            continue  # the commit that deleted it, or a broken version: nothing to compare
    return [*versions, ("the working tree", json.loads(snapshot.read_text(encoding="utf-8")))]


def _words(text: str) -> str:
    return " ".join(text.split())  # a changelog line may be wrapped


def unnamed_breaks(repo: Path, snapshot: Path, changelog: Path) -> list[str]:
    """Each breaking change between two successive versions of the snapshot that the
    changelog does not name, with the version that made it."""
    named = _words(changelog.read_text(encoding="utf-8"))
    history = _snapshot_history(repo, snapshot)
    return [f"{line}  ({where})" for (_, before), (where, after) in itertools.pairwise(history)
            for line in breaking_changes(before, after) if _words(line) not in named]


def test_each_breaking_change_in_the_snapshots_history_is_in_the_changelog():
    """A breaking change is made on purpose: the snapshot is rewritten (`--write`) and each
    change `learnplat openapi --check` printed is named in docs/api/CHANGELOG.md."""
    missing = unnamed_breaks(REPO, SNAPSHOT, CHANGELOG)
    assert not missing, ("breaking changes not named in docs/api/CHANGELOG.md (add each "
                         "line under the new version's heading):\n  " + "\n  ".join(missing))


def test_the_changelog_check_finds_a_break_the_changelog_does_not_name(tmp_path):
    """The check above, on a repository of its own: a breaking version committed, then one
    in the working tree; each is reported until the changelog names it."""
    if shutil.which("git") is None:
        pytest.skip("no git")
    snapshot, changelog = tmp_path / "api" / "openapi.json", tmp_path / "CHANGELOG.md"
    snapshot.parent.mkdir()

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c",
                        "user.email=t@example.org", *args], check=True, capture_output=True)

    def commit(doc: dict[str, Any]) -> None:
        snapshot.write_text(json.dumps(doc), encoding="utf-8")
        git("add", "-A")
        git("commit", "-q", "-m", "snapshot")

    git("init", "-q")
    changelog.write_text("# API changelog\n", encoding="utf-8")
    commit(document(body=obj(title=STR, count=INT)))
    commit(document(body=obj(title=STR, count=INT, more=STR)))  # compatible
    commit(document(body=obj(title=INT, count=INT, more=STR)))  # breaking, committed
    snapshot.write_text(json.dumps(document(body=obj(("more",), title=INT, count=INT,
                                                     more=STR))), encoding="utf-8")
    first = "POST /things/{thing_id}: body field `title`: the type changed from string to integer"
    second = "POST /things/{thing_id}: body field `more` is now required"
    missing = unnamed_breaks(tmp_path, snapshot, changelog)
    assert [m.split("  (")[0] for m in missing] == [first, second]
    assert missing[1].endswith("(the working tree)")
    # Named, wrapped as a Markdown list would wrap it: both found.
    cut = first.index(" the type")
    changelog.write_text(f"# API changelog\n\n## 0.2.0\n\n- {first[:cut]}\n "
                         f"{first[cut:]}\n- {second}\n", encoding="utf-8")
    assert unnamed_breaks(tmp_path, snapshot, changelog) == []


# -- the command ------------------------------------------------------------------------------


def invoke(runtime: Runtime, *args: str) -> Any:
    ctx = AppContext()
    ctx._runtime = runtime
    return CliRunner().invoke(cli, list(args), obj=ctx)


def test_openapi_check_and_write(lp_runtime, served, tmp_path):
    snap = tmp_path / "api" / "openapi.json"
    r = invoke(lp_runtime, "openapi", "--write", str(snap))
    assert r.exit_code == 0, r.output
    written = json.loads(snap.read_text(encoding="utf-8"))
    assert written == served  # what GET /openapi.json answers

    r = invoke(lp_runtime, "openapi", "--check", str(snap))
    assert (r.exit_code, r.stdout) == (0, "no breaking change\n")

    # An older snapshot that had one more operation and one more success status.
    path = next(p for p, i in written["paths"].items() if "get" in i)
    older = copy.deepcopy(written)
    older["paths"]["/retired/{id}"] = {"delete": {"responses": {"204": {"description": "x"}}}}
    name = "OnlyInTheOldSnapshot"
    older["components"]["schemas"][name] = obj(("gone",), gone=STR)
    older["paths"][path]["get"]["responses"]["299"] = {
        "description": "x", "content": {"application/json": {"schema": ref(name)}}}
    snap.write_text(json.dumps(older), encoding="utf-8")
    r = invoke(lp_runtime, "openapi", "--check", str(snap))
    assert r.exit_code == 1
    assert sorted(r.stdout.splitlines()) == ["DELETE /retired/{id}: the operation was removed",
                                             f"GET {path}: the success status 299 was removed"]

    r = invoke(lp_runtime, "openapi", "--check", str(tmp_path / "none.json"))
    assert r.exit_code != 0 and "cannot read the snapshot" in r.output


# -- deprecation ------------------------------------------------------------------------------

LINK = "https://docs.example.org/api/moving-notes"


class OldNotes:
    @endpoint(permission="testnotes.create", body=NoteIn, response=NoteOut, status=201,
              deprecated="2027-01-01", sunset=dt.date(2027, 7, 1), deprecation_link=LINK)
    def on_post(self, req: falcon.Request, resp: falcon.Response, *, body: NoteIn) -> Any:
        """Create a note the old way."""
        return NoteOut(id=1, title=body.title, body=body.body)


class OldNote:
    @endpoint(permission=PUBLIC, response=NoteOut, deprecated="2026-12-01T12:00:00+01:00")
    def on_get(self, req: falcon.Request, resp: falcon.Response, note_id: int) -> Any:
        """Read a note the old way: there is none."""
        raise NotFound(f"no note {note_id}")


class OldRoutes:
    @hookimpl
    def register_routes(self, runtime: Any) -> list[Route]:
        return [Route("/old-notes", OldNotes()), Route("/old-notes/{note_id:int}", OldNote())]


@pytest.fixture(scope="module")
def old_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    tmp = tmp_path_factory.mktemp("deprecation")
    tdb = fresh_database(tmp / "db", "deprecation")
    rt = build_runtime(tmp, tdb, plugins=[("testnotes", testnotes), ("oldroutes", OldRoutes())])
    yield rt
    tdb.drop()


def _deprecation(headers: Any) -> dict[str, Any]:
    """The three headers, each read by a parser nobody here wrote."""
    out: dict[str, Any] = {}
    if (value := headers.get("Deprecation")) is not None:
        when, params = http_sf.parse(value.encode(), tltype="item")  # RFC 9651 Date
        assert params == {}
        out["deprecation"] = when
    if (value := headers.get("Sunset")) is not None:
        assert re.fullmatch(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", value)  # IMF-fixdate
        out["sunset"] = email.utils.parsedate_to_datetime(value)
    if (value := headers.get("Link")) is not None:
        out["links"] = [(link["url"], link.get("rel")) for link
                        in requests.utils.parse_header_links(value)]
    return out


JAN = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
JUL = dt.datetime(2027, 7, 1, tzinfo=dt.UTC)


def test_every_answer_of_a_deprecated_operation_says_so(old_api):
    with use_runtime(old_api):
        tenant = make_tenant(old_api)
        app = create_app(old_api)
        writer = Client(app, tenant, token(tenant, "instructor"))
        guest = Client(app, tenant, token(tenant, "guest"))  # a role granted nothing
        anonymous = Client(app, tenant)
        answers = {
            201: writer.post("/old-notes", json={"title": "t", "body": "b"}),
            422: writer.post("/old-notes", json={"body": "no title"}),
            403: guest.post("/old-notes", json={"title": "t", "body": "b"}),
            401: anonymous.post("/old-notes", json={"title": "t", "body": "b"}),
        }
        for status, r in answers.items():
            assert r.status_code == status, (status, r.text)
            assert _deprecation(r.headers) == {
                "deprecation": JAN, "sunset": JUL, "links": [(LINK, "deprecation")]}, status

        # Deprecated since a moment given with its zone; no sunset, no link; a 404 the
        # responder raises carries it too.
        r = anonymous.get("/old-notes/7")
        assert r.status_code == 404 and r.json["code"] == "not_found"
        assert _deprecation(r.headers) == {
            "deprecation": dt.datetime(2026, 12, 1, 11, 0, tzinfo=dt.UTC)}

        r = writer.get("/notes")  # an operation that is not deprecated
        assert r.status_code == 200 and _deprecation(r.headers) == {}


def test_the_gate_s_refusals_of_a_deprecated_operation_say_so_too(old_api, monkeypatch):
    """Refused before the responder runs, by the gate: an unknown school, a token that is
    not one, the rate limit. The client still learns the operation is going away."""
    with use_runtime(old_api):
        tenant = make_tenant(old_api)
        app = create_app(old_api)
        body = {"title": "t", "body": "b"}
        nowhere = falcon.testing.TestClient(app).simulate_post(
            "/old-notes", json=body, headers={"X-Tenant": "no-such-school"})
        forged = Client(app, tenant, "not-a-token").post("/old-notes", json=body)
        monkeypatch.setattr(old_api, "limits", Limiter(LimitSettings(
            enabled=True, anonymous_burst=1, anonymous_rate=0.001), old_api.kv))
        anonymous = Client(app, tenant)
        statuses = [anonymous.get("/old-notes/7").status_code for _ in range(2)]
        limited = anonymous.get("/old-notes/7")
        assert (nowhere.status_code, forged.status_code) == (404, 401)
        assert statuses[0] == 404 and limited.status_code == 429, (statuses, limited.text)
        for r in (nowhere, forged):
            assert _deprecation(r.headers) == {
                "deprecation": JAN, "sunset": JUL, "links": [(LINK, "deprecation")]}
            assert r.headers["Deprecation"].count("@") == 1  # once, not once per layer
        assert _deprecation(limited.headers) == {
            "deprecation": dt.datetime(2026, 12, 1, 11, 0, tzinfo=dt.UTC)}


def test_a_deprecated_operation_is_marked_in_the_document(old_api):
    doc = build_document(old_api)
    validate(doc)
    paths = doc["paths"]
    assert paths["/old-notes"]["post"]["deprecated"] is True
    assert paths["/old-notes"]["post"]["x-sunset"] == "2027-07-01T00:00:00Z"
    assert paths["/old-notes/{note_id}"]["get"]["deprecated"] is True
    assert "x-sunset" not in paths["/old-notes/{note_id}"]["get"]
    assert "deprecated" not in paths["/notes"]["get"]


@pytest.mark.parametrize("kwargs, says", [
    ({"deprecated": "soon"}, "deprecated='soon' is not an ISO 8601 date"),
    ({"deprecated": "2027-07-01", "sunset": "2027-01-01"}, "is before deprecated"),
    ({"sunset": "2027-01-01"}, "need deprecated="),
    ({"deprecation_link": LINK}, "need deprecated="),
    ({"deprecated": "2027-01-01", "deprecation_link": "https://x/a b"}, "is not a URL"),
])
def test_a_wrong_deprecation_fails_where_it_is_declared(kwargs, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        endpoint(permission=PUBLIC, **kwargs)


def test_the_deprecation_dates_take_every_documented_form():
    for value in ("2027-01-01", dt.date(2027, 1, 1), dt.datetime(2027, 1, 1),
                  "2027-01-01T01:00:00+01:00", dt.datetime(2027, 1, 1, tzinfo=dt.UTC)):
        decorate = endpoint(permission=PUBLIC, deprecated=value)
        spec = spec_of(decorate(lambda self, req, resp: None))
        assert spec is not None
        assert spec.deprecated == JAN and spec.deprecation_headers == (
            ("Deprecation", "@1798761600"),), value

