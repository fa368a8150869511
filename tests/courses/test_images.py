"""Course images: Pillow validation, storage, thumbnails in a Huey task, streamed back."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time

from coursehelpers import image_bytes, upload
from PIL import Image

from learnplat import db
from learnplat.testing import test_settings as make_settings


def test_upload_png_thumbnail_and_serve(world, lp_runtime, event_recorder):
    cid = world.course("Pretty", publish=True)["id"]
    png = image_bytes("PNG", (800, 600))
    r = upload(world.t, cid, png)
    assert r.status_code == 201, r.text
    # Tasks run in immediate mode in unit tests: the thumbnail exists once the request is done.
    course = world.s.get(f"/courses/{cid}").json
    assert course["image_url"].startswith(f"/courses/{cid}/image?v=")
    assert course["thumbnail_url"].startswith(f"/courses/{cid}/thumbnail?v=")
    r = world.s.get(f"/courses/{cid}/image")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content == png
    etag = r.headers["etag"]
    assert world.s.get(f"/courses/{cid}/image", headers={"If-None-Match": etag}
                       ).status_code == 304
    r = world.s.get(f"/courses/{cid}/thumbnail")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    thumb = Image.open(io.BytesIO(r.content))
    assert thumb.format == "JPEG" and thumb.size == (300, 225)
    lp_runtime.events.dispatch_pending()
    assert {"course.image_changed.v1", "course.thumbnail_ready.v1"} <= set(
        event_recorder.names())
    # Replacing the image removes the old objects from storage.
    old_key = _keys(lp_runtime, world, cid)
    r = upload(world.a, cid, image_bytes("JPEG", (120, 80)), filename="b.jpg",
               content_type="image/jpeg")
    assert r.status_code == 201
    assert world.s.get(f"/courses/{cid}/image").headers["content-type"] == "image/jpeg"
    new_key = _keys(lp_runtime, world, cid)
    assert new_key != old_key
    with _in(lp_runtime, world):
        assert not any(lp_runtime.storage.exists(k) for k in old_key)
        assert all(lp_runtime.storage.exists(k) for k in new_key)
    # Transparent images keep their alpha in a PNG thumbnail.
    assert upload(world.t, cid, image_bytes("PNG", (64, 64), mode="RGBA")).status_code == 201
    assert world.s.get(f"/courses/{cid}/thumbnail").headers["content-type"] == "image/png"
    # Removing it: 204, then 404s, and the course says so.
    assert world.t.delete(f"/courses/{cid}/image").status_code == 204
    assert world.s.get(f"/courses/{cid}/image").status_code == 404
    assert world.s.get(f"/courses/{cid}/thumbnail").status_code == 404
    assert world.s.get(f"/courses/{cid}").json["image_url"] is None
    assert world.t.delete(f"/courses/{cid}/image").status_code == 404


def _in(runtime, world):
    from contextlib import ExitStack

    from learnplat import db
    from learnplat.tenancy import tenant_context

    stack = ExitStack()
    stack.enter_context(db.connection())
    stack.enter_context(tenant_context(world.client.tenant))
    stack.enter_context(db.transaction())  # RLS on PostgreSQL needs the tenant set in one
    return stack


def _keys(runtime, world, cid):
    from learnplat_courses.models import Course

    with _in(runtime, world):
        c = Course.get_by_id(cid)
        return (c.image_key, c.thumbnail_key)


def test_bad_images_are_refused_and_nothing_is_written(world, lp_runtime, monkeypatch):
    cid = world.course("Strict")["id"]
    t = world.t
    r = upload(t, cid, b"this is not an image at all")
    assert r.status_code == 415 and r.json["code"] == "not_an_image"
    bmp = io.BytesIO()
    Image.new("RGB", (32, 32)).save(bmp, "BMP")
    r = upload(t, cid, bmp.getvalue(), filename="x.bmp", content_type="image/bmp")
    assert r.status_code == 415 and "BMP" in r.json["detail"]
    r = upload(t, cid, image_bytes("PNG", (5000, 20)))
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "file"
    r = upload(t, cid, image_bytes("PNG", (4, 4)))
    assert r.status_code == 422 and r.json["errors"][0]["type"] == "too_small"
    truncated = image_bytes("PNG", (200, 200))[:-40]
    r = upload(t, cid, truncated)
    assert r.status_code in (415, 422), r.text
    r = upload(t, cid, b"")
    assert r.status_code == 422
    r = upload(t, cid, image_bytes(), name="picture")
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "file"
    r = t.post(f"/courses/{cid}/image", json={"file": "x"})
    assert r.status_code == 415
    r = t.post(f"/courses/{cid}/image", body=b"--x\r\ngarbage",
               headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert r.status_code in (400, 422)
    settings = lp_runtime.plugin_settings["courses"]
    monkeypatch.setattr(settings, "image_max_bytes", 2048)
    big = image_bytes("PNG", (300, 300))
    noisy = Image.frombytes("RGB", (300, 300), os.urandom(300 * 300 * 3))
    buf = io.BytesIO()
    noisy.save(buf, "PNG")
    big = buf.getvalue()
    r = upload(t, cid, big)
    assert r.status_code == 413, r.text
    monkeypatch.undo()
    # None of the refusals changed the course or left an object in storage.
    assert world.t.get(f"/courses/{cid}").json["image_url"] is None
    root = lp_runtime.storage.driver.key if hasattr(lp_runtime.storage.driver, "key") else None
    assert root is not None
    tenant_dir = os.path.join(root, lp_runtime.storage.container_name,
                              f"t{world.client.tenant.id}", "courses", str(cid))
    assert not os.path.exists(tenant_dir) or os.listdir(tenant_dir) == []


def test_image_permissions_and_other_tenant(world, outsider):
    cid = world.course("Owned", publish=True)["id"]
    png = image_bytes()
    assert upload(world.s, cid, png).status_code == 403
    assert upload(world.as_new("instructor"), cid, png).status_code == 404
    assert upload(outsider, cid, png).status_code == 404
    assert upload(world.t, cid, png).status_code == 201
    assert outsider.get(f"/courses/{cid}/image").status_code == 404
    assert outsider.get(f"/courses/{cid}/thumbnail").status_code == 404
    assert outsider.delete(f"/courses/{cid}/image").status_code == 404
    # A published course's image is part of the public catalogue; uploading is not.
    assert world.client.as_(None).get(f"/courses/{cid}/image").status_code == 200
    assert upload(world.client.as_(None), cid, png).status_code == 401
    draft = world.course("Hidden")["id"]
    assert upload(world.t, draft, png).status_code == 201
    assert world.s.get(f"/courses/{draft}/image").status_code == 404
    assert world.client.as_(None).get(f"/courses/{draft}/image").status_code == 404
    assert upload(world.t, 999999, png).status_code == 404


def test_thumbnail_made_by_a_real_worker_process(world, lp_runtime, lp_database,
                                                 tmp_path):
    """The upload only enqueues; a `learnplat worker` subprocess makes the thumbnail."""
    from learnplat.http.app import create_app
    from learnplat.runtime import create_runtime
    from learnplat.testing import Client, use_runtime

    queue_path = tmp_path / "huey.db"
    storage_url = lp_runtime.settings.storage.url
    settings = make_settings(tmp_path, lp_database.url, "",
                             queue={"immediate": False, "sqlite_path": str(queue_path)},
                             storage={"url": storage_url})
    previous = db.database.obj  # create_runtime points the process's proxy at its database
    runtime = create_runtime(settings)
    db.database.initialize(previous)
    with use_runtime(runtime):
        app = create_app(runtime)
        cid = world.course("Worked", publish=True)["id"]
        teacher = Client(app, world.client.tenant, world.teacher.token)
        r = upload(teacher, cid, image_bytes("PNG", (640, 480)))
        assert r.status_code == 201, r.text
        assert r.json["thumbnail_url"] is None
        assert runtime.queue.huey.pending_count() >= 1
        assert teacher.get(f"/courses/{cid}/thumbnail").status_code == 404
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNPLAT_")}
        env.update({
            "LEARNPLAT_DATABASE_URL": lp_database.url,
            "LEARNPLAT_REDIS_URL": "",
            "LEARNPLAT_QUEUE_SQLITE_PATH": str(queue_path),
            "LEARNPLAT_QUEUE_IMMEDIATE": "false",
            "LEARNPLAT_STORAGE_URL": storage_url,
            "LEARNPLAT_APP_VAR_DIR": str(tmp_path / "var"),
            "LEARNPLAT_APP_SECRET_KEY": settings.app.secret_key,
        })
        cli = os.path.join(os.path.dirname(sys.executable), "learnplat")
        proc = subprocess.Popen([cli, "worker", "--workers", "1"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if teacher.get(f"/courses/{cid}").json["thumbnail_url"]:
                    break
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
                time.sleep(0.2)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        r = teacher.get(f"/courses/{cid}/thumbnail")
        assert r.status_code == 200, r.text
        assert Image.open(io.BytesIO(r.content)).size == (300, 225)
