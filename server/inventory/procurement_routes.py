"""Vendors and purchase orders over HTTP: thin routes over ``vendors`` and ``purchasing``.

Staff (admins, agents, technicians) read what their department may see; requesters
get 403. Agents and admins keep the vendor list; any staff member writes and submits
purchase orders; only organization admins approve (see ``purchasing.TRANSITIONS``).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query

from common.enums import Role
from server.auth.deps import RequestContext, access
from server.core.listing import ListQuery, apply_sort, paginate
from server.core.routing import api_router
from server.core.schemas import DataResponse, ListResponse
from server.inventory import purchasing
from server.inventory import vendors as service
from server.inventory.models import Part
from server.inventory.procurement_schemas import (
    ActionNote,
    ActionReason,
    FromLowStockBody,
    FromLowStockOut,
    PurchaseOrderCreate,
    PurchaseOrderDetailOut,
    PurchaseOrderOut,
    PurchaseOrderUpdate,
    ReceiveBody,
    VendorCreate,
    VendorOut,
    VendorPartOut,
    VendorUpdate,
)
from server.inventory.vendor_models import PurchaseOrder, PurchaseOrderStatus, Vendor, VendorStatus

vendors = api_router(prefix="/api/vendors", tags=["Vendors"])
purchase_orders = api_router(prefix="/api/purchase-orders", tags=["Purchase orders"])

_STAFF = (Role.ORG_ADMIN, Role.AGENT, Role.TECHNICIAN)
Reader = Annotated[RequestContext, access("inventory:read", *_STAFF)]
VendorEditor = Annotated[RequestContext, access("inventory:write", Role.ORG_ADMIN, Role.AGENT)]
Admin = Annotated[RequestContext, access("inventory:write", Role.ORG_ADMIN)]
Purchaser = Annotated[RequestContext, access("inventory:write", *_STAFF)]


# --------------------------------------------------------------------------- vendors


@vendors.get(
    "",
    summary="List the vendors connected to departments, parts, assets or purchase orders "
    "you can see, with what each supplies.",
)
def list_vendors(
    ctx: Reader,
    params: ListQuery,
    status: Annotated[VendorStatus | None, Query()] = None,
    vendor_type: Annotated[str | None, Query(alias="type", max_length=40)] = None,
    department_id: Annotated[
        uuid.UUID | None, Query(alias="departmentId", description="Vendors serving this department")
    ] = None,
) -> ListResponse[VendorOut]:
    own = service.caller_department(ctx.session, ctx.caller)
    stmt = service.query_vendors(
        ctx.caller,
        department_id=own,
        q=params.q,
        status=status,
        vendor_type=vendor_type,
        serves_department_id=department_id,
    )
    stmt = apply_sort(stmt, params.sort, service.VENDOR_SORT_FIELDS, [Vendor.name], Vendor.id)
    rows, pagination = paginate(ctx.session, stmt, params, scalars=False)
    return ListResponse(data=service.vendor_outputs(ctx.session, rows), pagination=pagination)


@vendors.post("", status_code=201, summary="Create a vendor.")
def create_vendor(ctx: VendorEditor, body: VendorCreate) -> DataResponse[VendorOut]:
    org_id = ctx.resolve_organization(body.organization_id)
    own = service.caller_department(ctx.session, ctx.caller)
    vendor = service.create_vendor(
        ctx.session, caller=ctx.caller, organization_id=org_id, data=body, department_id=own
    )
    return DataResponse(
        data=service.vendor_output(ctx.session, ctx.caller, vendor, department_id=own)
    )


@vendors.get("/{id}", summary="View one vendor.")
def get_vendor(ctx: Reader, id: uuid.UUID) -> DataResponse[VendorOut]:
    own = service.caller_department(ctx.session, ctx.caller)
    vendor = service.get_visible_vendor(ctx.session, ctx.caller, id, department_id=own)
    return DataResponse(
        data=service.vendor_output(ctx.session, ctx.caller, vendor, department_id=own)
    )


@vendors.patch("/{id}", summary="Update a vendor.")
def update_vendor(ctx: VendorEditor, id: uuid.UUID, body: VendorUpdate) -> DataResponse[VendorOut]:
    own = service.caller_department(ctx.session, ctx.caller)
    vendor = service.get_visible_vendor(ctx.session, ctx.caller, id, department_id=own)
    vendor = service.update_vendor(
        ctx.session, caller=ctx.caller, vendor=vendor, data=body, department_id=own
    )
    return DataResponse(
        data=service.vendor_output(ctx.session, ctx.caller, vendor, department_id=own)
    )


@vendors.delete(
    "/{id}",
    status_code=204,
    summary="Delete a vendor nothing refers to (set one with orders inactive instead).",
)
def delete_vendor(ctx: Admin, id: uuid.UUID) -> None:
    vendor = service.get_visible_vendor(ctx.session, ctx.caller, id, department_id=None)
    service.delete_vendor(ctx.session, caller=ctx.caller, vendor=vendor)


@vendors.get("/{id}/parts", summary="The catalogue parts a vendor supplies.")
def list_vendor_parts(ctx: Reader, id: uuid.UUID, params: ListQuery) -> ListResponse[VendorPartOut]:
    own = service.caller_department(ctx.session, ctx.caller)
    service.get_visible_vendor(ctx.session, ctx.caller, id, department_id=own)
    stmt = service.query_vendor_parts(ctx.caller, id, department_id=own, q=params.q)
    stmt = apply_sort(
        stmt,
        params.sort,
        {"name": Part.name, "partNumber": Part.part_number, "onHand": Part.on_hand},
        [Part.name],
        Part.id,
    )
    rows, pagination = paginate(ctx.session, stmt, params)
    return ListResponse(data=[VendorPartOut.model_validate(p) for p in rows], pagination=pagination)


@vendors.get("/{id}/purchase-orders", summary="The purchase orders placed with a vendor.")
def list_vendor_orders(
    ctx: Reader, id: uuid.UUID, params: ListQuery
) -> ListResponse[PurchaseOrderOut]:
    own = service.caller_department(ctx.session, ctx.caller)
    service.get_visible_vendor(ctx.session, ctx.caller, id, department_id=own)
    return _order_list(ctx, params, own, vendor_id=id)


# --------------------------------------------------------------------------- purchase orders


def _order_list(
    ctx: RequestContext,
    params: ListQuery,
    own: uuid.UUID | None,
    *,
    status: list[PurchaseOrderStatus] | None = None,
    vendor_id: uuid.UUID | None = None,
    department_id: uuid.UUID | None = None,
    ticket_id: uuid.UUID | None = None,
    part_id: uuid.UUID | None = None,
) -> ListResponse[PurchaseOrderOut]:
    stmt = purchasing.query_purchase_orders(
        ctx.caller,
        department_id=own,
        q=params.q,
        status=status or (),
        vendor_id=vendor_id,
        in_department_id=department_id,
        ticket_id=ticket_id,
        part_id=part_id,
    )
    stmt = apply_sort(
        stmt,
        params.sort,
        purchasing.PO_SORT_FIELDS,
        [PurchaseOrder.created_at.desc()],
        PurchaseOrder.id,
    )
    rows, pagination = paginate(ctx.session, stmt, params, scalars=False)
    return ListResponse(
        data=[purchasing.order_output(po, name, ctx.caller) for po, name in rows],
        pagination=pagination,
    )


@purchase_orders.get(
    "", summary="List purchase orders (your department's and those of no department)."
)
def list_purchase_orders(
    ctx: Reader,
    params: ListQuery,
    status: Annotated[
        list[PurchaseOrderStatus] | None, Query(description="Repeat for several statuses")
    ] = None,
    vendor_id: Annotated[uuid.UUID | None, Query(alias="vendorId")] = None,
    department_id: Annotated[uuid.UUID | None, Query(alias="departmentId")] = None,
    ticket_id: Annotated[uuid.UUID | None, Query(alias="ticketId")] = None,
    part_id: Annotated[uuid.UUID | None, Query(alias="partId")] = None,
) -> ListResponse[PurchaseOrderOut]:
    own = service.caller_department(ctx.session, ctx.caller)
    return _order_list(
        ctx,
        params,
        own,
        status=status,
        vendor_id=vendor_id,
        department_id=department_id,
        ticket_id=ticket_id,
        part_id=part_id,
    )


@purchase_orders.post(
    "", status_code=201, summary="Create a purchase order (a draft, or submitted at once)."
)
def create_purchase_order(
    ctx: Purchaser, body: PurchaseOrderCreate
) -> DataResponse[PurchaseOrderDetailOut]:
    org_id = ctx.resolve_organization(body.organization_id)
    own = service.caller_department(ctx.session, ctx.caller)
    po = purchasing.create_purchase_order(
        ctx.session, caller=ctx.caller, organization_id=org_id, data=body, own_department_id=own
    )
    return DataResponse(data=purchasing.detail_output(ctx.session, po, ctx.caller))


@purchase_orders.post(
    "/from-low-stock",
    status_code=201,
    summary="Draft purchase orders, one per vendor and department, for the parts at or "
    "below their reorder point.",
)
def create_from_low_stock(
    ctx: Purchaser, body: FromLowStockBody | None = None
) -> DataResponse[FromLowStockOut]:
    org_id = ctx.require_organization()
    own = service.caller_department(ctx.session, ctx.caller)
    result = purchasing.create_from_low_stock(
        ctx.session,
        caller=ctx.caller,
        organization_id=org_id,
        data=body or FromLowStockBody(),
        own_department_id=own,
    )
    return DataResponse(
        data=FromLowStockOut(
            created=[
                purchasing.detail_output(ctx.session, po, ctx.caller) for po in result.created
            ],
            skipped=result.skipped,
        )
    )


@purchase_orders.get("/{id}", summary="View one purchase order with its lines.")
def get_purchase_order(ctx: Reader, id: uuid.UUID) -> DataResponse[PurchaseOrderDetailOut]:
    own = service.caller_department(ctx.session, ctx.caller)
    po = purchasing.get_visible(ctx.session, ctx.caller, id, department_id=own)
    return DataResponse(data=purchasing.detail_output(ctx.session, po, ctx.caller))


@purchase_orders.patch(
    "/{id}", summary="Change a draft (lines, vendor, amounts); later only the notes."
)
def update_purchase_order(
    ctx: Purchaser, id: uuid.UUID, body: PurchaseOrderUpdate
) -> DataResponse[PurchaseOrderDetailOut]:
    own = service.caller_department(ctx.session, ctx.caller)
    po = purchasing.get_visible(ctx.session, ctx.caller, id, department_id=own, for_update=True)
    po = purchasing.update_purchase_order(
        ctx.session, caller=ctx.caller, po=po, data=body, own_department_id=own
    )
    return DataResponse(data=purchasing.detail_output(ctx.session, po, ctx.caller))


def _locked(ctx: RequestContext, id: uuid.UUID) -> PurchaseOrder:
    own = service.caller_department(ctx.session, ctx.caller)
    return purchasing.get_visible(ctx.session, ctx.caller, id, department_id=own, for_update=True)


@purchase_orders.post("/{id}/submit", summary="Submit a draft for approval.")
def submit_purchase_order(
    ctx: Purchaser, id: uuid.UUID, body: ActionNote | None = None
) -> DataResponse[PurchaseOrderDetailOut]:
    po = purchasing.submit(
        ctx.session, caller=ctx.caller, po=_locked(ctx, id), note=body.note if body else None
    )
    return DataResponse(data=purchasing.detail_output(ctx.session, po, ctx.caller))


@purchase_orders.post("/{id}/approve", summary="Approve a submitted order (organization admins).")
def approve_purchase_order(
    ctx: Purchaser, id: uuid.UUID, body: ActionNote | None = None
) -> DataResponse[PurchaseOrderDetailOut]:
    po = purchasing.approve(
        ctx.session, caller=ctx.caller, po=_locked(ctx, id), note=body.note if body else None
    )
    return DataResponse(data=purchasing.detail_output(ctx.session, po, ctx.caller))


@purchase_orders.post(
    "/{id}/reject", summary="Send a submitted order back to draft with a reason (admins)."
)
def reject_purchase_order(
    ctx: Purchaser, id: uuid.UUID, body: ActionReason
) -> DataResponse[PurchaseOrderDetailOut]:
    po = purchasing.reject(ctx.session, caller=ctx.caller, po=_locked(ctx, id), reason=body.reason)
    return DataResponse(data=purchasing.detail_output(ctx.session, po, ctx.caller))


@purchase_orders.post("/{id}/send", summary="Mark an approved order as sent to the vendor.")
def send_purchase_order(
    ctx: Purchaser, id: uuid.UUID, body: ActionNote | None = None
) -> DataResponse[PurchaseOrderDetailOut]:
    po = purchasing.send(
        ctx.session, caller=ctx.caller, po=_locked(ctx, id), note=body.note if body else None
    )
    return DataResponse(data=purchasing.detail_output(ctx.session, po, ctx.caller))


@purchase_orders.post(
    "/{id}/cancel",
    summary="Cancel an order that is not received (after approval: organization admins).",
)
def cancel_purchase_order(
    ctx: Purchaser, id: uuid.UUID, body: ActionReason
) -> DataResponse[PurchaseOrderDetailOut]:
    po = purchasing.cancel(ctx.session, caller=ctx.caller, po=_locked(ctx, id), reason=body.reason)
    return DataResponse(data=purchasing.detail_output(ctx.session, po, ctx.caller))


@purchase_orders.post(
    "/{id}/receive",
    summary="Receive some or all outstanding quantities into a stock location.",
)
def receive_purchase_order(
    ctx: Purchaser, id: uuid.UUID, body: ReceiveBody
) -> DataResponse[PurchaseOrderDetailOut]:
    po = purchasing.receive(ctx.session, caller=ctx.caller, po=_locked(ctx, id), data=body)
    return DataResponse(data=purchasing.detail_output(ctx.session, po, ctx.caller))
