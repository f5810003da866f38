"""The stock ledger: every change of stock is a movement, and nothing else writes stock.

Each function records one movement (two for a transfer) and, in the same
transaction, adds its quantity to the materialised figures with atomic
``quantity = quantity + delta`` statements: the location's ``StockLevel`` and the
part's ``on_hand``. Concurrent movements of the same part therefore never lose one
another, whatever order they commit in.

A movement that takes a location below zero is recorded anyway and flagged for
review (``flagged_negative``, ``review_status="open"``): the part really was used,
and an offline technician's record must not be refused when it syncs.

After each movement the part's status follows its total on hand: ``low_stock`` at or
below the reorder point, ``active`` above it (``backordered`` clears on restock,
``discontinued`` stays). The part's inventory owner is notified when the part falls
into ``low_stock`` — on the crossing only, not on every later consumption.

These functions do no permission checks: the routes (and the purchase-order and
ticket services) decide who may move what; the ledger only keeps the books.
They flush, never commit.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from common.enums import Role
from common.ids import uuid7
from server.core.db import utcnow
from server.core.errors import BusinessRuleViolation, NotFound, ValidationFailed
from server.core.tenancy import allocate_change_positions
from server.inventory.models import (
    MovementKind,
    Part,
    PartStatus,
    ReviewStatus,
    SourceType,
    StockLevel,
    StockLocation,
    StockMovement,
)
from server.notifications import events
from server.notifications.service import notify
from server.users.models import User

#: the largest quantity one movement may carry
MAX_QUANTITY = 1_000_000


# ------------------------------------------------------------------------ public API


def receive(
    session: Session,
    *,
    part_id: uuid.UUID,
    location_id: uuid.UUID,
    quantity: int,
    actor_id: uuid.UUID | None,
    source_type: str = SourceType.MANUAL.value,
    source_id: uuid.UUID | None = None,
    unit_cost_cents: int | None = None,
    note: str | None = None,
    occurred_at: datetime | None = None,
    movement_id: uuid.UUID | None = None,
) -> StockMovement:
    """Stock arrives at a location (from a vendor, a purchase order, an opening count)."""
    _positive(quantity)
    part, location = _load(session, part_id, location_id)
    _accepts_stock(location)
    if unit_cost_cents is not None and unit_cost_cents < 0:
        raise ValidationFailed("unit cost cannot be negative", details={"field": "unitCost"})
    return _post(
        session,
        part=part,
        location=location,
        kind=MovementKind.RECEIVE,
        delta=quantity,
        actor_id=actor_id,
        reason=note,
        source_type=_source(source_type),
        source_id=source_id,
        unit_cost_cents=part.unit_cost_cents if unit_cost_cents is None else unit_cost_cents,
        occurred_at=occurred_at,
        movement_id=movement_id,
    )


def consume(
    session: Session,
    *,
    part_id: uuid.UUID,
    location_id: uuid.UUID,
    quantity: int,
    actor_id: uuid.UUID | None,
    ticket_id: uuid.UUID | None = None,
    asset_id: uuid.UUID | None = None,
    note: str | None = None,
    source_type: str | None = None,
    occurred_at: datetime | None = None,
    movement_id: uuid.UUID | None = None,
) -> StockMovement:
    """Parts used (on a ticket, in an asset). Never refused for lack of stock: flagged."""
    _positive(quantity)
    part, location = _load(session, part_id, location_id)
    return _post(
        session,
        part=part,
        location=location,
        kind=MovementKind.CONSUME,
        delta=-quantity,
        actor_id=actor_id,
        reason=note,
        source_type=_source(source_type or (SourceType.TICKET if ticket_id else SourceType.MANUAL)),
        source_id=ticket_id,
        ticket_id=ticket_id,
        asset_id=asset_id,
        unit_cost_cents=part.unit_cost_cents,
        occurred_at=occurred_at,
        movement_id=movement_id,
    )


def return_unused(
    session: Session,
    *,
    part_id: uuid.UUID,
    location_id: uuid.UUID,
    quantity: int,
    actor_id: uuid.UUID | None,
    ticket_id: uuid.UUID | None = None,
    asset_id: uuid.UUID | None = None,
    returns_movement_id: uuid.UUID | None = None,
    unit_cost_cents: int | None = None,
    note: str | None = None,
    source_type: str | None = None,
    occurred_at: datetime | None = None,
    movement_id: uuid.UUID | None = None,
) -> StockMovement:
    """Unused parts go back on a shelf; ``returns_movement_id`` names the consumption."""
    _positive(quantity)
    part, location = _load(session, part_id, location_id)
    _accepts_stock(location)
    return _post(
        session,
        part=part,
        location=location,
        kind=MovementKind.RETURN,
        delta=quantity,
        actor_id=actor_id,
        reason=note,
        source_type=_source(source_type or (SourceType.TICKET if ticket_id else SourceType.MANUAL)),
        source_id=ticket_id,
        ticket_id=ticket_id,
        asset_id=asset_id,
        related_movement_id=returns_movement_id,
        unit_cost_cents=part.unit_cost_cents if unit_cost_cents is None else unit_cost_cents,
        occurred_at=occurred_at,
        movement_id=movement_id,
    )


def transfer(
    session: Session,
    *,
    part_id: uuid.UUID,
    from_location_id: uuid.UUID,
    to_location_id: uuid.UUID,
    quantity: int,
    actor_id: uuid.UUID | None,
    note: str | None = None,
    source_type: str | None = None,
    occurred_at: datetime | None = None,
) -> tuple[StockMovement, StockMovement]:
    """Move stock between two locations: a ``transfer_out`` and a ``transfer_in`` leg
    sharing one ``transfer_id``. The part's total does not change."""
    _positive(quantity)
    if from_location_id == to_location_id:
        raise ValidationFailed(
            "A transfer needs two different locations", details={"field": "toLocationId"}
        )
    part, source = _load(session, part_id, from_location_id)
    target = _location(session, to_location_id, part, field="toLocationId")
    _accepts_stock(target, field="toLocationId")
    transfer_id = uuid7()
    when = occurred_at or utcnow()
    common: dict[str, Any] = {
        "part": part,
        "actor_id": actor_id,
        "reason": note,
        "source_type": _source(source_type or SourceType.MANUAL),
        "transfer_id": transfer_id,
        "unit_cost_cents": part.unit_cost_cents,
        "occurred_at": when,
    }
    out = _post(session, location=source, kind=MovementKind.TRANSFER_OUT, delta=-quantity, **common)
    leg_in = _post(
        session,
        location=target,
        kind=MovementKind.TRANSFER_IN,
        delta=quantity,
        related_movement_id=out.id,
        **common,
    )
    return out, leg_in


def adjust(
    session: Session,
    *,
    part_id: uuid.UUID,
    location_id: uuid.UUID,
    delta: int,
    reason: str,
    actor_id: uuid.UUID | None,
    source_type: str | None = None,
    occurred_at: datetime | None = None,
    movement_id: uuid.UUID | None = None,
) -> StockMovement:
    """A count correction (found three more, one was broken); the reason is required."""
    if not isinstance(delta, int) or isinstance(delta, bool) or delta == 0:
        raise ValidationFailed(
            "An adjustment changes the count: quantity cannot be 0", details={"field": "quantity"}
        )
    if abs(delta) > MAX_QUANTITY:
        raise ValidationFailed(
            f"quantity must be between -{MAX_QUANTITY} and {MAX_QUANTITY}",
            details={"field": "quantity"},
        )
    if not reason or not reason.strip():
        raise ValidationFailed("An adjustment needs a reason", details={"field": "reason"})
    part, location = _load(session, part_id, location_id)
    return _post(
        session,
        part=part,
        location=location,
        kind=MovementKind.ADJUST,
        delta=delta,
        actor_id=actor_id,
        reason=reason.strip(),
        source_type=_source(source_type or SourceType.MANUAL),
        unit_cost_cents=part.unit_cost_cents,
        occurred_at=occurred_at,
        movement_id=movement_id,
    )


def next_status(current: str, total: int, reorder_point: int) -> str:
    """The status a part takes when its total on hand becomes ``total``."""
    if current == PartStatus.DISCONTINUED:
        return current
    if total <= reorder_point:
        return (
            PartStatus.BACKORDERED.value
            if current == PartStatus.BACKORDERED
            else PartStatus.LOW_STOCK.value
        )
    return PartStatus.ACTIVE.value


def replay(session: Session, *, part_id: uuid.UUID, location_id: uuid.UUID | None = None) -> int:
    """The on hand figure recomputed from the ledger alone (for checks and repairs)."""
    stmt = select(func.coalesce(func.sum(StockMovement.quantity), 0)).where(
        StockMovement.part_id == part_id
    )
    if location_id is not None:
        stmt = stmt.where(StockMovement.location_id == location_id)
    return int(session.scalar(stmt) or 0)


def notify_low_stock(
    session: Session, part: Part, *, total: int, actor_id: uuid.UUID | None
) -> int:
    """Tell the part's inventory owner (or, when it has none, the organization's
    admins) that it fell to its reorder point."""
    recipients: list[uuid.UUID]
    if part.owner_user_id is not None:
        recipients = [part.owner_user_id]
    else:
        recipients = list(
            session.scalars(
                select(User.id).where(
                    User.organization_id == part.organization_id,
                    User.role == Role.ORG_ADMIN,
                    User.is_active,
                )
            )
        )
    label = f"{part.name} ({part.part_number})" if part.part_number else part.name
    reorder = f" Reorder quantity: {part.reorder_quantity}." if part.reorder_quantity else ""
    return notify(
        session,
        recipients=recipients,
        event=events.LOW_STOCK,
        title=f"Low stock: {label}",
        body=f"{total} on hand across all locations; the reorder point is "
        f"{part.reorder_point}.{reorder}",
        link=f"/api/inventory/parts/{part.id}",
        actor_id=actor_id,
        organization_id=part.organization_id,
    )


# ------------------------------------------------------------------------ internals


def _positive(quantity: int) -> None:
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        raise ValidationFailed("quantity must be at least 1", details={"field": "quantity"})
    if quantity > MAX_QUANTITY:
        raise ValidationFailed(
            f"quantity must be at most {MAX_QUANTITY}", details={"field": "quantity"}
        )


def _source(value: str) -> str:
    try:
        return SourceType(value).value
    except ValueError as exc:
        raise ValidationFailed(
            f"unknown source type {value!r}", details={"field": "sourceType"}
        ) from exc


def _load(
    session: Session, part_id: uuid.UUID, location_id: uuid.UUID
) -> tuple[Part, StockLocation]:
    part = session.get(Part, part_id)
    if part is None or part.deleted_at is not None:
        raise NotFound("Part")
    return part, _location(session, location_id, part, field="locationId")


def _location(session: Session, location_id: uuid.UUID, part: Part, *, field: str) -> StockLocation:
    location = session.get(StockLocation, location_id)
    if (
        location is None
        or location.deleted_at is not None
        or location.organization_id != part.organization_id
    ):
        raise NotFound("Stock location", details={"field": field})
    return location


def _accepts_stock(location: StockLocation, *, field: str = "locationId") -> None:
    if not location.active:
        raise BusinessRuleViolation(
            f"{location.name} is inactive: it takes no new stock (stock may still leave it)",
            details={"field": field},
        )


def _post(
    session: Session,
    *,
    part: Part,
    location: StockLocation,
    kind: MovementKind,
    delta: int,
    actor_id: uuid.UUID | None,
    reason: str | None,
    source_type: str,
    source_id: uuid.UUID | None = None,
    ticket_id: uuid.UUID | None = None,
    asset_id: uuid.UUID | None = None,
    transfer_id: uuid.UUID | None = None,
    related_movement_id: uuid.UUID | None = None,
    unit_cost_cents: int | None = None,
    occurred_at: datetime | None = None,
    movement_id: uuid.UUID | None = None,
) -> StockMovement:
    """Record one movement and apply it to the materialised figures, atomically."""
    if occurred_at is not None and occurred_at.tzinfo is None:
        raise ValidationFailed("occurredAt needs a time zone", details={"field": "occurredAt"})
    # Pending rows (a part created in this request) must exist before the updates below.
    session.flush()
    org_id = part.organization_id
    now = utcnow()
    # Take the organization's change counter first, as every flush does, so the row
    # locks below are always taken in the same order (no deadlock with other writers).
    last = allocate_change_positions(session, org_id, 2)
    # The part row: atomic add, and its lock serialises the movements of this part so
    # the status crossing below is decided on the committed total.
    total, status, reorder_point = session.execute(
        update(Part)
        .where(Part.id == part.id)
        .values(on_hand=Part.on_hand + delta, change_position=last - 1, updated_at=now)
        .returning(Part.on_hand, Part.status, Part.reorder_point)
        .execution_options(synchronize_session=False)
    ).one()
    balance = _add_to_level(session, org_id, part.id, location.id, delta, last, now)
    new_status = next_status(status, int(total), int(reorder_point))
    if new_status != status:
        session.execute(
            update(Part)
            .where(Part.id == part.id)
            .values(status=new_status)
            .execution_options(synchronize_session=False)
        )
    flagged = delta < 0 and balance < 0
    movement = StockMovement(
        id=movement_id or uuid7(),
        organization_id=org_id,
        part_id=part.id,
        location_id=location.id,
        kind=kind.value,
        quantity=delta,
        reason=reason,
        actor_id=actor_id,
        occurred_at=occurred_at or now,
        created_at=now,
        source_type=source_type,
        source_id=source_id,
        ticket_id=ticket_id,
        asset_id=asset_id,
        transfer_id=transfer_id,
        related_movement_id=related_movement_id,
        unit_cost_cents=unit_cost_cents,
        balance_after=balance,
        flagged_negative=flagged,
        review_status=ReviewStatus.OPEN.value if flagged else None,
    )
    session.add(movement)
    session.flush()
    # The part object in this session now matches its row.
    set_committed_value(part, "on_hand", int(total))
    set_committed_value(part, "status", new_status)
    set_committed_value(part, "change_position", last - 1)
    set_committed_value(part, "updated_at", now)
    if new_status == PartStatus.LOW_STOCK and status != PartStatus.LOW_STOCK:
        notify_low_stock(session, part, total=int(total), actor_id=actor_id)
    return movement


def _add_to_level(
    session: Session,
    org_id: uuid.UUID,
    part_id: uuid.UUID,
    location_id: uuid.UUID,
    delta: int,
    position: int,
    now: datetime,
) -> int:
    """``quantity = quantity + delta`` for the pair, creating the row on first use;
    returns the new quantity. One statement, atomic on both backends."""
    table = StockLevel.__table__
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(table)  # type: ignore[arg-type]
        .values(
            id=uuid7(),
            organization_id=org_id,
            part_id=part_id,
            location_id=location_id,
            quantity=delta,
            change_position=position,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_update(
            index_elements=[table.c.part_id, table.c.location_id],
            set_={
                "quantity": table.c.quantity + delta,
                "change_position": position,
                "updated_at": now,
            },
        )
        .returning(table.c.quantity)
    )
    balance = int(session.execute(stmt).scalar_one())
    # A StockLevel loaded earlier in this session is stale now.
    for obj in list(session.identity_map.values()):
        if (
            isinstance(obj, StockLevel)
            and obj.part_id == part_id
            and obj.location_id == location_id
        ):
            session.expire(obj)
    return balance
