"""What the OpenAPI document says about request bodies (`learnplat.plugin.Schema`), made to
match what the API accepts: strings are stripped before their length is checked and may not
hold NUL, and PATCH-style fields may be omitted but not sent as null; a body whose fields
combine in a few ways is documented as the union of those shapes (`Variant`, `Variants`)."""

from __future__ import annotations

import inspect
import typing
from typing import Any, Literal, Union, cast

from pydantic import BaseModel, GetJsonSchemaHandler, TypeAdapter, create_model
from pydantic.json_schema import JsonSchemaValue

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


# -- typed unions: one request body, documented as the shapes it takes -------------------------

OMIT: Any = object()
"""A `Variant` field override: the variant has no such field."""


class Variant:
    """One shape of a request body, for the OpenAPI document only: a model named `name`
    (described by `doc`) with the fields of the body's class, except those given here.
    An override is a ``Field(...)`` (the field keeps its type, with these constraints and
    default instead), an ``(annotation, default or Field(...))`` pair as for pydantic's
    ``create_model`` (``(None, None)``: the field is null or left out), or `OMIT`."""

    def __init__(self, name: str, doc: str, **fields: Any) -> None:
        self.name, self.doc, self.fields = name, doc, fields


class Variants:
    """How `Schema.documented_as` documents a body: `keyword` "oneOf" (exactly one shape
    matches: the shapes exclude each other) or "anyOf" (they may overlap), and
    `discriminator`, a field whose type in every variant is a one-value ``Literal``
    (OpenAPI's discriminator, with the mapping of each value to its variant)."""

    def __init__(self, *variants: Variant, keyword: Literal["oneOf", "anyOf"] = "oneOf",
                 discriminator: str | None = None) -> None:
        if len(variants) < 2:
            raise TypeError("Variants needs two Variant shapes at least")
        self.variants, self.keyword, self.discriminator = variants, keyword, discriminator


_BUILT: dict[type, tuple[type[BaseModel], ...]] = {}


def variant_models(cls: type[BaseModel], base: type[BaseModel], variants: Variants
                   ) -> tuple[type[BaseModel], ...]:
    """The document's models of `cls`'s variants, on `base` (not on `cls`: they carry none of
    its validators and never validate a request), built once per class."""
    built = _BUILT.get(cls)
    if built is None:
        # setdefault: two threads building the first document at once agree on one set.
        built = _BUILT.setdefault(cls, tuple(_variant_model(cls, base, v)
                                             for v in variants.variants))
    return built


def _variant_model(cls: type[BaseModel], base: type[BaseModel], variant: Variant
                   ) -> type[BaseModel]:
    unknown = set(variant.fields) - set(cls.model_fields)
    if unknown:
        raise TypeError(f"{cls.__name__}: variant {variant.name} overrides unknown fields "
                        f"{sorted(unknown)}")
    fields: dict[str, Any] = {}
    for name, info in cls.model_fields.items():
        override = variant.fields.get(name, info)
        if override is OMIT:
            continue
        fields[name] = override if isinstance(override, tuple) else (info.annotation, override)
    model: type[BaseModel] = create_model(variant.name, __base__=base, __doc__=variant.doc,
                                          __module__=cls.__module__, **fields)
    return model


_ADAPTERS: dict[tuple[type[BaseModel], ...], TypeAdapter[Any]] = {}


def _union_adapter(models: tuple[type[BaseModel], ...]) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(models)
    if adapter is None:
        # (A union of classes made at run time: a type only to pydantic, hence the cast.)
        adapter = _ADAPTERS.setdefault(models, TypeAdapter(cast(Any, Union[models])))  # noqa: UP007
    return adapter


def union_schema(cls: type[BaseModel], models: tuple[type[BaseModel], ...],
                 variants: Variants, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
    """The schema of `cls` as the union of its variant `models` (each a component of the
    document), titled and described as `cls`, with the extra keys of its
    ``json_schema_extra`` (its `examples`)."""
    # Through a TypeAdapter of their union: its core schema refers to each model's
    # definition, so each becomes a component (with its own __get_pydantic_json_schema__).
    refs = handler(_union_adapter(models).core_schema)["anyOf"]
    schema: dict[str, Any] = {"title": cls.__name__}
    description = inspect.cleandoc(cls.__doc__ or "")
    if description:
        schema["description"] = description
    schema[variants.keyword] = refs
    if variants.discriminator is not None:
        prop = variants.discriminator
        mapping: dict[str, str] = {}
        for model, ref in zip(models, refs, strict=True):
            field = model.model_fields.get(prop)
            values = typing.get_args(field.annotation) if field is not None else ()
            if (field is None or typing.get_origin(field.annotation) is not Literal
                    or len(values) != 1):
                raise TypeError(f"{cls.__name__}: the discriminator {prop!r} is not a "
                                f"one-value Literal in variant {model.__name__}")
            mapping[str(values[0])] = ref["$ref"]
        schema["discriminator"] = {"propertyName": prop, "mapping": mapping}
    extra = cls.model_config.get("json_schema_extra")
    if isinstance(extra, dict):
        schema.update(extra)
    return schema
