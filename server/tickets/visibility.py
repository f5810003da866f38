"""Who may see a ticket, and what a requester may see of one: the rules every
path that shows a ticket uses (the ticket read, lists and search, the timeline,
attachments, the assets and parts linked to tickets, and the sync replica).

A requester (a teacher, a school secretary) follows their own problem: its
status, the conversation, who is on it and when to expect an answer. What the
work cost, how the desk manages it (routing, SLA clocks and escalations) and the
staff's internal notes and attachments are the staff's business. The table in
docs/tickets.md states the same rule for readers.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.orm import Session

from common.enums import Role
from common.workflow import Capacity
from server.core.errors import NotFound
from server.core.tenancy import Caller
from server.teams import service as teams
from server.tickets.models import Ticket
from server.tickets.timeline import EventKind

_DESK_ROLES = {Role.SUPER_ADMIN, Role.ORG_ADMIN, Role.AGENT}

#: ticket fields a requester reads as null: cost, time worked, internal counters,
#: and how the desk manages the ticket
STAFF_ONLY_FIELDS = frozenset(
    {"minutes_worked", "parts_cost_cents", "internal_note_count", "escalation_level", "sla_rule_id"}
)
#: timeline entries only staff read (internal notes and internal attachments are
#: marked internal when they are written, and are left out by that mark)
STAFF_ONLY_EVENTS = frozenset(
    {
        EventKind.PART_USED,
        EventKind.PART_RETURNED,
        EventKind.ROUTED,
        EventKind.SLA_APPLIED,
        EventKind.SLA_WARNING,
        EventKind.SLA_BREACHED,
        EventKind.ESCALATED,
    }
)
#: keys of a timeline entry's data only staff read (time logged on a comment)
STAFF_ONLY_DATA = frozenset({"minutesWorked"})


def sees_internal(caller: Caller) -> bool:
    """Staff read internal notes, internal attachments and the staff-only parts above;
    requesters never do (a technician filing their own ticket is still staff)."""
    return caller.role.is_staff


def is_desk(caller: Caller) -> bool:
    return caller.role in _DESK_ROLES


def visible_filter(caller: Caller) -> ColumnElement[bool]:
    """Which of the organization's tickets the caller may see.

    Desk staff (agents, admins) see all; technicians see what is assigned to them
    or their teams, and what they asked for; requesters see what they asked for or
    filed for someone else.
    """
    if is_desk(caller):
        return true()
    own = or_(Ticket.requester_id == caller.user_id, Ticket.created_by_id == caller.user_id)
    if caller.role is Role.TECHNICIAN:
        return or_(
            own,
            Ticket.assignee_id == caller.user_id,
            Ticket.team_id.in_(teams.teams_of(caller.user_id)),
        )
    return own


def get_visible(
    session: Session, caller: Caller, ticket_id: uuid.UUID, *, for_update: bool = False
) -> Ticket:
    """The ticket, or 404 when it does not exist or the caller may not see it.

    ``for_update`` locks the row (PostgreSQL) so two concurrent edits are applied
    one after the other and neither is lost.
    """
    stmt = select(Ticket).where(
        Ticket.id == ticket_id, Ticket.deleted_at.is_(None), visible_filter(caller)
    )
    if for_update:
        stmt = stmt.with_for_update()
    ticket = session.scalars(stmt).one_or_none()
    if ticket is None:
        raise NotFound("Ticket")
    if for_update:
        session.refresh(ticket)
    return ticket


def capacities(session: Session, caller: Caller | None, ticket: Ticket) -> set[Capacity]:
    if caller is None:
        return {Capacity.SYSTEM}
    held: set[Capacity] = set()
    if caller.user_id in (ticket.requester_id, ticket.created_by_id):
        held.add(Capacity.REQUESTER)
    if caller.role in (Role.ORG_ADMIN, Role.SUPER_ADMIN):
        held.add(Capacity.ADMIN)
    if caller.role is Role.AGENT:
        held.add(Capacity.AGENT)
    if caller.role.is_staff and (
        ticket.assignee_id == caller.user_id
        or (
            ticket.team_id is not None
            and ticket.team_id in teams.team_ids_of(session, caller.user_id)
        )
    ):
        held.add(Capacity.ASSIGNEE)
    return held
