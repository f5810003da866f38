"""Vendors and the purchase orders placed with them.

Money is stored in integer cents. A purchase order's totals are computed from its
lines by ``server.inventory.purchasing`` and never taken from a client. Received
quantities go into stock through the inventory ledger; ``quantity_received`` on a
line is the running total of what was received against it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, IdMixin, ReplicatedMixin, TenantMixin, TimestampMixin, live_unique
from server.organizations.models import enum_column


class VendorStatus(StrEnum):
    ACTIVE = "active"
    PREFERRED = "preferred"
    REVIEW = "review"  # under review: still usable, flagged to purchasers
    INACTIVE = "inactive"  # no new orders


class PurchaseOrderStatus(StrEnum):
    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    SENT = "sent"
    PARTIAL = "partial"
    RECEIVED = "received"
    CANCELLED = "cancelled"


def _fk(table: str, *, nullable: bool = True, ondelete: str = "SET NULL") -> Any:
    return mapped_column(ForeignKey(f"{table}.id", ondelete=ondelete), nullable=nullable)


class Vendor(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    """A company the district buys from or sends devices to for repair."""

    __tablename__ = "vendors"
    __extra_table_args__ = (
        live_unique("uq_vendors_org_name", "organization_id", "name"),
        Index("ix_vendors_org_status", "organization_id", "status"),
    )

    name: Mapped[str] = mapped_column(String(160))
    vendor_type: Mapped[str] = mapped_column(String(40), default="supplier")
    status: Mapped[VendorStatus] = mapped_column(
        enum_column(VendorStatus, 16), default=VendorStatus.ACTIVE
    )
    contact_name: Mapped[str | None] = mapped_column(String(160))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    website: Mapped[str | None] = mapped_column(String(500))
    address: Mapped[str | None] = mapped_column(Text)
    account_number: Mapped[str | None] = mapped_column(String(80))
    payment_terms: Mapped[str | None] = mapped_column(String(80))
    notes: Mapped[str | None] = mapped_column(Text)
    w9_on_file: Mapped[bool] = mapped_column(Boolean, default=False)
    insurance_on_file: Mapped[bool] = mapped_column(Boolean, default=False)
    #: 1 (poor) .. 5 (excellent)
    performance_rating: Mapped[int | None] = mapped_column(Integer)


class VendorDepartment(TenantMixin, Base):
    """A department a vendor serves. A vendor without any is visible to all staff."""

    __tablename__ = "vendor_departments"
    __table_args__ = (Index("ix_vendor_departments_department", "department_id", "vendor_id"),)

    vendor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("vendors.id", ondelete="CASCADE"), primary_key=True
    )
    department_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("departments.id", ondelete="CASCADE"), primary_key=True
    )


class PurchaseOrderSequence(TenantMixin, Base):
    """The last purchase order number handed out per organization (PO-000042)."""

    __tablename__ = "purchase_order_sequences"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    last_value: Mapped[int] = mapped_column(BigInteger, default=0)


class PurchaseOrder(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    __tablename__ = "purchase_orders"
    __extra_table_args__ = (
        live_unique("uq_purchase_orders_org_number", "organization_id", "po_number"),
        Index("ix_purchase_orders_org_created", "organization_id", "created_at", "id"),
        Index("ix_purchase_orders_org_status", "organization_id", "status", "created_at"),
        Index("ix_purchase_orders_vendor", "vendor_id", "created_at"),
        Index("ix_purchase_orders_department", "department_id", "created_at"),
    )

    po_number: Mapped[str] = mapped_column(String(40))
    status: Mapped[PurchaseOrderStatus] = mapped_column(
        enum_column(PurchaseOrderStatus, 24), default=PurchaseOrderStatus.DRAFT
    )
    vendor_id: Mapped[uuid.UUID | None] = _fk("vendors", ondelete="RESTRICT")
    department_id: Mapped[uuid.UUID | None] = _fk("departments")
    ticket_id: Mapped[uuid.UUID | None] = _fk("tickets")
    #: where received goods go by default; a stock location of server.inventory
    ship_to_location_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("stock_locations.id", ondelete="SET NULL")
    )
    description: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    funding_source: Mapped[str | None] = mapped_column(String(120))

    subtotal_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    tax_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    shipping_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    total_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    line_count: Mapped[int] = mapped_column(Integer, default=0)

    requested_by_id: Mapped[uuid.UUID | None] = _fk("users")
    submitted_at: Mapped[datetime | None]
    approved_by_id: Mapped[uuid.UUID | None] = _fk("users")
    approved_at: Mapped[datetime | None]
    rejected_at: Mapped[datetime | None]
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    received_at: Mapped[datetime | None]
    cancelled_by_id: Mapped[uuid.UUID | None] = _fk("users")
    cancelled_at: Mapped[datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(Text)


class PurchaseOrderLine(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    """One line: a catalogue part (received into stock) or a free description."""

    __tablename__ = "purchase_order_lines"
    __extra_table_args__ = (
        Index("ix_purchase_order_lines_order", "purchase_order_id", "position"),
        Index("ix_purchase_order_lines_part", "part_id"),
    )

    purchase_order_id: Mapped[uuid.UUID] = _fk(
        "purchase_orders", nullable=False, ondelete="CASCADE"
    )
    position: Mapped[int] = mapped_column(Integer, default=0)
    part_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("parts.id", ondelete="SET NULL"))
    description: Mapped[str] = mapped_column(String(500))
    part_number: Mapped[str | None] = mapped_column(String(100))
    quantity_ordered: Mapped[int] = mapped_column(Integer)
    quantity_received: Mapped[int] = mapped_column(Integer, default=0)
    unit_cost_cents: Mapped[int] = mapped_column(BigInteger)
    line_total_cents: Mapped[int] = mapped_column(BigInteger)
