"""The import contract between the core and plugins, checked on source files (no import runs).

* The core (``learnplat``) never imports a plugin (``learnplat_<name>``).
* A plugin imports another plugin only through that plugin's ``api`` or ``events`` module
  (``learnplat_courses.api``), never its models, services, resources, hooks or tasks.

``python -m learnplat.boundaries learnplat plugins`` runs in ``bin/test``'s lint step; a plugin
author runs it on their own package the same way. Why our own check and not import-linter:
docs/decisions/0009-typed-plugin-contracts.md.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PUBLIC_MODULES = ("api", "events")


@dataclass(frozen=True)
class Violation:
    path: Path
    line: int
    imported: str
    rule: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: imports {self.imported}: {self.rule}"


def owner_of(path: Path) -> str | None:
    """The package a source file belongs to: "learnplat" for the core, "learnplat_<name>" for
    a plugin (plugins/<name>/ in this repository installs as learnplat_<name>), else None."""
    parts = path.resolve().parts
    for i in range(len(parts) - 1, -1, -1):
        part = parts[i]
        if part.startswith("learnplat_") or part == "learnplat":
            return part
        if i > 0 and parts[i - 1] == "plugins" and i < len(parts) - 1:
            return f"learnplat_{part}"
    return None


def _imports(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: stays inside the file's own package
                continue
            base = node.module or ""
            for alias in node.names:
                # `from learnplat_x import api` imports the module learnplat_x.api
                yield node.lineno, f"{base}.{alias.name}" if "." not in base else base


def check_file(path: Path) -> list[Violation]:
    owner = owner_of(path)
    if owner is None:
        return []
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except SyntaxError as exc:
        return [Violation(path, exc.lineno or 0, "", f"cannot parse: {exc.msg}")]
    out = []
    for line, name in _imports(tree):
        top, _, rest = name.partition(".")
        if not top.startswith("learnplat_") or top == owner:
            continue
        if owner == "learnplat":
            out.append(Violation(path, line, name, "the core never imports a plugin"))
        elif rest.split(".")[0] not in PUBLIC_MODULES:
            out.append(Violation(
                path, line, name,
                f"a plugin reaches another plugin only through {top}.api or {top}.events"))
    return out


def check(paths: Iterable[Path]) -> list[Violation]:
    found: list[Violation] = []
    for root in paths:
        files = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for f in files:
            found += check_file(f)
    return found


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    violations = check(Path(a) for a in (args or ["."]))
    for v in violations:
        print(v, file=sys.stderr)
    if violations:
        print(f"{len(violations)} import boundary violation(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
