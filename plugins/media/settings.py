"""The ``[media]`` settings section (``LEARNPLAT_MEDIA_<KEY>``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# The hard ceiling of one upload request; a tenant's own limit may only lower it.
UPLOAD_CEILING = 50 * 1024**3

VIDEO_TYPES = ["video/mp4", "video/webm", "video/ogg", "video/quicktime"]
ATTACHMENT_TYPES = [
    "application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp", "application/zip",
    "application/gzip", "application/x-7z-compressed",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.oasis.opendocument.presentation", "application/vnd.oasis.opendocument.text",
    "application/vnd.ms-powerpoint", "application/msword", "application/vnd.ms-excel",
]


class MediaSettings(BaseModel):
    # Default per-upload limits; a tenant lowers (never raises) them with its settings
    # media.max_video_bytes / media.max_attachment_bytes / media.max_submission_bytes.
    max_video_bytes: int = Field(2 * 1024**3, ge=1024, le=UPLOAD_CEILING)
    max_attachment_bytes: int = Field(100 * 1024**2, ge=1024, le=UPLOAD_CEILING)
    max_submission_bytes: int = Field(50 * 1024**2, ge=1024, le=UPLOAD_CEILING)
    max_photo_bytes: int = Field(10 * 1024**2, ge=1024, le=100 * 1024**2)
    photo_size: int = Field(512, ge=32, le=2048)  # photos are re-encoded to fit this square
    # How long a playback or download URL works; none: storage.signing_ttl_seconds.
    url_ttl_seconds: int | None = Field(None, ge=10, le=7 * 24 * 3600)
    video_types: list[str] = Field(default_factory=lambda: list(VIDEO_TYPES))
    attachment_types: list[str] = Field(default_factory=lambda: list(ATTACHMENT_TYPES))
    submission_types: list[str] = Field(default_factory=lambda: list(ATTACHMENT_TYPES))


class MediaTenantSettings(BaseModel):
    """A school's ``[settings.media]`` (tenants/<slug>.toml): its own per-upload limits,
    which lower the [media] section's (a larger one has no effect: the server's stays)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    max_video_bytes: int | None = Field(
        None, ge=1024, description="Largest video upload, in bytes.")
    max_attachment_bytes: int | None = Field(
        None, ge=1024, description="Largest module attachment upload, in bytes.")
    max_submission_bytes: int | None = Field(
        None, ge=1024, description="Largest assignment submission upload, in bytes.")
    max_photo_bytes: int | None = Field(
        None, ge=1024, description="Largest profile photo upload, in bytes.")
