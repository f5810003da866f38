from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from common.tickets import Level, Priority, TicketType
from common.workflow import StatusCategory, TicketStatus
from server.core.schemas import ApiInput, ApiModel

Tag = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[^\s,]+( [^\s,]+)*$")]
Text = Annotated[str, Field(max_length=20_000)]
CustomFields = Annotated[dict[str, Any], Field(max_length=50)]


class TicketOut(ApiModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    number: str
    ticket_type: TicketType
    title: str
    description: str
    status: TicketStatus
    status_category: StatusCategory
    status_changed_at: datetime
    priority: Priority
    impact: Level | None
    urgency: Level | None
    category: str | None
    subcategory: str | None
    source: str
    department_id: uuid.UUID | None
    site_id: uuid.UUID | None
    building_id: uuid.UUID | None
    room_id: uuid.UUID | None
    requester_id: uuid.UUID
    created_by_id: uuid.UUID | None
    assignee_id: uuid.UUID | None
    team_id: uuid.UUID | None
    watcher_ids: list[uuid.UUID]
    tags: list[str]
    custom_fields: dict[str, Any]
    due_at: datetime | None
    satisfaction_rating: int | None
    satisfaction_comment: str | None
    resolution_notes: str | None
    root_cause: str | None
    first_response_at: datetime | None
    started_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    parent_id: uuid.UUID | None
    merged_into_id: uuid.UUID | None
    comment_count: int
    #: None for callers who may not see internal notes
    internal_note_count: int | None
    attachment_count: int
    open_blocker_count: int
    #: null for requesters, as are the other fields of ``visibility.STAFF_ONLY_FIELDS``
    minutes_worked: int | None
    parts_cost_cents: int | None
    sla_rule_id: uuid.UUID | None
    response_due_at: datetime | None
    resolution_due_at: datetime | None
    sla_paused_at: datetime | None
    response_breached_at: datetime | None
    resolution_breached_at: datetime | None
    escalation_level: int | None
    created_at: datetime
    updated_at: datetime


class TransitionOut(ApiModel):
    name: str
    target: TicketStatus
    description: str


class TicketCost(ApiModel):
    """What the ticket has cost: parts used plus time worked at the organization's rate."""

    parts_cents: int
    minutes_worked: int
    labor_rate_cents_per_hour: int
    labor_cents: int
    total_cents: int


class TicketDetailOut(TicketOut):
    #: null for requesters (see server.tickets.visibility)
    cost: TicketCost | None
    #: what the caller may do next (buttons in the desktop app)
    available_transitions: list[TransitionOut]
    blocked_by: list[TicketRef]
    blocking: list[TicketRef]
    children: list[TicketRef]


class TicketRef(ApiModel):
    id: uuid.UUID
    number: str
    title: str
    status: TicketStatus


class TicketCreate(ApiInput):
    organization_id: str | None = Field(default=None, max_length=64)
    ticket_type: TicketType = TicketType.INCIDENT
    title: str = Field(min_length=1, max_length=200)
    description: Text = ""
    priority: Priority | None = Field(
        default=None,
        description="Leave out to derive it: from impact x urgency for incidents, else medium",
    )
    impact: Level | None = None
    urgency: Level | None = None
    category: str | None = Field(default=None, max_length=80)
    subcategory: str | None = Field(default=None, max_length=80)
    source: Literal["web", "email", "phone", "walk_in", "desktop", "chrome_extension", "api"] = (
        "web"
    )
    department_id: uuid.UUID | None = None
    site_id: uuid.UUID | None = None
    building_id: uuid.UUID | None = None
    room_id: uuid.UUID | None = None
    requester_id: uuid.UUID | None = Field(
        default=None, description="File on behalf of someone else (staff only)"
    )
    assignee_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    watcher_ids: list[uuid.UUID] = Field(default_factory=list, max_length=50)
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    custom_fields: CustomFields = Field(default_factory=dict)
    due_at: datetime | None = None
    parent_id: uuid.UUID | None = None
    asset_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20)


class TicketUpdate(ApiInput):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: Text | None = None
    ticket_type: TicketType | None = None
    priority: Priority | None = None
    impact: Level | None = None
    urgency: Level | None = None
    category: str | None = Field(default=None, max_length=80)
    subcategory: str | None = Field(default=None, max_length=80)
    department_id: uuid.UUID | None = None
    site_id: uuid.UUID | None = None
    building_id: uuid.UUID | None = None
    room_id: uuid.UUID | None = None
    watcher_ids: list[uuid.UUID] | None = Field(default=None, max_length=50)
    tags: list[Tag] | None = Field(default=None, max_length=20)
    custom_fields: CustomFields | None = None
    due_at: datetime | None = None
    satisfaction_rating: int | None = Field(default=None, ge=1, le=5)
    satisfaction_comment: str | None = Field(default=None, max_length=2000)
    resolution_notes: Text | None = None
    root_cause: Text | None = None
    parent_id: uuid.UUID | None = None


class AssignBody(ApiInput):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"assigneeId": "0190f2a4-5f5e-7c3e-8d2a-1b2c3d4e5f60"}]}
    )

    assignee_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    note: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _something(self) -> AssignBody:
        if "assignee_id" not in self.model_fields_set and "team_id" not in self.model_fields_set:
            raise ValueError("give assigneeId, teamId or both (null unassigns)")
        return self


class StatusBody(ApiInput):
    status: TicketStatus
    note: str | None = Field(default=None, max_length=5000)
    resolution_notes: Text | None = None


class ActionBody(ApiInput):
    """Optional note for a workflow action (resolve, close, reopen, approve, ...)."""

    note: str | None = Field(default=None, max_length=5000)
    resolution_notes: Text | None = None
    root_cause: Text | None = None


class CloseBody(ActionBody):
    status: Literal["resolved", "closed"] = Field(
        default="closed", description="resolved asks the requester; closed ends it"
    )


class ApproveBody(ApiInput):
    note: str | None = Field(default=None, max_length=5000)
    satisfaction_rating: int | None = Field(default=None, ge=1, le=5)
    satisfaction_comment: str | None = Field(default=None, max_length=2000)


class RejectBody(ApiInput):
    reason: str = Field(min_length=1, max_length=5000)


class FinishWorkBody(ApiInput):
    resolution_notes: Text = Field(min_length=1)
    root_cause: Text | None = None
    minutes_worked: int | None = Field(default=None, ge=0, le=100_000)


class SetSlaBody(ApiInput):
    response_due_at: datetime | None = None
    resolution_due_at: datetime | None = None
    reason: str = Field(min_length=1, max_length=2000)


class CommentCreate(ApiInput):
    body: Text = Field(min_length=1)
    minutes_worked: int = Field(default=0, ge=0, le=10_000)


class CommentOut(ApiModel):
    id: uuid.UUID
    ticket_id: uuid.UUID
    author_id: uuid.UUID | None
    body: str
    is_internal: bool
    mention_ids: list[uuid.UUID]
    minutes_worked: int
    merged_from_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class AttachmentCreate(ApiInput):
    storage_key: str = Field(min_length=1, max_length=255)
    is_internal: bool = False


class AttachmentOut(ApiModel):
    id: uuid.UUID
    ticket_id: uuid.UUID
    uploaded_by_id: uuid.UUID | None
    file_name: str
    mime_type: str
    size_bytes: int
    sha256: str
    is_internal: bool
    created_at: datetime


class LinkCreate(ApiInput):
    blocker_id: uuid.UUID


class MergeBody(ApiInput):
    into_id: uuid.UUID
    note: str | None = Field(default=None, max_length=2000)


class HistoryEntry(ApiModel):
    id: uuid.UUID
    #: comment, internal_note, or an event kind (status_changed, assigned, ...)
    kind: str
    actor_id: uuid.UUID | None
    #: the actor's display name (first and last name, else email); null for the system
    actor_name: str | None = None
    at: datetime
    body: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


#: the value of an id filter that asks for "not set" (``assigneeId=none``, ``teamId=none``)
NoneFilter = Literal["none"]


class SearchFilters(ApiInput):
    status: list[TicketStatus] | None = Field(default=None, max_length=20)
    status_category: list[StatusCategory] | None = Field(default=None, max_length=4)
    priority: list[Priority] | None = Field(default=None, max_length=4)
    ticket_type: list[TicketType] | None = Field(default=None, max_length=5)
    #: ``"none"`` among them: no technician
    assignee_ids: list[uuid.UUID | NoneFilter] | None = Field(default=None, max_length=100)
    assigned_to_me: bool | None = None
    #: no technician yet, in a team's queue or not (``assigneeId=none``)
    unassigned: bool | None = None
    #: ``"none"`` among them: in no team's queue
    team_ids: list[uuid.UUID | NoneFilter] | None = Field(default=None, max_length=100)
    requester_ids: list[uuid.UUID] | None = Field(default=None, max_length=100)
    departments: list[uuid.UUID] | None = Field(default=None, max_length=100)
    site_ids: list[uuid.UUID] | None = Field(default=None, max_length=100)
    building_ids: list[uuid.UUID] | None = Field(default=None, max_length=100)
    room_ids: list[uuid.UUID] | None = Field(default=None, max_length=100)
    tags: list[Tag] | None = Field(default=None, max_length=20)
    category: str | None = Field(default=None, max_length=80)
    created_after: datetime | date | None = None
    created_before: datetime | date | None = None
    updated_after: datetime | date | None = None
    updated_before: datetime | date | None = None
    sla_breached: bool | None = None
    sla_due_within_minutes: int | None = Field(default=None, ge=1, le=60 * 24 * 30)


class SortKey(ApiInput):
    field: str = Field(max_length=40)
    order: Literal["asc", "desc"] = "asc"


class TicketSearch(ApiInput):
    query: str | None = Field(default=None, max_length=200)
    filters: SearchFilters = Field(default_factory=SearchFilters)
    sort: list[SortKey] = Field(default_factory=list, max_length=5)
    page: int = Field(default=1, ge=1, le=1_000_000)
    size: int = Field(default=25, ge=1, le=100)


TicketDetailOut.model_rebuild()


class CategoryOption(ApiModel):
    name: str = Field(min_length=1, max_length=80)
    subcategories: list[Annotated[str, Field(min_length=1, max_length=80)]] = Field(
        default_factory=list, max_length=50
    )


DEFAULT_CATEGORIES = [
    {
        "name": "Audio/Visual",
        "subcategories": ["Projector", "Interactive panel", "Document camera"],
    },
    {"name": "Devices", "subcategories": ["Chromebook", "Laptop", "Desktop", "Tablet"]},
    {"name": "Network", "subcategories": ["Wireless", "Switching", "Internet"]},
    {"name": "Printing", "subcategories": ["Printer", "Copier"]},
    {"name": "Accounts", "subcategories": ["New account", "Password"]},
    {"name": "Software", "subcategories": ["Install", "Licensing"]},
    {"name": "Telephony", "subcategories": ["Phone"]},
    {"name": "Facilities", "subcategories": ["HVAC", "Building", "Electrical", "Plumbing"]},
    {"name": "Security", "subcategories": ["Access control", "Cameras"]},
    {"name": "Transportation", "subcategories": ["Radio", "GPS"]},
]


class TicketSettings(ApiModel):
    """Per-organization ticket settings (stored in the organization's settings)."""

    waiting_reminder_days: int = Field(default=3, ge=1, le=60)
    waiting_auto_close_days: int = Field(default=7, ge=2, le=120)
    #: what an hour of a technician's time costs, for the ticket's cost roll-up
    labor_rate_cents_per_hour: int = Field(default=0, ge=0, le=10_000_000)
    #: suggested categories for forms and routing rules
    categories: list[CategoryOption] = Field(
        default_factory=lambda: [CategoryOption.model_validate(c) for c in DEFAULT_CATEGORIES],
        max_length=100,
    )

    @model_validator(mode="after")
    def _close_after_reminding(self) -> TicketSettings:
        if self.waiting_auto_close_days <= self.waiting_reminder_days:
            raise ValueError("waitingAutoCloseDays must be more than waitingReminderDays")
        return self


class TicketSettingsUpdate(ApiInput):
    organization_id: str | None = Field(default=None, max_length=64)
    waiting_reminder_days: int | None = Field(default=None, ge=1, le=60)
    waiting_auto_close_days: int | None = Field(default=None, ge=2, le=120)
    labor_rate_cents_per_hour: int | None = Field(default=None, ge=0, le=10_000_000)
    categories: list[CategoryOption] | None = Field(default=None, max_length=100)


class WaitingRunOut(ApiModel):
    reminded: int
    closed: int
