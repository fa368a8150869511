"""What of an event leaves learnplat (webhooks, xAPI; issue 27): published events only, with
their public fields only, described by a JSON schema that what leaves validates against; and
the catalogue (`learnplat events list`) says so for each event."""

from __future__ import annotations

import io
from typing import ClassVar

import jsonschema
from PIL import Image

from learnplat.catalogue import events_catalogue
from learnplat.plugin import Event


class Stored(Event):
    """A thing was stored."""
    name: ClassVar[str] = "tests.stored.v1"
    internal_fields: ClassVar[frozenset[str]] = frozenset({"storage_key"})
    thing_id: int
    storage_key: str
    label: str = ""  # added in a later release: events stored before it lack it


def test_public_payload_drops_internal_fields_and_invents_no_missing_one():
    assert Stored.public_fields() == ["thing_id", "label"]
    assert Stored.public_payload({"thing_id": 1, "storage_key": "t/1/a.bin", "label": "x"}) \
        == {"thing_id": 1, "label": "x"}
    # An older event, recorded before `label` existed: left out, not filled with the default.
    assert Stored.public_payload({"thing_id": 1, "storage_key": "t/1/a.bin"}) == {"thing_id": 1}
    # Keys the stored payload has that the declaration does not (a field of a later version
    # read by an older release) do not leave either.
    assert Stored.public_payload({"thing_id": 1, "storage_key": "k", "secret": "s"}) \
        == {"thing_id": 1}


def test_public_schema_leaves_internal_fields_out_and_validates_what_leaves():
    schema = Stored.public_schema()
    assert set(schema["properties"]) == {"thing_id", "label"}
    assert schema["required"] == ["thing_id"]
    assert (schema["title"], schema["description"]) == ("Stored", "A thing was stored.")
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(Stored.public_payload({"thing_id": 1, "storage_key": "k"}))
    assert not validator.is_valid({"label": "no id"})
    # The class's own schema is untouched (public_schema works on a copy).
    assert "storage_key" in Stored.model_json_schema()["properties"]


def test_every_published_event_has_a_valid_public_schema(lp_runtime):
    declared = lp_runtime.registry.events
    assert declared, "no event declared"
    published = [d.type for d in declared.values() if d.type.published]
    assert len(published) > len(declared) // 2
    for event in published:
        schema = event.public_schema()
        jsonschema.Draft202012Validator.check_schema(schema)
        assert list(schema["properties"]) == event.public_fields(), event.name
        assert not set(schema["properties"]) & event.internal_fields, event.name
        assert schema["description"], f"{event.name} has no docstring"
        # Internal fields name fields the event has (a typo would leak the real one).
        assert event.internal_fields <= set(event.model_fields), event.name


def test_the_built_in_plugins_keep_storage_keys_inside(lp_runtime):
    events = {d.type.name: d.type for d in lp_runtime.registry.events.values()}
    assert events["course.thumbnail_ready.v1"].published is False
    assert events["course.image_changed.v1"].internal_fields == {"image_key"}
    for name, event in events.items():
        if event.published:
            leaked = [f for f in event.public_fields() if f.endswith("_key")]
            assert not leaked, f"{name} publishes storage keys {leaked}"


def test_a_recorded_events_public_payload_validates_against_its_schema(
        lp_runtime, lp_client, lp_users, lp_tenant, event_recorder):
    """A real course.image_changed.v1 (a course image uploaded through the API): its stored
    payload holds the storage key; what leaves does not, and matches the documented schema."""
    teacher = lp_users.make("instructor")
    t = lp_client.as_(teacher.token)
    cid = t.post("/courses", json={"title": "Introduction to Statistics"}).json["id"]
    png = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 30, 30)).save(png, "PNG")
    boundary = "lpboundary7d3f"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n").encode() \
        + png.getvalue() + f"\r\n--{boundary}--\r\n".encode()
    r = t.post(f"/courses/{cid}/image", body=body,
               headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code in (200, 201), r.text
    lp_runtime.events.dispatch_pending()
    mine = [e for e in event_recorder.events
            if e.tenant_id == lp_tenant.id and e.payload.get("course_id") == cid]
    [changed] = [e for e in mine if e.name == "course.image_changed.v1"]
    event = lp_runtime.registry.events[changed.name].type
    assert changed.payload["image_key"]  # stored: the thumbnail task reads it
    public = event.public_payload(changed.payload)
    assert "image_key" not in public
    assert public["course_id"] == cid and public["title"] == "Introduction to Statistics"
    jsonschema.Draft202012Validator(event.public_schema()).validate(public)
    # And an event with datetimes, as stored (JSON), validates too: every event recorded here.
    for e in mine:
        declared = lp_runtime.registry.events[e.name].type
        if declared.published:
            jsonschema.Draft202012Validator(declared.public_schema()).validate(
                declared.public_payload(e.payload))


def test_the_catalogue_says_what_leaves_learnplat(lp_runtime):
    catalogue = {e["name"]: e for e in events_catalogue(lp_runtime.registry)["events"]}
    image = catalogue["course.image_changed.v1"]
    assert image["published"] is True
    assert "image_key" in [f["name"] for f in image["fields"]]
    assert "image_key" not in image["public_fields"] and "course_id" in image["public_fields"]
    thumbnail = catalogue["course.thumbnail_ready.v1"]
    assert (thumbnail["published"], thumbnail["public_fields"]) == (False, [])
    enrolled = catalogue["enrollment.created.v1"]
    assert enrolled["published"] is True
    assert enrolled["public_fields"] == [f["name"] for f in enrolled["fields"]]


def test_events_list_shows_whether_an_event_leaves_learnplat(lp_cli):
    text = lp_cli("events", "list").stdout
    block = text[text.index("course.image_changed.v1"):]
    block = block[:block.index("\ncourse.", 1)]
    assert "leaves learnplat: yes, without image_key" in block
    block = text[text.index("course.thumbnail_ready.v1"):]
    assert block.splitlines()[2] == "    leaves learnplat: no"
    markdown = lp_cli("events", "list", "--markdown").stdout
    assert "| leaves learnplat |" in markdown
    [row] = [line for line in markdown.splitlines() if line.startswith("| `course.image_changed")]
    assert "| yes, without `image_key` |" in row
