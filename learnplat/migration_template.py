"""The text of a generated migration: playhouse's template, corrected for learnplat's models.

Three corrections, all made on the rendered text so the rest of playhouse's output is kept:

* A default computed in Python (``default=utcnow``) is not part of the schema. playhouse flags
  every such field with ``# TODO: created_at: default <function _now at 0x7f...> must be added
  by hand``; a created table needs nothing (peewee fills the value on insert), so that line is
  dropped. A column added to an existing table does need a value for the rows it already has:
  the default is passed to ``add_column`` when it can be imported by name, otherwise a TODO
  without a memory address says so.
* Index names. learnplat's models set ``legacy_table_names = False``, so peewee names their
  indexes after the table (``notes_note_title``); the frozen classes in a migration would
  otherwise name them after the class (``note_title``), and two plugins with a ``Note`` model
  would share one index name, the second ``CREATE INDEX IF NOT EXISTS`` silently doing nothing.
* Imports of the core. playhouse imports a field class or default where it is defined
  (``from learnplat.models import UTCDateTimeField``), which is internal to the core; a
  plugin's migration imports it from the public face instead (``from learnplat.plugin import
  UTCDateTimeField``), like the rest of the plugin (``python -m learnplat.boundaries``). The
  core's own migrations keep the internal modules.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

import peewee
from playhouse.migrations import template
from playhouse.schema_diff import SchemaDiff

_PLAIN_DEFAULTS = (str, int, float, bool)
_FACE = "learnplat.plugin"
_CORE_IMPORT = re.compile(r"^from (learnplat(?:\.[\w.]+)?) import (\w+)$")


def _python_default(field: peewee.Field) -> bool:
    """Whether playhouse cannot write this field's default as source (it then adds a TODO)."""
    default = field.default
    if default is None or isinstance(default, _PLAIN_DEFAULTS):
        return False
    from playhouse.migrations import _handle_common_default

    return not _handle_common_default(default, [], set())


def _playhouse_todo(field: peewee.Field) -> str:
    # Exactly the line playhouse writes (migrations._build_field_args).
    return f"# TODO: {field.name}: default {field.default!r} must be added by hand"


def importable_name(fn: Any) -> str | None:
    """``module.qualname`` when importing it gives back `fn` (a module-level function)."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or not qualname or "<" in qualname:
        return None
    try:
        target: Any = importlib.import_module(module)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError):
        return None
    return f"{module}.{qualname}" if target is fn else None


def _is_core_module(module: str) -> bool:
    """A module of the core, not its public face."""
    return (module == "learnplat" or module.startswith("learnplat.")) and not (
        module == _FACE or module.startswith(_FACE + "."))


def _for_plugin(diff: SchemaDiff) -> bool:
    """Whether the migration is a plugin's (any of its models lives outside the core)."""
    models = [*diff.create_tables, *(f.model for f in diff.add_columns)]
    return any(not _is_core_module(m.__module__) for m in models)


def face_name(obj: Any) -> str | None:
    """The name under which the public face exports `obj` (defined in the core), if it does."""
    face = importlib.import_module(_FACE)
    name = getattr(obj, "__name__", None)
    if name and name in face.__all__ and getattr(face, name) is obj:
        return name
    return None


def _face_import(line: str) -> str:
    """``from learnplat.models import X`` as ``from learnplat.plugin import X`` when the face
    exports that X; other lines as they are."""
    found = _CORE_IMPORT.match(line)
    if not found or not _is_core_module(found.group(1)):
        return line
    module, name = found.groups()
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return line
    return f"from {_FACE} import {name}" if face_name(obj) == name else line


def render(diff: SchemaDiff) -> str:
    """A migration file's text for `diff`, runnable without hand edits in the common cases."""
    lines = template(diff).split("\n")
    imports: set[str] = set()
    plugin = _for_plugin(diff)
    if plugin:
        lines = [_face_import(ln) for ln in lines]

    for model in diff.create_tables:
        for field in model._meta.sorted_fields:
            if _python_default(field):
                lines = [ln for ln in lines if ln != _playhouse_todo(field)]
        marker = f"table_name = {model._meta.table_name!r}"
        for i, line in enumerate(lines):
            if line.strip() == marker:
                indent = line[: len(line) - len(line.lstrip())]
                lines.insert(i + 1, f"{indent}legacy_table_names = False")
                break

    for field in diff.add_columns:
        if not _python_default(field):
            continue
        table, column = field.model._meta.table_name, field.column_name
        todo = _playhouse_todo(field)
        name = importable_name(field.default)
        module = getattr(field.default, "__module__", "")
        if name is not None and plugin and _is_core_module(module) and face_name(field.default):
            module, name = _FACE, f"{_FACE}.{face_name(field.default)}"
        prefix = f"migrator.migrate(migrator.add_column({table!r}, {column!r}, "
        if name is None:
            note = (f"# NOTE: existing rows of {table}.{column} stay NULL (its default is "
                    "computed in Python)" if field.null else
                    f"# TODO: {table}.{column}: its default is computed in Python and cannot "
                    "be imported here; pass add_column a default=... to fill existing rows")
            lines = [note if ln == todo else ln for ln in lines]
            continue
        lines = [ln for ln in lines if ln != todo]
        for i, line in enumerate(lines):
            stripped = line.lstrip()
            if stripped.startswith(prefix) and stripped.endswith(")))"):
                source = stripped[len(prefix):-2]  # e.g. "UTCDateTimeField(null=True)"
                sep = "" if source.endswith("()") else ", "
                source = f"{source[:-1]}{sep}default={name})"
                indent = line[: len(line) - len(stripped)]
                lines[i] = f"{indent}{prefix}{source}))"
                lines.insert(i, f"{indent}# existing rows of {table}.{column} get {name}()")
                imports.add(f"import {module}")
                break

    if imports:
        at = lines.index("from peewee import *") + 1
        lines[at:at] = sorted(imports)
    return "\n".join(lines)
