"""Edits of the replica: plain functions run on the replica's writer thread.

Each takes the open ``Replica`` and returns the ``Changes`` it made (Anki's
operations returning ``OpChanges``); the views decide from them what to reload. A
refused edit raises ``EditRefused`` and writes nothing. No Qt, no network: the edit
lands in the replica and its outbox in one transaction, and the next sync sends it.
"""

from __future__ import annotations

from collections.abc import Iterable

from common.workflow import Capacity
from sync.replica import Changes, EditRefused, Replica


def add_comment(
    replica: Replica, ticket_id: str, body: str, *, internal: bool, minutes: int | None
) -> Changes:
    return replica.add_comment(ticket_id, body.strip(), internal=internal, minutes_worked=minutes)


def transition(
    replica: Replica,
    ticket_id: str,
    to: str,
    *,
    note: str | None = None,
    resolution_notes: str | None = None,
    capacities: Iterable[Capacity] | None = None,
) -> Changes:
    if to == "resolved" and not (resolution_notes or "").strip():
        raise EditRefused("VALIDATION_ERROR", "Say what fixed it: resolution notes are required")
    return replica.transition_ticket(
        ticket_id,
        to,
        note=note or None,
        resolution_notes=resolution_notes.strip() if resolution_notes else None,
        capacities=capacities,
    )


def set_priority(replica: Replica, ticket_id: str, priority: str) -> Changes:
    return replica.update_ticket(ticket_id, {"priority": priority})
