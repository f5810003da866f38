"""The ticket workflow table: every allowed move by every capacity, and every other
move refused with the right code. Written out independently of common/workflow.py
so that a change to the workflow shows here as a deliberate edit."""

from __future__ import annotations

import itertools

import pytest

from common.errors import ErrorCode
from common.workflow import (
    TRANSITIONS,
    Capacity,
    StatusCategory,
    TicketStatus,
    WorkflowError,
    available,
    category,
    check,
)

S = TicketStatus
R, A, G, D, Y = (
    Capacity.REQUESTER,
    Capacity.ASSIGNEE,
    Capacity.AGENT,
    Capacity.ADMIN,
    Capacity.SYSTEM,
)
STAFF = {A, G, D}
DESK = {G, D}

# (from, to) -> capacities that may make the move
EXPECTED: dict[tuple[TicketStatus, TicketStatus], set[Capacity]] = {
    (S.NEW, S.OPEN): DESK,
    (S.NEW, S.ASSIGNED): DESK,
    (S.OPEN, S.ASSIGNED): DESK,
    (S.NEW, S.IN_PROGRESS): STAFF,
    (S.OPEN, S.IN_PROGRESS): STAFF,
    (S.ASSIGNED, S.IN_PROGRESS): STAFF,
    (S.ON_HOLD, S.IN_PROGRESS): STAFF,
    (S.WAITING_ON_REQUESTER, S.IN_PROGRESS): STAFF | {R, Y},
    (S.OPEN, S.ON_HOLD): STAFF,
    (S.ASSIGNED, S.ON_HOLD): STAFF,
    (S.IN_PROGRESS, S.ON_HOLD): STAFF,
    (S.OPEN, S.WAITING_ON_REQUESTER): STAFF,
    (S.ASSIGNED, S.WAITING_ON_REQUESTER): STAFF,
    (S.IN_PROGRESS, S.WAITING_ON_REQUESTER): STAFF,
    (S.OPEN, S.RESOLVED): STAFF,
    (S.ASSIGNED, S.RESOLVED): STAFF,
    (S.IN_PROGRESS, S.RESOLVED): STAFF,
    (S.ON_HOLD, S.RESOLVED): STAFF,
    (S.WAITING_ON_REQUESTER, S.RESOLVED): STAFF,
    (S.RESOLVED, S.CLOSED): {R, G, D, Y},
    (S.RESOLVED, S.IN_PROGRESS): {R, G, D},
    (S.WAITING_ON_REQUESTER, S.CLOSED): {Y},
    (S.RESOLVED, S.OPEN): {R, G, D},
    (S.CLOSED, S.OPEN): {R, G, D},
    **{
        (s, S.CANCELLED): {R, G, D}
        for s in (S.NEW, S.OPEN, S.ASSIGNED, S.IN_PROGRESS, S.ON_HOLD, S.WAITING_ON_REQUESTER)
    },
}

PAIRS = list(itertools.product(TicketStatus, TicketStatus))


@pytest.mark.parametrize(
    ("current", "target"), PAIRS, ids=[f"{a.value}->{b.value}" for a, b in PAIRS]
)
def test_every_move_for_every_capacity(current: TicketStatus, target: TicketStatus) -> None:
    allowed = EXPECTED.get((current, target), set())
    for capacity in Capacity:
        if capacity in allowed:
            transition = check(current, target, [capacity])
            assert transition.target is target
            assert current in transition.sources
            continue
        with pytest.raises(WorkflowError) as refused:
            check(current, target, [capacity])
        if allowed:
            expected_code = ErrorCode.PERMISSION_DENIED
        elif current in (S.CLOSED, S.CANCELLED):
            expected_code = ErrorCode.TICKET_ALREADY_CLOSED
        else:
            expected_code = ErrorCode.INVALID_STATUS_TRANSITION
        assert refused.value.code is expected_code, (current, target, capacity)


def test_categories_drive_the_sla_clock() -> None:
    assert {s for s in S if category(s) is StatusCategory.OPEN} == {
        S.NEW,
        S.OPEN,
        S.ASSIGNED,
        S.IN_PROGRESS,
    }
    assert {s for s in S if category(s) is StatusCategory.PAUSED} == {
        S.ON_HOLD,
        S.WAITING_ON_REQUESTER,
    }
    assert category(S.RESOLVED) is StatusCategory.RESOLVED
    assert {s for s in S if category(s) is StatusCategory.CLOSED} == {S.CLOSED, S.CANCELLED}


def test_a_closed_ticket_only_reopens() -> None:
    assert check(S.CLOSED, S.OPEN, [R]).name == "reopen"
    with pytest.raises(WorkflowError) as refused:
        check(S.CLOSED, S.IN_PROGRESS, [D])
    assert refused.value.code is ErrorCode.TICKET_ALREADY_CLOSED
    with pytest.raises(WorkflowError) as refused:
        check(S.CANCELLED, S.OPEN, [D])
    assert refused.value.code is ErrorCode.TICKET_ALREADY_CLOSED, "cancelled is final"


def test_more_capacities_never_take_rights_away() -> None:
    for (current, target), allowed in EXPECTED.items():
        for extra in Capacity:
            assert check(current, target, [*allowed, extra]).target is target


def test_available_actions_are_what_check_allows() -> None:
    for current in S:
        for capacity in Capacity:
            names = {t.name for t in available(current, [capacity])}
            reachable = {
                target
                for (source, target), who in EXPECTED.items()
                if source is current and capacity in who
            }
            assert {t.target for t in available(current, [capacity])} == reachable
            assert all(check(current, t.target, [capacity]) for t in available(current, [capacity]))
            if capacity is Capacity.REQUESTER and current is S.RESOLVED:
                assert names == {"approve_resolution", "reject_resolution", "reopen"}


def test_transition_names_are_unique_and_described() -> None:
    names = [t.name for t in TRANSITIONS]
    assert len(names) == len(set(names))
    assert all(t.description for t in TRANSITIONS)
