"""A school's developer generates a TypeScript client from the served OpenAPI document with
openapi-typescript (the types) and openapi-fetch (the calls), as docs/api-clients.md says,
type-checks it with tsc (strict) and drives a school's flow through it, compiled and run by
node, against a real gunicorn: the TypeScript twin of test_core_client_python.py.

The toolchain is pinned by tests/clients/typescript/package-lock.json and installed here with
`npm ci` (nothing by hand: a CI run starts from a clean clone), once per lockfile, into the
git-ignored var/node/<sha256 of the lockfile>/ (docs/decisions/1600-typescript-client-
generator.md says why these packages). The generator's output is read: any line but its banner
fails, as does a component schema without its type.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
TOOLCHAIN = REPO / "tests" / "clients" / "typescript"
# What the generator is told (docs/api-clients.md shows the same line): a property is optional
# exactly when the document does not list it as required (by default a property with a
# default would be required, in requests too); each schema also exported under its own name.
GENERATOR_OPTIONS = ("--default-non-nullable false --root-types --root-types-no-schema-prefix "
                     "--root-types-keep-casing")
# Files of the toolchain copied next to the generated schema.ts.
SOURCES = ("package.json", "tsconfig.json", "flow.ts", "mistakes.ts")


def docs_section() -> str:
    """docs/api-clients.md's "A TypeScript client"."""
    text = (REPO / "docs" / "api-clients.md").read_text()
    section = text[text.index("## A TypeScript client"):]
    return section[:section.index("\n## ", 1)]


def node_modules() -> Path:
    """The pinned packages, installed with `npm ci` once per lockfile (the file lock: pytest-
    xdist's processes may all get here first); skips the module when npm is not installed."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not on PATH: the TypeScript client needs Node.js and npm")
    digest = hashlib.sha256((TOOLCHAIN / "package-lock.json").read_bytes()).hexdigest()
    cache = REPO / "var" / "node" / digest
    done = cache / ".installed"
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache.parent / f"{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            # A run killed half-way leaves no marker: start again from nothing.
            shutil.rmtree(cache, ignore_errors=True)
            cache.mkdir()
            for name in ("package.json", "package-lock.json"):
                shutil.copyfile(TOOLCHAIN / name, cache / name)
            run = subprocess.run(
                [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
                cwd=cache, capture_output=True, text=True, timeout=600)
            assert run.returncode == 0, run.stdout + run.stderr
            done.write_text(digest)
    return cache / "node_modules"


def tool(workdir: Path, *argv: str, timeout: float = 300,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A program of the toolchain (node_modules/.bin), or node itself, run in workdir."""
    first = "node" if argv[0] == "node" else str(workdir / "node_modules" / ".bin" / argv[0])
    environ = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0", **(env or {})}
    return subprocess.run([first, *argv[1:]], cwd=workdir, capture_output=True, text=True,
                          timeout=timeout, env=environ)


@dataclass
class Generated:
    workdir: Path  # schema.ts, the toolchain's sources, node_modules (a link to the cache)
    document: dict[str, Any]
    output: str  # what the generator printed


@pytest.fixture(scope="module")
def generated(module_server: str, tmp_path_factory: pytest.TempPathFactory) -> Generated:
    modules = node_modules()
    workdir = tmp_path_factory.mktemp("typescript")
    r = requests.get(f"{module_server}/openapi.json", timeout=30)
    assert r.status_code == 200, r.text
    (workdir / "openapi.json").write_bytes(r.content)
    for name in SOURCES:
        shutil.copyfile(TOOLCHAIN / name, workdir / name)
    # The docs' example, type-checked with the rest (its imports name ./schema.js too).
    example = docs_section().split("```ts\n", 1)[1].split("```", 1)[0]
    (workdir / "docs_example.ts").write_text(textwrap.dedent(example))
    (workdir / "node_modules").symlink_to(modules, target_is_directory=True)
    run = tool(workdir, "openapi-typescript", "openapi.json", "--output", "schema.ts",
               *GENERATOR_OPTIONS.split())
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    document = r.json()
    (workdir / "every_schema.ts").write_text(every_schema(document["components"]["schemas"]))
    return Generated(workdir, document, output)


def every_schema(schemas: dict[str, Any]) -> str:
    """A module that looks every component schema up in the generated types: `S["Name"]` of a
    schema left out is an error, so is one that became `unknown` or `never` (a schema the
    generator could not read), so is a name missing among the top-level exports."""
    checks = "\n".join(f"  Assert<Known<S[{json.dumps(name)}]>>, Assert<Known<api.{name}>>,"
                       for name in schemas)
    return ('import type * as api from "./schema.js";\n\n'
            'type S = api.components["schemas"];\n'
            "type Known<T> = unknown extends T ? false : [T] extends [never] ? false : true;\n"
            "type Assert<T extends true> = T;\n\n"
            f"export type EverySchema = [\n{checks}\n];\n")


# tsc's error line (`--pretty false`): the file, where, the code.
ERROR = re.compile(r"^[\w./@-]+\.[cm]?ts\(\d+,\d+\): error TS\d+: ")


@dataclass
class Checked:
    returncode: int
    output: str

    def errors_in(self, name: str) -> list[str]:
        """tsc's errors in one file (`name(line,col): error TS...`, then indented details)."""
        lines = self.output.splitlines()
        # Every line is an error of a file or its detail: an error of tsc itself (a bad
        # option, a crash) is no file's, and fails every test that asks.
        assert all(ERROR.match(line) or line.startswith(" ") for line in lines), self.output
        return [line for line in lines if line.startswith(f"{name}(")]



@pytest.fixture(scope="module")
def checked(generated: Generated) -> Checked:
    """One `tsc --noEmit` (strict: tests/clients/typescript/tsconfig.json) over all of it: the
    generated schema.ts, every_schema.ts, flow.ts, the docs' example and mistakes.ts."""
    run = tool(generated.workdir, "tsc", "--noEmit", "--pretty", "false", "-p", "tsconfig.json")
    return Checked(run.returncode, run.stdout + run.stderr)


@pytest.mark.one_backend  # see tests/conftest.py
def test_the_generator_warns_of_nothing(generated: Generated) -> None:
    # openapi-typescript prints its banner and the file it wrote; a problem the linter it runs
    # finds ("⚠ ..." or "✘ ...", e.g. an unresolved $ref, a bad discriminator mapping) is
    # printed between the two, exit status 0 for a warning all the same.
    lines = [line.strip() for line in generated.output.splitlines() if line.strip()]
    rest = [line for line in lines
            if not line.startswith("✨ openapi-typescript ")
            and not line.startswith("🚀 openapi.json → schema.ts")]
    assert len(lines) == 2 and rest == [], generated.output


@pytest.mark.one_backend  # see tests/conftest.py
def test_every_component_schema_has_its_type(generated: Generated, checked: Checked) -> None:
    schemas = generated.document["components"]["schemas"]
    assert len(schemas) > 100
    assert checked.errors_in("every_schema.ts") == []
    assert len(re.findall(r"Assert<Known<S\[", (generated.workdir / "every_schema.ts").read_text())
               ) == len(schemas)

    # The unions are typed: the question union is its five members, told apart by `type`.
    text = (generated.workdir / "schema.ts").read_text()
    members = ("SingleChoiceQuestionIn", "MultipleChoiceQuestionIn", "TrueFalseQuestionIn",
               "NumericQuestionIn", "ShortTextQuestionIn")
    union = " | ".join(f'components["schemas"]["{m}"]' for m in members)
    assert f"QuestionIn: {union};" in text


@pytest.mark.one_backend  # see tests/conftest.py
def test_the_client_type_checks(checked: Checked) -> None:
    # mistakes.ts's every `@ts-expect-error` line must be an error: the types check something.
    assert checked.returncode == 0 and checked.output == "", checked.output


def test_a_school_flow_through_the_generated_client(generated: Generated, checked: Checked,
                                                    module_server: str, lp_users: Any,
                                                    lp_tenant: Any) -> None:
    workdir = generated.workdir
    assert checked.errors_in("flow.ts") == [], checked.output
    # Type-checked above: compiled here without checking again (`--noCheck`, TypeScript 5.6+).
    run = tool(workdir, "tsc", "-p", "tsconfig.json", "--noCheck")
    assert run.returncode == 0, run.stdout + run.stderr
    teacher, admin = lp_users.make("instructor"), lp_users.make("admin")
    student = lp_users.make("student")
    run = tool(workdir, "node", "dist/flow.js", timeout=180, env={
        "LEARNPLAT_BASE_URL": module_server,
        "LEARNPLAT_TENANT": lp_tenant.slug,
        "LEARNPLAT_STUDENT_EMAIL": student.email,
        "LEARNPLAT_STUDENT_PASSWORD": student.password,
        "LEARNPLAT_STUDENT_ID": str(student.id),
        "LEARNPLAT_TEACHER_TOKEN": teacher.token,
        "LEARNPLAT_ADMIN_TOKEN": admin.token,
    })
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["student_id"] == student.id

    # What the flow did, as the API tells it to a plain HTTP client.
    def get(path: str, token: str = student.token) -> Any:
        r = requests.get(f"{module_server}{path}", timeout=30, headers={
            "X-Tenant": lp_tenant.slug, "Authorization": f"Bearer {token}"})
        assert r.status_code == 200, (path, r.text)
        return r.json()

    course_id = summary["course_id"]
    assert get(f"/courses/{course_id}")["status"] == "published"
    modules = get(f"/courses/{course_id}/modules", teacher.token)["items"]
    assert [(m["id"], m["kind"]) for m in modules] == list(
        zip(summary["module_ids"], ("quiz", "video"), strict=True))
    enrollments = get("/courses/enrollments")["items"]
    assert [(e["id"], e["course_id"], e["status"]) for e in enrollments] == [
        (summary["enrollment_id"], course_id, "active")]
    progress = get(f"/progress/{course_id}")
    assert progress["completed"] is True and progress["completed_modules"] == 2
    quiz = f"/courses/{course_id}/modules/{summary['module_ids'][0]}/quiz/{summary['quiz_id']}"
    result = get(f"{quiz}/result")
    assert result["passed"] is True and result["attempts_used"] == 1
    assert result["attempt"]["id"] == summary["attempt_id"]
    assert get(f"/notifications/{summary['notification_id']}")["read"] is True
    certificate = get(f"/courses/{course_id}/certificate")
    assert certificate["id"] == summary["certificate_id"]
    assert certificate["status"] == "issued"
    # The signed URL names the public address in the settings: its path and query, here.
    signed = urlsplit(certificate["pdf_url"])
    pdf = requests.get(f"{module_server}{signed.path}?{signed.query}", timeout=30)
    assert pdf.status_code == 200
    assert hashlib.sha256(pdf.content).hexdigest() == summary["pdf_sha256"]


@pytest.mark.one_backend  # see tests/conftest.py
def test_the_docs_show_the_settings_the_suite_uses() -> None:
    section = docs_section()
    assert GENERATOR_OPTIONS in " ".join(section.replace("\\\n", " ").split())
    pinned = json.loads((TOOLCHAIN / "package.json").read_text())["devDependencies"]
    for name, version in pinned.items():
        assert f"{name}@{version}" in section, name
