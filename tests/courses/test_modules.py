"""Module management: add, edit, reorder, remove; prerequisites and drip release validated."""

from __future__ import annotations


def titles(client, cid):
    mods = client.get(f"/courses/{cid}").json["modules"]
    assert [m["position"] for m in mods] == list(range(1, len(mods) + 1))
    return [m["title"] for m in mods]


def test_add_at_position_edit_move_and_remove(world):
    cid = world.course("Mods", modules=3)["id"]
    t = world.t
    assert titles(t, cid) == ["M1", "M2", "M3"]
    r = t.post(f"/courses/{cid}/modules", json={"title": "M0", "position": 1, "kind": "video",
                                                 "estimated_minutes": 12})
    assert r.status_code == 201 and r.json["position"] == 1 and r.json["kind"] == "video"
    m0 = r.json["id"]
    assert titles(t, cid) == ["M0", "M1", "M2", "M3"]
    # A position past the end appends.
    r = t.post(f"/courses/{cid}/modules", json={"title": "Last", "position": 99})
    assert r.json["position"] == 5
    last = r.json["id"]
    # Edit: absent fields stay; position moves it.
    r = t.put(f"/courses/{cid}/modules/{m0}", json={"title": "Welcome", "position": 3})
    assert r.status_code == 200, r.text
    assert r.json["title"] == "Welcome" and r.json["kind"] == "video"
    assert r.json["estimated_minutes"] == 12
    assert titles(t, cid) == ["M1", "M2", "Welcome", "M3", "Last"]
    t.put(f"/courses/{cid}/modules/{last}", json={"position": 1})
    assert titles(t, cid) == ["Last", "M1", "M2", "Welcome", "M3"]
    # Remove compacts positions.
    assert t.delete(f"/courses/{cid}/modules/{m0}").status_code == 204
    assert titles(t, cid) == ["Last", "M1", "M2", "M3"]
    assert t.delete(f"/courses/{cid}/modules/{m0}").status_code == 404
    assert t.put(f"/courses/{cid}/modules/{m0}", json={"title": "x"}).status_code == 404
    assert t.get(f"/courses/{cid}/modules/{last}").json["title"] == "Last"
    assert [m["title"] for m in t.get(f"/courses/{cid}/modules").json["items"]] == [
        "Last", "M1", "M2", "M3"]


def test_reorder(world):
    cid = world.course("Order", modules=3)["id"]
    t = world.t
    ids = [m["id"] for m in t.get(f"/courses/{cid}").json["modules"]]
    r = t.put(f"/courses/{cid}/modules/order", json={"module_ids": ids[::-1]})
    assert r.status_code == 200, r.text
    assert [m["id"] for m in r.json["items"]] == ids[::-1]
    assert titles(t, cid) == ["M3", "M2", "M1"]
    for bad in (ids[:2], ids + ids[:1], [*ids[:2], 999999], []):
        r = t.put(f"/courses/{cid}/modules/order", json={"module_ids": bad})
        assert r.status_code == 422 and r.json["errors"][0]["field"] == "module_ids"
    r = t.put(f"/courses/{cid}/modules/order", json={"module_ids": ["x"]})
    assert r.status_code == 422
    assert titles(t, cid) == ["M3", "M2", "M1"]  # nothing half-written
    assert world.s.put(f"/courses/{cid}/modules/order", json={"module_ids": ids}
                       ).status_code == 403


def test_prerequisites_validated(world):
    cid = world.course("Pre", modules=2)["id"]
    other = world.course("Other", modules=1)
    t = world.t
    m1, m2 = [m["id"] for m in t.get(f"/courses/{cid}").json["modules"]]
    foreign = other["modules"][0]["id"]
    r = t.post(f"/courses/{cid}/modules", json={"title": "M3", "prerequisite_id": m2})
    assert r.status_code == 201 and r.json["prerequisite_id"] == m2
    m3 = r.json["id"]
    r = t.post(f"/courses/{cid}/modules", json={"title": "X", "prerequisite_id": foreign})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "prerequisite_id"
    r = t.put(f"/courses/{cid}/modules/{m1}", json={"prerequisite_id": m1})
    assert r.status_code == 422 and r.json["errors"][0]["type"] == "cycle"
    assert t.put(f"/courses/{cid}/modules/{m2}", json={"prerequisite_id": m1}).status_code == 200
    r = t.put(f"/courses/{cid}/modules/{m1}", json={"prerequisite_id": m3})  # m1<-m3<-m2<-m1
    assert r.status_code == 422 and r.json["errors"][0]["type"] == "cycle"
    # Clearing with null; removing a prerequisite module clears the reference.
    assert t.put(f"/courses/{cid}/modules/{m2}", json={"prerequisite_id": None}
                 ).json["prerequisite_id"] is None
    assert t.delete(f"/courses/{cid}/modules/{m2}").status_code == 204
    assert t.get(f"/courses/{cid}/modules/{m3}").json["prerequisite_id"] is None


def test_release_at_validated_and_reported(world):
    cid = world.course("Drip")["id"]
    t = world.t
    r = t.post(f"/courses/{cid}/modules", json={"title": "Later",
                                                 "release_at": "2099-01-02T03:04:05+02:00"})
    assert r.status_code == 201, r.text
    assert r.json["release_at"] == "2099-01-02T01:04:05Z" and r.json["released"] is False
    r = t.post(f"/courses/{cid}/modules", json={"title": "Naive",
                                                 "release_at": "2020-01-01T00:00:00"})
    assert r.json["release_at"] == "2020-01-01T00:00:00Z" and r.json["released"] is True
    for bad in ("tomorrow", "1800-01-01T00:00:00Z", 12.5e20):
        r = t.post(f"/courses/{cid}/modules", json={"title": "Bad", "release_at": bad})
        assert r.status_code == 422, (bad, r.text)
        assert r.json["errors"][0]["field"] == "release_at"
    r = t.post(f"/courses/{cid}/modules", json={"title": "", "kind": "podcast", "position": 0,
                                                 "estimated_minutes": -1})
    assert {e["field"] for e in r.json["errors"]} == {"title", "kind", "position",
                                                      "estimated_minutes"}


def test_structural_changes_on_published_course_emit_events(world, lp_runtime,
                                                            event_recorder):
    course = world.course("Live", publish=True, modules=2)
    cid = course["id"]
    t = world.t
    lp_runtime.events.dispatch_pending()
    event_recorder.events.clear()
    m3 = t.post(f"/courses/{cid}/modules", json={"title": "New"}).json["id"]
    t.put(f"/courses/{cid}/modules/{m3}", json={"title": "Newer"})
    ids = [m["id"] for m in t.get(f"/courses/{cid}").json["modules"]]
    t.put(f"/courses/{cid}/modules/order", json={"module_ids": ids[::-1]})
    t.delete(f"/courses/{cid}/modules/{m3}")
    assert t.get(f"/courses/{cid}").json["status"] == "published"  # never unpublished
    lp_runtime.events.dispatch_pending()
    assert event_recorder.names() == ["course.module_added.v1", "course.module_updated.v1",
                                      "course.modules_reordered.v1",
                                      "course.module_removed.v1"]
    added = event_recorder.events[0].payload
    assert added["course_id"] == cid and added["module_id"] == m3
    assert added["status"] == "published" and added["module_title"] == "New"
    assert event_recorder.events[2].payload["module_ids"] == ids[::-1]


def test_module_permissions_and_other_tenant(world, outsider):
    cid = world.course("Guarded", publish=True, modules=1)["id"]
    mid = world.t.get(f"/courses/{cid}").json["modules"][0]["id"]
    other_teacher = world.as_new("instructor")
    # Another instructor's course: hidden as 404 (the core's "own" rule), even when published.
    assert other_teacher.post(f"/courses/{cid}/modules", json={"title": "x"}).status_code == 404
    assert other_teacher.put(f"/courses/{cid}/modules/{mid}", json={"title": "x"}
                             ).status_code == 404
    assert world.s.delete(f"/courses/{cid}/modules/{mid}").status_code == 403
    assert world.a.put(f"/courses/{cid}/modules/{mid}", json={"title": "By admin"}
                       ).status_code == 200
    for call in (lambda: outsider.get(f"/courses/{cid}/modules"),
                 lambda: outsider.get(f"/courses/{cid}/modules/{mid}"),
                 lambda: outsider.post(f"/courses/{cid}/modules", json={"title": "x"}),
                 lambda: outsider.put(f"/courses/{cid}/modules/{mid}", json={"title": "x"}),
                 lambda: outsider.put(f"/courses/{cid}/modules/order",
                                      json={"module_ids": [mid]}),
                 lambda: outsider.delete(f"/courses/{cid}/modules/{mid}")):
        assert call().status_code == 404
    assert world.t.get(f"/courses/{cid}/modules/{mid}").json["title"] == "By admin"
