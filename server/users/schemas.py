from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, EmailStr, Field, StringConstraints

from common.enums import Role
from server.core.schemas import ApiInput, ApiModel

Name = Annotated[str, StringConstraints(max_length=100)]


def _organization_role(role: Role) -> Role:
    if role is Role.SUPER_ADMIN:
        raise ValueError("super_admin is a platform role; create it with the server CLI")
    return role


OrgRole = Annotated[
    Role,
    Field(description="org_admin, agent, technician or requester"),
    AfterValidator(_organization_role),
]


class UserOut(ApiModel):
    id: uuid.UUID
    organization_id: uuid.UUID | None
    email: str
    first_name: str
    last_name: str
    full_name: str
    role: Role
    is_active: bool
    department_id: uuid.UUID | None
    site_id: uuid.UUID | None
    job_title: str | None
    phone: str | None
    mfa_enabled: bool
    locked_until: datetime | None
    last_login_at: datetime | None
    created_at: datetime
    updated_at: datetime


class UserCreate(ApiInput):
    organization_id: str | None = Field(default=None, max_length=64)
    email: EmailStr = Field(max_length=320)
    first_name: Name = ""
    last_name: Name = ""
    role: OrgRole = Role.REQUESTER
    password: Annotated[str, StringConstraints(strip_whitespace=False)] | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Leave out to send an invitation email instead",
    )
    department_id: uuid.UUID | None = None
    site_id: uuid.UUID | None = None
    job_title: str | None = Field(default=None, max_length=120)
    phone: str | None = Field(default=None, max_length=40)


class UserUpdate(ApiInput):
    email: EmailStr | None = Field(default=None, max_length=320)
    first_name: Name | None = None
    last_name: Name | None = None
    role: OrgRole | None = None
    department_id: uuid.UUID | None = None
    site_id: uuid.UUID | None = None
    job_title: str | None = Field(default=None, max_length=120)
    phone: str | None = Field(default=None, max_length=40)


class MeOut(ApiModel):
    user: UserOut
    organization: dict[str, object] | None
    scopes: list[str]
    via_api_token: bool
