"""The hookspecs the enrollment plugin publishes are documented with their exact signature in
docs/enrollment.md and exercised by a named test."""

from __future__ import annotations

import inspect
from pathlib import Path

from learnplat_enrollment import hookspecs

DOCS = Path(__file__).resolve().parents[2] / "docs" / "enrollment.md"
HERE = Path(__file__).parent
EXERCISED = {
    "enrollment_summaries": [
        "test_enrollment_lists.py::test_my_enrollments_newest_first_with_course_and_progress",
        "test_enrollment_lists.py::test_my_enrollments_costs_a_constant_number_of_queries",
    ],
}


def specs() -> dict[str, object]:
    return {name: fn for name, fn in vars(hookspecs).items()
            if callable(fn) and hasattr(fn, "learnplat_spec")}


def test_every_enrollment_hookspec_is_documented_with_its_exact_signature():
    text = DOCS.read_text()
    for name, fn in specs().items():
        sig = inspect.signature(fn)
        params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
        assert f"def {name}({params}) -> {sig.return_annotation}" in text, name
        assert fn.__doc__ and "Since" in fn.__doc__, name


def test_every_enrollment_hookspec_is_exercised_by_a_test():
    assert set(EXERCISED) == set(specs())
    for nodes in EXERCISED.values():
        for node in nodes:
            path, test = node.split("::")
            assert f"def {test}(" in (HERE / path).read_text(), node
