"""Edits of the replica: plain functions run on the replica's writer thread.

Each takes the open ``Replica`` and returns the ``Changes`` it made (Anki's
operations returning ``OpChanges``); the views decide from them what to reload. A
refused edit raises ``EditRefused`` and writes nothing. No Qt, no network: the edit
lands in the replica and its outbox in one transaction, and the next sync sends it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from common.errors import ErrorCode
from common.workflow import Capacity
from sync.replica import Changes, EditRefused, Replica
from sync.wire import Verdict


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


def resolve_conflict(replica: Replica, conflict_id: str, keep: str, value: Any = None) -> Changes:
    """Keep ``mine``, the ``server``'s value or a new ``value``; queued as
    ``conflict.resolve``. A conflict verdict whose conflicts are all resolved has been
    read, so it is dismissed (it no longer counts as something to look at)."""
    changes = replica.resolve_conflict(conflict_id, keep, value)
    still_open = {r.id for r in replica.conflicts() if r.data.get("resolvedAt") is None}
    for verdict in replica.verdicts():
        if verdict.verdict is not Verdict.CONFLICT:
            continue
        ids = {str(c.get("id")) for c in verdict.conflicts if c.get("id")}
        if conflict_id in ids and not ids & still_open:
            replica.dismiss_verdict(verdict.mutation_id)
            changes.verdicts = True
    return changes


def dismiss_rejection(replica: Replica, mutation_id: str) -> Changes:
    """The technician has read why the server refused a change."""
    return replica.dismiss_verdict(mutation_id)


def use_part(
    replica: Replica, ticket_id: str, part_id: str, location_id: str, quantity: int
) -> Changes:
    return replica.use_part(ticket_id, part_id, location_id, quantity)


def create_ticket(
    replica: Replica,
    title: str,
    description: str = "",
    *,
    urgency: str | None = None,
    site_id: str | None = None,
    building_id: str | None = None,
    room_id: str | None = None,
) -> Changes:
    """A ticket for something found on site: "New (not yet synced)" until the server
    numbers it. The building's site follows when only the building is given."""
    if not title.strip():
        raise EditRefused(ErrorCode.VALIDATION_ERROR, "A ticket needs a title")
    if building_id and not site_id:
        building = replica.row("buildings", building_id)
        site = building.data.get("siteId") if building else None
        site_id = str(site) if site else None
    return replica.create_ticket(
        title.strip(),
        description.strip(),
        urgency=urgency,
        site_id=site_id,
        building_id=building_id,
        room_id=room_id,
    )
