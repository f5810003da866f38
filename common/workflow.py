"""The ticket workflow: one explicit state machine for the server, the sync protocol
and the desktop app.

Every status belongs to a category that drives the SLA clock (open: running,
paused: stopped, resolved and closed: stopped for good). A transition names who
may take it, as *capacities* the caller holds on a particular ticket — the
server works those out (the ticket's requester, its assignee, an agent, an
admin, the system's own jobs), so this module stays free of users and databases.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from common.errors import ErrorCode


class TicketStatus(StrEnum):
    NEW = "new"
    OPEN = "open"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    WAITING_ON_REQUESTER = "waiting_on_requester"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class StatusCategory(StrEnum):
    OPEN = "open"  # the SLA clock runs
    PAUSED = "paused"  # the clock stops; paused time is added back to the deadlines
    RESOLVED = "resolved"  # waiting for the requester to accept
    CLOSED = "closed"  # final until reopened


class Capacity(StrEnum):
    """In what capacity a caller acts on one ticket."""

    REQUESTER = "requester"  # the person the ticket is for (or who filed it on their behalf)
    ASSIGNEE = "assignee"  # the technician or agent it is assigned to
    AGENT = "agent"  # help-desk staff of the organization
    ADMIN = "admin"  # organization or platform administrator
    SYSTEM = "system"  # the server's own jobs (reminders, auto-close)


CATEGORY: dict[TicketStatus, StatusCategory] = {
    TicketStatus.NEW: StatusCategory.OPEN,
    TicketStatus.OPEN: StatusCategory.OPEN,
    TicketStatus.ASSIGNED: StatusCategory.OPEN,
    TicketStatus.IN_PROGRESS: StatusCategory.OPEN,
    TicketStatus.ON_HOLD: StatusCategory.PAUSED,
    TicketStatus.WAITING_ON_REQUESTER: StatusCategory.PAUSED,
    TicketStatus.RESOLVED: StatusCategory.RESOLVED,
    TicketStatus.CLOSED: StatusCategory.CLOSED,
    TicketStatus.CANCELLED: StatusCategory.CLOSED,
}

_STAFF = frozenset({Capacity.ASSIGNEE, Capacity.AGENT, Capacity.ADMIN})
_DESK = frozenset({Capacity.AGENT, Capacity.ADMIN})
_WORKING = frozenset(
    {
        TicketStatus.NEW,
        TicketStatus.OPEN,
        TicketStatus.ASSIGNED,
        TicketStatus.IN_PROGRESS,
        TicketStatus.ON_HOLD,
        TicketStatus.WAITING_ON_REQUESTER,
    }
)


@dataclass(frozen=True, slots=True)
class Transition:
    name: str
    sources: frozenset[TicketStatus]
    target: TicketStatus
    allowed: frozenset[Capacity]
    description: str


def _t(name: str, sources: Iterable[TicketStatus], target: TicketStatus,
       allowed: Iterable[Capacity], description: str) -> Transition:  # fmt: skip
    return Transition(name, frozenset(sources), target, frozenset(allowed), description)


S = TicketStatus
TRANSITIONS: tuple[Transition, ...] = (
    _t("triage", [S.NEW], S.OPEN, _DESK, "Accept a new ticket into the queue"),
    _t("assign", [S.NEW, S.OPEN], S.ASSIGNED, _DESK, "Hand the ticket to a technician or team"),
    _t(
        "start_work",
        [S.NEW, S.OPEN, S.ASSIGNED, S.ON_HOLD, S.WAITING_ON_REQUESTER],
        S.IN_PROGRESS,
        _STAFF,
        "Start (or resume) work",
    ),
    _t(
        "hold",
        [S.OPEN, S.ASSIGNED, S.IN_PROGRESS],
        S.ON_HOLD,
        _STAFF,
        "Pause: waiting for parts, a vendor or access",
    ),
    _t(
        "wait_on_requester",
        [S.OPEN, S.ASSIGNED, S.IN_PROGRESS],
        S.WAITING_ON_REQUESTER,
        _STAFF,
        "Pause until the requester answers",
    ),
    _t(
        "requester_replied",
        [S.WAITING_ON_REQUESTER],
        S.IN_PROGRESS,
        [Capacity.REQUESTER, Capacity.SYSTEM],
        "The requester answered; work continues",
    ),
    _t("resolve", _WORKING - {S.NEW}, S.RESOLVED, _STAFF, "Work is done; ask the requester"),
    _t(
        "approve_resolution",
        [S.RESOLVED],
        S.CLOSED,
        [Capacity.REQUESTER, *_DESK],
        "The requester (or the desk for them) accepts the resolution",
    ),
    _t(
        "reject_resolution",
        [S.RESOLVED],
        S.IN_PROGRESS,
        [Capacity.REQUESTER, *_DESK],
        "The problem is not fixed; work resumes",
    ),
    _t("close", [S.RESOLVED], S.CLOSED, [*_DESK, Capacity.SYSTEM], "Close a resolved ticket"),
    _t(
        "auto_close",
        [S.WAITING_ON_REQUESTER],
        S.CLOSED,
        [Capacity.SYSTEM],
        "No answer from the requester within the organization's limit",
    ),
    _t(
        "reopen",
        [S.RESOLVED, S.CLOSED],
        S.OPEN,
        [Capacity.REQUESTER, *_DESK],
        "The problem came back",
    ),
    _t(
        "cancel",
        _WORKING,
        S.CANCELLED,
        [Capacity.REQUESTER, *_DESK],
        "Withdrawn or a duplicate: no work will be done",
    ),
)
del S

_BY_EDGE: dict[tuple[TicketStatus, TicketStatus], tuple[Transition, ...]] = {}
for _transition in TRANSITIONS:
    for _source in _transition.sources:
        key = (_source, _transition.target)
        _BY_EDGE[key] = (*_BY_EDGE.get(key, ()), _transition)


class WorkflowError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def category(status: TicketStatus) -> StatusCategory:
    return CATEGORY[status]


def is_closed(status: TicketStatus) -> bool:
    return CATEGORY[status] is StatusCategory.CLOSED


def check(
    current: TicketStatus, target: TicketStatus, capacities: Iterable[Capacity]
) -> Transition:
    """The transition that takes a ticket from ``current`` to ``target`` for a caller
    holding ``capacities``, or a WorkflowError saying why not:

    - TICKET_ALREADY_CLOSED: the ticket is closed or cancelled and the move is not a reopen;
    - INVALID_STATUS_TRANSITION: no transition joins the two statuses;
    - PERMISSION_DENIED: there is one, but not for this caller.
    """
    held = frozenset(capacities)
    candidates = _BY_EDGE.get((current, target), ())
    if not candidates:
        if is_closed(current):
            raise WorkflowError(
                ErrorCode.TICKET_ALREADY_CLOSED,
                f"The ticket is {current.value}; reopen it before changing it",
            )
        raise WorkflowError(
            ErrorCode.INVALID_STATUS_TRANSITION,
            f"A ticket cannot go from {current.value} to {target.value}",
        )
    for transition in candidates:
        if held & transition.allowed:
            return transition
    raise WorkflowError(
        ErrorCode.PERMISSION_DENIED,
        f"You cannot {candidates[0].name.replace('_', ' ')} this ticket",
    )


def available(current: TicketStatus, capacities: Iterable[Capacity]) -> list[Transition]:
    """What a caller may do next, for buttons and menus."""
    held = frozenset(capacities)
    return [t for t in TRANSITIONS if current in t.sources and held & t.allowed]
