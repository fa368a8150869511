"""Meta-tests that keep the plugin contract honest: every hookspec is documented in
docs/plugins.md with its exact signature, and every hookspec is exercised by a named test."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from learnplat import hookspecs

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
SAMPLE_TEST = ("test_core_sample_plugin.py::"
               "test_every_hook_of_the_sample_plugin_works_through_its_entry_point")
TENANCY = "test_core_tenancy.py::"
CLI = "test_core_cli.py::"
CONTRACTS = "test_core_contracts.py::"

# hookspec -> tests that exercise it (and assert on its effect).
EXERCISED = {
    "register_models": [SAMPLE_TEST,
                        TENANCY + "test_tenant_model_scopes_select_update_delete_insert"],
    "register_routes": [SAMPLE_TEST,
                        "test_core_plugins.py::test_duplicate_names_name_both_plugins"],
    "register_permissions": [SAMPLE_TEST, "test_core_http.py::"
                             "test_openapi_document_is_valid_and_matches_the_cli"],
    "register_tasks": [SAMPLE_TEST],
    "register_event_handlers": [SAMPLE_TEST, "test_core_events.py::"
                                "test_events_recorded_without_a_worker_are_delivered_when_one_starts"],
    "register_services": [SAMPLE_TEST, CONTRACTS + "test_a_service_is_typed_by_its_key_and_"
                          "reads_its_settings_in_its_constructor"],
    "register_commands": [SAMPLE_TEST],
    "register_health_checks": [SAMPLE_TEST],
    # The sample plugin stores nothing encrypted: the built-in identity and certificates
    # plugins' declarations, checked and re-encrypted by real processes.
    "register_encrypted_at_rest": ["test_core_secrets.py::"
                                   "test_rotating_the_secret_with_real_processes"],
    "register_settings": [SAMPLE_TEST,
                          "test_core_sample_plugin.py::test_bad_plugin_setting_names_the_key"],
    "startup": [SAMPLE_TEST],
    "extend_openapi": [SAMPLE_TEST],
    "authenticate": [SAMPLE_TEST, TENANCY + "test_token_of_another_tenant_is_401"],
    "provision_tenant_admin": [CLI + "test_tenant_lifecycle",
                               CLI + "test_create_with_the_identity_plugin"],
    "seed_tenant": ["test_core_seeding.py::test_a_seeded_school_reads_back_through_the_api",
                    "test_core_seeding.py::test_each_plugin_seeds_after_the_plugins_it_requires"],
    "register_events": [SAMPLE_TEST, CONTRACTS + "test_events_are_recorded_typed_and_handlers_"
                        "receive_the_typed_payload"],
    "register_actions": [SAMPLE_TEST, CONTRACTS + "test_vetoes_run_for_their_declared_action_"
                         "and_undeclared_actions_are_refused"],
    "register_vetoes": [SAMPLE_TEST, CONTRACTS + "test_vetoes_run_for_their_declared_action_"
                        "and_undeclared_actions_are_refused"],
    # The sample plugin delivers nothing outbound: the engine's test sink.
    "register_sinks": ["test_core_outbound.py::"
                       "test_a_registered_sink_delivers_a_message_and_records_the_attempt"],
}


def spec_functions() -> dict[str, object]:
    return {name: fn for name, fn in vars(hookspecs).items()
            if callable(fn) and hasattr(fn, "learnplat_spec")}


def signature_text(name: str, fn: object) -> str:
    """`def name(arg: Type, ...) -> Return` exactly as declared (annotations are strings)."""
    sig = inspect.signature(fn)
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"def {name}({params}) -> {sig.return_annotation}"


def normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text).replace("( ", "(").replace(" )", ")").strip()


def test_every_hookspec_is_documented_with_its_exact_signature():
    docs = normalize((REPO / "docs" / "plugins.md").read_text()).replace("( ", "(").replace(
        ", )", ")").replace(",)", ")")
    missing = []
    for name, fn in spec_functions().items():
        if signature_text(name, fn) not in docs:
            missing.append(signature_text(name, fn))
    assert not missing, "document these in docs/plugins.md:\n" + "\n".join(missing)


def test_every_hookspec_is_exercised_by_a_test():
    assert set(EXERCISED) == set(spec_functions())
    for tests in EXERCISED.values():
        for node in tests:
            path, test = node.split("::")
            assert f"def {test}(" in (HERE / path).read_text(), node


def test_the_sample_plugin_implements_every_hook_but_admin_provisioning():
    tree = ast.parse((REPO / "tests/sample_plugin/learnplat_sample/plugin.py").read_text())
    implemented = {
        node.name for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and any(
            "hookimpl" in ast.unparse(d) for d in node.decorator_list)
    }
    # Neither provisions admins, stores anything encrypted under app.secret_key nor
    # delivers anything outbound.
    assert set(spec_functions()) - implemented == {"provision_tenant_admin",
                                                   "register_encrypted_at_rest",
                                                   "register_sinks"}
    assert "sample_decorate_greeting" in implemented  # its own hookspec


def test_hookspecs_have_docstrings_with_version():
    for name, fn in spec_functions().items():
        assert fn.__doc__ and "Since " in fn.__doc__, name


def test_every_core_setting_is_documented_with_its_env_var():
    from learnplat.settings import CORE_SECTIONS, Settings

    docs = (REPO / "docs" / "configuration.md").read_text()
    for section in CORE_SECTIONS:
        model = Settings.model_fields[section].annotation
        for key in model.model_fields:
            assert f"`{section}.{key}`" in docs, f"{section}.{key}"
            assert f"`LEARNPLAT_{section.upper()}_{key.upper()}`" in docs, f"{section}.{key}"


# -- hookspecs that plugins publish: the same two promises ---------------------------------------

TESTS = REPO / "tests"
PLUGIN_HOOKSPECS = {
    # plugin: (its docs page, {hookspec: [tests under tests/ that call it and assert its effect]})
    "courses": ("courses.md", {
        "course_detail_extras": [
            "courses/test_ratings_feedback_analytics.py::"
            "test_analytics_and_detail_merge_plugin_sections"],
        "course_analytics": [
            "courses/test_ratings_feedback_analytics.py::"
            "test_analytics_and_detail_merge_plugin_sections",
            "progress/test_progress_views.py::test_course_hooks_and_services"],
        "course_enrollment_status": [
            "enrollment/test_enrollment_enroll.py::test_service_api_for_other_plugins"],
        "course_has_learners": [
            "enrollment/test_enrollment_enroll.py::test_service_api_for_other_plugins"],
    }),
    "enrollment": ("enrollment.md", {
        "enrollment_summaries": [
            "enrollment/test_enrollment_lists.py::"
            "test_my_enrollments_newest_first_with_course_and_progress",
            "enrollment/test_enrollment_lists.py::"
            "test_my_enrollments_costs_a_constant_number_of_queries"],
    }),
    "progress": ("progress.md", {
        "progress_extras": ["progress/test_progress_views.py::test_progress_extras_hook"],
    }),
}


def plugin_specs(plugin: str) -> dict[str, object]:
    import importlib

    module = importlib.import_module(f"learnplat_{plugin}.hookspecs")
    return {name: fn for name, fn in vars(module).items()
            if callable(fn) and hasattr(fn, "learnplat_spec")}


@pytest.mark.parametrize("plugin", sorted(PLUGIN_HOOKSPECS))
def test_plugin_hookspecs_are_documented_and_exercised(plugin):
    page, exercised = PLUGIN_HOOKSPECS[plugin]
    specs = plugin_specs(plugin)
    docs = normalize((REPO / "docs" / page).read_text())
    for name, fn in specs.items():
        assert normalize(signature_text(name, fn)) in docs, f"document in docs/{page}: {name}"
        assert fn.__doc__ and "Since " in fn.__doc__, name
    assert set(exercised) == set(specs)
    for nodes in exercised.values():
        for node in nodes:
            path, test = node.split("::")
            assert f"def {test}(" in (TESTS / path).read_text(), node


def test_every_plugin_that_publishes_hookspecs_is_checked_above():
    published = sorted(p.parent.name for p in (REPO / "plugins").glob("*/hookspecs.py"))
    assert published == sorted(PLUGIN_HOOKSPECS)
