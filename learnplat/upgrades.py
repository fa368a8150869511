"""Rolling upgrades: a release's migrations only expand the schema.

During a rolling upgrade the previous release's processes keep serving on the database this
release's `learnplat migrate` has already changed (docs/deployment.md, "Upgrades and
rollback"), and a roll back runs the previous release on it again. So a release's migrations
may add tables, columns with a default (or nullable), indexes; they may not remove or rename
what the previous release reads or writes, change a column's type, or make a column it leaves
empty required. Such a change is made in two releases: stop using it in one, remove it in the
next (with `# learnplat: contracts <what the previous release no longer uses>` on the line, so
the check lets it through and the reviewer sees why).
"""

from __future__ import annotations

import ast
import re

# playhouse.migrate operations that take something away from a running older release.
CONTRACTING = frozenset({
    "drop_column", "drop_columns", "rename_column", "rename_table", "drop_table",
    "alter_column_type", "change_column_type", "add_not_null", "drop_foreign_key_constraint",
    "remove_model", "remove_fields", "rename_field", "change_fields",
})
_SQL_CONTRACTING = re.compile(
    r"\b(DROP\s+(TABLE|COLUMN)|RENAME\s+(TO|COLUMN)|ALTER\s+COLUMN\s+\w+\s+(TYPE|SET\s+NOT\s+NULL)"
    r"|SET\s+DATA\s+TYPE)\b", re.IGNORECASE)
WAIVER = "# learnplat: contracts"


def contracting_operations(source: str) -> list[str]:
    """What a migration's `up` does that an older release running beside it would not
    survive: "line N: drop_column(...)" for each, waived lines left out."""
    tree = ast.parse(source)
    lines = source.splitlines()
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.FunctionDef) and node.name == "up"):
            continue
        for call in ast.walk(node):
            if not isinstance(call, ast.Call):
                continue
            name = (call.func.attr if isinstance(call.func, ast.Attribute)
                    else call.func.id if isinstance(call.func, ast.Name) else "")
            text = ast.get_source_segment(source, call) or name
            line = lines[call.lineno - 1] if call.lineno <= len(lines) else ""
            if WAIVER in line:
                continue
            if name in CONTRACTING:
                found.append(f"line {call.lineno}: {text.splitlines()[0]}")
            elif name in ("execute_sql", "sql", "execute"):
                for arg in call.args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str) \
                            and _SQL_CONTRACTING.search(arg.value):
                        found.append(f"line {call.lineno}: {arg.value.strip()[:80]}")
    return sorted(found, key=lambda f: int(f.split(":")[0].split()[1]))
