"""The OpenAPI 3.1 document, generated from the routes' @endpoint declarations."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import pydantic
from pydantic.json_schema import models_json_schema

from .. import __version__, idempotency
from ..auth import PUBLIC
from . import conditional, reference
from .endpoint import JSON, MULTIPART, EndpointSpec, spec_of
from .problems import PROBLEM_JSON
from .routing import HTTP_METHODS, openapi_path, path_fields

if TYPE_CHECKING:
    from ..runtime import Runtime

REF = "#/components/schemas/{model}"

PROBLEM_SCHEMA = {
    "type": "object",
    # Every error answer carries all six, Falcon's own refusals too (learnplat.http.problems).
    "required": ["type", "title", "status", "detail", "code", "request_id"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"},
                               "type": {"type": "string"}},
            },
        },
    },
}

_ERROR_TEXT = {400: "Malformed request", 401: "Not authenticated", 403: "Not allowed",
               404: "Not found in this tenant", 409: "Conflict", 413: "Too large",
               415: "Wrong media type", 422: "Invalid input", 429: "Rate limited"}


# Storage faults during an upload (learnplat.storage.StorageFull / StorageUnavailable).
_ERROR_TEXT.update({503: "A backing service (the file store) is unavailable; retry after "
                         "Retry-After", 507: "The file store is full"})
_NO_CONTENT = {204: "Done; no content", 304: "Not modified"}
_REDIRECT = {301: "Moved", 302: "Redirect", 303: "See other", 307: "Redirect"}


def responders(resource: Any) -> list[tuple[str, Any]]:
    """(method, responder) of a resource (one resource object per route)."""
    out = []
    for method in HTTP_METHODS:
        fn = getattr(resource, f"on_{method.lower()}", None)
        if fn is not None:
            out.append((method, fn))
    return out


def _models_of(spec: EndpointSpec) -> list[type[pydantic.BaseModel]]:
    return [m for m in (spec.body, spec.response, *spec.response_for.values())
            if isinstance(m, type) and issubclass(m, pydantic.BaseModel)]


def build_document(runtime: Runtime) -> dict[str, Any]:
    operations: list[tuple[str, str, Any, EndpointSpec]] = []
    models: list[type[pydantic.BaseModel]] = []
    for route in runtime.registry.routes:
        for method, fn in responders(route.resource):
            spec = spec_of(fn)
            if spec is None:
                continue
            operations.append((route.path, method, route, spec))
            models.extend(_models_of(spec))
    unique = list(dict.fromkeys(models))
    keys, schemas = models_json_schema(
        [(m, "validation") for m in unique], ref_template=REF
    )
    components: dict[str, Any] = dict(schemas.get("$defs", {}))
    components["Problem"] = PROBLEM_SCHEMA
    paths: dict[str, Any] = {}
    for template, method, route, spec in operations:
        op = _operation(template, method, route, spec, keys)
        paths.setdefault(openapi_path(template), {})[method.lower()] = op
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        # The reference page (/docs) shows the description as its intro and the operations
        # grouped by tag: one per plugin, described (learnplat.http.reference).
        "info": {"title": "learnplat", "version": __version__,
                 "description": reference.describe_api(runtime)},
        "tags": reference.plugin_tags(runtime, list(dict.fromkeys(
            tag for _, _, route, spec in operations for tag in (spec.tags or [route.plugin])))),
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "bearerFormat": "JWT"}},
            "headers": RATE_LIMIT_HEADERS,
            "parameters": {"XTenant": {"name": "X-Tenant", "in": "header", "required": False,
                                       "schema": {"type": "string"},
                                       "description": "Tenant slug (or use its domain)."}},
        },
    }
    add_examples(doc["paths"], components)  # before the hook: a plugin may replace them
    runtime.hook.extend_openapi(document=doc)
    # A tag a plugin's hook added again (its own description) replaces the generated one.
    doc["tags"] = list({tag["name"]: tag for tag in doc.get("tags", [])}.values())
    return doc


def _anonymous_note(spec: EndpointSpec) -> str:
    """When callers without a token are let in: the predicate's docstring, or "always"."""
    if callable(spec.anonymous):
        paragraph = (spec.anonymous.__doc__ or "").strip().split("\n\n")[0]
        return " ".join(paragraph.split()) or "depends on the school's settings"
    return "always"


def _schema_ref(model: Any, keys: dict[Any, Any]) -> dict[str, Any]:
    return keys[(model, "validation")]


def _success(spec: EndpointSpec, model: Any, keys: dict[Any, Any]) -> dict[str, Any]:
    success: dict[str, Any] = {"description": "Success"}
    if model is not None and isinstance(model, type) and issubclass(model, pydantic.BaseModel):
        success["content"] = {spec.response_content_type: {"schema": _schema_ref(model, keys)}}
    elif spec.response_content_type != JSON:
        success["content"] = {spec.response_content_type: {"schema": {}}}
    return success


def _operation(template: str, method: str, route: Any, spec: EndpointSpec,
               keys: dict[Any, Any]) -> dict[str, Any]:
    params: list[dict[str, Any]] = []
    for name, converter in path_fields(template):
        schema = {"type": "integer"} if converter == "int" else {"type": "string"}
        param: dict[str, Any] = {"name": name, "in": "path", "required": True,
                                 "schema": schema}
        if name == route.tenant_param:
            param["description"] = ("The school's slug: it names the school here (the URL is "
                                    "given to another system, which sends no X-Tenant).")
        params.append(param)
    if spec.query is not None:
        query = spec.query.model_json_schema(ref_template=REF)
        required = set(query.get("required", []))
        for name, prop in query.get("properties", {}).items():
            params.append({"name": name, "in": "query", "required": name in required,
                           "schema": prop, **({"description": prop["description"]}
                                              if "description" in prop else {})})
    if route.tenant_scoped and not route.tenant_param:
        params.append({"$ref": "#/components/parameters/XTenant"})
    op: dict[str, Any] = {
        "operationId": f"{method.lower()}_{openapi_path(template).strip('/').replace('/', '_')}"
        .replace("{", "").replace("}", "").replace(".", "_").replace("-", "_") or "root",
        "summary": spec.summary or f"{method} {template}",
        "tags": list(spec.tags) or [route.plugin],
        "x-permission": spec.permission,
        "parameters": params,
    }
    if spec.description and spec.description != spec.summary:
        op["description"] = spec.description
    if spec.deprecated is not None:
        # Still served; the answers' Deprecation and Sunset headers say since and until when
        # (learnplat.http.endpoint), and x-sunset lets a client's tooling see the date too.
        op["deprecated"] = True
        if spec.sunset is not None:
            op["x-sunset"] = spec.sunset.strftime("%Y-%m-%dT%H:%M:%SZ")
    if spec.permission == PUBLIC:
        op["security"] = []
    elif spec.anonymous:
        # Token optional: `{}` is OpenAPI's "no authentication" alternative.
        op["security"] = [{}, {"bearer": []}]
        op["x-anonymous"] = _anonymous_note(spec)
    else:
        op["security"] = [{"bearer": []}]
    if spec.body is not None:
        # JSON, a JSON-based type of the route's (``application/vnd.ims.lis.v1.score+json``)
        # or an HTML form's fields (FORM).
        op["requestBody"] = {"required": True, "content": {
            spec.content_type: {"schema": _schema_ref(spec.body, keys)}}}
    elif spec.content_type == MULTIPART:
        # A part of kind "file" is required (the responder answers 422 without it); "file:
        # image/png, image/jpeg" also names the media types the API takes for it.
        files = {name: kind.partition(":")[2].strip() for name, kind
                 in spec.multipart_fields.items() if kind.partition(":")[0] == "file"}
        props = {name: ({"type": "string", "format": "binary"} if name in files
                        else {"type": "string"}) for name in spec.multipart_fields}
        media: dict[str, Any] = {"schema": {"type": "object", "properties": props,
                                            "required": sorted(files)}}
        if any(files.values()):
            media["encoding"] = {name: {"contentType": types}
                                 for name, types in files.items() if types}
        op["requestBody"] = {"required": True, "content": {MULTIPART: media}}
    responses: dict[str, Any] = {}
    for status in (spec.status, *spec.also):
        success = _success(spec, spec.response_for.get(status, spec.response), keys)
        if status in _NO_CONTENT:
            responses[str(status)] = {"description": _NO_CONTENT[status]}
        elif status in _REDIRECT:
            responses[str(status)] = {"description": _REDIRECT[status],
                                      "headers": {"Location": {"schema": {"type": "string"}}}}
        else:
            responses[str(status)] = success
    # Every route is rate limited (learnplat.ratelimit) but the health probes.
    codes = set(spec.errors) | ({429} if spec.rate_limited else set())
    if spec.permission != PUBLIC:
        codes |= {401, 403}
    # A request that names a school (always, on a tenant-scoped route) and carries an
    # Authorization header is authenticated first: an invalid or revoked token is a 401 even
    # on a public route.
    codes.add(401)
    if route.tenant_scoped:
        codes.add(404)
    if spec.body is not None or spec.query is not None:
        codes |= {422}
    if spec.body is not None:
        codes |= {400, 413, 415}
    if spec.content_type == MULTIPART:  # a malformed, too large or partless form; the file
        codes |= {400, 413, 415, 422, 503, 507}  # store may be full (507) or down (503)
    for code in sorted(codes):
        responses[str(code)] = {
            "description": _ERROR_TEXT.get(code, "Error"),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    if spec.etag:  # ETag, If-None-Match / 304 on a GET, If-Match / 412 on a change
        conditional.document(method, params, responses, {
            PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}})
    if method == "POST" and route.tenant_scoped:  # Idempotency-Key: safe retries
        idempotency.document(params, responses, {
            PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}})
    for status_key, response in responses.items() if spec.rate_limited else ():
        response["headers"] = {**response.get("headers", {}), **_LIMIT_HEADERS}
        if status_key == "429":
            response["headers"]["Retry-After"] = {"$ref": "#/components/headers/Retry-After"}
    op["responses"] = responses
    op["x-rate-limit"] = ({"budget": spec.budget, "cost": spec.cost} if spec.rate_limited
                          else {"budget": None, "cost": 0})
    return op


_LIMIT_HEADERS = {name: {"$ref": f"#/components/headers/{name}"}
                  for name in ("RateLimit", "RateLimit-Policy")}
RATE_LIMIT_HEADERS = {
    "RateLimit": {
        "description": "The budget closest to refusing: its name, r = units remaining, "
                       "t = seconds until it is whole again (draft-ietf-httpapi-ratelimit-"
                       'headers), e.g. `"user";r=148;t=1`. Absent when limits are off.',
        "schema": {"type": "string"}},
    "RateLimit-Policy": {
        "description": "Every budget this request counted against: q = burst (units), "
                       "w = seconds to refill it from empty, e.g. "
                       '`"user";q=150;w=30, "tenant";q=5000;w=10`.',
        "schema": {"type": "string"}},
    "Retry-After": {"description": "Seconds to wait before retrying.",
                    "schema": {"type": "integer", "minimum": 1}},
}


# -- examples: one per JSON request body and success answer (docs/plugins.md, "Examples") ---

class MissingExample(Exception):
    """A schema with no complete example: `missing` names each field (``Model.field``) that
    has no example, default, const or enum of its own, nor a model with an example."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__(", ".join(missing))
        self.missing = missing


def example_of(schema: dict[str, Any], components: dict[str, Any]) -> Any:
    """An example of `schema` (a schema of the document, `$ref`s into `components`): its own
    `examples[0]`, else one composed from its parts, each by the same rule: a field's
    `examples[0]`, else its default (when not None), else a const's value or an enum's first,
    else its model's example, composed in turn (a list: one item; a union: its first branch
    that composes, null when none does and null is allowed; an optional field that composes
    to nothing is left out). Raises MissingExample naming every field that lacks one."""
    missing: list[str] = []
    value = _compose(schema, components, "", "", missing, ())
    if missing:
        raise MissingExample(list(dict.fromkeys(missing)))
    return value


_ABSENT = object()


def _compose(schema: Any, components: dict[str, Any], model: str, where: str,
             missing: list[str], seen: tuple[str, ...]) -> Any:
    """`model`: the component being composed, `where`: the field path inside it (what a
    MissingExample names); `seen`: the components being composed (a cycle has no end)."""
    if not isinstance(schema, dict):
        missing.append(f"{model}{where}" or "(schema)")
        return None
    if schema.get("examples"):
        return copy.deepcopy(schema["examples"][0])
    if schema.get("default") is not None:
        return copy.deepcopy(schema["default"])
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name in seen or name not in components:
            missing.append(f"{name}" if name in seen else f"{model}{where} ($ref {ref})")
            return None
        return _compose(components[name], components, name, "", missing, (*seen, name))
    for keyword in ("anyOf", "oneOf"):
        if keyword in schema:
            return _compose_union(schema[keyword], components, model, where, missing, seen)
    if len(schema.get("allOf") or ()) == 1:
        return _compose(schema["allOf"][0], components, model, where, missing, seen)
    kind = schema.get("type")
    if kind == "null":
        return None
    if kind == "object" or "properties" in schema:
        return _compose_object(schema, components, model, where, missing, seen)
    if kind == "array" and "items" in schema:
        return [_compose(schema["items"], components, model, f"{where}[]", missing, seen)]
    missing.append(f"{model}{where}" or "(schema)")
    return None


def _compose_union(branches: list[Any], components: dict[str, Any], model: str, where: str,
                   missing: list[str], seen: tuple[str, ...]) -> Any:
    first: list[str] | None = None
    nullable = False
    for branch in branches:
        if isinstance(branch, dict) and branch.get("type") == "null":
            nullable = True
            continue
        tried: list[str] = []
        value = _compose(branch, components, model, where, tried, seen)
        if not tried:
            return value
        first = tried if first is None else first
    if not nullable:
        missing.extend(first or [f"{model}{where}"])
    return None


def _compose_object(schema: dict[str, Any], components: dict[str, Any], model: str,
                    where: str, missing: list[str], seen: tuple[str, ...]) -> Any:
    required = set(schema.get("required", ()))
    out: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        if name not in required and isinstance(prop, dict) and not prop.get("examples") and (
                prop.get("default", _ABSENT) is None):
            continue  # optional, null when left out: nothing to show
        tried: list[str] = []
        value = _compose(prop, components, model, f"{where}.{name}", tried, seen)
        if not tried:
            out[name] = value
        elif name in required:
            missing.extend(tried)
    return out


def add_examples(paths: dict[str, Any], components: dict[str, Any]) -> None:
    """Put an example (example_of) into every JSON request body and success answer of the
    operations in `paths` (what Swagger UI shows as "Example Value"), where one composes;
    tests/core/test_core_api_examples.py names those where none does."""
    for operation in (op for item in paths.values() for op in item.values()):
        media = [operation.get("requestBody", {}).get("content", {}).get(JSON)]
        media += [response.get("content", {}).get(JSON) for status, response
                  in operation.get("responses", {}).items() if status.startswith("2")]
        for entry in media:
            if entry is None or "schema" not in entry:
                continue
            try:
                entry["example"] = example_of(entry["schema"], components)
            except MissingExample:
                pass

