"""Wire models of parts, stock locations and movements.

Money goes in as the primary spec's decimal amount (``unitCost: 12.50``) and comes out
both as an amount and as exact integer cents. Quantities never go in on a part: stock
changes only through movements.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field

from server.core.schemas import ApiInput, ApiModel

#: A money amount with at most two decimals (cents), up to $1M a unit.
Amount = Annotated[Decimal, Field(ge=0, le=1_000_000, max_digits=10, decimal_places=2)]
Count = Annotated[int, Field(ge=0, le=1_000_000)]
Note = Annotated[str, Field(max_length=2000)]
ModelName = Annotated[str, Field(min_length=1, max_length=120)]
PartStatusValue = Literal["active", "low_stock", "backordered", "discontinued"]
LocationKindValue = Literal["warehouse", "closet", "van", "bag"]
MovementKindValue = Literal["receive", "consume", "return", "transfer_out", "transfer_in", "adjust"]
#: what a client asks for on POST /api/inventory/movements (a transfer makes two legs)
MovementRequestKind = Literal["receive", "consume", "return", "transfer", "adjust"]


def cents(amount: Decimal | None) -> int | None:
    """Dollars (two decimals at most, checked by the schema) to integer cents."""
    return None if amount is None else int((amount * 100).to_integral_value())


def amount(value: int | None) -> float | None:
    return None if value is None else value / 100


# ----------------------------------------------------------------------------- parts


class PartOut(ApiModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    part_number: str | None
    manufacturer: str | None
    category: str | None
    description: str | None
    unit_cost: float | None = Field(description="Catalogue cost of one unit")
    unit_cost_cents: int | None
    compatible_models: list[str]
    reorder_point: int
    reorder_quantity: int
    status: PartStatusValue
    department_id: uuid.UUID | None
    vendor_id: uuid.UUID | None
    owner_user_id: uuid.UUID | None
    current_stock: int = Field(description="Total on hand over every location (from the ledger)")
    low_stock: bool = Field(description="On hand is at or below the reorder point")
    location_quantity: int | None = Field(
        default=None, description="On hand at the location named by the locationId filter"
    )
    created_at: datetime
    updated_at: datetime


class PartCreate(ApiInput):
    """The primary spec's ``InventoryPartCreate``, plus catalogue fields.

    ``currentStock``/``locationQuantity`` with ``locationName`` (or ``locationId``)
    record the opening stock as a receive movement; they are not a number stored
    on the part.
    """

    organization_id: str | None = Field(default=None, max_length=64)
    department_id: uuid.UUID | None = None
    vendor_id: uuid.UUID | None = None
    name: str = Field(min_length=1, max_length=200)
    part_number: str | None = Field(default=None, max_length=100)
    manufacturer: str | None = Field(default=None, max_length=120)
    category: str | None = Field(default=None, max_length=80)
    description: str | None = Field(default=None, max_length=5000)
    unit_cost: Amount | None = None
    compatible_models: list[ModelName] = Field(default_factory=list, max_length=100)
    reorder_point: Count = 0
    reorder_quantity: Count = 0
    owner_user_id: uuid.UUID | None = None
    status: PartStatusValue | None = Field(
        default=None,
        description="backordered or discontinued; active and low_stock follow the stock",
    )
    current_stock: Count | None = Field(
        default=None, description="Opening stock (recorded as a receive movement)"
    )
    location_name: str | None = Field(
        default=None,
        max_length=160,
        description="Where the opening stock is; a warehouse of this name is made if missing",
    )
    location_id: uuid.UUID | None = None
    location_quantity: Count | None = None


class PartUpdate(ApiInput):
    """Catalogue fields only: quantities change through movements, never here."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    part_number: str | None = Field(default=None, max_length=100)
    manufacturer: str | None = Field(default=None, max_length=120)
    category: str | None = Field(default=None, max_length=80)
    description: str | None = Field(default=None, max_length=5000)
    unit_cost: Amount | None = None
    compatible_models: list[ModelName] | None = Field(default=None, max_length=100)
    reorder_point: Count | None = None
    reorder_quantity: Count | None = None
    status: PartStatusValue | None = None
    department_id: uuid.UUID | None = None
    vendor_id: uuid.UUID | None = None
    owner_user_id: uuid.UUID | None = None


class StockLevelOut(ApiModel):
    part_id: uuid.UUID
    part_name: str
    part_number: str | None
    location_id: uuid.UUID
    location_name: str
    location_kind: LocationKindValue
    quantity: int
    updated_at: datetime


# ------------------------------------------------------------------------- locations


class LocationOut(ApiModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    kind: LocationKindValue
    site_id: uuid.UUID | None
    building_id: uuid.UUID | None
    room_id: uuid.UUID | None
    holder_user_id: uuid.UUID | None
    active: bool
    notes: str | None
    created_at: datetime
    updated_at: datetime


class LocationCreate(ApiInput):
    organization_id: str | None = Field(default=None, max_length=64)
    name: str = Field(min_length=1, max_length=160)
    kind: LocationKindValue
    site_id: uuid.UUID | None = None
    building_id: uuid.UUID | None = None
    room_id: uuid.UUID | None = None
    holder_user_id: uuid.UUID | None = Field(
        default=None, description="The technician whose van or bag it is"
    )
    active: bool = True
    notes: str | None = Field(default=None, max_length=2000)


class LocationUpdate(ApiInput):
    name: str | None = Field(default=None, min_length=1, max_length=160)
    kind: LocationKindValue | None = None
    site_id: uuid.UUID | None = None
    building_id: uuid.UUID | None = None
    room_id: uuid.UUID | None = None
    holder_user_id: uuid.UUID | None = None
    active: bool | None = None
    notes: str | None = Field(default=None, max_length=2000)


# ------------------------------------------------------------------------- movements


class MovementOut(ApiModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    part_id: uuid.UUID
    part_name: str
    part_number: str | None
    location_id: uuid.UUID
    location_name: str
    kind: MovementKindValue
    quantity: int = Field(description="Signed: what the movement added to the location")
    balance_after: int = Field(description="The location's on hand right after it")
    reason: str | None
    actor_id: uuid.UUID | None
    occurred_at: datetime
    created_at: datetime
    source_type: str
    source_id: uuid.UUID | None
    ticket_id: uuid.UUID | None
    asset_id: uuid.UUID | None
    transfer_id: uuid.UUID | None
    related_movement_id: uuid.UUID | None
    unit_cost_cents: int | None
    flagged_negative: bool
    review_status: Literal["open", "resolved"] | None
    reviewed_by_id: uuid.UUID | None
    reviewed_at: datetime | None
    review_note: str | None


class MovementCreate(ApiInput):
    """One stock movement. ``quantity`` is positive, except for ``adjust`` where it is
    the signed correction; a ``transfer`` moves from ``locationId`` to ``toLocationId``."""

    kind: MovementRequestKind
    part_id: uuid.UUID
    location_id: uuid.UUID = Field(description="Where the stock is (the source of a transfer)")
    to_location_id: uuid.UUID | None = Field(default=None, description="A transfer's destination")
    quantity: int = Field(ge=-1_000_000, le=1_000_000)
    reason: Note | None = Field(default=None, description="Required for adjust")
    unit_cost: Amount | None = Field(default=None, description="receive: the price paid a unit")
    asset_id: uuid.UUID | None = Field(default=None, description="consume: the asset repaired")
    occurred_at: datetime | None = Field(
        default=None, description="When it happened, if earlier (offline work)"
    )


class ReviewResolve(ApiInput):
    note: Note | None = None


# ----------------------------------------------------------------------- on tickets


class TicketPartCreate(ApiInput):
    part_id: uuid.UUID
    location_id: uuid.UUID = Field(description="The shelf, closet, van or bag it came from")
    quantity: int = Field(ge=1, le=1_000_000)
    asset_id: uuid.UUID | None = Field(default=None, description="The device it went into")
    note: Note | None = None


class TicketPartReturn(ApiInput):
    quantity: int = Field(ge=1, le=1_000_000)
    location_id: uuid.UUID | None = Field(
        default=None, description="Where it goes back; default: where it came from"
    )
    note: Note | None = None


class TicketPartOut(ApiModel):
    id: uuid.UUID = Field(description="The consumption movement")
    ticket_id: uuid.UUID
    part_id: uuid.UUID
    part_name: str
    part_number: str | None
    location_id: uuid.UUID
    location_name: str
    asset_id: uuid.UUID | None
    quantity: int = Field(description="Units used")
    returned_quantity: int = Field(description="Units given back since")
    net_quantity: int
    unit_cost_cents: int | None
    cost_cents: int = Field(description="net quantity x unit cost")
    note: str | None
    actor_id: uuid.UUID | None
    occurred_at: datetime
    flagged_negative: bool


class TicketPartResult(ApiModel):
    part: TicketPartOut
    movement: MovementOut
    ticket_parts_cost_cents: int
