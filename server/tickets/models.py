"""Tickets and everything on their timeline.

Counters (comments, notes, attachments, open blockers) and SLA deadlines live on
the ticket row, so a list page is one index range with no per-row subqueries.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import (
    Base,
    IdMixin,
    ReplicatedMixin,
    TenantMixin,
    TimestampMixin,
    live_index,
    live_unique,
    utcnow,
)


def _fk(table: str, *, nullable: bool = True, ondelete: str = "SET NULL") -> Any:
    return mapped_column(ForeignKey(f"{table}.id", ondelete=ondelete), nullable=nullable)


class Ticket(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    __tablename__ = "tickets"
    __extra_table_args__ = (
        live_unique("uq_tickets_org_number", "organization_id", "number"),
        # The list indexes cover live rows only and end in (created_at, id), the
        # default order with its tiebreak: a first page is an index range, filtered or
        # not, and its count reads the index alone.
        live_index("ix_tickets_org_created", "organization_id", "created_at", "id"),
        live_index("ix_tickets_org_updated", "organization_id", "updated_at", "id"),
        live_index("ix_tickets_org_status", "organization_id", "status", "created_at", "id"),
        live_index(
            "ix_tickets_org_category", "organization_id", "status_category", "created_at", "id"
        ),
        # a person's or a team's queue (open ones), and everything they ever had
        live_index("ix_tickets_assignee", "assignee_id", "status_category", "created_at", "id"),
        live_index("ix_tickets_assignee_created", "assignee_id", "created_at", "id"),
        live_index("ix_tickets_team", "team_id", "status_category", "created_at", "id"),
        live_index("ix_tickets_team_created", "team_id", "created_at", "id"),
        live_index("ix_tickets_requester", "requester_id", "created_at", "id"),
        # the desk's queues: waiting in a team for a technician, or in no team at all
        live_index(
            "ix_tickets_org_unassigned",
            "organization_id",
            "team_id",
            "created_at",
            "id",
            where="assignee_id IS NULL",
        ),
        Index("ix_tickets_org_resolution_due", "organization_id", "resolution_due_at"),
        # sync: a replica's tickets changed above its cursor, tombstones included
        # (docs/sync-protocol.md, guarantee 2)
        Index("ix_tickets_sync_assignee", "assignee_id", "change_position"),
        Index("ix_tickets_sync_team", "team_id", "change_position"),
        Index("ix_tickets_sync_requester", "requester_id", "change_position"),
        Index("ix_tickets_sync_creator", "created_by_id", "change_position"),
        Index("ix_tickets_room", "room_id"),
        Index("ix_tickets_parent", "parent_id"),
    )

    number: Mapped[str] = mapped_column(String(32))
    ticket_type: Mapped[str] = mapped_column(String(24))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")

    status: Mapped[str] = mapped_column(String(32))
    status_category: Mapped[str] = mapped_column(String(16))
    status_changed_at: Mapped[datetime]
    priority: Mapped[str] = mapped_column(String(16))
    impact: Mapped[str | None] = mapped_column(String(16))
    urgency: Mapped[str | None] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(80))
    subcategory: Mapped[str | None] = mapped_column(String(80))
    source: Mapped[str] = mapped_column(String(24), default="web")

    department_id: Mapped[uuid.UUID | None] = _fk("departments")
    site_id: Mapped[uuid.UUID | None] = _fk("sites")
    building_id: Mapped[uuid.UUID | None] = _fk("buildings")
    room_id: Mapped[uuid.UUID | None] = _fk("rooms")

    requester_id: Mapped[uuid.UUID] = _fk("users", nullable=False, ondelete="RESTRICT")
    #: who filed it, when not the requester ("on behalf of")
    created_by_id: Mapped[uuid.UUID | None] = _fk("users")
    assignee_id: Mapped[uuid.UUID | None] = _fk("users")
    team_id: Mapped[uuid.UUID | None] = _fk("teams")
    watcher_ids: Mapped[list[str]] = mapped_column(default=list)
    tags: Mapped[list[str]] = mapped_column(default=list)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)

    due_at: Mapped[datetime | None]
    satisfaction_rating: Mapped[int | None] = mapped_column(Integer)
    satisfaction_comment: Mapped[str | None] = mapped_column(Text)
    resolution_notes: Mapped[str | None] = mapped_column(Text)
    root_cause: Mapped[str | None] = mapped_column(Text)

    first_response_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    #: last time the requester was reminded while we wait on them
    reminded_at: Mapped[datetime | None]

    parent_id: Mapped[uuid.UUID | None] = _fk("tickets")
    merged_into_id: Mapped[uuid.UUID | None] = _fk("tickets")

    comment_count: Mapped[int] = mapped_column(Integer, default=0)
    internal_note_count: Mapped[int] = mapped_column(Integer, default=0)
    attachment_count: Mapped[int] = mapped_column(Integer, default=0)
    #: blockers that are not resolved, closed or cancelled
    open_blocker_count: Mapped[int] = mapped_column(Integer, default=0)
    minutes_worked: Mapped[int] = mapped_column(Integer, default=0)
    #: cost of the parts used on it (kept by server.inventory), in cents
    parts_cost_cents: Mapped[int] = mapped_column(BigInteger, default=0)

    # SLA, maintained by server.sla: deadlines, the pause bookkeeping and breaches
    sla_rule_id: Mapped[uuid.UUID | None] = _fk("sla_rules")
    response_due_at: Mapped[datetime | None]
    resolution_due_at: Mapped[datetime | None]
    sla_paused_at: Mapped[datetime | None]
    sla_paused_minutes: Mapped[int] = mapped_column(Integer, default=0)
    response_breached_at: Mapped[datetime | None]
    resolution_breached_at: Mapped[datetime | None]
    sla_warned_at: Mapped[datetime | None]
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)


class TicketSequence(TenantMixin, Base):
    """The last number handed out per organization and prefix (INC-000042)."""

    __tablename__ = "ticket_sequences"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    prefix: Mapped[str] = mapped_column(String(8), primary_key=True)
    last_value: Mapped[int] = mapped_column(BigInteger, default=0)


class TicketComment(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    """A public comment, or a staff-only internal note (``is_internal``)."""

    __tablename__ = "ticket_comments"
    __change_parent__ = "ticket_id"
    __extra_table_args__ = (Index("ix_ticket_comments_ticket", "ticket_id", "created_at"),)

    ticket_id: Mapped[uuid.UUID] = _fk("tickets", nullable=False, ondelete="CASCADE")
    author_id: Mapped[uuid.UUID | None] = _fk("users")
    body: Mapped[str] = mapped_column(Text)
    is_internal: Mapped[bool] = mapped_column(default=False)
    mention_ids: Mapped[list[str]] = mapped_column(default=list)
    minutes_worked: Mapped[int] = mapped_column(Integer, default=0)
    #: the ticket it was first written on, when it came over in a merge
    merged_from_id: Mapped[uuid.UUID | None] = _fk("tickets")


class TicketAttachment(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    __tablename__ = "ticket_attachments"
    __change_parent__ = "ticket_id"
    __extra_table_args__ = (Index("ix_ticket_attachments_ticket", "ticket_id", "created_at"),)

    ticket_id: Mapped[uuid.UUID] = _fk("tickets", nullable=False, ondelete="CASCADE")
    upload_id: Mapped[uuid.UUID] = _fk("uploads", nullable=False, ondelete="RESTRICT")
    uploaded_by_id: Mapped[uuid.UUID | None] = _fk("users")
    file_name: Mapped[str] = mapped_column(String(255))
    mime_type: Mapped[str] = mapped_column(String(120))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    is_internal: Mapped[bool] = mapped_column(default=False)


class TicketLink(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    """``ticket`` is blocked by ``blocker`` (parent/child is ``Ticket.parent_id``)."""

    __tablename__ = "ticket_links"
    __change_parent__ = "ticket_id"
    __extra_table_args__ = (
        live_unique("uq_ticket_links_pair", "ticket_id", "blocker_id"),
        Index("ix_ticket_links_blocker", "blocker_id"),
    )

    ticket_id: Mapped[uuid.UUID] = _fk("tickets", nullable=False, ondelete="CASCADE")
    blocker_id: Mapped[uuid.UUID] = _fk("tickets", nullable=False, ondelete="CASCADE")


class TicketEvent(IdMixin, ReplicatedMixin, Base):
    """One entry of a ticket's history: created, status, assignment, field changes,
    SLA, routing, merge, links. Comments and notes are their own rows; the history
    endpoint interleaves both."""

    __tablename__ = "ticket_events"
    __change_parent__ = "ticket_id"
    __extra_table_args__ = (Index("ix_ticket_events_ticket", "ticket_id", "created_at"),)

    ticket_id: Mapped[uuid.UUID] = _fk("tickets", nullable=False, ondelete="CASCADE")
    actor_id: Mapped[uuid.UUID | None] = _fk("users")
    kind: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: staff-only entries (internal-note attachments, routing explanations)
    is_internal: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
