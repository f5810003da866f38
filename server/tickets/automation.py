"""Ticket settings per organization, and the waiting-on-requester rules: remind the
requester after some days without an answer, close the ticket after more."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.enums import AuditCategory
from common.workflow import TicketStatus
from server.audit import service as audit
from server.core.tenancy import Caller
from server.notifications import events as notification_events
from server.notifications import service as notifications
from server.organizations.models import Organization
from server.tickets import service
from server.tickets.models import Ticket
from server.tickets.schemas import TicketSettings, TicketSettingsUpdate
from server.tickets.timeline import EventKind, record

SETTINGS_KEY = "tickets"
#: at most this many tickets are reminded or closed per organization per run
BATCH = 200


def settings_of(org: Organization) -> TicketSettings:
    return TicketSettings.model_validate((org.settings or {}).get(SETTINGS_KEY, {}))


def update_settings(
    session: Session, *, caller: Caller, org: Organization, changes: TicketSettingsUpdate
) -> TicketSettings:
    current = settings_of(org)
    patch = {k: v for k, v in changes.model_dump(exclude_unset=True).items() if v is not None}
    updated = TicketSettings.model_validate({**current.model_dump(by_alias=False), **patch})
    before, after = current.model_dump(), updated.model_dump()
    changed = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    org.settings = {**(org.settings or {}), SETTINGS_KEY: after}
    if changed:
        audit.record(
            session,
            actor=caller,
            organization_id=org.id,
            action="tickets.settings_updated",
            category=AuditCategory.CONFIGURATION,
            entity_type="organization",
            entity_id=org.id,
            message=f"Ticket settings changed: {', '.join(sorted(changed))}",
            details={"changes": changed},
        )
    return updated


@dataclass(frozen=True)
class WaitingResult:
    reminded: int
    closed: int


def run_waiting_rules(session: Session, organization_id: uuid.UUID, now: datetime) -> WaitingResult:
    """Remind, then close, tickets that have waited on their requester too long.

    Idempotent: a ticket is reminded once per wait (``reminded_at``) and closing
    moves it out of the waiting status.
    """
    org = session.get(Organization, organization_id)
    if org is None:
        return WaitingResult(0, 0)
    rules = settings_of(org)
    waiting = Ticket.status == TicketStatus.WAITING_ON_REQUESTER.value
    close_before = now - timedelta(days=rules.waiting_auto_close_days)
    closed = 0
    for ticket in session.scalars(
        select(Ticket)
        .where(waiting, Ticket.deleted_at.is_(None), Ticket.status_changed_at <= close_before)
        .order_by(Ticket.status_changed_at)
        .limit(BATCH)
        .with_for_update(skip_locked=True)
    ):
        service.transition(
            session,
            ticket,
            TicketStatus.CLOSED,
            caller=None,
            note=f"Closed automatically: no answer from the requester in "
            f"{rules.waiting_auto_close_days} days",
        )
        closed += 1
    remind_before = now - timedelta(days=rules.waiting_reminder_days)
    reminded = 0
    for ticket in session.scalars(
        select(Ticket)
        .where(
            waiting,
            Ticket.deleted_at.is_(None),
            Ticket.reminded_at.is_(None),
            Ticket.status_changed_at <= remind_before,
        )
        .order_by(Ticket.status_changed_at)
        .limit(BATCH)
        .with_for_update(skip_locked=True)
    ):
        ticket.reminded_at = now
        days_left = rules.waiting_auto_close_days - rules.waiting_reminder_days
        notifications.notify(
            session,
            recipients=[ticket.requester_id],
            event=notification_events.WAITING_REMINDER,
            title=f"{ticket.number} is waiting for your answer",
            body=f"We need your reply on '{ticket.title}'. Without one, the ticket closes "
            f"in {days_left} day(s).",
            ticket=ticket,
        )
        record(session, ticket, EventKind.REMINDER_SENT, closesInDays=days_left)
        reminded += 1
    return WaitingResult(reminded=reminded, closed=closed)


def describe(result: WaitingResult) -> dict[str, Any]:
    return {"reminded": result.reminded, "closed": result.closed}
