"""What the OpenAPI document says about request bodies (`learnplat.plugin.Schema`), made to
match what the API accepts: strings are stripped before their length is checked and may not
hold NUL, and PATCH-style fields may be omitted but not sent as null."""

from __future__ import annotations

from typing import Any

NO_NUL = "^[^\\u0000]*$"
# What pydantic's str_strip_whitespace removes (Rust's trim: Unicode White_Space), spelled
# out: ECMA's \s differs from it (U+FEFF), and so does Python's str.strip() (U+001C-U+001F).
_SPACE = ("\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a"
          "\\u2028\\u2029\\u202f\\u205f\\u3000")
INT64 = 2**63 - 1


def stripped_pattern(min_length: int, max_length: int | None) -> str:
    """A string that, once stripped of surrounding white space, has at least `min_length`
    (at most `max_length`) characters, none of them NUL."""
    edge, space = f"[^{_SPACE}\\u0000]", f"[{_SPACE}]*"
    if max_length is not None and max_length <= 1:
        if max_length == 0 or min_length > 1:
            return f"^{space}$" if min_length == 0 else "^(?!)$"
        return f"^{space}{edge}{'?' if min_length == 0 else ''}{space}$"
    if min_length == 0:
        upper = "" if max_length is None else str(max(max_length - 2, 0))
        return f"^{space}({edge}([^\\u0000]{{0,{upper}}}{edge})?)?{space}$"
    if min_length == 1:
        upper = "" if max_length is None else str(max(max_length - 2, 0))
        return f"^{space}{edge}([^\\u0000]{{0,{upper}}}{edge})?{space}$"
    upper = "" if max_length is None else str(max(max_length - 2, min_length - 2))
    return f"^{space}{edge}[^\\u0000]{{{min_length - 2},{upper}}}{edge}{space}$"


def describe_strings(schema: object) -> None:
    """Add the stripping and NUL rules to every plain string of a request model's schema
    (properties, array items, anyOf branches; nested models describe themselves), and the
    64-bit range to integers that state no bound (larger ones are refused). Any other JSON
    value (``additionalProperties: true``, an absent key's None) is left as it is."""
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "integer":
        if "maximum" not in schema and "exclusiveMaximum" not in schema:
            schema["maximum"] = INT64
        if "minimum" not in schema and "exclusiveMinimum" not in schema:
            schema["minimum"] = -INT64 - 1
    if schema.get("type") == "string" and not ({"format", "pattern", "enum", "const"} & set(
            schema)):
        minimum, maximum = schema.get("minLength", 0), schema.get("maxLength")
        if minimum or maximum is not None:
            # The limits apply to the stripped string: the pattern states them, and a longer
            # string with surrounding white space is accepted (so no maxLength).
            schema["pattern"] = stripped_pattern(minimum, maximum)
            schema.pop("maxLength", None)
        else:
            schema["pattern"] = NO_NUL
    for key in ("properties", "patternProperties"):
        for sub in (schema.get(key) or {}).values():
            describe_strings(sub)
    for key in ("items", "additionalProperties"):
        describe_strings(schema.get(key))
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in schema.get(key) or ():
            describe_strings(sub)


def not_nullable(schema: dict[str, Any], fields: tuple[str, ...]) -> None:
    """Fields that may be omitted but not null: drop `null` (and the null default) from
    their schema."""
    props = schema.get("properties") or {}
    for name in fields:
        prop = props.get(name)
        if prop is None:
            continue
        branches = [b for b in prop.get("anyOf", ()) if b.get("type") != "null"]
        if "anyOf" in prop:
            del prop["anyOf"]
            if len(branches) == 1:
                prop.update(branches[0])
            else:
                prop["anyOf"] = branches
        if prop.get("default", 0) is None:
            del prop["default"]
