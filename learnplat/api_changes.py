"""Breaking changes between two OpenAPI 3.1 documents of the API: what a client written against
the old one (a school's app, a generated client) would trip over in the new one.

    breaking_changes(old, new) -> ["GET /courses: response 200 field `items[].title` was
    removed", ...]

Reported: a removed operation; a removed success status; a removed response field (followed
through $ref, allOf, anyOf/oneOf members, arrays and nested objects) or one no longer always
present; a type that changed (an input accepting less, an output answering something else); a
new required input (body property, query, path or header parameter, a body itself); an enum
value removed from an input; a format, pattern or tighter bound added to an input; a token
now needed where none was. Not
reported: new operations, optional inputs, new response fields, a new enum value in an answer
(clients treat one they do not know as "other"), descriptions, examples, component names
(schemas are compared by what they describe, not by what they are called, so renaming a
component is no change) and error answers.

Used by `learnplat openapi --check` and tests/core/test_core_api_evolution.py.
"""

from __future__ import annotations

import re
from typing import Any

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# A bound that only an input can break: (keyword, True when a larger value accepts more).
_BOUNDS = (("maximum", True), ("exclusiveMaximum", True), ("maxLength", True),
           ("maxItems", True), ("maxProperties", True), ("minimum", False),
           ("exclusiveMinimum", False), ("minLength", False), ("minItems", False),
           ("minProperties", False))
_ANY = None  # a schema without a type: any value
# The types a keyword constrains (JSON Schema validation §6): a bound on one member of a union
# says nothing about another member's values. `format` and `enum` constrain any type.
_NUMBERS = frozenset({"integer", "number"})
_FAMILY: dict[str, frozenset[str]] = {
    "maximum": _NUMBERS, "exclusiveMaximum": _NUMBERS, "minimum": _NUMBERS,
    "exclusiveMinimum": _NUMBERS, "maxLength": frozenset({"string"}),
    "minLength": frozenset({"string"}), "pattern": frozenset({"string"}),
    "maxItems": frozenset({"array"}), "minItems": frozenset({"array"}),
    "maxProperties": frozenset({"object"}), "minProperties": frozenset({"object"})}


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Each change from `old` to `new` that can break a client of `old`, in plain words naming
    the operation (``METHOD /path``) and the field; [] when `new` is compatible."""
    out: list[str] = []
    new_ops = _operations(new)
    for key, (path, method, old_op) in _operations(old).items():
        name = f"{method.upper()} {path}"
        if key not in new_ops:
            out.append(f"{name}: the operation was removed")
            continue
        new_op = new_ops[key][2]
        if _open(old, old_op) and not _open(new, new_op):
            out.append(f"{name}: a token is now required (callers without one were answered)")
        _Compare(old, new, name, out).operation(old_op, new_op)
    return list(dict.fromkeys(out))


def _operations(doc: dict[str, Any]) -> dict[tuple[str, str], tuple[str, str, dict[str, Any]]]:
    """Operations keyed by (method, path with its parameters unnamed): renaming `{id}` to
    `{course_id}` changes no URL a client builds."""
    ops = {}
    for path, item in (doc.get("paths") or {}).items():
        for method in _METHODS:
            if isinstance(item.get(method), dict):
                ops[(method, re.sub(r"\{[^}]*\}", "{}", path))] = (path, method, item[method])
    return ops


def _open(doc: dict[str, Any], op: dict[str, Any]) -> bool:
    """Whether callers without credentials may use `op`: no security requirement, or `{}`
    among the alternatives (OpenAPI's "no authentication")."""
    security = op.get("security", doc.get("security"))
    return not security or {} in security


def _is_success(status: str) -> bool:
    return status[:1] in ("2", "3")


class _Compare:
    """One operation's comparison: `old` and `new` are the whole documents, which the schemas'
    $refs point into."""

    def __init__(self, old: dict[str, Any], new: dict[str, Any], name: str, out: list[str]):
        self.old, self.new, self.name, self.out = old, new, name, out
        # (old $ref, new $ref, direction): a recursive schema (a tree of modules) is compared
        # once per place it is first met, not forever.
        self.seen: set[tuple[str, str, str]] = set()

    def report(self, text: str) -> None:
        self.out.append(f"{self.name}: {text}")

    # -- the operation ---------------------------------------------------------------------

    def operation(self, old_op: dict[str, Any], new_op: dict[str, Any]) -> None:
        self.parameters(old_op, new_op)
        self.request_body(old_op.get("requestBody"), new_op.get("requestBody"))
        old_responses = old_op.get("responses") or {}
        new_responses = new_op.get("responses") or {}
        for status, old_response in old_responses.items():
            if not _is_success(str(status)):
                continue
            if status not in new_responses:
                self.report(f"the success status {status} was removed")
                continue
            old_content = self.deref(self.old, old_response).get("content") or {}
            new_content = self.deref(self.new, new_responses[status]).get("content") or {}
            for media, old_media in old_content.items():
                if media not in new_content:
                    self.report(f"response {status} is no longer sent as {media}")
                    continue
                self.schema(old_media.get("schema") or {}, new_content[media].get("schema") or {},
                            "output", f"response {status} field", "")

    def parameters(self, old_op: dict[str, Any], new_op: dict[str, Any]) -> None:
        old_params = self.params(self.old, old_op)
        new_params = self.params(self.new, new_op)
        for key, param in new_params.items():
            old_param = old_params.get(key)
            if param.get("required") and not (old_param and old_param.get("required")):
                # A path parameter is always required; a new one is a new path, reported as a
                # removed operation.
                if key[0] != "path":
                    self.report(f"the {key[0]} parameter `{param.get('name')}` is now required"
                                if old_param else
                                f"a new required {key[0]} parameter `{param.get('name')}`")
        for key, old_param in old_params.items():
            if key in new_params:
                self.schema(old_param.get("schema") or {}, new_params[key].get("schema") or {},
                            "input", f"{key[0]} parameter", str(old_param.get("name")))

    def params(self, doc: dict[str, Any], op: dict[str, Any]) -> dict[tuple[str, str],
                                                                        dict[str, Any]]:
        """Parameters keyed by (in, name): header names are case-insensitive; path parameters
        go by position, since their names are not part of the URL."""
        out: dict[tuple[str, str], dict[str, Any]] = {}
        position = 0
        for raw in op.get("parameters") or []:
            param = self.deref(doc, raw)
            where = str(param.get("in"))
            name = str(param.get("name"))
            if where == "path":
                name, position = str(position), position + 1
            elif where == "header":
                name = name.lower()
            out[(where, name)] = param
        return out

    def request_body(self, old_body: dict[str, Any] | None, new_body: dict[str, Any] | None
                     ) -> None:
        old_body = self.deref(self.old, old_body) if old_body else None
        new_body = self.deref(self.new, new_body) if new_body else None
        if new_body is None:
            return  # a body no longer read: what a client sends is ignored, nothing fails
        if new_body.get("required") and not (old_body and old_body.get("required")):
            self.report("a request body is now required")
        if old_body is None:
            return
        new_content = new_body.get("content") or {}
        for media, old_media in (old_body.get("content") or {}).items():
            if media not in new_content:
                self.report(f"the request body is no longer accepted as {media}")
                continue
            self.schema(old_media.get("schema") or {}, new_content[media].get("schema") or {},
                        "input", "body field", "")

    # -- schemas ---------------------------------------------------------------------------

    def deref(self, doc: dict[str, Any], node: Any) -> dict[str, Any]:
        """`node` with its $ref chain followed (siblings of a $ref, allowed in 3.1, kept)."""
        hops = 0
        while isinstance(node, dict) and "$ref" in node and hops < 50:
            target = _pointer(doc, node["$ref"])
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            hops += 1
        return node if isinstance(node, dict) else {}

    def schema(self, old: Any, new: Any, direction: str, kind: str, where: str) -> None:
        """Compare one schema: `direction` "input" (what a client sends: it must still be
        accepted) or "output" (what a client reads: it must still be there, the same type)."""
        guard = (_ref_of(old), _ref_of(new), direction)
        if guard[0] and guard[1]:
            if guard in self.seen:
                return
            self.seen.add(guard)
        old_s, new_s = self.flat(self.old, old), self.flat(self.new, new)
        label = f"{kind} `{where}`" if where else kind.replace(" field", "")
        self.types(old_s, new_s, direction, label)
        if direction == "input":
            self.narrowing(old_s, new_s, label)
        self.objects(old_s, new_s, direction, kind, where)
        old_items, new_items = old_s["items"], new_s["items"]
        if old_items is not None and new_items is not None:
            self.schema(old_items, new_items, direction, kind, f"{where}[]")
        old_extra, new_extra = old_s["additional"], new_s["additional"]
        if old_extra is not None and new_extra is not None:
            self.schema(old_extra, new_extra, direction, kind, f"{where}.*")

    def types(self, old_s: dict[str, Any], new_s: dict[str, Any], direction: str,
              label: str) -> None:
        old_t, new_t = old_s["types"], new_s["types"]
        # An input must still accept what it accepted; an output may only answer what it
        # answered (a field that becomes nullable breaks a client that reads it).
        wider, narrower = (new_t, old_t) if direction == "input" else (old_t, new_t)
        if wider is _ANY or (narrower is not _ANY and _covers(wider, narrower)):
            return
        self.report(f"{label}: the type changed from {_show(old_t)} to {_show(new_t)}")

    def narrowing(self, old_s: dict[str, Any], new_s: dict[str, Any], label: str) -> None:
        old_enum, new_enum = _restriction(old_s["enum"]), _restriction(new_s["enum"])
        if new_enum is not None:
            if old_enum is None:
                self.report(f"{label}: now restricted to {_values(new_enum)}")
            elif gone := [v for v in old_enum if v not in new_enum]:
                self.report(f"{label}: no longer accepts {_values(gone)}")
        # A keyword of a type one side does not have is no narrowing of its own: the type
        # change is what is reported.
        applies = {k for k in ("format", *_FAMILY)
                   if _has_family(old_s["types"], k) and _has_family(new_s["types"], k)}
        for keyword, message in (("format", "format"), ("pattern", "pattern")):
            old_v, new_v = old_s["keywords"].get(keyword), new_s["keywords"].get(keyword)
            if keyword in applies and new_v is not None and old_v != new_v:
                self.report(f"{label}: the {message} {_short(new_v)} was added" if old_v is None
                            else f"{label}: the {message} changed from {_short(old_v)} to "
                                 f"{_short(new_v)}")
        for keyword, larger_accepts_more in _BOUNDS:
            old_v, new_v = old_s["keywords"].get(keyword), new_s["keywords"].get(keyword)
            if keyword not in applies or not _number(new_v):
                continue
            if not _number(old_v):
                self.report(f"{label}: {keyword} {new_v} was added")
            elif (new_v < old_v) if larger_accepts_more else (new_v > old_v):
                change = "lowered" if new_v < old_v else "raised"
                self.report(f"{label}: {keyword} {change} from {old_v} to {new_v}")

    def objects(self, old_s: dict[str, Any], new_s: dict[str, Any], direction: str,
                kind: str, where: str) -> None:
        old_props, new_props = old_s["properties"], new_s["properties"]
        prefix = f"{where}." if where else ""
        if direction == "output":
            for name in old_props:
                if name not in new_props:
                    self.report(f"{kind} `{prefix}{name}` was removed")
                elif name in old_s["required"] and name not in new_s["required"]:
                    self.report(f"{kind} `{prefix}{name}` is no longer always present")
        else:
            for name in sorted(new_s["required"] - old_s["required"]):
                if name in new_props:
                    self.report(f"{kind} `{prefix}{name}` is now required" if name in old_props
                                else f"a new required {kind} `{prefix}{name}`")
        for name, old_prop in old_props.items():
            if name in new_props:
                self.schema(old_prop, new_props[name], direction, kind, f"{prefix}{name}")

    def flat(self, doc: dict[str, Any], node: Any) -> dict[str, Any]:
        """What one schema says, its $refs followed and its allOf merged; the members of an
        anyOf/oneOf (pydantic's `X | None` among them) pooled: their types, properties, enum
        values and items together, a property required only when every object member
        requires it."""
        s = self.deref(doc, node)
        flat: dict[str, Any] = {"types": _ANY, "enum": None, "properties": {}, "required": set(),
                                "items": None, "additional": None, "keywords": {}}
        if "type" in s:
            kinds = s["type"] if isinstance(s["type"], list) else [s["type"]]
            flat["types"] = set(map(str, kinds))
        values = [s["const"]] if "const" in s else s.get("enum")
        if isinstance(values, list):
            flat["enum"] = list(values)
            if flat["types"] is _ANY:
                flat["types"] = {_json_type(v) for v in values}
        flat["properties"] = dict(s.get("properties") or {})
        flat["required"] = set(s.get("required") or [])
        flat["items"] = s.get("items") if isinstance(s.get("items"), dict) else None
        if isinstance(s.get("additionalProperties"), dict):
            flat["additional"] = s["additionalProperties"]
        flat["keywords"] = {k: s[k] for k in ("format", "pattern", *(b for b, _ in _BOUNDS))
                            if k in s}
        if flat["types"] is _ANY and (flat["properties"] or flat["additional"]):
            flat["types"] = {"object"}
        if flat["types"] is _ANY and flat["items"] is not None:
            flat["types"] = {"array"}
        for member in s.get("allOf") or []:
            self._merge_all(flat, self.flat(doc, member))
        members = [self.flat(doc, m) for m in (s.get("anyOf") or s.get("oneOf") or [])]
        if members:
            self._merge_any(flat, members)
        return flat

    @staticmethod
    def _merge_all(flat: dict[str, Any], part: dict[str, Any]) -> None:
        if part["types"] is not _ANY:
            flat["types"] = (part["types"] if flat["types"] is _ANY
                             else flat["types"] & part["types"] or part["types"])
        if part["enum"] is not None:
            flat["enum"] = part["enum"]
        flat["properties"].update(part["properties"])
        flat["required"] |= part["required"]
        flat["items"] = flat["items"] or part["items"]
        flat["additional"] = flat["additional"] or part["additional"]
        flat["keywords"] = {**part["keywords"], **flat["keywords"]}

    @staticmethod
    def _merge_any(flat: dict[str, Any], members: list[dict[str, Any]]) -> None:
        types: set[str] | None = set()
        enum: list[Any] | None = []
        for m in members:
            if types is not None:
                types = None if m["types"] is _ANY else types | m["types"]
            if enum is not None:
                if m["enum"] is not None:
                    enum += [v for v in m["enum"] if v not in enum]
                elif m["types"] == {"null"}:
                    enum.append(None)
                else:
                    enum = None  # a member that takes any value of its type
        if flat["types"] is _ANY:
            flat["types"] = types
        if flat["enum"] is None and enum is not None and any(v is not None for v in enum):
            flat["enum"] = enum
        objects = [m for m in members if m["properties"] or m["types"] == {"object"}]
        # A property several members declare is any of their schemas (`completed`: a
        # boolean in one member, null in the other); the schema's own properties, if any,
        # come first.
        pooled: dict[str, list[Any]] = {}
        for m in objects:
            for name, prop in m["properties"].items():
                if prop not in pooled.setdefault(name, []):
                    pooled[name].append(prop)
        for name, props in pooled.items():
            flat["properties"].setdefault(name, _any_of(props))
        if objects:
            flat["required"] |= set.intersection(*(m["required"] for m in objects))
        for key in ("items", "additional"):
            if flat[key] is None:
                flat[key] = _any_of([m[key] for m in members if m[key] is not None])
        # A value the union accepts is one some member accepts: of the members a keyword
        # concerns, the loosest bound holds, and a pattern or format only if all share it.
        merged: dict[str, Any] = {}
        for keyword in ("format", *_FAMILY):
            concerned = [m for m in members if m["types"] != {"null"}
                         and _has_family(m["types"], keyword)]
            values = [m["keywords"].get(keyword) for m in concerned]
            if not values or any(v is None for v in values):
                continue
            larger = dict(_BOUNDS).get(keyword)
            if larger is not None and all(_number(v) for v in values):
                merged[keyword] = max(values) if larger else min(values)
            elif larger is None and all(v == values[0] for v in values):
                merged[keyword] = values[0]
        flat["keywords"] = {**merged, **flat["keywords"]}


def _pointer(doc: dict[str, Any], ref: str) -> Any:
    """The node a local JSON pointer (``#/components/schemas/X``) names; {} if none (a
    dangling $ref is the document validator's to report, not a change)."""
    if not ref.startswith("#"):
        return {}
    node: Any = doc
    for part in ref[1:].split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return {}
        node = node[part]
    return node


def _any_of(schemas: list[Any]) -> Any:
    """One schema for `schemas` pooled from a union's members: None, the one, or anyOf."""
    distinct: list[Any] = []
    for schema in schemas:
        if schema not in distinct:
            distinct.append(schema)
    if len(distinct) <= 1:
        return distinct[0] if distinct else None
    return {"anyOf": distinct}


def _has_family(types: set[str] | None, keyword: str) -> bool:
    """Whether values of `types` are ones `keyword` constrains."""
    family = _FAMILY.get(keyword)
    return types is _ANY or family is None or bool(types & family)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _restriction(values: list[Any] | None) -> list[Any] | None:
    """An enum as a restriction: None when it is every value of its types anyway (true and
    false, and null: a boolean split into two `const`s across a union's members)."""
    if values is None:
        return None
    if all(v is None or isinstance(v, bool) for v in values) and \
            any(v is True for v in values) and any(v is False for v in values):
        return None
    return values


def _ref_of(node: Any) -> str:
    return str(node.get("$ref", "")) if isinstance(node, dict) else ""


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "string"


def _covers(wider: set[str], narrower: set[str]) -> bool:
    """Whether every value of the types `narrower` is one of `wider` (an integer is a
    number)."""
    return all(t in wider or (t == "integer" and "number" in wider) for t in narrower)


def _short(value: Any) -> str:
    """A keyword's value in a message: a long pattern cut (the message is still the same
    each time, for the changelog to quote)."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}...'"


def _show(types: set[str] | None) -> str:
    return "any" if types is None else " or ".join(sorted(types))


def _values(values: list[Any]) -> str:
    return ", ".join("null" if v is None else repr(v) for v in values)
