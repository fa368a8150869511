"""The import contract between the core and plugins, checked on source files (no import runs).

* The core (``learnplat``) never imports a plugin (``learnplat_<name>``).
* A plugin imports another plugin only through that plugin's ``api`` or ``events`` module
  (``learnplat_courses.api``), never its models, services, resources, hooks or tasks.
* A plugin imports the core only through its public face, ``learnplat.plugin`` (and its
  sub-faces ``learnplat.plugin.cli``...): everything else under ``learnplat`` is internal.
* No import circle inside a plugin's package: counting imports inside functions (the usual
  way to hide one), not those under ``if TYPE_CHECKING:`` (never executed).

Which package a file belongs to is read from the packaging, never guessed from directory names
(a checkout cloned as ``learnplat/`` made every file under it look like the core): the nearest
``setup.cfg`` / ``pyproject.toml`` at or above the file declares its packages and where they
live (``package_dir``: ``plugins/courses`` installs as ``learnplat_courses``); a file of that
project outside its packages (tests, benchmarks) is exempt. Outside any project, the installed
distributions say where each ``learnplat*`` package is.

``python -m learnplat.boundaries learnplat plugins`` runs in ``bin/test``'s lint step and says
what it checked; a plugin author runs it on their own package the same way. Why our own check
and not import-linter: docs/decisions/0009-typed-plugin-contracts.md.
"""

from __future__ import annotations

import ast
import configparser
import functools
import importlib.metadata
import importlib.util
import sys
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

PUBLIC_MODULES = ("api", "events")
CORE_FACE = "learnplat.plugin"
PROJECT_FILES = ("setup.cfg", "pyproject.toml")


@dataclass(frozen=True)
class Violation:
    path: Path
    line: int
    imported: str
    rule: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: imports {self.imported}: {self.rule}"


@dataclass
class Report:
    """What a check looked at: the files that belong to a learnplat package, and the packages."""
    files: int = 0
    packages: set[str] = field(default_factory=set)
    violations: list[Violation] = field(default_factory=list)

    def summary(self) -> str:
        def count(n: int, noun: str) -> str:
            return f"{n} {noun}" if n == 1 else f"{n} {noun}s"

        return (f"boundaries: {count(self.files, 'file')} in "
                f"{count(len(self.packages), 'package')} checked, "
                f"{count(len(self.violations), 'violation')}")


def _is_contract_package(name: str) -> bool:
    return name == "learnplat" or name.startswith("learnplat_")


def _discover(where: Path) -> dict[str, Path]:
    """Top-level packages under `where` (setuptools' `find:`, and auto-discovery)."""
    if not where.is_dir():
        return {}
    return {d.name: d for d in where.iterdir() if (d / "__init__.py").is_file()}


def _from_setup_cfg(root: Path) -> dict[str, Path] | None:
    cfg = configparser.ConfigParser()
    cfg.read(root / "setup.cfg", encoding="utf-8")
    if not cfg.has_option("options", "packages"):
        return None
    package_dir: dict[str, str] = {}
    for line in cfg.get("options", "package_dir", fallback="").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            package_dir[key.strip()] = value.strip()
    base = root / package_dir.get("", ".")
    packages = cfg.get("options", "packages").split()
    if packages and packages[0] in ("find:", "find_namespace:"):
        where = cfg.get("options.packages.find", "where", fallback=None)
        return _discover(root / where if where else base)
    return {top: root / package_dir[top] if top in package_dir else base / top
            for top in {p.split(".")[0] for p in packages}}


def _from_pyproject(root: Path) -> dict[str, Path] | None:
    with (root / "pyproject.toml").open("rb") as fh:
        tool = tomllib.load(fh).get("tool", {}).get("setuptools", {})
    packages = tool.get("packages")
    if packages is None:
        return None
    package_dir = tool.get("package-dir", {})
    base = root / package_dir.get("", ".")
    if isinstance(packages, dict):  # {find = {where = ["src"]}}
        found: dict[str, Path] = {}
        for where in packages.get("find", {}).get("where", ["."]):
            found.update(_discover(root / where))
        return found
    return {top: root / package_dir[top] if top in package_dir else base / top
            for top in {p.split(".")[0] for p in packages}}


@functools.cache
def project_packages(root: Path) -> dict[str, Path]:
    """Top-level package name -> its directory, as the project at `root` declares them
    (setup.cfg, then pyproject.toml's [tool.setuptools], else the packages in root/ or src/
    as setuptools' auto-discovery and most build backends would find them)."""
    declared = None
    if (root / "setup.cfg").is_file():
        declared = _from_setup_cfg(root)
    if declared is None and (root / "pyproject.toml").is_file():
        declared = _from_pyproject(root)
    if declared is None:
        declared = {**_discover(root), **_discover(root / "src")}
    return {name: path.resolve() for name, path in declared.items()}


@functools.cache
def installed_packages() -> dict[str, Path]:
    """Every installed top-level learnplat package and its directory (editable ones too)."""
    found = {}
    for name in importlib.metadata.packages_distributions():
        if not _is_contract_package(name):
            continue
        spec = importlib.util.find_spec(name)
        for location in (spec.submodule_search_locations or []) if spec else []:
            found[name] = Path(location).resolve()
    return found


def _project_root(path: Path) -> Path | None:
    for directory in path.parents:
        if any((directory / name).is_file() for name in PROJECT_FILES):
            return directory
    return None


def owner_of(path: Path) -> str | None:
    """The learnplat package a source file belongs to ("learnplat" for the core,
    "learnplat_<name>" for a plugin), or None: not part of one (tests, scripts, other code)."""
    path = path.resolve()
    root = _project_root(path)
    packages = project_packages(root) if root is not None else installed_packages()
    for name, directory in packages.items():
        if path.is_relative_to(directory):
            return name if _is_contract_package(name) else None
    return None


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except what sits under ``if TYPE_CHECKING:`` (imports for annotations)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _is_type_checking(test: ast.expr) -> bool:
    return ((isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
            or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


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


def _check_source(path: Path, owner: str) -> list[Violation]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except SyntaxError as exc:
        return [Violation(path, exc.lineno or 0, "", f"cannot parse: {exc.msg}")]
    out = []
    for line, name in _imports(tree):
        top, _, rest = name.partition(".")
        if top == "learnplat" and owner != "learnplat":
            if name != CORE_FACE and not name.startswith(CORE_FACE + "."):
                out.append(Violation(
                    path, line, name,
                    f"a plugin imports the core only through {CORE_FACE} (the rest is "
                    "internal)"))
            continue
        if not top.startswith("learnplat_") or top == owner:
            continue
        if owner == "learnplat":
            out.append(Violation(path, line, name, "the core never imports a plugin"))
        elif rest.split(".")[0] not in PUBLIC_MODULES:
            out.append(Violation(
                path, line, name,
                f"a plugin reaches another plugin only through {top}.api or {top}.events"))
    return out


def check_file(path: Path) -> list[Violation]:
    owner = owner_of(path)
    return [] if owner is None else _check_source(path, owner)


def _python_files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for f in sorted(root.rglob("*.py")):
        # Virtual environments, .git and caches are nobody's source.
        if not any(part.startswith(".") for part in f.relative_to(root).parts):
            yield f


def _module_name(path: Path, package: str, directory: Path) -> str:
    parts = [package, *path.resolve().relative_to(directory).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _internal_edges(path: Path, module: str, package: str, modules: set[str]
                    ) -> Iterator[tuple[str, int]]:
    """The modules of `package` that `module` imports when it runs (TYPE_CHECKING excluded),
    with the line: ``from . import x`` is an edge to the module ``x`` when there is one."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except SyntaxError:
        return  # reported by _check_source
    is_package = path.name == "__init__.py"
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                here = module.split(".") if is_package else module.split(".")[:-1]
                base_parts = here[:len(here) - (node.level - 1)]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            # `import pkg.a.b` runs pkg.a.b: the nearest known module is the edge
            while target and target not in modules and "." in target:
                target = target.rpartition(".")[0]
            if target in modules and target != module and (
                    target == package or target.startswith(package + ".")):
                yield target, node.lineno


def import_circles(files: dict[str, Path], package: str) -> list[list[str]]:
    """The import circles among one package's modules (`files`: module name -> path), each
    as the modules in it, sorted; found with Tarjan's strongly connected components."""
    modules = set(files)
    graph = {m: sorted({t for t, _ in _internal_edges(files[m], m, package, modules)})
             for m in sorted(files)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(m: str) -> None:
        index[m] = low[m] = len(index)
        stack.append(m)
        on_stack.add(m)
        for t in graph[m]:
            if t not in index:
                visit(t)
                low[m] = min(low[m], low[t])
            elif t in on_stack:
                low[m] = min(low[m], index[t])
        if low[m] == index[m]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == m:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for m in graph:
        if m not in index:
            visit(m)
    return sorted(circles)


def scan(paths: Iterable[Path]) -> Report:
    report = Report()
    by_package: dict[str, dict[str, Path]] = {}
    for root in paths:
        for f in _python_files(root):
            owner = owner_of(f)
            if owner is None:
                continue
            report.files += 1
            report.packages.add(owner)
            report.violations += _check_source(f, owner)
            if owner != "learnplat":
                directory = _package_directory(f, owner)
                if directory is not None:
                    by_package.setdefault(owner, {})[_module_name(f, owner, directory)] = f
    for package, files in sorted(by_package.items()):
        for circle in import_circles(files, package):
            first = files[circle[0]]
            report.violations.append(Violation(
                first, 0, " <-> ".join(circle),
                "an import circle inside the plugin (move what both need to a third module, "
                "or hand it over from the plugin object)"))
    return report


def _package_directory(path: Path, package: str) -> Path | None:
    root = _project_root(path.resolve())
    packages = project_packages(root) if root is not None else installed_packages()
    return packages.get(package)


def check(paths: Iterable[Path]) -> list[Violation]:
    return scan(paths).violations


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    report = scan(Path(a) for a in (args or ["."]))
    for v in report.violations:
        print(v, file=sys.stderr)
    if report.violations:
        print(report.summary(), file=sys.stderr)
        return 1
    if not report.files:
        # Checking nothing is not a pass: a wrong path, or packages the packaging does not name.
        print(f"boundaries: no file of a learnplat package under {' '.join(args or ['.'])} "
              "(packages are read from setup.cfg / pyproject.toml, or the installed "
              "distributions)", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
