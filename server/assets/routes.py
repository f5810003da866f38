from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import Query

from common.enums import Role
from server.assets import audits, service
from server.assets.models import AssetStatusLabel, AssetType, Person
from server.assets.schemas import (
    AssetCreate,
    AssetEventOut,
    AssetOut,
    AssetTicketOut,
    AssetTypeCreate,
    AssetTypeOut,
    AssetTypeUpdate,
    AssetUpdate,
    AuditConfirmIn,
    AuditIn,
    CheckinIn,
    CheckoutIn,
    PersonCreate,
    PersonKind,
    PersonOut,
    PersonUpdate,
    RoomAssetSummary,
    RoomAuditOut,
    RoomAuditSummaryOut,
    StatusLabelCreate,
    StatusLabelOut,
    StatusLabelUpdate,
    StatusType,
    TicketLinkIn,
)
from server.auth.deps import RequestContext, access
from server.core.listing import ListQuery, apply_sort, paginate
from server.core.routing import api_router
from server.core.schemas import DataResponse, ListResponse
from server.sites import service as sites

TAG = "Assets"
assets = api_router(prefix="/api/assets", tags=[TAG])
asset_types = api_router(prefix="/api/asset-types", tags=[TAG])
asset_statuses = api_router(prefix="/api/asset-statuses", tags=[TAG])
people = api_router(prefix="/api/people", tags=[TAG])
room_assets = api_router(prefix="/api/rooms", tags=[TAG])
room_audits = api_router(prefix="/api/room-audits", tags=[TAG])

STAFF = service.STAFF
# Everyone signed in may call the asset reads; a requester sees only the devices
# assigned to them (service.visible_filter). Everything else is staff-only.
Reader = Annotated[RequestContext, access("assets:read")]
StaffReader = Annotated[RequestContext, access("assets:read", *STAFF)]
Writer = Annotated[RequestContext, access("assets:write", *STAFF)]
Admin = Annotated[RequestContext, access("assets:write", Role.ORG_ADMIN)]

IdQuery = lambda alias: Query(alias=alias)  # noqa: E731


# ------------------------------------------------------------------------- assets


@assets.get("", summary="List assets (exact tag or serial lookup, filters, search).")
def list_assets(
    ctx: Reader,
    params: ListQuery,
    tag: Annotated[str | None, Query(max_length=64, description="Exact asset tag")] = None,
    serial: Annotated[str | None, Query(max_length=100, description="Exact serial")] = None,
    asset_type_id: Annotated[uuid.UUID | None, IdQuery("assetTypeId")] = None,
    status_label_id: Annotated[uuid.UUID | None, IdQuery("statusLabelId")] = None,
    status_type: Annotated[StatusType | None, Query(alias="statusType")] = None,
    site_id: Annotated[uuid.UUID | None, IdQuery("siteId")] = None,
    building_id: Annotated[uuid.UUID | None, IdQuery("buildingId")] = None,
    room_id: Annotated[uuid.UUID | None, IdQuery("roomId")] = None,
    assigned_person_id: Annotated[uuid.UUID | None, IdQuery("assignedPersonId")] = None,
    department_id: Annotated[uuid.UUID | None, IdQuery("departmentId")] = None,
    vendor_id: Annotated[uuid.UUID | None, IdQuery("vendorId")] = None,
    warranty_before: Annotated[
        date | None, Query(alias="warrantyBefore", description="Warranty ends before this day")
    ] = None,
    checked_out: Annotated[bool | None, Query(alias="checkedOut")] = None,
) -> ListResponse[AssetOut]:
    data, pagination = service.list_assets(
        ctx.session,
        ctx.caller,
        params,
        tag=tag,
        serial=serial,
        q=params.q,
        asset_type_id=asset_type_id,
        status_label_id=status_label_id,
        status_type=status_type,
        site_id=site_id,
        building_id=building_id,
        room_id=room_id,
        assigned_person_id=assigned_person_id,
        department_id=department_id,
        vendor_id=vendor_id,
        warranty_before=warranty_before,
        checked_out=checked_out,
    )
    return ListResponse(data=data, pagination=pagination)


@assets.post("", status_code=201, summary="Create an asset.")
def create_asset(ctx: Writer, body: AssetCreate) -> DataResponse[AssetOut]:
    org_id = ctx.resolve_organization(body.organization_id)
    asset = service.create_asset(ctx.session, caller=ctx.caller, organization_id=org_id, data=body)
    return DataResponse(data=service.read_asset(ctx.session, asset.id, ctx.caller))


@assets.get("/{id}", summary="View one asset.")
def get_asset(ctx: Reader, id: uuid.UUID) -> DataResponse[AssetOut]:
    return DataResponse(data=service.read_asset(ctx.session, id, ctx.caller))


@assets.patch("/{id}", summary="Update an asset (moves and status changes go in its history).")
def update_asset(ctx: Writer, id: uuid.UUID, body: AssetUpdate) -> DataResponse[AssetOut]:
    asset = service.get_asset(ctx.session, id)
    service.update_asset(ctx.session, caller=ctx.caller, asset=asset, data=body)
    return DataResponse(data=service.read_asset(ctx.session, id, ctx.caller))


@assets.post("/{id}/checkout", summary="Check an asset out to a person.")
def checkout(ctx: Writer, id: uuid.UUID, body: CheckoutIn) -> DataResponse[AssetOut]:
    asset = service.get_asset(ctx.session, id)
    service.checkout(ctx.session, caller=ctx.caller, asset=asset, data=body)
    return DataResponse(data=service.read_asset(ctx.session, id, ctx.caller))


@assets.post("/{id}/checkin", summary="Check an asset back in.")
def checkin(ctx: Writer, id: uuid.UUID, body: CheckinIn) -> DataResponse[AssetOut]:
    asset = service.get_asset(ctx.session, id)
    service.checkin(ctx.session, caller=ctx.caller, asset=asset, data=body)
    return DataResponse(data=service.read_asset(ctx.session, id, ctx.caller))


@assets.get(
    "/{id}/timeline",
    summary="An asset's history: tickets, moves, check-outs, status changes, parts used.",
)
def asset_timeline(
    ctx: StaffReader,
    id: uuid.UUID,
    params: ListQuery,
    kind: Annotated[str | None, Query(max_length=32)] = None,
) -> ListResponse[AssetEventOut]:
    service.get_asset(ctx.session, id)
    rows, pagination = paginate(ctx.session, service.query_events(id, kind=kind), params)
    return ListResponse(data=[AssetEventOut.model_validate(e) for e in rows], pagination=pagination)


@assets.get("/{id}/tickets", summary="List tickets related to an asset.")
def asset_tickets(ctx: Reader, id: uuid.UUID, params: ListQuery) -> ListResponse[AssetTicketOut]:
    service.get_asset(ctx.session, id, caller=ctx.caller)
    stmt = service.query_asset_tickets(id, ctx.caller)
    rows, pagination = paginate(ctx.session, stmt, params, scalars=False)
    data = [
        AssetTicketOut.model_validate(
            {**{k: getattr(t, k) for k in AssetTicketOut.model_fields if k != "linked_at"},
             "linked_at": linked_at}
        )
        for t, linked_at in rows
    ]  # fmt: skip
    return ListResponse(data=data, pagination=pagination)


@assets.post("/{id}/tickets", status_code=201, summary="Link a ticket to the asset.")
def link_ticket(ctx: Writer, id: uuid.UUID, body: TicketLinkIn) -> DataResponse[AssetTicketOut]:
    asset = service.get_asset(ctx.session, id)
    ticket = service.get_visible_ticket(ctx.session, ctx.caller, body.ticket_id)
    service.link_ticket_assets(ctx.session, ticket, [asset.id], ctx.caller.user_id)
    rows = ctx.session.execute(
        service.query_asset_tickets(id, ctx.caller).where(
            service.Ticket.id == ticket.id  # the link just made
        )
    ).all()
    t, linked_at = rows[0]
    data = {k: getattr(t, k) for k in AssetTicketOut.model_fields if k != "linked_at"}
    return DataResponse(data=AssetTicketOut.model_validate({**data, "linked_at": linked_at}))


@assets.delete("/{id}/tickets/{ticketId}", status_code=204, summary="Unlink a ticket.")
def unlink_ticket(ctx: Writer, id: uuid.UUID, ticketId: uuid.UUID) -> None:
    asset = service.get_asset(ctx.session, id)
    ticket = service.get_visible_ticket(ctx.session, ctx.caller, ticketId)
    service.unlink_ticket_asset(ctx.session, ticket, asset.id, ctx.caller.user_id)


# ---------------------------------------------------------------- types, statuses


@asset_types.get("", summary="List the organization's asset types.")
def list_types(
    ctx: Reader,
    params: ListQuery,
    is_active: Annotated[bool | None, Query(alias="isActive")] = None,
) -> ListResponse[AssetTypeOut]:
    service.ensure_defaults(ctx.session, ctx.organization_id)
    stmt = service.query_types(q=params.q, is_active=is_active)
    stmt = apply_sort(
        stmt, params.sort, service.TYPE_SORT_FIELDS, [AssetType.sort_order, AssetType.name],
        AssetType.id,
    )  # fmt: skip
    rows, pagination = paginate(ctx.session, stmt, params)
    return ListResponse(data=[AssetTypeOut.model_validate(t) for t in rows], pagination=pagination)


@asset_types.post("", status_code=201, summary="Add an asset type.")
def create_type(ctx: Admin, body: AssetTypeCreate) -> DataResponse[AssetTypeOut]:
    org_id = ctx.resolve_organization(body.organization_id)
    item = service.create_type(ctx.session, caller=ctx.caller, organization_id=org_id, data=body)
    return DataResponse(data=AssetTypeOut.model_validate(item))


@asset_types.get("/{id}", summary="View one asset type.")
def get_type(ctx: Reader, id: uuid.UUID) -> DataResponse[AssetTypeOut]:
    return DataResponse(data=AssetTypeOut.model_validate(service.get_type(ctx.session, id)))


@asset_types.patch("/{id}", summary="Rename, reorder or hide an asset type.")
def update_type(ctx: Admin, id: uuid.UUID, body: AssetTypeUpdate) -> DataResponse[AssetTypeOut]:
    item = service.update_type(
        ctx.session, caller=ctx.caller, item=service.get_type(ctx.session, id), data=body
    )
    return DataResponse(data=AssetTypeOut.model_validate(item))


@asset_statuses.get("", summary="List the organization's asset status labels.")
def list_labels(
    ctx: Reader,
    params: ListQuery,
    status_type: Annotated[StatusType | None, Query(alias="statusType")] = None,
) -> ListResponse[StatusLabelOut]:
    service.ensure_defaults(ctx.session, ctx.organization_id)
    stmt = service.query_labels(q=params.q, status_type=status_type)
    stmt = apply_sort(
        stmt, params.sort, service.LABEL_SORT_FIELDS,
        [AssetStatusLabel.sort_order, AssetStatusLabel.name], AssetStatusLabel.id,
    )  # fmt: skip
    rows, pagination = paginate(ctx.session, stmt, params)
    return ListResponse(
        data=[StatusLabelOut.model_validate(t) for t in rows], pagination=pagination
    )


@asset_statuses.post("", status_code=201, summary="Add an asset status label.")
def create_label(ctx: Admin, body: StatusLabelCreate) -> DataResponse[StatusLabelOut]:
    org_id = ctx.resolve_organization(body.organization_id)
    item = service.create_label(ctx.session, caller=ctx.caller, organization_id=org_id, data=body)
    return DataResponse(data=StatusLabelOut.model_validate(item))


@asset_statuses.get("/{id}", summary="View one asset status label.")
def get_label(ctx: Reader, id: uuid.UUID) -> DataResponse[StatusLabelOut]:
    return DataResponse(data=StatusLabelOut.model_validate(service.get_label(ctx.session, id)))


@asset_statuses.patch("/{id}", summary="Rename or re-type a status label.")
def update_label(
    ctx: Admin, id: uuid.UUID, body: StatusLabelUpdate
) -> DataResponse[StatusLabelOut]:
    item = service.update_label(
        ctx.session, caller=ctx.caller, item=service.get_label(ctx.session, id), data=body
    )
    return DataResponse(data=StatusLabelOut.model_validate(item))


# ------------------------------------------------------------------------- people


@people.get("", summary="List the staff and students devices are assigned to (staff only).")
def list_people(
    ctx: StaffReader,
    params: ListQuery,
    kind: Annotated[PersonKind | None, Query()] = None,
    site_id: Annotated[uuid.UUID | None, IdQuery("siteId")] = None,
    grade: Annotated[str | None, Query(max_length=16)] = None,
    external_id: Annotated[str | None, Query(alias="externalId", max_length=64)] = None,
    is_active: Annotated[bool | None, Query(alias="isActive")] = None,
) -> ListResponse[PersonOut]:
    stmt = service.query_people(
        q=params.q,
        kind=kind,
        site_id=site_id,
        grade=grade,
        external_id=external_id,
        is_active=is_active,
    )
    stmt = apply_sort(stmt, params.sort, service.PERSON_SORT_FIELDS, [Person.name], Person.id)
    rows, pagination = paginate(ctx.session, stmt, params)
    return ListResponse(data=[PersonOut.model_validate(p) for p in rows], pagination=pagination)


@people.post("", status_code=201, summary="Add a staff member or student.")
def create_person(ctx: Writer, body: PersonCreate) -> DataResponse[PersonOut]:
    org_id = ctx.resolve_organization(body.organization_id)
    person = service.create_person(
        ctx.session, caller=ctx.caller, organization_id=org_id, data=body
    )
    return DataResponse(data=PersonOut.model_validate(person))


@people.get("/{id}", summary="View one person.")
def get_person(ctx: StaffReader, id: uuid.UUID) -> DataResponse[PersonOut]:
    return DataResponse(data=PersonOut.model_validate(service.get_person(ctx.session, id)))


@people.patch("/{id}", summary="Update a person.")
def update_person(ctx: Writer, id: uuid.UUID, body: PersonUpdate) -> DataResponse[PersonOut]:
    person = service.update_person(
        ctx.session, caller=ctx.caller, person=service.get_person(ctx.session, id), data=body
    )
    return DataResponse(data=PersonOut.model_validate(person))


# --------------------------------------------------------------------- rooms


@room_assets.get("/{id}/assets", summary="What is in a room.")
def list_room_assets(
    ctx: StaffReader,
    id: uuid.UUID,
    params: ListQuery,
    asset_type_id: Annotated[uuid.UUID | None, IdQuery("assetTypeId")] = None,
    status_type: Annotated[StatusType | None, Query(alias="statusType")] = None,
) -> ListResponse[AssetOut]:
    sites.get_room(ctx.session, id)
    data, pagination = service.list_assets(
        ctx.session,
        ctx.caller,
        params,
        room_id=id,
        q=params.q,
        asset_type_id=asset_type_id,
        status_type=status_type,
    )
    return ListResponse(data=data, pagination=pagination)


@room_assets.get("/{id}/asset-summary", summary="Counts of a room's assets by type and status.")
def room_asset_summary(ctx: StaffReader, id: uuid.UUID) -> DataResponse[RoomAssetSummary]:
    sites.get_room(ctx.session, id)
    return DataResponse(data=RoomAssetSummary.model_validate(service.room_summary(ctx.session, id)))


@room_assets.post(
    "/{id}/audits",
    status_code=201,
    summary="Record a room audit: the tags scanned; answers present, missing, misplaced, unknown.",
)
def create_audit(ctx: Writer, id: uuid.UUID, body: AuditIn) -> DataResponse[RoomAuditOut]:
    room = sites.get_room(ctx.session, id)
    audit = audits.create_audit(ctx.session, caller=ctx.caller, room=room, data=body)
    return DataResponse(data=audits.audit_out(ctx.session, audit))


@room_assets.get("/{id}/audits", summary="A room's audits, newest first.")
def list_room_audits(
    ctx: StaffReader, id: uuid.UUID, params: ListQuery
) -> ListResponse[RoomAuditSummaryOut]:
    sites.get_room(ctx.session, id)
    rows, pagination = paginate(ctx.session, audits.query_audits(room_id=id), params)
    return ListResponse(data=[audits.summary_out(a) for a in rows], pagination=pagination)


@room_audits.get("/{id}", summary="View a room audit and its answer.")
def get_audit(ctx: StaffReader, id: uuid.UUID) -> DataResponse[RoomAuditOut]:
    audit = audits.get_audit(ctx.session, id)
    return DataResponse(data=audits.audit_out(ctx.session, audit))


@room_audits.post(
    "/{id}/confirm",
    summary="Apply a room audit once: move misplaced assets here, mark missing ones.",
)
def confirm_audit(ctx: Writer, id: uuid.UUID, body: AuditConfirmIn) -> DataResponse[RoomAuditOut]:
    audit = audits.get_audit(ctx.session, id, for_update=True)
    audits.confirm_audit(ctx.session, caller=ctx.caller, audit=audit, data=body)
    return DataResponse(data=audits.audit_out(ctx.session, audit))


ROUTERS = (assets, asset_types, asset_statuses, people, room_assets, room_audits)
