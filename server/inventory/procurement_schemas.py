"""Wire models of vendors and purchase orders (the primary spec's VendorCreate and
PurchaseOrderCreate, with the fields a district needs on top).

Money goes in as the spec's decimal amounts (``unitCost: 12.50``) and comes out both
as integer cents (exact, for arithmetic) and as an amount (for display).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import EmailStr, Field

from server.core.schemas import ApiInput, ApiModel
from server.inventory.vendor_models import PurchaseOrderStatus, VendorStatus

#: A money amount in dollars with at most two decimals (cents), up to $10M.
Amount = Annotated[Decimal, Field(ge=0, le=10_000_000, max_digits=12, decimal_places=2)]
Text500 = Annotated[str, Field(max_length=500)]
Notes = Annotated[str, Field(max_length=5000)]
Website = Annotated[str, Field(max_length=500, pattern=r"^https?://[^\s]+$")]
DepartmentIds = Annotated[
    list[uuid.UUID],
    Field(max_length=50, description="Departments the vendor serves; empty: every department"),
]


def cents(amount: Decimal | None) -> int:
    """Dollars (two decimals at most, checked by the schema) to integer cents."""
    return 0 if amount is None else int((amount * 100).to_integral_value())


# --------------------------------------------------------------------------- vendors


class VendorOut(ApiModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    vendor_type: str = Field(serialization_alias="type")
    status: VendorStatus
    contact_name: str | None
    email: str | None
    phone: str | None
    website: str | None
    address: str | None
    account_number: str | None
    payment_terms: str | None
    notes: str | None
    w9_on_file: bool
    insurance_on_file: bool
    performance_rating: int | None
    department_ids: list[uuid.UUID]
    #: what the vendor supplies (catalogue parts, assets) and the orders placed with it
    part_count: int
    asset_count: int
    purchase_order_count: int
    open_purchase_order_count: int
    created_at: datetime
    updated_at: datetime


class VendorCreate(ApiInput):
    organization_id: str | None = Field(default=None, max_length=64)
    name: str = Field(min_length=1, max_length=160)
    vendor_type: str = Field(
        default="supplier",
        min_length=1,
        max_length=40,
        alias="type",
        description="reseller, manufacturer, repair_depot, supplier, contractor, service...",
    )
    status: VendorStatus = VendorStatus.ACTIVE
    contact_name: str | None = Field(default=None, max_length=160)
    email: EmailStr | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    website: Website | None = None
    address: Text500 | None = None
    account_number: str | None = Field(default=None, max_length=80)
    payment_terms: str | None = Field(default=None, max_length=80, examples=["Net 30"])
    notes: Notes | None = None
    w9_on_file: bool = False
    insurance_on_file: bool = False
    performance_rating: int | None = Field(default=None, ge=1, le=5)
    department_ids: DepartmentIds = Field(default_factory=list)


class VendorUpdate(ApiInput):
    name: str | None = Field(default=None, min_length=1, max_length=160)
    vendor_type: str | None = Field(default=None, min_length=1, max_length=40, alias="type")
    status: VendorStatus | None = None
    contact_name: str | None = Field(default=None, max_length=160)
    email: EmailStr | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    website: Website | None = None
    address: Text500 | None = None
    account_number: str | None = Field(default=None, max_length=80)
    payment_terms: str | None = Field(default=None, max_length=80)
    notes: Notes | None = None
    w9_on_file: bool | None = None
    insurance_on_file: bool | None = None
    performance_rating: int | None = Field(default=None, ge=1, le=5)
    department_ids: DepartmentIds | None = None


class VendorPartOut(ApiModel):
    """A catalogue part the vendor supplies."""

    id: uuid.UUID
    name: str
    part_number: str | None
    category: str | None
    unit_cost_cents: int | None
    reorder_point: int
    reorder_quantity: int
    status: str
    department_id: uuid.UUID | None
    on_hand: int


# --------------------------------------------------------------------------- purchase orders

Quantity = Annotated[int, Field(ge=1, le=1_000_000)]
#: lines on one purchase order
MAX_LINES = 200


class LineItemIn(ApiInput):
    part_id: uuid.UUID | None = Field(
        default=None, description="A catalogue part: received quantities go into its stock"
    )
    description: str = Field(min_length=1, max_length=500)
    part_number: str | None = Field(default=None, max_length=100)
    quantity: Quantity
    unit_cost: Amount = Field(description="Price of one unit, in the organization's currency")


class LineItemUpdate(LineItemIn):
    id: uuid.UUID | None = Field(
        default=None, description="An existing line to keep and change; leave out for a new line"
    )


class PurchaseOrderCreate(ApiInput):
    organization_id: str | None = Field(default=None, max_length=64)
    po_number: str | None = Field(
        default=None,
        min_length=1,
        max_length=40,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$",
        description="Leave out to get the next number (PO-000001)",
    )
    vendor_id: uuid.UUID | None = None
    department_id: uuid.UUID | None = Field(
        default=None, description="Leave out to use your own department"
    )
    ticket_id: uuid.UUID | None = None
    ship_to_location_id: uuid.UUID | None = Field(
        default=None, description="The stock location received goods go to by default"
    )
    status: Literal["draft", "pending_approval"] = Field(
        default="draft", description="pending_approval creates and submits in one step"
    )
    total_amount: Amount | None = Field(
        default=None,
        description="Optional check: refused when it differs from the total computed "
        "from the lines, tax and shipping",
    )
    tax: Amount = Decimal(0)
    shipping: Amount = Decimal(0)
    funding_source: str | None = Field(default=None, max_length=120)
    description: str | None = Field(default=None, max_length=2000)
    notes: Notes | None = None
    line_items: list[LineItemIn] = Field(max_length=MAX_LINES)


class PurchaseOrderUpdate(ApiInput):
    """Any field of a draft; once submitted only the notes change."""

    po_number: str | None = Field(
        default=None, min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$"
    )
    vendor_id: uuid.UUID | None = None
    department_id: uuid.UUID | None = None
    ticket_id: uuid.UUID | None = None
    ship_to_location_id: uuid.UUID | None = None
    tax: Amount | None = None
    shipping: Amount | None = None
    funding_source: str | None = Field(default=None, max_length=120)
    description: str | None = Field(default=None, max_length=2000)
    notes: Notes | None = None
    line_items: list[LineItemUpdate] | None = Field(
        default=None,
        max_length=MAX_LINES,
        description="The complete new list of lines: lines with an id are kept and "
        "changed, lines without one are added, lines left out are removed",
    )


class ActionNote(ApiInput):
    note: str | None = Field(default=None, max_length=2000)


class ActionReason(ApiInput):
    reason: str = Field(min_length=1, max_length=2000)


class ReceiveLine(ApiInput):
    line_id: uuid.UUID
    quantity: Quantity


class ReceiveBody(ApiInput):
    location_id: uuid.UUID | None = Field(
        default=None, description="Stock location to receive into; default: the ship-to location"
    )
    lines: list[ReceiveLine] = Field(min_length=1, max_length=200)
    note: str | None = Field(default=None, max_length=2000)


class FromLowStockBody(ApiInput):
    department_id: uuid.UUID | None = Field(
        default=None, description="Only parts of this department (and parts of none)"
    )
    part_ids: list[uuid.UUID] | None = Field(
        default=None, max_length=500, description="Only these parts"
    )
    ship_to_location_id: uuid.UUID | None = None


class LineItemOut(ApiModel):
    id: uuid.UUID
    position: int
    part_id: uuid.UUID | None
    description: str
    part_number: str | None
    quantity_ordered: int
    quantity_received: int
    quantity_outstanding: int
    unit_cost_cents: int
    unit_cost: float
    line_total_cents: int


class PurchaseOrderOut(ApiModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    po_number: str
    status: PurchaseOrderStatus
    vendor_id: uuid.UUID | None
    vendor_name: str | None
    department_id: uuid.UUID | None
    ticket_id: uuid.UUID | None
    ship_to_location_id: uuid.UUID | None
    description: str | None
    notes: str | None
    funding_source: str | None
    subtotal_cents: int
    tax_cents: int
    shipping_cents: int
    total_cents: int
    total_amount: float
    line_count: int
    requested_by_id: uuid.UUID | None
    submitted_at: datetime | None
    approved_by_id: uuid.UUID | None
    approved_at: datetime | None
    rejected_at: datetime | None
    rejection_reason: str | None
    sent_at: datetime | None
    received_at: datetime | None
    cancelled_by_id: uuid.UUID | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    #: what the caller may do next: submit, approve, reject, send, receive, cancel, edit
    available_actions: list[str]
    created_at: datetime
    updated_at: datetime


class PurchaseOrderDetailOut(PurchaseOrderOut):
    line_items: list[LineItemOut]


class SkippedPartOut(ApiModel):
    part_id: uuid.UUID
    name: str
    reason: Literal["no_vendor", "already_on_order", "vendor_inactive"]


class FromLowStockOut(ApiModel):
    created: list[PurchaseOrderDetailOut]
    skipped: list[SkippedPartOut]
