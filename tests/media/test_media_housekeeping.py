"""Attached files, removal with modules and courses (a Huey task), the orphan sweep CLI."""

from __future__ import annotations

import json
from urllib.parse import urlparse

from learnplat_media.models import MediaObject
from mediahelpers import PDF, mp4_bytes, upload

from learnplat import db
from learnplat.tenancy import tenant_context
from learnplat.testing import Client


def _stored(runtime, tenant) -> list[str]:
    with db.connection(), tenant_context(tenant), db.transaction():
        return sorted(o.key for o in runtime.storage.list("media/"))


def _fetch(app, url: str):
    parsed = urlparse(url)
    return Client(app).get(f"{parsed.path}?{parsed.query}")


def test_attachments(stage, outsider, lp_app):
    path = stage.path(0, "attachments")
    r = upload(stage.t, stage.course_id, stage.module_ids[0], PDF, what="attachment",
               filename="Übung 1 slides.pdf", content_type="application/octet-stream")
    assert r.status_code == 201, r.text
    pdf = r.json
    assert pdf["kind"] == "attachment" and pdf["content_type"] == "application/pdf"
    assert pdf["filename"] == "Übung 1 slides.pdf"
    # An Office document is a zip whose name says which one; a zip named .pdf stays a zip.
    zipped = b"PK\x03\x04" + b"\x00" * 500
    r = upload(stage.t, stage.course_id, stage.module_ids[0], zipped, what="attachment",
               filename="deck.pptx")
    assert r.status_code == 201 and r.json["content_type"].endswith("presentationml.presentation")
    # Videos are not attachments, and a module's attachments do not make it a video module.
    r = upload(stage.t, stage.course_id, stage.module_ids[0], mp4_bytes(), what="attachment")
    assert r.status_code == 415
    listed = stage.s.get(path).json["items"]
    assert [i["id"] for i in listed] == [pdf["id"], listed[1]["id"]] and len(listed) == 2
    assert stage.stranger.get(path).status_code == 403
    assert outsider.get(path).status_code == 404
    r = stage.s.get(f"{path}/{pdf['id']}")
    assert r.status_code == 200
    got = _fetch(lp_app, r.json["url"])
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["content-disposition"] == (
        "attachment; filename*=UTF-8''%C3%9Cbung%201%20slides.pdf")
    assert got.headers["x-content-type-options"] == "nosniff"
    assert stage.s.delete(f"{path}/{pdf['id']}").status_code == 403
    assert outsider.delete(f"{path}/{pdf['id']}").status_code == 404
    assert stage.t.delete(f"{path}/{pdf['id']}").status_code == 204
    assert stage.t.delete(f"{path}/{pdf['id']}").status_code == 404
    assert _fetch(lp_app, r.json["url"]).status_code == 404
    assert len(stage.s.get(path).json["items"]) == 1


def test_deleting_a_module_or_course_removes_its_objects(lp_client, lp_users, lp_runtime,
                                                         lp_tenant):
    t = lp_client.as_(lp_users.make("instructor").token)
    cid = t.post("/courses", json={"title": "Draft"}).json["id"]
    mids = [t.post(f"/courses/{cid}/modules", json={"title": f"M{i}"}).json["id"]
            for i in range(2)]
    for mid in mids:
        assert upload(t, cid, mid, mp4_bytes()).status_code == 201
        assert upload(t, cid, mid, PDF, what="attachment", filename="a.pdf").status_code == 201
    assert len(_stored(lp_runtime, lp_tenant)) == 4
    assert t.delete(f"/courses/{cid}/modules/{mids[0]}").status_code == 204
    lp_runtime.events.dispatch_pending()  # the handler retires the rows, a task deletes
    left = _stored(lp_runtime, lp_tenant)
    assert len(left) == 2 and all(f"/m{mids[1]}/" in k for k in left)
    assert t.delete(f"/courses/{cid}").status_code in (200, 204)
    lp_runtime.events.dispatch_pending()
    assert _stored(lp_runtime, lp_tenant) == []
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        assert MediaObject.select().count() == 0
    # A second delivery of the same events finds nothing left to do.
    lp_runtime.events.dispatch_pending()


def test_media_check_reports_orphans_both_ways(stage, lp_cli, lp_runtime, lp_tenant):
    assert upload(stage.t, stage.course_id, stage.module_ids[0], mp4_bytes()).status_code == 201
    ok = lp_cli("media", "check", "--tenant", lp_tenant.slug)
    assert ok.exit_code == 0, ok.stdout
    assert "1 stored objects, 1 media rows" in ok.stdout
    with db.connection(), tenant_context(lp_tenant), db.transaction():
        [row] = list(MediaObject.select())
        lp_runtime.storage.put("media/c1/m1/video-stray", [b"left behind"])
        lp_runtime.storage.put("courses/1/not-ours.png", [b"other plugin"])  # not swept
        lp_runtime.storage.delete(row.key)
    r = lp_cli("media", "check", "--tenant", lp_tenant.slug, "--json")
    assert r.exit_code == 1
    report = json.loads(r.stdout)
    assert report["orphan_objects"] == ["media/c1/m1/video-stray"]
    assert report["missing_objects"] == [row.id]
    # A fresh orphan may be an upload in progress: kept unless older than --min-age.
    r = lp_cli("media", "check", "--tenant", lp_tenant.slug, "--delete-orphans")
    assert "orphan object: media/c1/m1/video-stray (recent: kept)" in r.stdout
    assert r.exit_code == 1
    r = lp_cli("media", "check", "--tenant", lp_tenant.slug, "--delete-orphans",
               "--min-age", "0")
    assert "orphan object: media/c1/m1/video-stray (deleted)" in r.stdout
    assert f"missing object for media {row.id}" in r.stdout
    assert _stored(lp_runtime, lp_tenant) == []
    bad = lp_cli("media", "check", "--tenant", "no-such-school")
    assert bad.exit_code != 0
