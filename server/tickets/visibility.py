"""What a requester may see of a ticket: one rule for every path that shows a
ticket to one (the ticket read, lists and search, the timeline, and what a
replica or portal will read).

A requester (a teacher, a school secretary) follows their own problem: its
status, the conversation, who is on it and when to expect an answer. What the
work cost, how the desk manages it (routing, SLA clocks and escalations) and the
staff's internal notes and attachments are the staff's business. The table in
docs/tickets.md states the same rule for readers.
"""

from __future__ import annotations

from server.core.tenancy import Caller
from server.tickets.timeline import EventKind

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
