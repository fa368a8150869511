"""What a plugin author and an operator look up is in the docs, and the links to it land:
signing in, the API's timestamps, the PostgreSQL test fixtures' names, handler idempotency and
retrying deliveries (learnplat issue 24)."""

from __future__ import annotations

import re

from corehelpers import REPO

from learnplat import testing

DOCS = REPO / "docs"


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    found = set()
    for heading in re.findall(r"^#{1,6} (.+)$", markdown, re.M):
        text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
        found.add(text.replace(" ", "-"))
    return found


def test_links_between_the_guides_land_on_a_heading():
    targets = {name: anchors((DOCS / name).read_text()) for name in
               ("events.md", "plugins.md", "deployment.md")}
    checked = 0
    for name in targets:
        text = (DOCS / name).read_text()
        for target, anchor in re.findall(r"\]\(((?:events|plugins|deployment)\.md)?#([\w-]+)\)",
                                         text):
            assert anchor in targets[target or name], f"{name}: {target}#{anchor}"
            checked += 1
    assert checked >= 8


def test_deployment_sends_readers_to_the_idempotency_guide_not_only_the_catalogue():
    assert "](events.md#handler-idempotency)" in (DOCS / "deployment.md").read_text()
    events = (DOCS / "events.md").read_text()
    guide = events[:events.index("## Events and actions catalogue")]  # the hand-written part
    for needed in ("## Handler idempotency", "at least once", "savepoint", "event.id",
                   "on_conflict_ignore", "progress_handled_event", "ensure_queued"):
        assert needed in guide, needed


def test_plugins_md_shows_how_a_client_signs_in():
    text = (DOCS / "plugins.md").read_text()
    section = text[text.index("## Signing in"):]
    section = section[:section.index("\n## ")]
    for needed in ("POST /auth/login", "X-Tenant", "Authorization: Bearer $TOKEN",
                   '"access_token"', "expires_in", "/auth/refresh", "learnplat users create"):
        assert needed in section, needed


def test_plugins_md_names_what_the_postgres_fixtures_create():
    text = (DOCS / "plugins.md").read_text()
    testing_section = text[text.index("## Testing a plugin"):]
    assert f"`{testing.APP_ROLE}`" in testing_section
    assert "`lp_test_<label><worker>_<8 hex>`" in testing_section
    # The names the docs give are the names the fixtures use.
    import inspect

    source = inspect.getsource(testing.make_postgres_database)
    assert 'f"lp_test_{label}{worker_index()}_{uuid.uuid4().hex[:8]}"' in source
    assert "NOSUPERUSER NOBYPASSRLS" in source and "NOSUPERUSER NOBYPASSRLS" in testing_section


def test_plugins_md_documents_the_timestamp_helper():
    text = (DOCS / "plugins.md").read_text()
    assert "## Times in answers" in text and "`api_timestamp(moment)`" in text
