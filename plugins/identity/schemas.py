"""Request and response schemas of the identity routes (validation and OpenAPI)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

Role = Literal["admin", "instructor", "student"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RegisterIn(_In):
    email: EmailStr
    password: str = Field(min_length=1, max_length=256)
    name: str = Field(min_length=1, max_length=200)


class LoginIn(_In):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=256)


class RefreshIn(_In):
    refresh_token: str = Field(min_length=10, max_length=200)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int


class UserOut(BaseModel):
    id: int
    email: str
    name: str
    role: Role
    active: bool
    bio: str = ""
    avatar_url: str = ""
    email_verified: bool = False
    created_at: dt.datetime


class ProfileOut(BaseModel):
    id: int
    email: str
    name: str
    role: Role
    tenant: str
    bio: str = ""
    avatar_url: str = ""


class RoleOut(BaseModel):
    name: Role
    permissions: dict[str, Literal["any", "own"]]


class RolesOut(BaseModel):
    items: list[RoleOut]


class JWKS(BaseModel):
    keys: list[dict[str, str]]
