"""The seams between plugins: typed services checked against their Protocol at start-up,
declared events and actions, the start-up wiring report, the events catalogue, the public face
and the import boundary check."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar, Protocol

import pytest
from corehelpers import REPO, build_runtime
from pydantic import BaseModel

import learnplat.plugin as face
from learnplat import boundaries, db
from learnplat.catalogue import (
    catalogue_markdown,
    events_catalogue,
    split_document,
    update_document,
)
from learnplat.plugin import (
    Action,
    Event,
    EventHandler,
    EventMessage,
    ServiceKey,
    Veto,
    Vetoed,
    hookimpl,
    merge_extras,
)
from learnplat.registry import StartupError
from learnplat.tenancy import tenant_context
from learnplat.testing import make_tenant, use_runtime


class ShelfAPI(Protocol):
    def books(self, shelf_id: int, limit: int = 10) -> list[str]:
        """Titles on a shelf."""

    def count(self) -> int:
        """How many books."""


SHELF: ServiceKey[ShelfAPI] = ServiceKey("shelf", ShelfAPI)


class GoodShelf:
    def __init__(self, settings: Any = None):
        self.settings = settings

    def books(self, shelf_id: int, limit: int = 10, *, extra: bool = False) -> list[str]:
        return [f"book {shelf_id}"][:limit]

    def count(self) -> int:
        return 1


class NoCount:
    def books(self, shelf_id: int, limit: int = 10) -> list[str]:
        return []


class WrongParams:
    def books(self, shelf: int) -> list[str]:
        return []

    def count(self, everything: bool) -> int:
        return 0


class ShelfSettings(BaseModel):
    size: int = 7


class ShelfPlugin:
    def __init__(self, impl: Any, key: Any = SHELF):
        self.impl, self.key = impl, key

    @hookimpl
    def register_settings(self) -> dict[str, type]:
        return {"shelf": ShelfSettings}

    @hookimpl
    def register_services(self, runtime: Any) -> dict[Any, Any]:
        impl = self.impl(runtime.settings_of(ShelfSettings)) if isinstance(self.impl, type) \
            else self.impl
        return {self.key: impl}


def start(tmp_path, core_database, plugins):
    return build_runtime(tmp_path, core_database, plugins=plugins, do_migrate=False)


def test_a_service_is_typed_by_its_key_and_reads_its_settings_in_its_constructor(
        tmp_path, core_database):
    rt = start(tmp_path, core_database, [("shelf", ShelfPlugin(GoodShelf))])
    shelf = rt.service(SHELF)
    assert shelf.books(3) == ["book 3"]
    assert isinstance(shelf, GoodShelf) and shelf.settings.size == 7
    assert rt.has_service(SHELF) and rt.service("shelf") is shelf
    with pytest.raises(KeyError, match="no plugin provides the service 'nope'"):
        rt.service(ServiceKey("nope", ShelfAPI))


@pytest.mark.parametrize(("impl", "problem"), [
    (NoCount(), "missing count"),
    (WrongParams(), "books() has no parameter 'shelf_id'"),
    (WrongParams(), "count() requires 'everything', which the contract does not pass"),
])
def test_a_service_missing_a_method_or_parameter_stops_start_up_naming_the_plugin(
        tmp_path, core_database, impl, problem):
    with pytest.raises(StartupError) as exc:
        start(tmp_path, core_database, [("shelfy", ShelfPlugin(impl))])
    assert "plugin 'shelfy'" in str(exc.value) and "ShelfAPI" in str(exc.value)
    assert problem in str(exc.value)


def test_a_service_registered_under_a_bare_name_is_refused(tmp_path, core_database):
    with pytest.raises(StartupError, match="plugin 'shelfy' registers a service under 'shelf'"):
        start(tmp_path, core_database, [("shelfy", ShelfPlugin(GoodShelf(), key="shelf"))])


class Shelved(Event):
    """A book was put on a shelf."""
    name: ClassVar[str] = "shelf.shelved.v1"
    shelf_id: int
    title: str


class Undeclared(Event):
    """Recorded by nobody who declared it."""
    name: ClassVar[str] = "shelf.undeclared.v1"


PUT = Action("shelf.put", "A book is about to be shelved", ("title",))


class Publisher:
    def __init__(self) -> None:
        self.got: list[EventMessage[Shelved]] = []

    @hookimpl
    def register_events(self) -> list[type[Event]]:
        return [Shelved]

    @hookimpl
    def register_actions(self) -> list[Action]:
        return [PUT]

    @hookimpl
    def register_event_handlers(self) -> list[EventHandler]:
        return [EventHandler(Shelved, "remember", lambda rt, e: self.got.append(e))]


def _refuse_tomes(runtime: Any, tenant: Any, principal: Any, data: dict[str, Any]) -> None:
    if data["title"].startswith("Tome"):
        raise Vetoed("no tomes")


class Listener:
    @hookimpl
    def register_event_handlers(self) -> list[EventHandler]:
        return [EventHandler("elsewhere.happened.v1", "typo", lambda rt, e: None),
                EventHandler("optional.plugin.v1", "maybe", lambda rt, e: None, optional=True)]

    @hookimpl
    def register_vetoes(self) -> list[Veto]:
        return [Veto(PUT, "tomes", _refuse_tomes), Veto("nobody.asks", "lonely", _refuse_tomes)]


def test_events_are_recorded_typed_and_handlers_receive_the_typed_payload(
        tmp_path, core_database):
    publisher = Publisher()
    rt = build_runtime(tmp_path, core_database, plugins=[("shelf", publisher)],
                       queue={"immediate": False})
    with use_runtime(rt):
        tenant = make_tenant(rt)
        with db.connection(), tenant_context(tenant), db.transaction():
            rt.events.record(Shelved(shelf_id=4, title="Dune"))
            with pytest.raises(TypeError, match="Undeclared is not an event declared"):
                rt.events.record(Undeclared())
        rt.events.dispatch_pending()
    [message] = publisher.got
    assert message.name == "shelf.shelved.v1" and message.payload == {"shelf_id": 4,
                                                                        "title": "Dune"}
    assert message.data == Shelved(shelf_id=4, title="Dune")


def test_vetoes_run_for_their_declared_action_and_undeclared_actions_are_refused(
        tmp_path, core_database):
    rt = build_runtime(tmp_path, core_database,
                       plugins=[("shelf", Publisher()), ("listener", Listener())])
    with use_runtime(rt):
        tenant = make_tenant(rt)
    rt.before(PUT, tenant, None, title="Dune")
    with pytest.raises(Vetoed, match="no tomes"):
        rt.before(PUT, tenant, None, title="Tome of Everything")
    with pytest.raises(RuntimeError, match=r"action 'never\.declared' is not declared"):
        rt.before("never.declared", tenant, None)


def test_start_up_warns_of_handlers_and_vetoes_nobody_declares(tmp_path, core_database,
                                                                caplog):
    with caplog.at_level(logging.WARNING, logger="learnplat.plugins"):
        rt = start(tmp_path, core_database, [("shelf", Publisher()), ("listener", Listener())])
    assert rt.registry.warnings == [
        "plugin 'listener' handles 'elsewhere.happened.v1', which no loaded plugin declares "
        "(register_events)",
        "plugin 'listener' vetoes 'nobody.asks', which no loaded plugin asks about "
        "(register_actions)",
    ]
    assert [r.getMessage() for r in caplog.records] == rt.registry.warnings
    catalogue = events_catalogue(rt.registry)
    [shelved] = [e for e in catalogue["events"] if e["name"] == "shelf.shelved.v1"]
    assert shelved == {"name": "shelf.shelved.v1", "publisher": "shelf",
                       "description": "A book was put on a shelf.",
                       "fields": [{"name": "shelf_id", "type": "int"},
                                  {"name": "title", "type": "str"}],
                       "handlers": ["shelf.remember"],
                       "published": True, "public_fields": ["shelf_id", "title"]}
    [typo] = [e for e in catalogue["events"] if e["name"] == "elsewhere.happened.v1"]
    assert typo["publisher"] is None and typo["handlers"] == ["listener.typo"]
    [put] = [a for a in catalogue["actions"] if a["name"] == "shelf.put"]
    assert put["vetoes"] == ["listener.tomes"] and put["asked_by"] == "shelf"


def test_two_plugins_declaring_one_event_is_a_start_up_error(tmp_path, core_database):
    with pytest.raises(StartupError, match=r"duplicate event 'shelf\.shelved\.v1'.*'a'.*'b'"):
        start(tmp_path, core_database, [("a", Publisher()), ("b", Publisher())])


def test_the_built_in_plugins_are_wired_without_warnings(lp_runtime):
    assert lp_runtime.registry.warnings == []


def test_docs_events_md_is_the_generated_catalogue(lp_runtime):
    """Regenerate with `learnplat events list --markdown --update docs/events.md`: the part
    below the marker is the catalogue, the hand-written part above it stays."""
    text = (REPO / "docs" / "events.md").read_text()
    head, generated = split_document(text)
    assert head.startswith("# Events\n")  # the hand-written guide is kept
    assert generated == "\n" + catalogue_markdown(events_catalogue(lp_runtime.registry))
    assert update_document(text, events_catalogue(lp_runtime.registry)) == text


def test_merge_extras_is_one_rule_for_every_extras_hook():
    doc = {"id": 1, "stats": {"a": 1}}
    merged = merge_extras([{"stats": {"b": 2}, "id": 99, "x": 1}, None, {"x": 2}], doc,
                          protected={"id"})
    assert merged is doc
    assert doc == {"id": 1, "stats": {"a": 1, "b": 2}, "x": 2}


def test_the_public_face_exports_exactly_what_it_lists():
    assert sorted(face.__all__) == sorted(set(face.__all__))
    for name in face.__all__:
        assert hasattr(face, name), name
    documented = (REPO / "docs" / "plugins.md").read_text()
    missing = [n for n in face.__all__
               if f"`{n}`" not in documented and f"`{n}(" not in documented]
    assert not missing, f"document in docs/plugins.md: {missing}"


# -- the import boundary ---------------------------------------------------------------------


def test_the_repository_keeps_its_import_boundaries():
    assert boundaries.check([REPO / "learnplat", REPO / "plugins", REPO / "examples"]) == []


def test_the_boundary_check_fails_on_a_deliberate_violation(tmp_path: Path):
    # Which package a file is in comes from the packaging, as in this repository's setup.cfg.
    (tmp_path / "setup.cfg").write_text(
        "[options]\npackage_dir =\n    learnplat = learnplat\n"
        "    learnplat_notes = plugins/notes\npackages =\n    learnplat\n    learnplat_notes\n")
    pkg = tmp_path / "plugins" / "notes"
    pkg.mkdir(parents=True)
    (pkg / "ok.py").write_text(
        "from learnplat_courses.api import COURSES\nfrom learnplat_courses import events\n"
        "from . import models\nimport learnplat_notes.models\n")
    (pkg / "bad.py").write_text(
        "from learnplat_courses.models import Course\nimport learnplat_enrollment.services\n"
        "from learnplat_progress import plugin\n")
    core = tmp_path / "learnplat"
    core.mkdir()
    (core / "leak.py").write_text("def f():\n    from learnplat_courses.api import COURSES\n")
    found = sorted((v.path.name, v.line, v.imported) for v in boundaries.check([tmp_path]))
    assert found == [
        ("bad.py", 1, "learnplat_courses.models"),
        ("bad.py", 2, "learnplat_enrollment.services"),
        ("bad.py", 3, "learnplat_progress.plugin"),
        ("leak.py", 2, "learnplat_courses.api"),
    ]
    r = subprocess.run([sys.executable, "-m", "learnplat.boundaries", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "bad.py:1: imports learnplat_courses.models: a plugin reaches another plugin only " \
           "through learnplat_courses.api or learnplat_courses.events" in r.stderr
    assert "leak.py:2: imports learnplat_courses.api: the core never imports a plugin" in r.stderr


def test_schema_refuses_unknown_fields_and_nul_characters_and_strips_strings():
    from pydantic import ValidationError

    class NoteIn(face.Schema):
        title: str
        tags: list[str] = []

    assert NoteIn(title="  hi ").title == "hi"
    for bad, field in [({"title": "x", "colour": "red"}, "colour"),
                       ({"title": "a\x00b"}, "title"),
                       ({"title": "ok", "tags": ["fine", "\x00"]}, "tags")]:
        with pytest.raises(ValidationError) as exc:
            NoteIn(**bad)
        assert exc.value.errors()[0]["loc"][0] == field
