from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from common.enums import Role
from server.core.schemas import ApiInput, ApiModel


class TeamOut(ApiModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    description: str | None
    department_id: uuid.UUID | None
    lead_id: uuid.UUID | None
    member_count: int = 0
    created_at: datetime
    updated_at: datetime


class TeamCreate(ApiInput):
    name: str = Field(min_length=1, max_length=120)
    description: str | None = Field(default=None, max_length=1000)
    department_id: uuid.UUID | None = None
    lead_id: uuid.UUID | None = Field(
        default=None, description="A technician, agent or admin of the organization"
    )
    member_ids: list[uuid.UUID] | None = Field(
        default=None,
        max_length=100,
        description="Technicians, agents or admins of the organization to add at once",
    )


class TeamUpdate(ApiInput):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    description: str | None = Field(default=None, max_length=1000)
    department_id: uuid.UUID | None = None
    lead_id: uuid.UUID | None = None


class TeamMemberAdd(ApiInput):
    user_id: uuid.UUID = Field(description="A technician, agent or admin of the organization")


class TeamMemberOut(ApiModel):
    team_id: uuid.UUID
    user_id: uuid.UUID
    email: str
    first_name: str
    last_name: str
    full_name: str
    role: Role
    is_active: bool
    job_title: str | None
    added_at: datetime
