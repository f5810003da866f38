"""Assets and what hangs off them.

Every table is a replicated tenant table (a technician's replica carries assets, the
people they are assigned to and their history). History rows (``AssetEvent``) and
audit scans are append-only. Tags and serial numbers are stored upper-cased and
trimmed, so an exact lookup is one probe of a unique index.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, IdMixin, ReplicatedMixin, TimestampMixin, live_unique, utcnow


def _fk(table: str, *, nullable: bool = True, ondelete: str = "SET NULL") -> Any:
    return mapped_column(ForeignKey(f"{table}.id", ondelete=ondelete), nullable=nullable)


def _live_unique_present(name: str, *columns: str) -> Index:
    """Unique over live rows where the (optional) last column has a value."""
    where = text(f"{columns[-1]} IS NOT NULL AND deleted_at IS NULL")
    return Index(name, *columns, unique=True, sqlite_where=where, postgresql_where=where)


class AssetType(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    """A kind of device (Chromebook, projector, ...): a per-organization list."""

    __tablename__ = "asset_types"
    __extra_table_args__ = (live_unique("uq_asset_types_org_name", "organization_id", "name"),)

    name: Mapped[str] = mapped_column(String(80))
    description: Mapped[str | None] = mapped_column(Text)
    #: hidden from pickers, kept on the assets that have it
    is_active: Mapped[bool] = mapped_column(default=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class AssetStatusLabel(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    """A district-named status (``Broken``) of one of the four status types."""

    __tablename__ = "asset_status_labels"
    __extra_table_args__ = (
        live_unique("uq_asset_status_labels_org_name", "organization_id", "name"),
    )

    name: Mapped[str] = mapped_column(String(80))
    #: deployable, in_repair, undeployable, archived (common value set in schemas)
    status_type: Mapped[str] = mapped_column(String(16))
    #: the built-in role of a default label (in_service, missing, stolen, ...), so
    #: renaming "Missing" to "Lost" keeps room audits working; None for added labels
    key: Mapped[str | None] = mapped_column(String(32))
    requires_police_report: Mapped[bool] = mapped_column(default=False)
    #: the label new assets get when none is given (one per organization)
    is_default: Mapped[bool] = mapped_column(default=False)
    color: Mapped[str | None] = mapped_column(String(7))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class Person(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    """Someone a device can be assigned to: a staff member or a student.

    Only the minimum that identifies them: name, kind, the district's id for them
    (student number), email, site, grade. A staff member who signs in may be linked
    to their user account (``user_id``), so their own devices show up for them.
    """

    __tablename__ = "people"
    __extra_table_args__ = (
        _live_unique_present("uq_people_org_external_id", "organization_id", "external_id"),
        Index("ix_people_org_name", "organization_id", "name"),
        Index("ix_people_user", "user_id"),
    )

    kind: Mapped[str] = mapped_column(String(16))  # staff | student
    name: Mapped[str] = mapped_column(String(200))
    external_id: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(320))
    site_id: Mapped[uuid.UUID | None] = _fk("sites")
    grade: Mapped[str | None] = mapped_column(String(16))
    user_id: Mapped[uuid.UUID | None] = _fk("users")
    is_active: Mapped[bool] = mapped_column(default=True)


class Asset(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    __tablename__ = "assets"
    __extra_table_args__ = (
        live_unique("uq_assets_org_tag", "organization_id", "asset_tag"),
        _live_unique_present("uq_assets_org_serial", "organization_id", "serial_number"),
        Index("ix_assets_room", "room_id"),
        Index("ix_assets_person", "assigned_person_id"),
        Index("ix_assets_org_type", "organization_id", "asset_type_id"),
        Index("ix_assets_org_status", "organization_id", "status_label_id"),
        Index("ix_assets_org_warranty", "organization_id", "warranty_end"),
        Index("ix_assets_org_site", "organization_id", "site_id"),
        # sync: a site's assets changed above a replica's cursor
        Index("ix_assets_sync_site", "site_id", "change_position"),
        # covers the list's count of live rows (tenant + tombstone criteria)
        Index("ix_assets_org_live", "organization_id", "deleted_at"),
    )

    asset_tag: Mapped[str] = mapped_column(String(64))
    serial_number: Mapped[str | None] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    asset_type_id: Mapped[uuid.UUID] = _fk("asset_types", nullable=False, ondelete="RESTRICT")
    manufacturer: Mapped[str | None] = mapped_column(String(100))
    model: Mapped[str | None] = mapped_column(String(100))

    site_id: Mapped[uuid.UUID | None] = _fk("sites")
    building_id: Mapped[uuid.UUID | None] = _fk("buildings")
    room_id: Mapped[uuid.UUID | None] = _fk("rooms")
    department_id: Mapped[uuid.UUID | None] = _fk("departments")

    assigned_person_id: Mapped[uuid.UUID | None] = _fk("people")
    checked_out_at: Mapped[datetime | None]
    due_back: Mapped[date | None] = mapped_column(Date)

    status_label_id: Mapped[uuid.UUID] = _fk(
        "asset_status_labels", nullable=False, ondelete="RESTRICT"
    )
    police_report_number: Mapped[str | None] = mapped_column(String(64))

    purchase_date: Mapped[date | None] = mapped_column(Date)
    purchase_cost_cents: Mapped[int | None] = mapped_column(BigInteger)
    funding_source: Mapped[str | None] = mapped_column(String(120))
    warranty_end: Mapped[date | None] = mapped_column(Date)
    #: the vendor it came from (vendors belong to server.inventory)
    vendor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("vendors.id", ondelete="SET NULL"), index=True
    )
    notes: Mapped[str | None] = mapped_column(Text)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: when a room audit last confirmed it was seen
    last_audited_at: Mapped[datetime | None]


class AssetEvent(IdMixin, ReplicatedMixin, Base):
    """One entry of an asset's history (append-only): created, updated, moved,
    checked_out, checked_in, status_changed, audited, part_used, part_returned,
    ticket_linked, ticket_unlinked. ``data`` is camelCase JSON as the API shows it."""

    __tablename__ = "asset_events"
    __extra_table_args__ = (Index("ix_asset_events_asset", "asset_id", "created_at"),)

    asset_id: Mapped[uuid.UUID] = _fk("assets", nullable=False, ondelete="CASCADE")
    actor_id: Mapped[uuid.UUID | None] = _fk("users")
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    ticket_id: Mapped[uuid.UUID | None] = _fk("tickets")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TicketAsset(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    """A ticket is about an asset (a broken Chromebook, a projector that will not
    turn on). Unlinking leaves a tombstone."""

    __tablename__ = "ticket_assets"
    __change_parent__ = "ticket_id"
    __extra_table_args__ = (
        live_unique("uq_ticket_assets_pair", "ticket_id", "asset_id"),
        Index("ix_ticket_assets_asset", "asset_id"),
    )

    ticket_id: Mapped[uuid.UUID] = _fk("tickets", nullable=False, ondelete="CASCADE")
    asset_id: Mapped[uuid.UUID] = _fk("assets", nullable=False, ondelete="CASCADE")
    created_by_id: Mapped[uuid.UUID | None] = _fk("users")


class RoomAudit(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    """What a technician found in a room: the tags scanned, by whom and when, and the
    answer (present, missing, misplaced, unknown). Confirming it (once) applies moves
    and status changes as ordinary asset changes."""

    __tablename__ = "room_audits"
    __extra_table_args__ = (Index("ix_room_audits_room", "room_id", "created_at"),)

    room_id: Mapped[uuid.UUID] = _fk("rooms", nullable=False, ondelete="CASCADE")
    auditor_id: Mapped[uuid.UUID | None] = _fk("users")
    notes: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | confirmed
    present_count: Mapped[int] = mapped_column(Integer, default=0)
    missing_count: Mapped[int] = mapped_column(Integer, default=0)
    misplaced_count: Mapped[int] = mapped_column(Integer, default=0)
    unknown_count: Mapped[int] = mapped_column(Integer, default=0)
    checked_out_count: Mapped[int] = mapped_column(Integer, default=0)
    confirmed_at: Mapped[datetime | None]
    confirmed_by_id: Mapped[uuid.UUID | None] = _fk("users")
    #: what confirming did: moved, markedMissing, restored (lists of asset ids)
    applied: Mapped[dict[str, Any]] = mapped_column(default=dict)


class RoomAuditScan(IdMixin, ReplicatedMixin, Base):
    """One line of an audit's answer: a scanned tag (present, misplaced, unknown), or
    an asset expected in the room that was not scanned (missing, checked_out)."""

    __tablename__ = "room_audit_scans"
    __extra_table_args__ = (Index("ix_room_audit_scans_audit", "audit_id", "outcome"),)

    audit_id: Mapped[uuid.UUID] = _fk("room_audits", nullable=False, ondelete="CASCADE")
    tag: Mapped[str] = mapped_column(String(64))
    scanned: Mapped[bool] = mapped_column(default=True)
    #: present | missing | misplaced | unknown | checked_out
    outcome: Mapped[str] = mapped_column(String(16))
    asset_id: Mapped[uuid.UUID | None] = _fk("assets")
    #: for a misplaced asset, where it was recorded when scanned (ids and names)
    recorded_place: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
