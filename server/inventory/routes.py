"""Parts, stock locations, movements and the negative-stock review queue."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import Query

from common.enums import Role
from server.auth.deps import RequestContext, access
from server.core.listing import ListQuery, apply_sort, paginate, text_filter
from server.core.routing import api_router
from server.core.schemas import DataResponse, ListResponse
from server.inventory import service
from server.inventory.models import Part, StockLevel, StockLocation, StockMovement
from server.inventory.schemas import (
    LocationCreate,
    LocationKindValue,
    LocationOut,
    LocationUpdate,
    MovementCreate,
    MovementKindValue,
    MovementOut,
    PartCreate,
    PartOut,
    PartStatusValue,
    PartUpdate,
    ReviewResolve,
    StockLevelOut,
)

TAGS = ["Inventory"]
parts = api_router(prefix="/api/inventory/parts", tags=TAGS)
locations = api_router(prefix="/api/inventory/locations", tags=TAGS)
movements = api_router(prefix="/api/inventory/movements", tags=TAGS)
review = api_router(prefix="/api/inventory/review", tags=TAGS)

# Staff read inventory (requesters do not); technicians move stock in the field;
# agents and admins keep the catalogue, the locations and the counts.
Staff = Annotated[
    RequestContext, access("inventory:read", Role.ORG_ADMIN, Role.AGENT, Role.TECHNICIAN)
]
FieldWork = Annotated[
    RequestContext, access("inventory:write", Role.ORG_ADMIN, Role.AGENT, Role.TECHNICIAN)
]
Desk = Annotated[RequestContext, access("inventory:write", Role.ORG_ADMIN, Role.AGENT)]


def _tiebreak(sort: str | None) -> Any:
    """Movements recorded together (a transfer's legs) keep their order, in the
    direction of the first sort key (newest first by default)."""
    first = (sort or "-").split(",")[0].strip()
    return StockMovement.id.desc() if first.startswith("-") else StockMovement.id.asc()


# ----------------------------------------------------------------------------- parts


@parts.get(
    "",
    summary="List tenant-scoped parts inventory records with department isolation.",
)
def list_parts(
    ctx: Staff,
    params: ListQuery,
    category: Annotated[str | None, Query(max_length=80)] = None,
    status: Annotated[PartStatusValue | None, Query()] = None,
    low_stock: Annotated[
        bool | None, Query(alias="lowStock", description="At or below the reorder point")
    ] = None,
    department_id: Annotated[uuid.UUID | None, Query(alias="departmentId")] = None,
    location_id: Annotated[
        uuid.UUID | None,
        Query(alias="locationId", description="Only parts with stock at this location"),
    ] = None,
    vendor_id: Annotated[uuid.UUID | None, Query(alias="vendorId")] = None,
) -> ListResponse[PartOut]:
    scope = service.part_scope(ctx.session, ctx.caller)
    stmt = service.query_parts(
        scope,
        q=params.q,
        category=category,
        status=status,
        low_stock=low_stock,
        department_id=department_id,
        location_id=location_id,
        vendor_id=vendor_id,
    )
    stmt = apply_sort(stmt, params.sort, service.PART_SORT_FIELDS, [Part.name], Part.id)
    rows, pagination = paginate(ctx.session, stmt, params, scalars=False)
    return ListResponse(
        data=[service.part_out(part, location_quantity=qty) for part, qty in rows],
        pagination=pagination,
    )


@parts.post("", status_code=201, summary="Create a tenant-scoped part inventory record.")
def create_part(ctx: Desk, body: PartCreate) -> DataResponse[PartOut]:
    org_id = ctx.resolve_organization(body.organization_id)
    scope = service.part_scope(ctx.session, ctx.caller)
    part = service.create_part(
        ctx.session, caller=ctx.caller, scope=scope, organization_id=org_id, data=body
    )
    return DataResponse(data=service.part_out(part))


@parts.get("/{id}", summary="View one part with its total on hand.")
def get_part(ctx: Staff, id: uuid.UUID) -> DataResponse[PartOut]:
    scope = service.part_scope(ctx.session, ctx.caller)
    return DataResponse(data=service.part_out(service.get_part(ctx.session, scope, id)))


@parts.patch("/{id}", summary="Update a part's catalogue entry (never its quantities).")
def update_part(ctx: Desk, id: uuid.UUID, body: PartUpdate) -> DataResponse[PartOut]:
    scope = service.part_scope(ctx.session, ctx.caller)
    part = service.get_part(ctx.session, scope, id)
    part = service.update_part(ctx.session, caller=ctx.caller, scope=scope, part=part, data=body)
    return DataResponse(data=service.part_out(part))


@parts.get("/{id}/stock", summary="A part's on hand at each location.")
def get_part_stock(ctx: Staff, id: uuid.UUID, params: ListQuery) -> ListResponse[StockLevelOut]:
    scope = service.part_scope(ctx.session, ctx.caller)
    service.get_part(ctx.session, scope, id)
    stmt = service.query_part_stock(scope, part_id=id)
    stmt = apply_sort(
        stmt, params.sort, service.LEVEL_SORT_FIELDS, [StockLocation.name], StockLevel.id
    )
    rows, pagination = paginate(ctx.session, stmt, params, scalars=False)
    return ListResponse(data=[service.level_out(r) for r in rows], pagination=pagination)


@parts.get("/{id}/movements", summary="A part's ledger, newest first.")
def get_part_movements(ctx: Staff, id: uuid.UUID, params: ListQuery) -> ListResponse[MovementOut]:
    scope = service.part_scope(ctx.session, ctx.caller)
    service.get_part(ctx.session, scope, id)
    stmt = service.query_movements(scope, part_id=id)
    stmt = apply_sort(
        stmt,
        params.sort,
        service.MOVEMENT_SORT_FIELDS,
        [StockMovement.occurred_at.desc()],
        _tiebreak(params.sort),
    )
    rows, pagination = paginate(ctx.session, stmt, params, scalars=False)
    return ListResponse(data=[service.movement_row_out(r) for r in rows], pagination=pagination)


# ------------------------------------------------------------------------- locations


@locations.get("", summary="List stock locations: warehouses, closets, vans and bags.")
def list_locations(
    ctx: Staff,
    params: ListQuery,
    kind: Annotated[LocationKindValue | None, Query()] = None,
    site_id: Annotated[uuid.UUID | None, Query(alias="siteId")] = None,
    building_id: Annotated[uuid.UUID | None, Query(alias="buildingId")] = None,
    holder_user_id: Annotated[uuid.UUID | None, Query(alias="holderUserId")] = None,
    active: Annotated[bool | None, Query()] = None,
) -> ListResponse[LocationOut]:
    stmt = service.query_locations(
        q=params.q,
        kind=kind,
        site_id=site_id,
        building_id=building_id,
        holder_user_id=holder_user_id,
        active=active,
    )
    stmt = apply_sort(
        stmt, params.sort, service.LOCATION_SORT_FIELDS, [StockLocation.name], StockLocation.id
    )
    rows, pagination = paginate(ctx.session, stmt, params)
    return ListResponse(data=[LocationOut.model_validate(r) for r in rows], pagination=pagination)


@locations.post("", status_code=201, summary="Create a stock location.")
def create_location(ctx: Desk, body: LocationCreate) -> DataResponse[LocationOut]:
    org_id = ctx.resolve_organization(body.organization_id)
    location = service.create_location(
        ctx.session, caller=ctx.caller, organization_id=org_id, data=body
    )
    return DataResponse(data=LocationOut.model_validate(location))


@locations.get("/{id}", summary="View one stock location.")
def get_location(ctx: Staff, id: uuid.UUID) -> DataResponse[LocationOut]:
    return DataResponse(data=LocationOut.model_validate(service.get_location(ctx.session, id)))


@locations.patch("/{id}", summary="Update a stock location (deactivate it once it is empty).")
def update_location(ctx: Desk, id: uuid.UUID, body: LocationUpdate) -> DataResponse[LocationOut]:
    location = service.update_location(
        ctx.session, caller=ctx.caller, location=service.get_location(ctx.session, id), data=body
    )
    return DataResponse(data=LocationOut.model_validate(location))


@locations.get("/{id}/stock", summary="What a location holds (the parts the caller may see).")
def get_location_stock(ctx: Staff, id: uuid.UUID, params: ListQuery) -> ListResponse[StockLevelOut]:
    service.get_location(ctx.session, id)
    scope = service.part_scope(ctx.session, ctx.caller)
    stmt = service.query_part_stock(scope).where(StockLevel.location_id == id)
    if params.q:
        stmt = stmt.where(text_filter(params.q, Part.name, Part.part_number))
    stmt = apply_sort(stmt, params.sort, service.LEVEL_SORT_FIELDS, [Part.name], StockLevel.id)
    rows, pagination = paginate(ctx.session, stmt, params, scalars=False)
    return ListResponse(data=[service.level_out(r) for r in rows], pagination=pagination)


# ------------------------------------------------------------------------- movements


@movements.post(
    "",
    status_code=201,
    summary="Record a stock movement: receive, consume, return, transfer or adjust.",
)
def create_movement(ctx: FieldWork, body: MovementCreate) -> DataResponse[list[MovementOut]]:
    scope = service.part_scope(ctx.session, ctx.caller)
    moved = service.record_movement(ctx.session, caller=ctx.caller, scope=scope, data=body)
    return DataResponse(data=[service.movement_out_loaded(ctx.session, m) for m in moved])


@movements.get("", summary="Search the stock ledger.")
def list_movements(
    ctx: Staff,
    params: ListQuery,
    part_id: Annotated[uuid.UUID | None, Query(alias="partId")] = None,
    location_id: Annotated[uuid.UUID | None, Query(alias="locationId")] = None,
    kind: Annotated[MovementKindValue | None, Query()] = None,
    ticket_id: Annotated[uuid.UUID | None, Query(alias="ticketId")] = None,
    asset_id: Annotated[uuid.UUID | None, Query(alias="assetId")] = None,
    actor_id: Annotated[uuid.UUID | None, Query(alias="actorId")] = None,
    source_type: Annotated[str | None, Query(alias="sourceType", max_length=24)] = None,
    source_id: Annotated[uuid.UUID | None, Query(alias="sourceId")] = None,
    flagged: Annotated[bool | None, Query(description="Took a location below zero")] = None,
    occurred_from: Annotated[datetime | None, Query(alias="from")] = None,
    occurred_to: Annotated[datetime | None, Query(alias="to")] = None,
) -> ListResponse[MovementOut]:
    scope = service.part_scope(ctx.session, ctx.caller)
    stmt = service.query_movements(
        scope,
        part_id=part_id,
        location_id=location_id,
        kind=kind,
        ticket_id=ticket_id,
        asset_id=asset_id,
        actor_id=actor_id,
        source_type=source_type,
        source_id=source_id,
        flagged=flagged,
        occurred_from=occurred_from,
        occurred_to=occurred_to,
        q=params.q,
    )
    stmt = apply_sort(
        stmt,
        params.sort,
        service.MOVEMENT_SORT_FIELDS,
        [StockMovement.occurred_at.desc()],
        _tiebreak(params.sort),
    )
    rows, pagination = paginate(ctx.session, stmt, params, scalars=False)
    return ListResponse(data=[service.movement_row_out(r) for r in rows], pagination=pagination)


# ---------------------------------------------------------------------------- review


@review.get("", summary="Movements that took a location below zero, for review.")
def list_review(
    ctx: Desk,
    params: ListQuery,
    status: Annotated[
        str, Query(pattern="^(open|resolved|all)$", description="open, resolved or all")
    ] = "open",
    location_id: Annotated[uuid.UUID | None, Query(alias="locationId")] = None,
    part_id: Annotated[uuid.UUID | None, Query(alias="partId")] = None,
) -> ListResponse[MovementOut]:
    scope = service.part_scope(ctx.session, ctx.caller)
    stmt = service.query_movements(
        scope,
        flagged=True,
        review_status=None if status == "all" else status,
        location_id=location_id,
        part_id=part_id,
        q=params.q,
    )
    stmt = apply_sort(
        stmt,
        params.sort,
        service.MOVEMENT_SORT_FIELDS,
        [StockMovement.occurred_at.desc()],
        _tiebreak(params.sort),
    )
    rows, pagination = paginate(ctx.session, stmt, params, scalars=False)
    return ListResponse(data=[service.movement_row_out(r) for r in rows], pagination=pagination)


@review.post("/{id}/resolve", summary="Mark a flagged movement as reviewed.")
def resolve_review(
    ctx: Desk, id: uuid.UUID, body: ReviewResolve | None = None
) -> DataResponse[MovementOut]:
    scope = service.part_scope(ctx.session, ctx.caller)
    movement = service.resolve_review(
        ctx.session,
        caller=ctx.caller,
        scope=scope,
        movement_id=id,
        note=body.note if body else None,
    )
    return DataResponse(data=service.movement_out_loaded(ctx.session, movement))


ROUTERS = (parts, locations, movements, review)
