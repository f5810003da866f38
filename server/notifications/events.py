"""The events a user can be notified of, their labels and default delivery.

Producers (tickets, SLA, approvals, inventory) call
``server.notifications.service.notify(event=...)`` with one of these constants.
"""

from __future__ import annotations

from typing import Final

TICKET_ASSIGNED: Final = "ticket_assigned"
TICKET_STATUS_CHANGED: Final = "ticket_status_changed"
TICKET_COMMENTED: Final = "ticket_commented"
MENTIONED: Final = "mentioned"
SLA_DUE_SOON: Final = "sla_due_soon"
SLA_BREACHED: Final = "sla_breached"
APPROVAL_REQUESTED: Final = "approval_requested"
WAITING_REMINDER: Final = "waiting_reminder"
LOW_STOCK: Final = "low_stock"
PURCHASE_ORDER_APPROVAL: Final = "purchase_order_approval"

ALL_EVENTS: tuple[str, ...] = (
    TICKET_ASSIGNED,
    TICKET_STATUS_CHANGED,
    TICKET_COMMENTED,
    MENTIONED,
    SLA_DUE_SOON,
    SLA_BREACHED,
    APPROVAL_REQUESTED,
    WAITING_REMINDER,
    LOW_STOCK,
    PURCHASE_ORDER_APPROVAL,
)

LABELS: dict[str, str] = {
    TICKET_ASSIGNED: "A ticket is assigned to me",
    TICKET_STATUS_CHANGED: "The status of my ticket changes",
    TICKET_COMMENTED: "Someone comments on my ticket",
    MENTIONED: "Someone mentions me",
    SLA_DUE_SOON: "A ticket's SLA deadline is near",
    SLA_BREACHED: "A ticket breached its SLA",
    APPROVAL_REQUESTED: "My approval is requested",
    WAITING_REMINDER: "A ticket is waiting on me",
    LOW_STOCK: "A part runs low in stock",
    PURCHASE_ORDER_APPROVAL: "A purchase order needs my approval",
}

#: Every event shows in the app unless the user turns it off.
DEFAULT_IN_APP: frozenset[str] = frozenset(ALL_EVENTS)
#: Events that also send an email unless the user turns it off: the ones that ask the
#: user to act. Status changes, comments and "due soon" warnings are chatty; they
#: stay in the app unless the user asks for email.
DEFAULT_EMAIL: frozenset[str] = frozenset(
    {
        TICKET_ASSIGNED,
        MENTIONED,
        APPROVAL_REQUESTED,
        SLA_BREACHED,
        WAITING_REMINDER,
        PURCHASE_ORDER_APPROVAL,
        LOW_STOCK,
    }
)


def label(event: str) -> str:
    return LABELS.get(event, event.replace("_", " ").capitalize())


def default_delivery(event: str) -> tuple[bool, bool]:
    """(in_app, email) for a user who has not chosen."""
    return event in DEFAULT_IN_APP, event in DEFAULT_EMAIL
