"""Profile photos: uploaded by the user (or an admin), validated with Pillow, re-encoded as a
JPEG that fits `photo_size` (EXIF and every other metadata dropped, orientation applied), stored
as a media object, and made the identity profile's avatar_url through identity's contract."""

from __future__ import annotations

import hashlib
import io
import secrets
from collections.abc import Callable
from typing import Any

from learnplat_identity.api import IDENTITY, IdentityAPI
from PIL import Image, ImageOps

from learnplat.plugin import NotFound, Principal, db, uploads

from .models import MediaObject
from .services import MediaService

PHOTO = "profile.photo"
_LIMITS = uploads.ImageLimits(formats=("JPEG", "PNG", "WEBP", "GIF"), max_width=12_000,
                              max_height=12_000, min_side=16)


class AvatarService:
    def __init__(self, media: MediaService):
        self.media = media
        self.runtime = media.runtime

    @property
    def identity(self) -> IdentityAPI:
        return self.runtime.service(IDENTITY)

    def check(self, principal: Principal, user_id: int) -> None:
        """One's own photo, or anyone's for an admin; 404 for a user one cannot see."""
        principal.require(PHOTO, owner_id=user_id)
        if self.identity.user(user_id) is None:
            raise NotFound("no such user")

    def current(self, user_id: int) -> MediaObject | None:
        return (MediaObject.select().where((MediaObject.kind == "avatar")
                                           & (MediaObject.user_id == user_id))
                .order_by(MediaObject.id.desc()).first())

    def upload(self, principal: Principal, user_id: int, stream: Any, base_url: str,
               finish: Callable[[], None] | None = None) -> tuple[MediaObject, str]:
        """`finish()` reads the rest of the request body (a truncated body fails here)."""
        settings = self.media.settings
        with uploads.spool(stream, self.media.limit("photo"), "the photo") as fp:
            if finish is not None:
                finish()
            uploads.inspect_image(fp, _LIMITS)
            data = _reencode(fp, settings.photo_size)
        key = f"media/avatars/u{user_id}-{secrets.token_hex(12)}.jpg"
        storage = self.runtime.storage
        storage.put(key, [data], "image/jpeg")
        try:
            with db.transaction():
                self.check(principal, user_id)
                old = list(MediaObject.select().where((MediaObject.kind == "avatar")
                                                      & (MediaObject.user_id == user_id)))
                digest = hashlib.sha256(data).hexdigest()
                row = MediaObject.create(
                    kind="avatar", course_id=0, module_id=0, key=key, filename="",
                    content_type="image/jpeg", size=len(data), sha256=digest,
                    uploader_id=principal.user_id, user_id=user_id)
                url = f"{base_url}/users/{user_id}/photo?v={digest[:16]}"
                self.identity.set_avatar_url(user_id, url)
                self.media.retire(old, principal)
        except BaseException:
            storage.discard(key)
            raise
        return row, url

    def remove(self, principal: Principal, user_id: int) -> None:
        with db.transaction():
            self.check(principal, user_id)
            old = list(MediaObject.select().where((MediaObject.kind == "avatar")
                                                  & (MediaObject.user_id == user_id)))
            if not old:
                raise NotFound("no profile photo")
            self.identity.set_avatar_url(user_id, "")
            self.media.retire(old, principal)


def _reencode(fp: Any, size: int) -> bytes:
    """A fresh JPEG of the image: orientation applied, scaled down to fit size x size, no
    metadata copied (Pillow writes EXIF only when asked to)."""
    with Image.open(fp) as opened:
        opened.seek(0)  # the first frame of an animated GIF or WebP
        im: Image.Image = ImageOps.exif_transpose(opened)
        im.thumbnail((size, size))
        if im.mode in ("RGBA", "LA", "P"):
            rgba = im.convert("RGBA")
            flat = Image.new("RGB", rgba.size, (255, 255, 255))
            flat.paste(rgba, mask=rgba.getchannel("A"))
            im = flat
        out = io.BytesIO()
        im.convert("RGB").save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue()
