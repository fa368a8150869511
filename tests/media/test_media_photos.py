"""Profile photos: Pillow-validated, re-encoded and resized, EXIF stripped, served, and set as
the identity profile's avatar_url through identity's contract."""

from __future__ import annotations

import io
from urllib.parse import urlparse

from mediahelpers import MULTIPART, PDF, multipart
from PIL import Image

from learnplat import db
from learnplat.tenancy import tenant_context
from learnplat.testing import Client


def _photo(size=(1600, 1200), fmt="JPEG", exif=True) -> bytes:
    im = Image.new("RGB", size, (10, 120, 200))
    out = io.BytesIO()
    if exif and fmt == "JPEG":
        ex = Image.Exif()
        ex[0x010F] = "SpyCam"            # Make
        ex[0x0112] = 6                   # Orientation: rotate 90° on display
        ex[0x8825] = {2: (48.0, 51.0, 0.0)}  # a GPS IFD
        im.save(out, fmt, exif=ex.tobytes())
    else:
        im.save(out, fmt)
    return out.getvalue()


def _upload(client, user_id: int, data: bytes, filename: str = "me.jpg"):
    return client.post(f"/users/{user_id}/photo", headers={"Content-Type": MULTIPART},
                       body=multipart(data, filename=filename, content_type="image/jpeg"))


def test_photo_is_reencoded_without_exif_and_becomes_the_avatar(stage, lp_app, outsider):
    me = stage.student
    r = _upload(stage.s, me.id, _photo())
    assert r.status_code == 201, r.text
    url = r.json["avatar_url"]
    assert urlparse(url).path == f"/users/{me.id}/photo"
    assert stage.s.get("/auth/profile").json["avatar_url"] == url
    assert stage.a.get(f"/users/{me.id}").json["avatar_url"] == url
    # Served without a token (an <img> can show it), to the tenant.
    got = Client(lp_app, stage.client.tenant).get(f"/users/{me.id}/photo")
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    im = Image.open(io.BytesIO(got.content))
    assert im.format == "JPEG"
    assert im.size == (384, 512)  # orientation applied (portrait), fits 512 x 512
    assert not im.getexif() and "exif" not in im.info
    assert b"SpyCam" not in got.content
    etag = got.headers["etag"]
    assert Client(lp_app, stage.client.tenant).get(
        f"/users/{me.id}/photo", headers={"If-None-Match": etag}).status_code == 304
    # Another school does not see it.
    assert outsider.get(f"/users/{me.id}/photo").status_code == 404
    # Only oneself, or an admin.
    assert _upload(stage.t, me.id, _photo()).status_code == 404
    assert _upload(outsider, me.id, _photo()).status_code == 404
    r = _upload(stage.a, me.id, _photo((64, 64), "PNG"), "a.png")
    assert r.status_code == 201 and r.json["avatar_url"] != url
    assert Image.open(io.BytesIO(Client(lp_app, stage.client.tenant).get(
        f"/users/{me.id}/photo").content)).size == (64, 64)
    assert stage.s.delete(f"/users/{me.id}/photo").status_code == 204
    assert stage.a.get(f"/users/{me.id}").json["avatar_url"] == ""
    assert Client(lp_app, stage.client.tenant).get(f"/users/{me.id}/photo").status_code == 404


def test_bad_photos(stage, lp_runtime, lp_tenant):
    me = stage.student.id
    assert _upload(stage.s, me, PDF, "x.jpg").status_code == 415
    assert _upload(stage.s, me, b"").status_code == 422
    truncated = _photo(exif=False)
    assert _upload(stage.s, me, truncated[: len(truncated) // 2]).status_code == 422
    assert _upload(stage.s, me, _photo((8, 8), exif=False)).status_code == 422
    with db.connection(), tenant_context(lp_tenant):
        assert list(lp_runtime.storage.list("media/")) == []
