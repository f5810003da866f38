"""Parts used on tickets: a consumption linked to the ticket (and the asset it went
into), the ticket's parts cost, and the history of both.

``POST /api/tickets/{id}/parts`` takes stock off the shelf it came from (a
``consume`` movement with the ticket's id), adds quantity x unit cost to
``ticket.parts_cost_cents``, writes ``part_used`` on the ticket's timeline and, when
an asset is named, on the asset's. Its reverse,
``POST /api/tickets/{id}/parts/{movementId}/return``, puts unused units back (a
``return`` movement naming the consumption), takes their cost off the ticket and
writes ``part_returned``. A closed ticket takes no new parts; unused parts may still
come back from it, since they really are back on the shelf.

Who: staff who can see the ticket (``server.tickets.visibility.get_visible``).
Technicians take parts from shared locations and their own van or bag. On a ticket
the caller can see, every part used on it is listed, whatever its department.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, cast

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from common.enums import Role
from common.errors import ErrorCode
from common.workflow import StatusCategory
from server.assets import service as assets_service
from server.assets.models import Asset
from server.auth.deps import RequestContext, access
from server.core.db import utcnow
from server.core.errors import ApiError, BusinessRuleViolation, NotFound
from server.core.listing import ListQuery, apply_sort, paginate
from server.core.routing import api_router
from server.core.schemas import DataResponse, ListResponse
from server.core.tenancy import Caller, allocate_change_positions
from server.inventory import ledger, service
from server.inventory.models import MovementKind, Part, StockLocation, StockMovement
from server.inventory.schemas import (
    TicketPartCreate,
    TicketPartOut,
    TicketPartResult,
    TicketPartReturn,
)
from server.tickets import timeline
from server.tickets.models import Ticket
from server.tickets.timeline import EventKind
from server.tickets.visibility import get_visible

SORT_FIELDS = {"occurredAt": StockMovement.occurred_at, "partName": Part.name}


# --------------------------------------------------------------------------- service


def _refuse_if_closed(ticket: Ticket) -> None:
    if ticket.status_category == StatusCategory.CLOSED:
        raise ApiError(
            f"{ticket.number} is {ticket.status}: reopen it before adding parts",
            code=ErrorCode.TICKET_ALREADY_CLOSED,
            status_code=409,
        )


def _add_cost(session: Session, ticket: Ticket, cents: int) -> int:
    """``parts_cost_cents = parts_cost_cents + cents``: atomic, so concurrent parts on
    one ticket all count. Returns the new total."""
    position = allocate_change_positions(session, ticket.organization_id, 1)
    now = utcnow()
    total = session.execute(
        update(Ticket)
        .where(Ticket.id == ticket.id)
        .values(
            parts_cost_cents=Ticket.parts_cost_cents + cents,
            change_position=position,
            updated_at=now,
        )
        .returning(Ticket.parts_cost_cents)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    set_committed_value(ticket, "parts_cost_cents", int(total))
    set_committed_value(ticket, "change_position", position)
    set_committed_value(ticket, "updated_at", now)
    return int(total)


def _asset_event(
    session: Session,
    asset: Asset | None,
    kind: str,
    *,
    caller: Caller,
    ticket: Ticket,
    **data: Any,
) -> None:
    if asset is not None:
        assets_service.record_event(
            session, asset, kind, caller.user_id, ticket_id=ticket.id, **data
        )


def add_part(
    session: Session,
    *,
    caller: Caller,
    scope: service.PartScope,
    ticket: Ticket,
    data: TicketPartCreate,
    movement_id: uuid.UUID | None = None,
    occurred_at: datetime | None = None,
) -> StockMovement:
    _refuse_if_closed(ticket)
    part = service.get_part(session, scope, data.part_id)
    location = service.get_location(session, data.location_id)
    service.check_may_take_from(session, caller, location)
    asset = service.check_asset(session, data.asset_id)
    movement = ledger.consume(
        session,
        part_id=part.id,
        location_id=location.id,
        quantity=data.quantity,
        actor_id=caller.user_id,
        ticket_id=ticket.id,
        asset_id=data.asset_id,
        note=data.note,
        movement_id=movement_id,
        occurred_at=occurred_at,
    )
    _add_cost(session, ticket, data.quantity * (movement.unit_cost_cents or 0))
    details: dict[str, Any] = {
        "movementId": str(movement.id),
        "partId": str(part.id),
        "partName": part.name,
        "partNumber": part.part_number,
        "locationId": str(location.id),
        "locationName": location.name,
        "quantity": data.quantity,
        "assetId": str(data.asset_id) if data.asset_id else None,
    }
    timeline.record(session, ticket, EventKind.PART_USED, actor_id=caller.user_id, **details)
    _asset_event(session, asset, "part_used", caller=caller, ticket=ticket, **details)
    session.flush()
    return movement


def return_part(
    session: Session,
    *,
    caller: Caller,
    ticket: Ticket,
    movement_id: uuid.UUID,
    data: TicketPartReturn,
    return_id: uuid.UUID | None = None,
    occurred_at: datetime | None = None,
) -> StockMovement:
    # The organization's change counter first (as every write takes it), so the check
    # of what is left to return and the return itself cannot interleave with another.
    allocate_change_positions(session, ticket.organization_id, 0)
    consumption = session.scalars(
        select(StockMovement)
        .where(
            StockMovement.id == movement_id,
            StockMovement.ticket_id == ticket.id,
            StockMovement.kind == MovementKind.CONSUME.value,
        )
        .with_for_update()
    ).one_or_none()
    if consumption is None:
        raise NotFound("Part used on this ticket")
    part = session.get(Part, consumption.part_id)
    assert part is not None
    returned = _returned(session, consumption.id)
    left = -consumption.quantity - returned
    if data.quantity > left:
        raise BusinessRuleViolation(
            f"Only {left} of the {-consumption.quantity} used can still be returned",
            details={"field": "quantity", "returnable": left},
        )
    location = service.get_location(session, data.location_id or consumption.location_id)
    asset = session.get(Asset, consumption.asset_id) if consumption.asset_id else None
    movement = ledger.return_unused(
        session,
        part_id=part.id,
        location_id=location.id,
        quantity=data.quantity,
        actor_id=caller.user_id,
        ticket_id=ticket.id,
        asset_id=consumption.asset_id,
        returns_movement_id=consumption.id,
        unit_cost_cents=consumption.unit_cost_cents,
        note=data.note,
        movement_id=return_id,
        occurred_at=occurred_at,
    )
    _add_cost(session, ticket, -data.quantity * (consumption.unit_cost_cents or 0))
    details: dict[str, Any] = {
        "movementId": str(movement.id),
        "consumptionId": str(consumption.id),
        "partId": str(part.id),
        "partName": part.name,
        "partNumber": part.part_number,
        "locationId": str(location.id),
        "locationName": location.name,
        "quantity": data.quantity,
        "assetId": str(consumption.asset_id) if consumption.asset_id else None,
    }
    timeline.record(session, ticket, EventKind.PART_RETURNED, actor_id=caller.user_id, **details)
    _asset_event(session, asset, "part_returned", caller=caller, ticket=ticket, **details)
    session.flush()
    return movement


def _returned(session: Session, consumption_id: uuid.UUID) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(StockMovement.quantity), 0)).where(
            StockMovement.related_movement_id == consumption_id,
            StockMovement.kind == MovementKind.RETURN.value,
        )
    )
    return int(total or 0)


def query_ticket_parts(ticket_id: uuid.UUID) -> Select[Any]:
    """Rows of (consumption, part name, part number, location name, units returned)."""
    returns = (
        select(
            StockMovement.related_movement_id.label("consumption_id"),
            func.sum(StockMovement.quantity).label("returned"),
        )
        .where(
            StockMovement.ticket_id == ticket_id,
            StockMovement.kind == MovementKind.RETURN.value,
        )
        .group_by(StockMovement.related_movement_id)
        .subquery()
    )
    return cast(
        Select[Any],
        select(
            StockMovement,
            Part.name,
            Part.part_number,
            StockLocation.name,
            func.coalesce(returns.c.returned, 0),
        )
        .join(Part, Part.id == StockMovement.part_id)
        .join(StockLocation, StockLocation.id == StockMovement.location_id)
        .outerjoin(returns, returns.c.consumption_id == StockMovement.id)
        .where(
            StockMovement.ticket_id == ticket_id,
            StockMovement.kind == MovementKind.CONSUME.value,
        ),
    )


def ticket_part_out(
    movement: StockMovement,
    *,
    part_name: str,
    part_number: str | None,
    location_name: str,
    returned: int,
) -> TicketPartOut:
    used = -movement.quantity
    net = used - int(returned)
    assert movement.ticket_id is not None
    return TicketPartOut(
        id=movement.id,
        ticket_id=movement.ticket_id,
        part_id=movement.part_id,
        part_name=part_name,
        part_number=part_number,
        location_id=movement.location_id,
        location_name=location_name,
        asset_id=movement.asset_id,
        quantity=used,
        returned_quantity=int(returned),
        net_quantity=net,
        unit_cost_cents=movement.unit_cost_cents,
        cost_cents=net * (movement.unit_cost_cents or 0),
        note=movement.reason,
        actor_id=movement.actor_id,
        occurred_at=movement.occurred_at,
        flagged_negative=movement.flagged_negative,
    )


def _result(
    session: Session, ticket: Ticket, consumption_id: uuid.UUID, movement: StockMovement
) -> TicketPartResult:
    row = session.execute(
        query_ticket_parts(ticket.id).where(StockMovement.id == consumption_id)
    ).one()
    consumption, part_name, part_number, location_name, returned = row
    return TicketPartResult(
        part=ticket_part_out(
            consumption,
            part_name=part_name,
            part_number=part_number,
            location_name=location_name,
            returned=returned,
        ),
        movement=service.movement_out_loaded(session, movement),
        ticket_parts_cost_cents=ticket.parts_cost_cents,
    )


# ---------------------------------------------------------------------------- routes

router = api_router(prefix="/api/tickets", tags=["Parts on tickets"])

Staff = Annotated[
    RequestContext, access("inventory:read", Role.ORG_ADMIN, Role.AGENT, Role.TECHNICIAN)
]
FieldWork = Annotated[
    RequestContext, access("inventory:write", Role.ORG_ADMIN, Role.AGENT, Role.TECHNICIAN)
]


@router.get("/{id}/parts", summary="The parts used on a ticket, with what came back.")
def list_ticket_parts(ctx: Staff, id: uuid.UUID, params: ListQuery) -> ListResponse[TicketPartOut]:
    get_visible(ctx.session, ctx.caller, id)
    stmt = apply_sort(
        query_ticket_parts(id),
        params.sort,
        SORT_FIELDS,
        [StockMovement.occurred_at],
        StockMovement.id,
    )
    rows, pagination = paginate(ctx.session, stmt, params, scalars=False)
    data = [
        ticket_part_out(m, part_name=pn, part_number=pnum, location_name=ln, returned=r)
        for m, pn, pnum, ln, r in rows
    ]
    return ListResponse(data=data, pagination=pagination)


@router.post(
    "/{id}/parts",
    status_code=201,
    summary="Record parts used on a ticket (taken off the shelf they came from).",
)
def create_ticket_part(
    ctx: FieldWork, id: uuid.UUID, body: TicketPartCreate
) -> DataResponse[TicketPartResult]:
    ticket = get_visible(ctx.session, ctx.caller, id)
    scope = service.part_scope(ctx.session, ctx.caller)
    movement = add_part(ctx.session, caller=ctx.caller, scope=scope, ticket=ticket, data=body)
    return DataResponse(data=_result(ctx.session, ticket, movement.id, movement))


@router.post(
    "/{id}/parts/{movement_id}/return",
    status_code=201,
    summary="Return unused parts from a ticket to a shelf.",
)
def return_ticket_part(
    ctx: FieldWork, id: uuid.UUID, movement_id: uuid.UUID, body: TicketPartReturn
) -> DataResponse[TicketPartResult]:
    ticket = get_visible(ctx.session, ctx.caller, id)
    movement = return_part(
        ctx.session,
        caller=ctx.caller,
        ticket=ticket,
        movement_id=movement_id,
        data=body,
    )
    assert movement.related_movement_id is not None
    return DataResponse(data=_result(ctx.session, ticket, movement.related_movement_id, movement))
