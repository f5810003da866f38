from __future__ import annotations

import re
import uuid
import zoneinfo
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, EmailStr, Field, StringConstraints

from common.enums import OrganizationStatus
from server.core.schemas import ApiInput, ApiModel

SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
_DOMAIN = re.compile(r"^(?=.{3,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
HEX_COLOR = r"^#[0-9A-Fa-f]{6}$"


def _timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


def _domain(value: str) -> str:
    value = value.strip().lower()
    if not _DOMAIN.match(value):
        raise ValueError(f"{value!r} is not a domain name")
    return value


TimeZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_timezone)]
Domain = Annotated[str, StringConstraints(max_length=253), AfterValidator(_domain)]
Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN, max_length=63)]


class Branding(ApiInput):
    logo_url: str | None = Field(default=None, max_length=500, pattern=r"^https?://")
    primary_color: str | None = Field(default=None, pattern=HEX_COLOR)
    accent_color: str | None = Field(default=None, pattern=HEX_COLOR)
    display_name: str | None = Field(default=None, max_length=200)


class GeneralSettings(ApiInput):
    locale: str = Field(default="en-US", pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    week_starts_on: int = Field(default=0, ge=0, le=6, description="0 = Sunday")
    allow_requester_self_registration: bool = False
    support_email: EmailStr | None = None


class OrganizationOut(ApiModel):
    id: uuid.UUID
    name: str
    slug: str
    status: OrganizationStatus
    domains: list[str]
    contact_email: str | None
    phone: str | None
    address: str | None
    timezone: str
    website: str | None
    branding: dict[str, Any]
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class InitialAdmin(ApiInput):
    email: EmailStr = Field(max_length=320)
    first_name: str = Field(default="", max_length=100)
    last_name: str = Field(default="", max_length=100)


class OrganizationCreate(ApiInput):
    name: str = Field(min_length=2, max_length=200)
    slug: Slug
    domains: list[Domain] = Field(default_factory=list, max_length=20)
    contact_email: EmailStr | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    address: str | None = Field(default=None, max_length=500)
    timezone: TimeZone = "America/New_York"
    website: str | None = Field(default=None, max_length=300, pattern=r"^https?://")
    branding: Branding | None = None
    settings: GeneralSettings | None = None
    admin: InitialAdmin | None = Field(
        default=None, description="Invite the organization's first administrator"
    )


class OrganizationUpdate(ApiInput):
    name: str | None = Field(default=None, min_length=2, max_length=200)
    domains: list[Domain] | None = Field(default=None, max_length=20)
    contact_email: EmailStr | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    address: str | None = Field(default=None, max_length=500)
    timezone: TimeZone | None = None
    website: str | None = Field(default=None, max_length=300, pattern=r"^https?://")
    branding: Branding | None = None
    settings: GeneralSettings | None = None
    status: OrganizationStatus | None = Field(
        default=None, description="Lifecycle status; platform administrators only"
    )


class DepartmentOut(ApiModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    code: str | None
    description: str | None
    email: str | None
    manager_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class DepartmentCreate(ApiInput):
    organization_id: str | None = Field(default=None, max_length=64)
    name: str = Field(min_length=1, max_length=120)
    code: str | None = Field(default=None, max_length=32)
    description: str | None = Field(default=None, max_length=2000)
    email: EmailStr | None = Field(default=None, max_length=320)
    manager_id: uuid.UUID | None = None


class DepartmentUpdate(ApiInput):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    code: str | None = Field(default=None, max_length=32)
    description: str | None = Field(default=None, max_length=2000)
    email: EmailStr | None = Field(default=None, max_length=320)
    manager_id: uuid.UUID | None = None


class DomainMatchIn(ApiInput):
    email: EmailStr | None = Field(default=None, max_length=320)
    domain: Domain | None = None


class DomainMatchOut(ApiModel):
    organization_id: uuid.UUID
    organization_name: str
    slug: str
    domain: str
