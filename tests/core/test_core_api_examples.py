"""Examples for every operation, checked against the schemas (issue 26, item 2).

Every operation with a JSON request body or a JSON success answer shows an example of it in
the served document (the media type's `example`: the model's own `examples[0]`, or one
composed from its fields by learnplat.http.openapi.example_of). Each example is true:
- to the served document, read by an implementation nobody here wrote (jsonschema, Draft
  2020-12, with date-time, email ... formats checked and the document as the registry its
  `$ref`s resolve in);
- to the pydantic model the responder declares: an answer strictly, as it travels (the JSON
  text), a request body as the API parses it;
- to the API itself, for the bodies that need no row of their own (or only rows the flow
  makes first): the learner of the examples registers and signs in with them, an instructor
  makes, edits and publishes a course with its module, she enrolls, rates it and asks a
  question, both are answered; then the course's rules, a bulk enrollment, her profile and
  role, the certificate template.

A missing example fails naming every operation and field at once (`Model.field`: give the
model a whole-object example in `json_schema_extra={"examples": [...]}`, or the field
`Field(examples=[...])`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

import jsonschema
import pydantic
import pytest
from pydantic import ConfigDict, Field
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from learnplat.http.endpoint import JSON, spec_of
from learnplat.http.openapi import MissingExample, example_of, responders
from learnplat.http.routing import openapi_path
from learnplat.plugin import OMIT, Schema, Variant, Variants
from learnplat.testing import Client

DOC = "urn:learnplat:openapi"  # where the served document is registered for its $refs


@pytest.fixture(scope="module")
def document(lp_app: Any) -> dict[str, Any]:
    """The document as GET /openapi.json serves it."""
    r = Client(lp_app).get("/openapi.json")
    assert r.status_code == 200, r.text
    return json.loads(r.text)


def json_media(op: dict[str, Any]) -> Iterator[tuple[str, int | None, dict[str, Any]]]:
    """("request" or "<status> answer", the status, the media type object) of an operation's
    JSON request body and JSON success answers."""
    body = op.get("requestBody", {}).get("content", {}).get(JSON)
    if body is not None:
        yield "request", None, body
    for status, response in op["responses"].items():
        media = response.get("content", {}).get(JSON)
        if status.startswith("2") and media is not None:
            yield f"{status} answer", int(status), media


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, op in item.items():
            yield f"{method.upper()} {path}", op


def test_every_operation_shows_a_complete_example(document: dict[str, Any]):
    components = document["components"]["schemas"]
    lacking, counted = [], 0
    for name, op in operations(document):
        for where, _, media in json_media(op):
            counted += 1
            if "example" in media:
                continue
            try:
                example_of(media["schema"], components)
                missing = ["(composes, yet the document has none)"]
            except MissingExample as exc:
                missing = exc.missing
            lacking.append(f"{name} {where}: no example for {', '.join(missing)}")
    assert counted > 100  # the plugins' operations are all there
    assert not lacking, (f"{len(lacking)} JSON bodies without a complete example (give the "
                         "model json_schema_extra={'examples': [...]} or the fields "
                         "Field(examples=[...])):\n" + "\n".join(lacking))


def test_every_example_is_valid_by_the_served_schema(document: dict[str, Any]):
    registry = Registry().with_resource(DOC, DRAFT202012.create_resource(document))
    wrong = []
    for name, op in operations(document):
        for where, _, media in json_media(op):
            if "example" not in media:
                continue  # the test above names it
            schema = media["schema"]
            if "$ref" in schema:
                schema = {**schema, "$ref": DOC + schema["$ref"]}
            validator = jsonschema.Draft202012Validator(
                schema, registry=registry,
                format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
            for error in validator.iter_errors(media["example"]):
                at = "/".join(str(p) for p in error.absolute_path) or "(the whole example)"
                wrong.append(f"{name} {where}: {at}: {error.message[:300]}")
    assert not wrong, "examples the document's own schema refuses:\n" + "\n".join(wrong)


def test_every_example_is_what_its_model_takes(lp_runtime: Any, document: dict[str, Any]):
    wrong, checked = [], 0
    for route in lp_runtime.registry.routes:
        for method, fn in responders(route.resource):
            spec = spec_of(fn)
            op = document["paths"].get(openapi_path(route.path), {}).get(method.lower())
            if spec is None or op is None:
                continue
            name = f"{method} {openapi_path(route.path)}"
            for where, status, media in json_media(op):
                model = spec.body if status is None else spec.response_for.get(
                    status, spec.response)
                if "example" not in media or not (
                        isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
                    continue
                checked += 1
                try:
                    if status is None:  # as the API parses a request body
                        model.model_validate(media["example"])
                    else:  # an answer, strictly, as the JSON text it travels as
                        model.model_validate_json(json.dumps(media["example"]), strict=True)
                except pydantic.ValidationError as exc:
                    wrong.append(f"{name} {where} ({model.__name__}): {exc}")
    shown = sum("example" in media for _, op in operations(document)
                for _, _, media in json_media(op))
    assert checked == shown  # every example was checked against its model
    assert not wrong, "examples their own model refuses:\n" + "\n".join(wrong)


def example(document: dict[str, Any], method: str, path: str, status: int | None = None
            ) -> dict[str, Any]:
    """The request body's example (status None) or an answer's."""
    op = document["paths"][path][method]
    if status is None:
        return op["requestBody"]["content"][JSON]["example"]
    return op["responses"][str(status)]["content"][JSON]["example"]


def test_request_examples_are_accepted_by_the_api(document: dict[str, Any], lp_client: Client,
                                                  lp_users: Any):
    # A school developer pastes the examples in, one after the other: the learner of the
    # examples registers and signs in, her instructor makes and publishes a course, she
    # enrolls, rates it and asks a question, both are answered; then the rules, a bulk
    # enrollment, her profile, her role and the certificate template.
    def body(method: str, path: str) -> dict[str, Any]:
        return example(document, method, path)

    def expect(status: int, r: Any) -> Any:
        assert r.status_code == status, r.text
        return r.json

    register = body("post", "/auth/register")
    ada = expect(201, lp_client.post("/auth/register", json=register))
    assert ada["email"] == register["email"]
    login = body("post", "/auth/login")
    assert login == {"email": register["email"], "password": register["password"]}
    student = lp_client.as_(expect(200, lp_client.post("/auth/login", json=login))[
        "access_token"])

    instructor = lp_client.as_(lp_users.make("instructor").token)
    admin = lp_client.as_(lp_users.make("admin").token)
    course = expect(201, instructor.post("/courses", json=body("post", "/courses")))["id"]
    c = "/courses/{course_id}"
    expect(201, instructor.post(f"/courses/{course}/modules", json=body("post", f"{c}/modules")))
    expect(200, instructor.put(f"/courses/{course}", json=body("put", c)))
    expect(200, instructor.post(f"/courses/{course}/submit"))
    expect(200, admin.post(f"/courses/{course}/approve"))

    expect(201, student.post(f"/courses/{course}/enroll"))
    rating = expect(201, student.post(f"/courses/{course}/ratings",
                                      json=body("post", f"{c}/ratings")))
    expect(200, instructor.put(f"/courses/{course}/ratings/{rating['id']}/reply",
                               json=body("put", f"{c}/ratings/{{rating_id}}/reply")))
    thread = expect(201, student.post(f"/courses/{course}/feedback",
                                      json=body("post", f"{c}/feedback")))
    expect(201, instructor.post(
        f"/courses/{course}/feedback/{thread['id']}/messages",
        json=body("post", f"{c}/feedback/{{thread_id}}/messages")))

    expect(200, instructor.put(f"/courses/{course}/enrollment-rules",
                               json=body("put", f"{c}/enrollment-rules")))
    bulk = body("post", f"{c}/enrollments/bulk")
    report = expect(200, instructor.post(f"/courses/{course}/enrollments/bulk", json=bulk))
    assert len(report["rows"]) == len(bulk.get("emails", [])) + len(bulk.get("user_ids", []))

    expect(200, student.put(f"/users/{ada['id']}", json=body("put", "/users/{user_id}")))
    expect(200, admin.put("/certificates/template", json=body("put", "/certificates/template")))
    role = body("put", "/users/{user_id}/role")
    assert expect(200, admin.put(f"/users/{ada['id']}/role", json=role))["role"] == role["role"]


# -- the machinery: the composer, and a body documented as the union of its shapes ----------


class _Tag(pydantic.BaseModel):
    label: str = Field(examples=["statistics"])


class _Card(pydantic.BaseModel):
    id: int = Field(examples=[42])
    kind: str = "course"
    state: str = Field(json_schema_extra={"enum": ["draft", "published"]})
    tags: list[_Tag]
    note: str | None = None
    owner: str | None


class _Bare(pydantic.BaseModel):
    id: int
    title: str = Field(examples=["Algebra"])
    card: _Card
    at: str


def _schema_and_components(model: type[pydantic.BaseModel]
                           ) -> tuple[dict[str, Any], dict[str, Any]]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return {"$ref": f"#/components/schemas/{model.__name__}"}, {
        **schema.pop("$defs", {}), model.__name__: schema}


def test_the_composer_builds_an_example_from_fields_and_names_what_is_missing():
    schema, components = _schema_and_components(_Card)
    # examples[0], the default, an enum's first value, a nested model's example, one item;
    # an optional field that is null when left out is left out, a nullable one is null.
    assert example_of(schema, components) == {
        "id": 42, "kind": "course", "state": "draft", "tags": [{"label": "statistics"}],
        "owner": None}
    schema, components = _schema_and_components(_Bare)
    with pytest.raises(MissingExample) as exc:
        example_of(schema, components)
    assert exc.value.missing == ["_Bare.id", "_Bare.at"]


def test_a_model_example_wins_over_its_fields():
    class Whole(pydantic.BaseModel):
        model_config = ConfigDict(json_schema_extra={"examples": [{"id": 7}]})
        id: int

    schema, components = _schema_and_components(Whole)
    assert example_of(schema, components) == {"id": 7}


class _PingIn(Schema):
    """A ping."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True,
                              json_schema_extra={"examples": [{"to": "user", "user_id": 1001}]})

    to: str
    user_id: int | None = None
    course_id: int | None = None

    documented_as = Variants(
        Variant("PingUserIn", "To one user.", to=(Literal["user"], ...), user_id=Field(ge=1),
                course_id=OMIT),
        Variant("PingCourseIn", "To a course.", to=(Literal["course"], ...),
                course_id=Field(ge=1), user_id=(None, None)),
        discriminator="to")


def test_a_body_is_documented_as_the_union_of_its_variants():
    schema = _PingIn.model_json_schema()
    refs = ["#/$defs/PingUserIn", "#/$defs/PingCourseIn"]
    assert schema["oneOf"] == [{"$ref": ref} for ref in refs]
    assert schema["discriminator"] == {"propertyName": "to", "mapping": dict(
        zip(["user", "course"], refs, strict=True))}
    assert (schema["title"], schema["description"]) == ("_PingIn", "A ping.")
    assert schema["examples"] == [{"to": "user", "user_id": 1001}]
    user, course = schema["$defs"]["PingUserIn"], schema["$defs"]["PingCourseIn"]
    assert set(user["properties"]) == {"to", "user_id"}
    assert user["required"] == ["to", "user_id"] and user["additionalProperties"] is False
    assert course["properties"]["user_id"] == {"default": None, "title": "User Id",
                                               "type": "null"}
    # The variants only document: the class still validates (with its own rules).
    assert _PingIn.model_validate({"to": "anything"}).to == "anything"
    jsonschema.validate({"to": "course", "course_id": 42}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"to": "course", "course_id": 42, "user_id": 7}, schema)


def test_a_variant_naming_an_unknown_field_or_a_bad_discriminator_is_an_error():
    class Typo(Schema):
        a: int | None = None
        b: int | None = None

        documented_as = Variants(Variant("TypoA", "", c=OMIT), Variant("TypoB", ""))

    with pytest.raises(TypeError, match="unknown fields"):
        Typo.model_json_schema()

    class NoTag(Schema):
        a: int | None = None

        documented_as = Variants(Variant("NoTagA", ""), Variant("NoTagB", ""),
                                 discriminator="a")

    with pytest.raises(TypeError, match="one-value Literal"):
        NoTag.model_json_schema()
    with pytest.raises(TypeError, match="two"):
        Variants(Variant("Alone", ""))
