"""Parts, where they are kept, and stock as a ledger of movements.

Stock is never a number a client overwrites: every change is a ``StockMovement``
(append-only), and the on-hand figures — per location in ``StockLevel`` and per part
in ``Part.on_hand`` — are materialised from the ledger in the same transaction as each
movement, by atomic ``quantity = quantity + delta`` updates (``server.inventory.ledger``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, IdMixin, ReplicatedMixin, TimestampMixin, live_unique, utcnow


class PartStatus(StrEnum):
    ACTIVE = "active"
    LOW_STOCK = "low_stock"  # set by the ledger when on hand falls to the reorder point
    BACKORDERED = "backordered"  # set by people: ordered, not available
    DISCONTINUED = "discontinued"  # set by people: no longer stocked


class LocationKind(StrEnum):
    WAREHOUSE = "warehouse"
    CLOSET = "closet"  # a building's storage closet
    VAN = "van"  # a technician's vehicle
    BAG = "bag"  # what a technician carries


class MovementKind(StrEnum):
    RECEIVE = "receive"  # +, from a vendor or a purchase order
    CONSUME = "consume"  # -, used (on a ticket, on an asset)
    RETURN = "return"  # +, unused parts back on the shelf
    TRANSFER_OUT = "transfer_out"  # -, one leg of a transfer
    TRANSFER_IN = "transfer_in"  # +, the other leg (same transfer_id)
    ADJUST = "adjust"  # +/-, a count correction with a reason


class SourceType(StrEnum):
    TICKET = "ticket"
    PURCHASE_ORDER = "purchase_order"
    MANUAL = "manual"
    SYNC = "sync"  # recorded offline by the desktop app


class ReviewStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Part(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    """A catalogue entry. ``on_hand`` is the total over all locations, kept by the ledger."""

    __tablename__ = "parts"
    __extra_table_args__ = (
        live_unique("uq_parts_org_number", "organization_id", "part_number"),
        Index("ix_parts_org_name", "organization_id", "name"),
        Index("ix_parts_org_category", "organization_id", "category"),
        Index("ix_parts_department", "department_id"),
    )

    name: Mapped[str] = mapped_column(String(200))
    part_number: Mapped[str | None] = mapped_column(String(100))
    manufacturer: Mapped[str | None] = mapped_column(String(120))
    category: Mapped[str | None] = mapped_column(String(80))
    description: Mapped[str | None] = mapped_column(Text)
    #: catalogue price of one unit, in cents; movements snapshot it
    unit_cost_cents: Mapped[int | None] = mapped_column(BigInteger)
    #: device models this part fits ("Chromebook 3100", "Epson PowerLite 1781W")
    compatible_models: Mapped[list[str]] = mapped_column(default=list)
    reorder_point: Mapped[int] = mapped_column(Integer, default=0)
    reorder_quantity: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=PartStatus.ACTIVE.value)
    #: the department that owns the part (department isolation); None = district-wide
    department_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("departments.id", ondelete="SET NULL")
    )
    #: the vendor that supplies it (vendors table: server.inventory.vendors; no FK yet)
    vendor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("vendors.id", ondelete="SET NULL"), index=True
    )
    #: the inventory owner, told when the part falls to its reorder point
    owner_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    #: total on hand over all locations (materialised from the ledger; never written by clients)
    on_hand: Mapped[int] = mapped_column(BigInteger, default=0)


class StockLocation(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    """A place stock is kept: the district warehouse, a building closet, a van, a bag."""

    __tablename__ = "stock_locations"
    __extra_table_args__ = (
        live_unique("uq_stock_locations_org_name", "organization_id", "name"),
        Index("ix_stock_locations_holder", "holder_user_id"),
    )

    name: Mapped[str] = mapped_column(String(160))
    kind: Mapped[str] = mapped_column(String(16))
    site_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sites.id", ondelete="SET NULL"))
    building_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("buildings.id", ondelete="SET NULL")
    )
    room_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("rooms.id", ondelete="SET NULL"))
    #: the technician whose van or bag this is
    holder_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    notes: Mapped[str | None] = mapped_column(Text)


class StockLevel(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    """On hand of one part at one location: the sum of that pair's movements.

    Only the ledger writes it, with ``quantity = quantity + delta``. It may be negative:
    a part that was really used is recorded even when the shelf showed none.
    """

    __tablename__ = "stock_levels"
    __extra_table_args__ = (
        Index("uq_stock_levels_pair", "part_id", "location_id", unique=True),
        Index("ix_stock_levels_location", "location_id", "part_id"),
        # sync: stock at a replica's locations changed above its cursor
        Index("ix_stock_levels_sync_location", "location_id", "change_position"),
    )

    part_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("parts.id", ondelete="CASCADE"))
    location_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("stock_locations.id", ondelete="CASCADE")
    )
    quantity: Mapped[int] = mapped_column(BigInteger, default=0)


class StockMovement(IdMixin, ReplicatedMixin, Base):
    """One change of stock: the ledger. Rows are only ever inserted (the review fields
    of a flagged movement are the one thing that changes afterwards)."""

    __tablename__ = "stock_movements"
    __change_parent__ = "ticket_id"  # parts used on a ticket travel with it
    __extra_table_args__ = (
        Index("ix_stock_movements_part", "part_id", "occurred_at"),
        Index("ix_stock_movements_location", "location_id", "occurred_at"),
        Index("ix_stock_movements_org_occurred", "organization_id", "occurred_at"),
        Index("ix_stock_movements_ticket", "ticket_id"),
        Index("ix_stock_movements_asset", "asset_id"),
        Index("ix_stock_movements_source", "source_type", "source_id"),
        Index("ix_stock_movements_review", "organization_id", "review_status"),
        Index("ix_stock_movements_related", "related_movement_id"),
    )

    part_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("parts.id", ondelete="RESTRICT"))
    location_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("stock_locations.id", ondelete="RESTRICT")
    )
    kind: Mapped[str] = mapped_column(String(16))
    #: signed: what this movement added to (or took from) the location
    quantity: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: when the server recorded it (occurred_at may be earlier for offline work)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    source_type: Mapped[str] = mapped_column(String(24), default=SourceType.MANUAL.value)
    #: the ticket, purchase order (or other record) this movement came from
    source_id: Mapped[uuid.UUID | None] = mapped_column()
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL")
    )
    #: the asset the part went into (assets table: server.assets; no FK yet)
    asset_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("assets.id", ondelete="SET NULL"))
    #: pairs the two legs of a transfer
    transfer_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    #: a return names the consumption it gives back
    related_movement_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("stock_movements.id", ondelete="SET NULL")
    )
    #: cost of one unit at the time of the movement, in cents
    unit_cost_cents: Mapped[int | None] = mapped_column(BigInteger)
    #: the location's on hand right after this movement
    balance_after: Mapped[int] = mapped_column(BigInteger, default=0)
    #: the movement took the location below zero: recorded, and queued for review
    flagged_negative: Mapped[bool] = mapped_column(Boolean, default=False)
    review_status: Mapped[str | None] = mapped_column(String(16))
    reviewed_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    reviewed_at: Mapped[datetime | None]
    review_note: Mapped[str | None] = mapped_column(Text)
