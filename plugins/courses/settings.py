"""The ``[courses]`` settings section (``LEARNPLAT_COURSES_<KEY>``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# The hard ceiling of an image upload request; image_max_bytes may only lower it.
UPLOAD_CEILING = 20 * 1024 * 1024


class CoursesSettings(BaseModel):
    image_max_bytes: int = Field(5 * 1024 * 1024, ge=1024, le=UPLOAD_CEILING)
    image_max_width: int = Field(4096, ge=16, le=20_000)
    image_max_height: int = Field(4096, ge=16, le=20_000)
    image_min_side: int = Field(16, ge=1)
    image_formats: list[str] = Field(default_factory=lambda: ["JPEG", "PNG", "WEBP", "GIF"])
    thumbnail_width: int = Field(400, ge=16, le=2000)
    thumbnail_height: int = Field(225, ge=16, le=2000)


class CoursesTenantSettings(BaseModel):
    """A school's ``[settings.courses]`` (tenants/<slug>.toml)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    catalogue: Literal["public", "private"] | None = Field(
        None, description='"private" closes the catalogue to visitors without a token; '
                          'None or "public": open.')
