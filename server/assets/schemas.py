from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from server.core.schemas import ApiInput, ApiModel

StatusType = Literal["deployable", "in_repair", "undeployable", "archived"]
STATUS_TYPES: tuple[str, ...] = ("deployable", "in_repair", "undeployable", "archived")
PersonKind = Literal["staff", "student"]
Condition = Literal["good", "fair", "damaged", "needs_repair"]

Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Color = Annotated[str, StringConstraints(pattern=r"^#[0-9A-Fa-f]{6}$")]
CustomKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
CustomValue = (
    Annotated[str, StringConstraints(max_length=1000)]
    | Annotated[int, Field(ge=-(10**15), le=10**15)]
    | Annotated[float, Field(ge=-1e15, le=1e15)]
    | bool
    | None
)
CustomFields = Annotated[
    dict[CustomKey, CustomValue],
    Field(max_length=50, description="Up to 50 district-defined fields: text, number, yes/no"),
]
Cents = Annotated[int, Field(ge=0, le=10**11, description="In cents (US$ 1,234.50 = 123450)")]
Text = Annotated[str, StringConstraints(max_length=10_000)]


# ------------------------------------------------------------------- types and labels


class AssetTypeOut(ApiModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    description: str | None
    is_active: bool
    sort_order: int
    created_at: datetime
    updated_at: datetime


class AssetTypeCreate(ApiInput):
    organization_id: str | None = Field(default=None, max_length=64)
    name: str = Field(min_length=1, max_length=80)
    description: str | None = Field(default=None, max_length=1000)
    is_active: bool = True
    sort_order: int = Field(default=0, ge=0, le=10_000)


class AssetTypeUpdate(ApiInput):
    name: str | None = Field(default=None, min_length=1, max_length=80)
    description: str | None = Field(default=None, max_length=1000)
    is_active: bool | None = None
    sort_order: int | None = Field(default=None, ge=0, le=10_000)


class StatusLabelOut(ApiModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    status_type: str
    key: str | None
    requires_police_report: bool
    is_default: bool
    color: str | None
    sort_order: int
    created_at: datetime
    updated_at: datetime


class StatusLabelCreate(ApiInput):
    organization_id: str | None = Field(default=None, max_length=64)
    name: str = Field(min_length=1, max_length=80)
    status_type: StatusType
    requires_police_report: bool = False
    is_default: bool = Field(
        default=False, description="New assets get this label; only a deployable label"
    )
    color: Color | None = None
    sort_order: int = Field(default=0, ge=0, le=10_000)


class StatusLabelUpdate(ApiInput):
    name: str | None = Field(default=None, min_length=1, max_length=80)
    status_type: StatusType | None = None
    requires_police_report: bool | None = None
    is_default: bool | None = Field(default=None, description="Only true is accepted")
    color: Color | None = None
    sort_order: int | None = Field(default=None, ge=0, le=10_000)


# ------------------------------------------------------------------------- people


class PersonOut(ApiModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    kind: str
    name: str
    external_id: str | None
    email: str | None
    site_id: uuid.UUID | None
    grade: str | None
    user_id: uuid.UUID | None
    is_active: bool
    created_at: datetime
    updated_at: datetime


class PersonCreate(ApiInput):
    organization_id: str | None = Field(default=None, max_length=64)
    kind: PersonKind
    name: str = Field(min_length=1, max_length=200)
    external_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="Student or employee number"
    )
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    site_id: uuid.UUID | None = None
    grade: str | None = Field(default=None, max_length=16)
    user_id: uuid.UUID | None = Field(default=None, description="A staff member's account")
    is_active: bool = True


class PersonUpdate(ApiInput):
    kind: PersonKind | None = None
    name: str | None = Field(default=None, min_length=1, max_length=200)
    external_id: str | None = Field(default=None, min_length=1, max_length=64)
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    site_id: uuid.UUID | None = None
    grade: str | None = Field(default=None, max_length=16)
    user_id: uuid.UUID | None = None
    is_active: bool | None = None


# ------------------------------------------------------------------------- assets


class AssetOut(ApiModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    asset_tag: str
    serial_number: str | None
    name: str
    asset_type_id: uuid.UUID
    asset_type_name: str | None = None
    manufacturer: str | None
    model: str | None
    site_id: uuid.UUID | None
    site_name: str | None = None
    building_id: uuid.UUID | None
    building_name: str | None = None
    room_id: uuid.UUID | None
    room_number: str | None = None
    department_id: uuid.UUID | None
    assigned_person_id: uuid.UUID | None
    assigned_person_name: str | None = None
    checked_out_at: datetime | None
    due_back: date | None
    status_label_id: uuid.UUID
    status_name: str | None = None
    status_type: str | None = None
    police_report_number: str | None
    purchase_date: date | None
    purchase_cost_cents: int | None
    funding_source: str | None
    warranty_end: date | None
    vendor_id: uuid.UUID | None
    notes: str | None
    custom_fields: dict[str, Any]
    last_audited_at: datetime | None
    created_at: datetime
    updated_at: datetime


class AssetCreate(ApiInput):
    organization_id: str | None = Field(default=None, max_length=64)
    asset_tag: Tag = Field(description="Unique in the organization; stored upper-case")
    asset_type_id: uuid.UUID
    name: str | None = Field(
        default=None, min_length=1, max_length=200, description="Defaults to make and model"
    )
    serial_number: Tag | None = Field(default=None, description="Unique in the organization")
    manufacturer: str | None = Field(default=None, max_length=100)
    model: str | None = Field(default=None, max_length=100)
    site_id: uuid.UUID | None = None
    building_id: uuid.UUID | None = None
    room_id: uuid.UUID | None = Field(default=None, description="Sets the building and site too")
    department_id: uuid.UUID | None = None
    assigned_person_id: uuid.UUID | None = Field(
        default=None, description="Checks the new asset out to this person"
    )
    status_label_id: uuid.UUID | None = Field(
        default=None, description="Defaults to the organization's default label (In Service)"
    )
    police_report_number: str | None = Field(default=None, min_length=1, max_length=64)
    purchase_date: date | None = None
    purchase_cost_cents: Cents | None = None
    funding_source: str | None = Field(default=None, max_length=120)
    warranty_end: date | None = None
    vendor_id: uuid.UUID | None = None
    notes: Text | None = None
    custom_fields: CustomFields = Field(default_factory=dict)


class AssetUpdate(ApiInput):
    """Assignment changes through check-out and check-in, so it is not here."""

    asset_tag: Tag | None = None
    asset_type_id: uuid.UUID | None = None
    name: str | None = Field(default=None, min_length=1, max_length=200)
    serial_number: Tag | None = None
    manufacturer: str | None = Field(default=None, max_length=100)
    model: str | None = Field(default=None, max_length=100)
    site_id: uuid.UUID | None = None
    building_id: uuid.UUID | None = None
    room_id: uuid.UUID | None = Field(default=None, description="Sets the building and site too")
    department_id: uuid.UUID | None = None
    status_label_id: uuid.UUID | None = None
    police_report_number: str | None = Field(default=None, min_length=1, max_length=64)
    purchase_date: date | None = None
    purchase_cost_cents: Cents | None = None
    funding_source: str | None = Field(default=None, max_length=120)
    warranty_end: date | None = None
    vendor_id: uuid.UUID | None = None
    notes: Text | None = None
    custom_fields: CustomFields | None = Field(
        default=None, description="Replaces the whole map; null values remove a key"
    )
    note: str | None = Field(
        default=None, max_length=2000, description="Why (kept in the asset's history)"
    )


class CheckoutIn(ApiInput):
    person_id: uuid.UUID
    due_back: date | None = None
    note: str | None = Field(default=None, max_length=2000)


class CheckinIn(ApiInput):
    condition: Condition | None = None
    note: str | None = Field(default=None, max_length=2000)
    status_label_id: uuid.UUID | None = Field(
        default=None, description="e.g. Broken when it comes back damaged"
    )
    police_report_number: str | None = Field(default=None, min_length=1, max_length=64)
    room_id: uuid.UUID | None = Field(default=None, description="Where it is put back")


class AssetEventOut(ApiModel):
    id: uuid.UUID
    asset_id: uuid.UUID
    kind: str
    actor_id: uuid.UUID | None
    ticket_id: uuid.UUID | None
    data: dict[str, Any]
    created_at: datetime


class TicketLinkIn(ApiInput):
    ticket_id: uuid.UUID


class AssetTicketOut(ApiModel):
    id: uuid.UUID
    number: str
    title: str
    status: str
    status_category: str
    priority: str
    ticket_type: str
    requester_id: uuid.UUID
    assignee_id: uuid.UUID | None
    created_at: datetime
    linked_at: datetime


# ---------------------------------------------------------------------- rooms


class CountOut(ApiModel):
    id: uuid.UUID | None
    name: str
    count: int


class StatusTypeCount(ApiModel):
    status_type: str
    count: int


class RoomAssetSummary(ApiModel):
    room_id: uuid.UUID
    total: int
    by_type: list[CountOut]
    by_status: list[CountOut]
    #: all four status types, in order, zeros included
    by_status_type: list[StatusTypeCount]


# ---------------------------------------------------------------------- audits


class AuditIn(ApiInput):
    scanned_tags: list[Tag] = Field(
        min_length=0, max_length=5000, description="Tags read by the scanner, in any order"
    )
    notes: str | None = Field(default=None, max_length=5000)


class AuditConfirmIn(ApiInput):
    move_misplaced: bool = Field(default=True, description="Move misplaced assets to this room")
    mark_missing: bool = Field(default=True, description="Give missing assets the Missing label")
    missing_status_label_id: uuid.UUID | None = Field(
        default=None, description="Label for missing assets (default: the built-in Missing)"
    )
    restore_found: bool = Field(
        default=True, description="Found assets labelled Missing go back to the default label"
    )


class PlaceOut(ApiModel):
    room_id: uuid.UUID | None
    room_number: str | None
    building_id: uuid.UUID | None
    building_name: str | None
    site_id: uuid.UUID | None
    site_name: str | None


class AuditLineOut(ApiModel):
    tag: str
    asset_id: uuid.UUID | None
    asset_name: str | None
    asset_type_name: str | None
    status_name: str | None
    #: for a misplaced asset: the room it belongs to (as recorded when scanned)
    belongs_in: PlaceOut | None = None
    #: for a checked-out asset: who has it
    assigned_person_name: str | None = None


class RoomAuditOut(ApiModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    room_id: uuid.UUID
    auditor_id: uuid.UUID | None
    notes: str | None
    status: str
    created_at: datetime
    confirmed_at: datetime | None
    confirmed_by_id: uuid.UUID | None
    counts: dict[str, int]
    present: list[AuditLineOut]
    missing: list[AuditLineOut]
    misplaced: list[AuditLineOut]
    unknown: list[AuditLineOut]
    checked_out: list[AuditLineOut]
    applied: dict[str, Any]


class RoomAuditSummaryOut(ApiModel):
    id: uuid.UUID
    room_id: uuid.UUID
    auditor_id: uuid.UUID | None
    status: str
    created_at: datetime
    confirmed_at: datetime | None
    counts: dict[str, int]
