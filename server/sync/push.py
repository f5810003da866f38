"""Push: a replica's queued mutations, each judged once (docs/sync-protocol.md).

Each mutation runs in its own savepoint through the same services the API uses,
so a sync edit obeys every rule an API edit does. Its verdict and the device's
last sequence are written in the request's transaction, with the effect; a
replay (same id, or a sequence at or below the device's last) gets the stored
verdict back and changes nothing. A rejection rolls back only its own savepoint;
the mutations after it still run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from pydantic.alias_generators import to_snake
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from common.errors import ErrorCode
from common.workflow import TicketStatus
from server.assets import service as assets
from server.assets.models import TicketAsset
from server.core.db import utcnow
from server.core.errors import ApiError, NotFound
from server.core.tenancy import Caller, current_change_position
from server.inventory import service as inventory
from server.inventory import ticket_parts
from server.inventory.schemas import TicketPartCreate, TicketPartReturn
from server.sync import wire
from server.sync.models import SyncConflict, SyncDevice, SyncMutation
from server.sync.service import hydrate_page, working_device
from server.tickets import service as tickets
from server.tickets.models import Ticket, TicketEvent
from server.tickets.schemas import TicketCreate, TicketUpdate
from server.tickets.timeline import EventKind
from server.tickets.visibility import get_visible
from server.users.models import User
from sync.wire import UPDATABLE_TICKET_FIELDS, MutationKind

#: ticket fields a ``ticket.update`` may change: the protocol's list (wire name ->
#: column)
UPDATABLE = {name: to_snake(name) for name in UPDATABLE_TICKET_FIELDS}
_ASSIGNMENT = {"assigneeId", "teamId"}
_CREATE_FIELDS = (
    "title",
    "description",
    "ticketType",
    "priority",
    "impact",
    "urgency",
    "category",
    "subcategory",
    "siteId",
    "buildingId",
    "roomId",
    "requesterId",
)


class Rejected(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Outcome:
    verdict: str
    ticket_ids: list[uuid.UUID] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    code: str | None = None
    message: str | None = None
    #: judged nothing: not stored, the client sends it again (renumbered)
    retry: bool = False
    #: the organization's position before the mutation ran: what it wrote is above
    changed_after: int | None = None

    def stored(self) -> dict[str, Any]:
        return {
            "ticketIds": [str(t) for t in self.ticket_ids],
            "conflicts": self.conflicts,
            "code": self.code,
            "message": self.message,
            "changedAfter": self.changed_after,
        }


@dataclass
class PushResult:
    last_sequence: int
    results: list[dict[str, Any]]


def push(
    session: Session,
    caller: Caller,
    *,
    device_id: uuid.UUID,
    sent_at: datetime | None,
    mutations: Sequence[Mapping[str, Any]],
    client: str = "",
) -> PushResult:
    device = working_device(session, caller, device_id, client)
    if sent_at is not None:
        device.clock_skew_seconds = round((sent_at - utcnow()).total_seconds())
    results = []
    for mutation in mutations:
        outcome = _judge(session, caller, device, mutation)
        results.append(_answer(session, caller, mutation, outcome))
        if outcome.retry:
            break  # the rest follow it, renumbered
    session.flush()
    return PushResult(last_sequence=device.last_sequence, results=results)


def _judge(
    session: Session, caller: Caller, device: SyncDevice, mutation: Mapping[str, Any]
) -> Outcome:
    mutation_id, seq = mutation["id"], mutation["seq"]
    stored = session.get(SyncMutation, mutation_id)
    if stored is not None and stored.device_id == device.id:
        return _replayed(stored)
    # Ids are the client's: one used before, by any device of any organization, is
    # refused before anything runs (a plain table read, past the tenant scoping).
    table = SyncMutation.__table__
    if (
        stored is not None
        or session.execute(select(table.c.id).where(table.c.id == mutation_id)).first()
    ):
        return _rejected(ErrorCode.DUPLICATE_RESOURCE, "This change's id was used already")
    if seq <= device.last_sequence:
        # A sequence this device used before: by another change (a replica restored
        # from a backup that queued new edits), or by one judged so long ago that its
        # verdict is no longer kept. Either way it must not take effect a second time.
        earlier = session.scalar(
            select(SyncMutation).where(SyncMutation.device_id == device.id, SyncMutation.seq == seq)
        )
        if earlier is not None:
            # Not stored: the client renumbers its pending changes above the last
            # sequence and sends this one again (guarantee 4, a restored backup).
            return Outcome(
                "rejected",
                code=ErrorCode.SEQUENCE_REUSED,
                message=f"Sequence number {seq} of this device was used by another change; "
                f"number the pending changes from {device.last_sequence + 1}",
                retry=True,
            )
        return _rejected(
            ErrorCode.DUPLICATE_RESOURCE,
            f"Change {seq} of this device was judged long ago; its verdict is no longer kept",
        )
    kind = mutation["kind"]
    handler = HANDLERS.get(kind)
    outcome: Outcome
    assert caller.organization_id is not None
    before = current_change_position(session, caller.organization_id)
    try:
        with session.begin_nested():
            if handler is None:
                raise Rejected(
                    ErrorCode.VALIDATION_ERROR, f"This server does not know changes of kind {kind}"
                )
            outcome = handler(session, caller, device, mutation)
    except Rejected as exc:
        outcome = _rejected(exc.code, exc.message)
    except ApiError as exc:
        outcome = _rejected(exc.code, exc.message)
    except ValidationError as exc:
        outcome = _rejected(ErrorCode.VALIDATION_ERROR, _first_problem(exc))
    except IntegrityError:
        outcome = _rejected(
            ErrorCode.DUPLICATE_RESOURCE, "A record with this id exists already on the server"
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        outcome = _rejected(ErrorCode.VALIDATION_ERROR, f"This change is malformed ({exc!r})")
    outcome.changed_after = before
    session.add(
        SyncMutation(
            id=mutation_id,
            device_id=device.id,
            seq=seq,
            kind=str(kind)[:40],
            verdict=outcome.verdict,
            result=outcome.stored(),
            happened_at=mutation.get("at"),
        )
    )
    device.last_sequence = max(device.last_sequence, seq)
    return outcome


def _answer(
    session: Session, caller: Caller, mutation: Mapping[str, Any], outcome: Outcome
) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "id": str(mutation["id"]),
        "seq": mutation["seq"],
        "verdict": outcome.verdict,
    }
    if outcome.code is not None:
        answer["code"] = outcome.code
        answer["message"] = outcome.message
    if outcome.conflicts:
        answer["conflicts"] = outcome.conflicts
    answer["rows"] = _rows(session, caller, outcome.ticket_ids, outcome.changed_after)
    return answer


def _rows(
    session: Session,
    caller: Caller,
    ticket_ids: Sequence[uuid.UUID],
    changed_after: int | None,
) -> list[dict[str, Any]]:
    """The server's copy now of the tickets a mutation touched, with the child rows
    it wrote (a replay of a verdict stored without its position gets them all)."""
    if not ticket_ids:
        return []
    page = hydrate_page(session, caller, ticket_ids, changed_after=changed_after)
    return [{"table": name, "rows": rows} for name, rows in page.changes.items()]


def _replayed(stored: SyncMutation) -> Outcome:
    result = stored.result
    return Outcome(
        verdict=stored.verdict,
        ticket_ids=[uuid.UUID(t) for t in result.get("ticketIds", [])],
        conflicts=list(result.get("conflicts", [])),
        code=result.get("code"),
        message=result.get("message"),
        changed_after=result.get("changedAfter"),
    )


def _rejected(code: ErrorCode | str, message: str) -> Outcome:
    return Outcome(verdict="rejected", code=str(code), message=message)


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error.get("loc", ()))
    return f"{where}: {error.get('msg', 'is not valid')}" if where else str(error.get("msg"))


# --- the kinds ---------------------------------------------------------------------


def _ticket(session: Session, caller: Caller, ticket_id: Any) -> Ticket:
    try:
        return get_visible(session, caller, uuid.UUID(str(ticket_id)), for_update=True)
    except (NotFound, ValueError) as exc:
        raise Rejected(
            ErrorCode.RESOURCE_NOT_FOUND,
            "The ticket no longer exists, or it is no longer yours to see",
        ) from exc


def _update(session: Session, caller: Caller, device: SyncDevice, m: Mapping[str, Any]) -> Outcome:
    ticket = _ticket(session, caller, m.get("ticketId"))
    base, changes = m.get("base") or {}, m.get("changes") or {}
    if not isinstance(base, Mapping) or not isinstance(changes, Mapping):
        raise Rejected(ErrorCode.VALIDATION_ERROR, "base and changes are objects of fields")
    unknown = sorted(set(changes) - set(UPDATABLE))
    if unknown or not changes:
        raise Rejected(
            ErrorCode.VALIDATION_ERROR,
            f"These fields cannot be changed here: {', '.join(unknown)}"
            if unknown
            else "The change names no field",
        )
    apply: dict[str, Any] = {}
    conflicts: list[tuple[str, Any, Any, Any]] = []
    already = 0
    for name, mine in changes.items():
        current = wire.plain(getattr(ticket, UPDATABLE[name]))
        if current == mine:
            already += 1
        elif name not in base or current == base[name]:
            apply[name] = mine
        else:
            conflicts.append((name, base[name], mine, current))
    if apply.keys() - _ASSIGNMENT:
        fields = {k: v for k, v in apply.items() if k not in _ASSIGNMENT}
        tickets.update(session, caller, ticket, TicketUpdate.model_validate(fields))
    if apply.keys() & _ASSIGNMENT:
        assignment = {k: apply[k] for k in _ASSIGNMENT & apply.keys()}
        tickets.assign(
            session,
            caller,
            ticket,
            fields={UPDATABLE[k] for k in assignment},
            assignee_id=_uuid(assignment.get("assigneeId")),
            team_id=_uuid(assignment.get("teamId")),
            note=None,
        )
    recorded = []
    for name, base_value, mine, server in conflicts:
        conflict = SyncConflict(
            ticket_id=ticket.id,
            field=name,
            base=base_value,
            mine=mine,
            server=server,
            device_id=device.id,
            user_id=caller.user_id,
            mutation_id=uuid.UUID(str(m["id"])),
        )
        session.add(conflict)
        session.flush()
        recorded.append(
            {
                "id": str(conflict.id),
                "field": name,
                "base": base_value,
                "mine": mine,
                "server": server,
            }
        )
    if recorded:
        verdict = "conflict"
    elif already or _changed_since(ticket, m):
        verdict = "merged"
    else:
        verdict = "applied"
    return Outcome(verdict, [ticket.id], conflicts=recorded)


def _changed_since(ticket: Ticket, m: Mapping[str, Any]) -> bool:
    version = m.get("baseVersion")
    return isinstance(version, int) and ticket.change_position > version


def _uuid(value: Any) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise Rejected(ErrorCode.VALIDATION_ERROR, f"{value!r} is not an id") from exc


def _transition(
    session: Session, caller: Caller, device: SyncDevice, m: Mapping[str, Any]
) -> Outcome:
    ticket = _ticket(session, caller, m.get("ticketId"))
    try:
        target = TicketStatus(str(m.get("to")))
    except ValueError as exc:
        raise Rejected(ErrorCode.VALIDATION_ERROR, f"{m.get('to')!r} is not a status") from exc
    if ticket.status == target.value:
        return Outcome("merged", [ticket.id])
    try:
        tickets.transition(
            session,
            ticket,
            target,
            caller=caller,
            note=m.get("note"),
            resolution_notes=m.get("resolutionNotes"),
        )
    except ApiError as exc:
        if exc.code in (ErrorCode.INVALID_STATUS_TRANSITION, ErrorCode.TICKET_ALREADY_CLOSED):
            raise Rejected(exc.code, f"{exc.message}. {_who_moved(session, ticket)}") from exc
        raise
    return Outcome("applied", [ticket.id])


def _who_moved(session: Session, ticket: Ticket) -> str:
    """Who put the ticket in its current status, and when: what the technician needs
    to understand why their change was refused."""
    event = session.scalar(
        select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.kind == EventKind.STATUS_CHANGED)
        .order_by(TicketEvent.created_at.desc(), TicketEvent.id.desc())
        .limit(1)
    )
    status = ticket.status.replace("_", " ")
    if event is None:
        return f"{ticket.number} is {status}."
    who = session.get(User, event.actor_id) if event.actor_id else None
    name = who.full_name if who is not None else "the system"
    when = event.created_at.strftime("%Y-%m-%d %H:%M UTC")
    return f"{ticket.number} was set to {status} by {name} at {when}."


def _comment(session: Session, caller: Caller, device: SyncDevice, m: Mapping[str, Any]) -> Outcome:
    ticket = _ticket(session, caller, m.get("ticketId"))
    body = m.get("body")
    if not isinstance(body, str) or not body.strip():
        raise Rejected(ErrorCode.VALIDATION_ERROR, "A comment needs some text")
    minutes = m.get("minutesWorked") or 0
    if not isinstance(minutes, int) or not 0 <= minutes <= 10_000:
        raise Rejected(ErrorCode.VALIDATION_ERROR, "minutesWorked must be 0 to 10,000")
    tickets.add_comment(
        session,
        caller,
        ticket,
        body=body,
        internal=bool(m.get("internal", False)),
        minutes_worked=minutes,
        comment_id=_uuid(m.get("commentId")),
    )
    session.flush()
    return Outcome("applied", [ticket.id])


def _create(session: Session, caller: Caller, device: SyncDevice, m: Mapping[str, Any]) -> Outcome:
    fields = m.get("ticket") or {}
    ticket_id = _uuid(fields.get("id"))
    if ticket_id is None:
        raise Rejected(ErrorCode.VALIDATION_ERROR, "A new ticket needs its id")
    data = {k: fields[k] for k in _CREATE_FIELDS if fields.get(k) is not None}
    data["source"] = "desktop"
    if fields.get("assetIds"):
        data["assetIds"] = fields["assetIds"]
    assert caller.organization_id is not None
    ticket = tickets.create(
        session,
        caller,
        organization_id=caller.organization_id,
        data=TicketCreate.model_validate(data),
        ticket_id=ticket_id,
    )
    session.flush()
    return Outcome("applied", [ticket.id])


def _part_use(
    session: Session, caller: Caller, device: SyncDevice, m: Mapping[str, Any]
) -> Outcome:
    ticket = _ticket(session, caller, m.get("ticketId"))
    if not caller.role.is_staff:
        raise Rejected(ErrorCode.PERMISSION_DENIED, "Only staff record parts")
    data = TicketPartCreate.model_validate(
        {
            "partId": m.get("partId"),
            "locationId": m.get("locationId"),
            "quantity": m.get("quantity"),
        }
    )
    ticket_parts.add_part(
        session,
        caller=caller,
        scope=inventory.part_scope(session, caller),
        ticket=ticket,
        data=data,
        movement_id=_uuid(m.get("movementId")),
        occurred_at=m.get("at"),
    )
    return Outcome("applied", [ticket.id])


def _part_return(
    session: Session, caller: Caller, device: SyncDevice, m: Mapping[str, Any]
) -> Outcome:
    ticket = _ticket(session, caller, m.get("ticketId"))
    if not caller.role.is_staff:
        raise Rejected(ErrorCode.PERMISSION_DENIED, "Only staff record parts")
    consumption = _uuid(m.get("consumptionId"))
    if consumption is None:
        raise Rejected(ErrorCode.VALIDATION_ERROR, "Name the part use being returned")
    ticket_parts.return_part(
        session,
        caller=caller,
        ticket=ticket,
        movement_id=consumption,
        data=TicketPartReturn.model_validate(
            {"quantity": m.get("quantity"), "locationId": m.get("locationId")}
        ),
        return_id=_uuid(m.get("movementId")),
        occurred_at=m.get("at"),
    )
    return Outcome("applied", [ticket.id])


def _resolve_conflict(
    session: Session, caller: Caller, device: SyncDevice, m: Mapping[str, Any]
) -> Outcome:
    conflict_id = _uuid(m.get("conflictId"))
    conflict = session.get(SyncConflict, conflict_id) if conflict_id else None
    if conflict is None:
        raise Rejected(ErrorCode.RESOURCE_NOT_FOUND, "That conflict does not exist")
    ticket = _ticket(session, caller, conflict.ticket_id)
    if conflict.user_id != caller.user_id and not caller.role.is_staff:
        raise Rejected(ErrorCode.PERMISSION_DENIED, "Only its author or staff resolve a conflict")
    if conflict.resolved_at is not None:
        return Outcome("merged", [ticket.id])
    keep = m.get("keep")
    if keep not in ("mine", "server", "value"):
        raise Rejected(ErrorCode.VALIDATION_ERROR, "keep must be mine, server or value")
    outcome = Outcome("applied", [ticket.id])
    if keep != "server":
        value = conflict.mine if keep == "mine" else m.get("value")
        current = wire.plain(getattr(ticket, UPDATABLE[conflict.field]))
        outcome = _update(
            session,
            caller,
            device,
            {
                "id": m["id"],
                "ticketId": str(ticket.id),
                "base": {conflict.field: current},
                "changes": {conflict.field: value},
            },
        )
    conflict.resolved_at = utcnow()
    conflict.resolution = keep
    conflict.resolved_by_id = caller.user_id
    return outcome


def _attach(session: Session, caller: Caller, device: SyncDevice, m: Mapping[str, Any]) -> Outcome:
    """A file attached offline: the client uploaded it first (presign, upload) and
    names its storage key; the attachment keeps the client's id."""
    ticket = _ticket(session, caller, m.get("ticketId"))
    storage_key = m.get("storageKey")
    if not isinstance(storage_key, str) or not storage_key:
        raise Rejected(ErrorCode.VALIDATION_ERROR, "Name the uploaded file (storageKey)")
    attachment = tickets.add_attachment(
        session,
        caller,
        ticket,
        storage_key=storage_key,
        internal=bool(m.get("internal", False)),
        attachment_id=_uuid(m.get("attachmentId")),
    )
    expected = m.get("sha256")
    if isinstance(expected, str) and attachment.sha256 and attachment.sha256 != expected.lower():
        raise Rejected(
            ErrorCode.VALIDATION_ERROR,
            "The uploaded file is not the one attached offline (its content differs)",
        )
    session.flush()
    return Outcome("applied", [ticket.id])


def _asset_link(
    session: Session, caller: Caller, device: SyncDevice, m: Mapping[str, Any]
) -> Outcome:
    """Link or unlink a device and a ticket: set operations, so a link that is
    already there (or already gone) is ``merged``, not an error."""
    ticket = _ticket(session, caller, m.get("ticketId"))
    if not caller.role.is_staff:
        raise Rejected(ErrorCode.PERMISSION_DENIED, "Only staff link devices to tickets")
    asset_id = _uuid(m.get("assetId"))
    if asset_id is None:
        raise Rejected(ErrorCode.VALIDATION_ERROR, "Name the device (assetId)")
    linked = session.scalar(
        select(TicketAsset.id).where(
            TicketAsset.ticket_id == ticket.id, TicketAsset.asset_id == asset_id
        )
    )
    if m.get("kind") == MutationKind.ASSET_LINK:
        if linked is not None:
            return Outcome("merged", [ticket.id])
        assets.link_ticket_assets(session, ticket, [asset_id], caller.user_id)
    else:
        if linked is None:
            return Outcome("merged", [ticket.id])
        assets.unlink_ticket_asset(session, ticket, asset_id, caller.user_id)
    session.flush()
    return Outcome("applied", [ticket.id])


Handler = Callable[[Session, Caller, SyncDevice, Mapping[str, Any]], Outcome]
HANDLERS: dict[str, Handler] = {
    MutationKind.TICKET_UPDATE: _update,
    MutationKind.TICKET_TRANSITION: _transition,
    MutationKind.TICKET_COMMENT: _comment,
    MutationKind.TICKET_CREATE: _create,
    MutationKind.TICKET_ATTACH: _attach,
    MutationKind.PART_USE: _part_use,
    MutationKind.PART_RETURN: _part_return,
    MutationKind.ASSET_LINK: _asset_link,
    MutationKind.ASSET_UNLINK: _asset_link,
    MutationKind.CONFLICT_RESOLVE: _resolve_conflict,
}
