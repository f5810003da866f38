"""SLA policies, the business-hours calendars they count in, and holidays.

A ticket's deadlines are counted in business minutes of one calendar: the rule's own
calendar when it names one, else the calendar of the ticket's site, else the
organization's default calendar, else 24x7 (see ``server.sla.service``).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, IdMixin, ReplicatedMixin, TimestampMixin, live_unique

_LIVE_DEFAULT = text("is_default AND deleted_at IS NULL")


class BusinessCalendar(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    """Working hours in one time zone: ``{"mon": [["07:30", "15:30"]], ...}``.

    A calendar with ``site_id`` applies to that site's tickets and overrides the
    organization's default (``is_default``, at most one per organization, never a
    site calendar).
    """

    __tablename__ = "business_calendars"
    __extra_table_args__ = (
        live_unique("uq_business_calendars_org_name", "organization_id", "name"),
        live_unique("uq_business_calendars_site", "site_id"),
        Index(
            "uq_business_calendars_org_default",
            "organization_id",
            unique=True,
            sqlite_where=_LIVE_DEFAULT,
            postgresql_where=_LIVE_DEFAULT,
        ),
    )

    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str | None] = mapped_column(Text)
    #: IANA zone the hours are read in (America/Chicago)
    timezone: Mapped[str] = mapped_column(String(64))
    #: weekday ("mon".."sun") -> [["HH:MM", "HH:MM"], ...]; a missing or empty day is closed
    hours: Mapped[dict[str, Any]] = mapped_column(default=dict)
    site_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)


class Holiday(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    """Days off of one calendar: ``start_date`` to ``end_date`` inclusive, local dates
    (spring break is one row)."""

    __tablename__ = "calendar_holidays"
    __extra_table_args__ = (Index("ix_calendar_holidays_calendar", "calendar_id", "start_date"),)

    calendar_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("business_calendars.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(120))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)


class SlaRule(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    """Response and resolution targets, in business minutes, for the tickets it matches.

    Matching: every criterion (priority, ticket type, department, site) is either None
    (any) or must equal the ticket's; among the active rules that match, the most
    specific (most criteria set) wins, ties going to the lower ``position``.
    """

    __tablename__ = "sla_rules"
    __extra_table_args__ = (
        live_unique("uq_sla_rules_org_name", "organization_id", "name"),
        Index("ix_sla_rules_org_position", "organization_id", "position"),
    )

    name: Mapped[str] = mapped_column(String(120))
    priority: Mapped[str | None] = mapped_column(String(16))
    ticket_type: Mapped[str | None] = mapped_column(String(24))
    department_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("departments.id", ondelete="CASCADE")
    )
    site_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    response_minutes: Mapped[int] = mapped_column(Integer)
    resolution_minutes: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(default=True)

    description: Mapped[str | None] = mapped_column(Text)
    #: None: the ticket's site calendar, else the organization's default, else 24x7
    calendar_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("business_calendars.id", ondelete="SET NULL")
    )
    #: tie-break among equally specific rules: lower first
    position: Mapped[int] = mapped_column(Integer, default=0)
    #: warn when a deadline is this many business minutes away (0: never warn)
    due_soon_minutes: Mapped[int] = mapped_column(Integer, default=60)
    #: on a breach: escalate at all, raise the priority one step, and whom to tell
    escalate_on_breach: Mapped[bool] = mapped_column(Boolean, default=True)
    escalation_raise_priority: Mapped[bool] = mapped_column(Boolean, default=False)
    escalation_notify_user_ids: Mapped[list[str]] = mapped_column(default=list)
    escalation_notify_roles: Mapped[list[str]] = mapped_column(default=list)
