"""Ticket vocabulary shared by the server, the sync protocol and the desktop app:
types and their number prefixes, priorities, and the incident priority matrix."""

from __future__ import annotations

from enum import StrEnum


class TicketType(StrEnum):
    INCIDENT = "incident"  # something is broken
    SERVICE_REQUEST = "service_request"  # something is wanted
    PROBLEM = "problem"  # the cause behind several incidents
    CHANGE = "change"  # a planned change to a system
    GENERAL = "general"  # anything else a school reports

    @property
    def prefix(self) -> str:
        return _PREFIX[self]


_PREFIX = {
    TicketType.INCIDENT: "INC",
    TicketType.SERVICE_REQUEST: "SR",
    TicketType.PROBLEM: "PRB",
    TicketType.CHANGE: "CHG",
    TicketType.GENERAL: "TKT",
}


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def raised(self) -> Priority:
        """One step more urgent (critical stays critical)."""
        order = list(Priority)
        return order[min(self.rank + 1, len(order) - 1)]


_RANK = {p: i for i, p in enumerate(Priority)}


class Level(StrEnum):
    """Impact (how many are affected) and urgency (how soon it hurts) of an incident."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


#: ITIL-style matrix: impact x urgency -> priority.
PRIORITY_MATRIX: dict[tuple[Level, Level], Priority] = {
    (Level.HIGH, Level.HIGH): Priority.CRITICAL,
    (Level.HIGH, Level.MEDIUM): Priority.HIGH,
    (Level.MEDIUM, Level.HIGH): Priority.HIGH,
    (Level.HIGH, Level.LOW): Priority.MEDIUM,
    (Level.MEDIUM, Level.MEDIUM): Priority.MEDIUM,
    (Level.LOW, Level.HIGH): Priority.MEDIUM,
    (Level.MEDIUM, Level.LOW): Priority.LOW,
    (Level.LOW, Level.MEDIUM): Priority.LOW,
    (Level.LOW, Level.LOW): Priority.LOW,
}


def priority_for(impact: Level, urgency: Level) -> Priority:
    return PRIORITY_MATRIX[(impact, urgency)]
