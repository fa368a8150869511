"""Helpers for the hostile-body tests: the JSON operations of the served OpenAPI document,
example bodies built from their schemas with a hostile value in every leaf, multipart bodies
gone wrong, and a count of a tenant's rows to prove that nothing was written."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from peewee import SQL, Value, fn

from learnplat import db
from learnplat.models import BaseModel, TenantModel
from learnplat.tenancy import TenantInfo, tenant_context

JSON = "application/json"
PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # OpenAPI template, {name} fields
    schema: dict[str, Any]
    anonymous: bool

    @property
    def fields(self) -> list[str]:
        return re.findall(r"{([^}]+)}", self.path)

    def url(self, ids: dict[str, Any]) -> str:
        return re.sub(r"{([^}]+)}", lambda m: str(ids.get(m.group(1), 1)), self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def json_operations(doc: dict[str, Any]) -> list[Operation]:
    """Every operation of the document whose request body is JSON."""
    out = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if not isinstance(op, dict) or "requestBody" not in op:
                continue
            content = op["requestBody"]["content"]
            if JSON in content:
                out.append(Operation(method.upper(), path, content[JSON]["schema"],
                                     anonymous=op.get("security") == []))
    return out


class Examples:
    """Bodies shaped like an operation's schema, every string/integer leaf replaced by the
    hostile value given (so that the schema's other checks pass as far as they can and the
    value reaches the layer that must refuse it)."""

    def __init__(self, doc: dict[str, Any]):
        self.schemas = doc.get("components", {}).get("schemas", {})

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.schemas[schema["$ref"].rsplit("/", 1)[1]]
        return schema

    def build(self, schema: dict[str, Any], string: str | None = None, integer: Any = None,
              depth: int = 0) -> Any:
        s = self.resolve(schema)
        for key in ("anyOf", "oneOf"):
            if key in s:
                options = [o for o in s[key] if self.resolve(o).get("type") != "null"]
                return self.build(options[0] if options else {}, string, integer, depth)
        if "allOf" in s:
            return self.build(s["allOf"][0], string, integer, depth)
        if "const" in s:
            return s["const"]
        if "enum" in s:
            return s["enum"][0]
        kind = s.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), None)
        if kind == "object" or "properties" in s:
            if depth > 4:
                return {}
            return {name: self.build(sub, string, integer, depth + 1)
                    for name, sub in s.get("properties", {}).items()}
        if kind == "array":
            if depth > 4:
                return []
            return [self.build(s.get("items", {}), string, integer, depth + 1)]
        if kind == "string":
            fmt = s.get("format")
            if string is None:
                return {"email": "someone@example.org", "date-time": "2030-01-01T00:00:00Z",
                        "date": "2030-01-01", "uri": "https://example.org/x"}.get(fmt, "text")
            if fmt == "email":
                return f"a{string}@example.org"
            return string
        if kind == "integer":
            return 1 if integer is None else integer
        if kind == "number":
            return 1.5 if integer is None else integer
        if kind == "boolean":
            return True
        return "text" if string is None else string


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes
    content_type: str | None = JSON
    # Statuses that are right for this case, whatever the operation.
    expect: tuple[int, ...] = (400, 422)
    # False: valid input the operation may well accept (and write); only no 5xx is asserted.
    strict: bool = True


def _bodies_for(example: Any) -> bytes:
    return orjson.dumps(example)


_MARK = 7_777_777_777_777


def hostile_cases(examples: Examples, op: Operation, max_body: int) -> Iterator[Case]:
    """The hostile bodies of the issue, for one operation."""
    schema = op.schema
    valid = _bodies_for(examples.build(schema))
    yield Case("nested arrays", b"[" * 100_000, expect=(400,))
    yield Case("nested objects", b'{"a":' * 50_000, expect=(400,))
    # Deep, but within orjson's 1024 levels: the duplicate-key pass must cope too.
    yield Case("nested 1000", b'{"a":' * 1000 + b"1" + b"}" * 1000, expect=(400, 422))
    yield Case("integer 10**400", b'{"x": 1' + b"0" * 400 + b"}", expect=(400,))
    for literal in (b"1e400", b"-1e400", b"NaN", b"Infinity", b"-Infinity"):
        yield Case(f"number {literal.decode()}", b'{"x": ' + literal + b"}", expect=(400,))
    yield Case("invalid UTF-8", valid[:-1] + b', "zz": "\xff\xfe\xc3\x28"}'
               if valid.endswith(b"}") else b'"\xff\xfe"', expect=(400,))
    yield Case("lone surrogate", b'{"x": "\\ud800"}', expect=(400,))
    yield Case("raw NUL byte", b'{"x": "a\x00b"}', expect=(400,))
    yield Case("raw NUL outside a string", b'{"x": 1}\x00', expect=(400,))
    yield Case("UTF-8 BOM", b"\xef\xbb\xbf" + valid, expect=(400,))
    # Shaped like the schema, so the value gets as far as the validation lets it (only where
    # the schema has such a field: else the body is simply valid).
    nul = _bodies_for(examples.build(schema, string="a\x00b"))
    if nul != valid:
        yield Case("\\u0000 in every string", nul, expect=(422,))
    yield Case("\\u0000 in a key", valid[:-1] + b', "k\\u0000": 1}' if valid.endswith(b"}")
               else b'{"k\\u0000": 1}', expect=(400, 422))
    marked = _bodies_for(examples.build(schema, integer=_MARK))
    if marked != valid:
        for n in (2**63, 2**64, -(2**63) - 1, 10**30):
            # Beyond 64 bits: orjson makes a float of it, which pydantic takes for an int.
            yield Case(f"integer {n} everywhere",
                       marked.replace(str(_MARK).encode(), str(n).encode()), expect=(422,))
        yield Case("'Infinity' in every number",
                   _bodies_for(examples.build(schema, integer="Infinity")), expect=(422,))
        for n in (2**31, -(2**31) - 1, 2**53 + 1):
            # Within 64 bits but beyond a 32-bit column: the schema's bounds or the database
            # refuse it (a DataError is a 422), or the operation takes it.
            yield Case(f"integer {n} everywhere",
                       marked.replace(str(_MARK).encode(), str(n).encode()),
                       expect=(200, 201, 204, 400, 404, 409, 413, 422), strict=False)
    long = _bodies_for(examples.build(schema, string="x" * 300_000))
    if long != valid:
        yield Case("overlong strings", long, expect=(413, 422))
    yield Case("duplicate keys", b'{"x": 1, "x": 2}', expect=(400,))
    if valid.startswith(b"{") and valid != b"{}":
        key = next(iter(orjson.loads(valid)))
        yield Case("duplicate schema key", valid[:-1] + b", " + orjson.dumps(key) + b": null}",
                   expect=(400,))
    for top in (b"[]", b"[{}]", b"1", b'"text"', b"null", b"true"):
        yield Case(f"top-level {top.decode()}", top, expect=(422,))
    yield Case("empty body", b"", expect=(400,))
    yield Case("whitespace body", b" \r\n\t ", expect=(400,))
    yield Case("text/plain", valid, content_type="text/plain", expect=(415,))
    yield Case("form-encoded", b"title=x", content_type="application/x-www-form-urlencoded",
               expect=(415,))
    yield Case("no content type", valid, content_type=None, expect=(415,))
    yield Case("multipart", valid, content_type="multipart/form-data; boundary=x", expect=(415,))
    yield Case("over the limit", b'{"x": "' + b"y" * max_body + b'"}', expect=(413,))


def tenant_tables(runtime: Any) -> list[type[BaseModel]]:
    """Every model with rows of a tenant (tenant-scoped models), whose table exists."""
    seen: list[type[BaseModel]] = []
    stack = list(TenantModel.__subclasses__())
    while stack:
        model = stack.pop()
        stack.extend(model.__subclasses__())
        if model not in seen:
            seen.append(model)
    with db.connection():
        existing = set(runtime.database.get_tables())
    return sorted((m for m in seen if m._meta.table_name in existing),
                  key=lambda m: m._meta.table_name)


def count_rows(models: list[type[BaseModel]], tenant: TenantInfo) -> dict[str, int]:
    """The tenant's rows per table, in one statement (a UNION ALL of one count per table)."""
    with db.connection(), tenant_context(tenant), db.transaction(write=False):
        sqls, params = [], []
        for i, m in enumerate(models):
            sql, args = m.select(Value(i), fn.COUNT(SQL("*"))).sql()
            sqls.append(sql)
            params.extend(args)
        rows = db.database.execute_sql(" UNION ALL ".join(sqls), params).fetchall()
    counts = dict(rows)
    return {m._meta.table_name: counts[i] for i, m in enumerate(models)}


def is_problem(resp: Any) -> bool:
    ctype = resp.headers.get("content-type", "")
    if not ctype.startswith(PROBLEM_JSON):
        return False
    body = orjson.loads(resp.content)
    return isinstance(body, dict) and body.get("status") == resp.status_code


# -- multipart ---------------------------------------------------------------------------------

BOUNDARY = "lphardeningb0undary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def multipart_operations(doc: dict[str, Any]) -> list[Operation]:
    """Every operation of the document whose request body is multipart/form-data."""
    out = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and "multipart/form-data" in op.get("requestBody", {}).get(
                    "content", {}):
                out.append(Operation(method.upper(), path, {}, anonymous=False))
    return out


def part(data: bytes, name: str = "file", filename: str | None = "f.bin",
         content_type: str = "application/octet-stream", boundary: str = BOUNDARY) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return (f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
            f"Content-Type: {content_type}\r\n\r\n").encode() + data + b"\r\n"


def closing(boundary: str = BOUNDARY) -> bytes:
    return f"--{boundary}--\r\n".encode()


@dataclass(frozen=True)
class Upload:
    """A broken multipart request: body, headers, statuses that are right."""

    name: str
    body: bytes
    headers: dict[str, str]
    expect: tuple[int, ...]


def broken_uploads(data: bytes, filename: str, content_type: str) -> Iterator[Upload]:
    """Multipart bodies gone wrong around a file (`data`) the route would take."""
    whole = part(data, filename=filename, content_type=content_type) + closing()
    h = {"Content-Type": MULTIPART}
    # Cut in the file: the file's own check (not an image: 415/422) may see it first.
    yield Upload("truncated in the file", whole[: len(whole) // 2], h, (400, 415, 422))
    yield Upload("truncated in the part header", whole[:40], h, (400,))
    yield Upload("shorter than Content-Length", whole[: len(whole) // 2],
                 {**h, "Content-Length": str(len(whole))}, (400, 415, 422))
    yield Upload("no closing boundary", whole[: -len(closing())], h, (400,))
    yield Upload("closing boundary cut", whole[:-4], h, (400,))
    yield Upload("no file part", part(b"x", name="other", filename=None) + closing(), h, (422,))
    yield Upload("only the closing boundary", closing(), h, (400, 422))
    yield Upload("empty body", b"", h, (400, 422))
    yield Upload("wrong boundary", whole, {"Content-Type":
                                           "multipart/form-data; boundary=somethingelse"}, (400,))
    yield Upload("no boundary", whole, {"Content-Type": "multipart/form-data"}, (400,))
    yield Upload("boundary too long", whole, {"Content-Type": "multipart/form-data; boundary="
                                              + "b" * 5000}, (400,))
    yield Upload("not multipart", data, {"Content-Type": content_type}, (415,))
    yield Upload("huge part header", part(data, filename="x" * 200_000 + ".png") + closing(), h,
                 (400, 413, 422))
    yield Upload("endless header line", f"--{BOUNDARY}\r\nX-Junk: ".encode() + b"j" * 300_000,
                 h, (400, 413))
    yield Upload("part header without end", f"--{BOUNDARY}\r\nContent-Disposition: form-data; "
                 f'name="file"; filename="{filename}"\r\n'.encode() + data, h, (400,))
    yield Upload("many parts", b"".join(part(b"v", name=f"f{i}", filename=None)
                                        for i in range(5000)) + whole, h, (400, 413, 422))
    yield Upload("zero-byte file", part(b"", filename=filename, content_type=content_type)
                 + closing(), h, (400, 415, 422))
    yield Upload("declared 10 GB", whole, {**h, "Content-Length": str(10 * 1024**3)},
                 (400, 413))
    yield Upload("two file parts, the second cut", part(data, filename=filename,
                                                         content_type=content_type)
                 + part(data, filename=filename, content_type=content_type)[:-100], h, (400,))


def stored_keys(runtime: Any, tenant: TenantInfo) -> list[str]:
    """Every storage object of the tenant."""
    with tenant_context(tenant):
        return sorted(o.key for o in runtime.storage.list(""))
