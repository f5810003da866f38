from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from server.core.schemas import ApiInput, ApiModel
from server.organizations.schemas import TimeZone

SiteType = Literal[
    "elementary_school",
    "middle_school",
    "high_school",
    "school",
    "office",
    "warehouse",
    "other",
]
RoomType = Literal[
    "classroom", "lab", "library", "office", "gym", "closet", "server_room", "storage", "other"
]


class SiteOut(ApiModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    code: str | None
    site_type: str
    address: str | None
    timezone: str | None
    phone: str | None
    created_at: datetime
    updated_at: datetime


class SiteCreate(ApiInput):
    organization_id: str | None = Field(default=None, max_length=64)
    name: str = Field(min_length=1, max_length=160)
    code: str | None = Field(default=None, max_length=32)
    site_type: SiteType = "school"
    address: str | None = Field(default=None, max_length=500)
    timezone: TimeZone | None = Field(
        default=None, description="Leave out to use the organization's time zone"
    )
    phone: str | None = Field(default=None, max_length=40)


class SiteUpdate(ApiInput):
    name: str | None = Field(default=None, min_length=1, max_length=160)
    code: str | None = Field(default=None, max_length=32)
    site_type: SiteType | None = None
    address: str | None = Field(default=None, max_length=500)
    timezone: TimeZone | None = None
    phone: str | None = Field(default=None, max_length=40)


class BuildingOut(ApiModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    site_id: uuid.UUID
    name: str
    code: str | None
    floors: int | None
    created_at: datetime
    updated_at: datetime


class BuildingCreate(ApiInput):
    name: str = Field(min_length=1, max_length=160)
    code: str | None = Field(default=None, max_length=32)
    floors: int | None = Field(default=None, ge=1, le=200)


class BuildingUpdate(ApiInput):
    name: str | None = Field(default=None, min_length=1, max_length=160)
    code: str | None = Field(default=None, max_length=32)
    floors: int | None = Field(default=None, ge=1, le=200)


class RoomOut(ApiModel):
    """A room, with the building and the site (school) it is in named, so that
    "104" in a list or a search says which school's 104 it is."""

    id: uuid.UUID
    organization_id: uuid.UUID
    building_id: uuid.UUID
    building_name: str
    site_id: uuid.UUID
    site_name: str
    number: str
    name: str | None
    floor: str | None
    room_type: str
    capacity: int | None
    created_at: datetime
    updated_at: datetime


class RoomCreate(ApiInput):
    number: str = Field(min_length=1, max_length=40)
    name: str | None = Field(default=None, max_length=160)
    floor: str | None = Field(default=None, max_length=20)
    room_type: RoomType = "classroom"
    capacity: int | None = Field(default=None, ge=0, le=10_000)


class RoomUpdate(ApiInput):
    number: str | None = Field(default=None, min_length=1, max_length=40)
    name: str | None = Field(default=None, max_length=160)
    floor: str | None = Field(default=None, max_length=20)
    room_type: RoomType | None = None
    capacity: int | None = Field(default=None, ge=0, le=10_000)
