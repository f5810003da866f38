"""Writing a ticket's history. Every domain that changes a ticket (workflow, SLA,
routing, parts, assets) records what it did through ``record`` so the timeline is
one table with one shape."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from server.core.db import utcnow
from server.tickets.models import Ticket, TicketEvent


class EventKind:
    """The kinds of history entry; ``data`` carries the details of each."""

    CREATED = "created"
    STATUS_CHANGED = "status_changed"  # from, to, transition, note
    ASSIGNED = "assigned"  # assignee: {from, to}, team: {from, to}
    FIELDS_CHANGED = "fields_changed"  # changes: {field: {from, to}}
    ATTACHMENT_ADDED = "attachment_added"  # attachmentId, fileName
    LINKED = "linked"  # relation (blocked_by, parent), otherId, otherNumber
    UNLINKED = "unlinked"
    MERGED = "merged"  # into / from
    ROUTED = "routed"  # matches: [{ruleId, name, reasons}], applied: {...}
    SLA_APPLIED = "sla_applied"  # ruleId, responseDueAt, resolutionDueAt
    SLA_WARNING = "sla_warning"  # target (response, resolution), dueAt
    SLA_BREACHED = "sla_breached"  # target, dueAt
    ESCALATED = "escalated"  # level, priority: {from, to}, notified
    REMINDER_SENT = "reminder_sent"
    PART_USED = "part_used"  # partId, partName, locationId, quantity, assetId
    PART_RETURNED = "part_returned"
    ASSET_LINKED = "asset_linked"  # assetId, assetTag
    ASSET_UNLINKED = "asset_unlinked"


def record(
    session: Session,
    ticket: Ticket,
    kind: str,
    *,
    actor_id: uuid.UUID | None = None,
    internal: bool = False,
    details: dict[str, Any] | None = None,
    **data: Any,
) -> TicketEvent:
    """Add one history entry to ``ticket`` in the caller's transaction.

    ``data`` must be JSON-serialisable (turn ids and datetimes into strings) and
    uses camelCase keys, as the API shows it unchanged. ``details`` takes keys that
    are not Python names (``from``, ``to``)."""
    event = TicketEvent(
        organization_id=ticket.organization_id,
        ticket_id=ticket.id,
        actor_id=actor_id,
        kind=kind,
        data={**(details or {}), **data},
        is_internal=internal,
        created_at=utcnow(),
    )
    session.add(event)
    return event
