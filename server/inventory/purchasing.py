"""Purchase orders: the state machine, totals, receiving into stock, low-stock reorders.

The life of an order::

    draft --submit--> pending_approval --approve--> approved --send--> sent
      ^                    |                                             |
      +------reject--------+                             receive (part or all)
                                                                          v
    cancelled <--cancel-- draft, pending_approval, approved, sent    partial --> received

``TRANSITIONS`` below is the whole table: which action moves an order from which
status to which, and in what capacity the caller must act. Staff of the order's
department (agents, technicians, admins) are *purchasers*: they write drafts, submit,
send approved orders to the vendor, receive goods, and withdraw (cancel) an order
that is not approved yet. Organization admins are also *approvers*: only they
approve, reject, and cancel an order once it is approved (money is committed).

A move that the table does not have answers 409 INVALID_STATUS_TRANSITION; a move
it has, taken by someone without the capacity, answers 403 PERMISSION_DENIED.
Totals are always computed here from the lines, tax and shipping. Every financial
operation writes an audit event in the same transaction.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Select, exists, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from common.enums import AuditCategory, AuditSeverity, Role
from common.errors import ErrorCode
from server.audit import service as audit
from server.core.db import flush_unique, utcnow
from server.core.errors import (
    BusinessRuleViolation,
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from server.core.listing import text_filter
from server.core.tenancy import Caller, soft_delete
from server.inventory import ledger
from server.inventory import vendors as vendor_service
from server.inventory.models import Part, PartStatus, StockLocation
from server.inventory.procurement_schemas import (
    MAX_LINES,
    FromLowStockBody,
    LineItemIn,
    LineItemOut,
    LineItemUpdate,
    PurchaseOrderCreate,
    PurchaseOrderDetailOut,
    PurchaseOrderOut,
    PurchaseOrderUpdate,
    ReceiveBody,
    SkippedPartOut,
    cents,
)
from server.inventory.vendor_models import (
    PurchaseOrder,
    PurchaseOrderLine,
    PurchaseOrderSequence,
    PurchaseOrderStatus,
    Vendor,
    VendorStatus,
)
from server.notifications import events
from server.notifications.service import notify
from server.organizations.models import Department
from server.tickets.models import Ticket

S = PurchaseOrderStatus

# --------------------------------------------------------------------------- the state machine


class Capacity(StrEnum):
    PURCHASER = "purchaser"  # staff: writes, submits, sends, receives
    APPROVER = "approver"  # organization admin: approves, rejects, cancels committed orders


#: Roles that approve purchase orders. Keep it to admins: an approval commits money.
APPROVER_ROLES = frozenset({Role.ORG_ADMIN, Role.SUPER_ADMIN})
_ANY = frozenset({Capacity.PURCHASER, Capacity.APPROVER})
_APPROVER = frozenset({Capacity.APPROVER})


@dataclass(frozen=True, slots=True)
class Transition:
    action: str
    source: PurchaseOrderStatus
    target: PurchaseOrderStatus
    allowed: frozenset[Capacity]
    description: str


TRANSITIONS: tuple[Transition, ...] = (
    Transition("submit", S.DRAFT, S.PENDING_APPROVAL, _ANY, "Ask for approval"),
    Transition("approve", S.PENDING_APPROVAL, S.APPROVED, _APPROVER, "Approve the spend"),
    Transition("reject", S.PENDING_APPROVAL, S.DRAFT, _APPROVER, "Send back for changes"),
    Transition("send", S.APPROVED, S.SENT, _ANY, "Place the order with the vendor"),
    Transition("receive", S.SENT, S.PARTIAL, _ANY, "Some of the goods arrived"),
    Transition("receive", S.SENT, S.RECEIVED, _ANY, "Everything arrived"),
    Transition("receive", S.PARTIAL, S.PARTIAL, _ANY, "More (not all) of the goods arrived"),
    Transition("receive", S.PARTIAL, S.RECEIVED, _ANY, "The rest arrived"),
    Transition("cancel", S.DRAFT, S.CANCELLED, _ANY, "Drop a draft"),
    Transition("cancel", S.PENDING_APPROVAL, S.CANCELLED, _ANY, "Withdraw before approval"),
    Transition("cancel", S.APPROVED, S.CANCELLED, _APPROVER, "Cancel approved spend"),
    Transition("cancel", S.SENT, S.CANCELLED, _APPROVER, "Cancel with the vendor"),
)
ACTIONS = ("submit", "approve", "reject", "send", "receive", "cancel")


def capacities(caller: Caller) -> frozenset[Capacity]:
    held: set[Capacity] = set()
    if caller.role.is_staff:
        held.add(Capacity.PURCHASER)
    if caller.role in APPROVER_ROLES:
        held.add(Capacity.APPROVER)
    return frozenset(held)


def check(current: PurchaseOrderStatus, action: str, held: frozenset[Capacity]) -> list[Transition]:
    """The transitions ``action`` may take from ``current``, or the error it gets."""
    moves = [t for t in TRANSITIONS if t.action == action and t.source == current]
    if not moves:
        raise Conflict(
            f"A purchase order that is {current.value} cannot be {_past(action)}",
            code=ErrorCode.INVALID_STATUS_TRANSITION,
            details={"status": current.value, "action": action},
        )
    if not any(t.allowed & held for t in moves):
        raise PermissionDenied(
            f"Only an approver may {action} a purchase order that is {current.value}",
            details={"status": current.value, "action": action},
        )
    return moves


def available_actions(status: PurchaseOrderStatus, held: frozenset[Capacity]) -> list[str]:
    found = {t.action for t in TRANSITIONS if t.source == status and t.allowed & held}
    actions = [a for a in ACTIONS if a in found]
    if status is S.DRAFT and held:
        actions.insert(0, "edit")
    return actions


def _past(action: str) -> str:
    return {"submit": "submitted", "send": "sent", "cancel": "cancelled"}.get(
        action, f"{action}ed" if not action.endswith("e") else f"{action}d"
    )


# --------------------------------------------------------------------------- reading

PO_SORT_FIELDS = {
    "poNumber": PurchaseOrder.po_number,
    "status": PurchaseOrder.status,
    "createdAt": PurchaseOrder.created_at,
    "updatedAt": PurchaseOrder.updated_at,
    "totalCents": PurchaseOrder.total_cents,
    "vendorName": Vendor.name,
}


def get_visible(
    session: Session,
    caller: Caller,
    po_id: uuid.UUID,
    *,
    department_id: uuid.UUID | None,
    for_update: bool = False,
) -> PurchaseOrder:
    """The order, or 404 when it does not exist or the caller may not see it.

    ``for_update`` locks the row (PostgreSQL) so concurrent actions on one order
    (two people receiving at once) take turns and see each other's result.
    """
    stmt = select(PurchaseOrder).where(PurchaseOrder.id == po_id)
    visible = vendor_service.po_visible(caller, department_id)
    if visible is not None:
        stmt = stmt.where(visible)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    po = session.scalar(stmt)
    if po is None:
        raise NotFound("Purchase order")
    return po


def query_purchase_orders(
    caller: Caller,
    *,
    department_id: uuid.UUID | None,
    q: str | None = None,
    status: Iterable[PurchaseOrderStatus] = (),
    vendor_id: uuid.UUID | None = None,
    in_department_id: uuid.UUID | None = None,
    ticket_id: uuid.UUID | None = None,
    part_id: uuid.UUID | None = None,
) -> Select[Any]:
    """Rows of (order, vendor name)."""
    stmt = cast(
        "Select[Any]",
        select(PurchaseOrder, Vendor.name).outerjoin(Vendor, Vendor.id == PurchaseOrder.vendor_id),
    )
    visible = vendor_service.po_visible(caller, department_id)
    if visible is not None:
        stmt = stmt.where(visible)
    statuses = list(status)
    if statuses:
        stmt = stmt.where(PurchaseOrder.status.in_(statuses))
    if vendor_id:
        stmt = stmt.where(PurchaseOrder.vendor_id == vendor_id)
    if in_department_id:
        stmt = stmt.where(PurchaseOrder.department_id == in_department_id)
    if ticket_id:
        stmt = stmt.where(PurchaseOrder.ticket_id == ticket_id)
    if part_id:
        stmt = stmt.where(
            exists().where(
                PurchaseOrderLine.purchase_order_id == PurchaseOrder.id,
                PurchaseOrderLine.part_id == part_id,
            )
        )
    if q:
        stmt = stmt.where(
            text_filter(
                q,
                PurchaseOrder.po_number,
                PurchaseOrder.description,
                PurchaseOrder.funding_source,
                Vendor.name,
            )
        )
    return stmt


def lines_of(session: Session, po: PurchaseOrder) -> list[PurchaseOrderLine]:
    return list(
        session.scalars(
            select(PurchaseOrderLine)
            .where(PurchaseOrderLine.purchase_order_id == po.id)
            .order_by(PurchaseOrderLine.position, PurchaseOrderLine.id)
        )
    )


def _columns(obj: Any) -> dict[str, Any]:
    return {c.key: getattr(obj, c.key) for c in type(obj).__mapper__.column_attrs}


def order_output(po: PurchaseOrder, vendor_name: str | None, caller: Caller) -> PurchaseOrderOut:
    return PurchaseOrderOut.model_validate(
        {
            **_columns(po),
            "vendor_name": vendor_name,
            "total_amount": po.total_cents / 100,
            "available_actions": available_actions(po.status, capacities(caller)),
        }
    )


def line_output(line: PurchaseOrderLine) -> LineItemOut:
    return LineItemOut.model_validate(
        {
            **_columns(line),
            "quantity_outstanding": max(0, line.quantity_ordered - line.quantity_received),
            "unit_cost": line.unit_cost_cents / 100,
        }
    )


def detail_output(session: Session, po: PurchaseOrder, caller: Caller) -> PurchaseOrderDetailOut:
    vendor_name = (
        session.scalar(select(Vendor.name).where(Vendor.id == po.vendor_id))
        if po.vendor_id
        else None
    )
    summary = order_output(po, vendor_name, caller)
    return PurchaseOrderDetailOut.model_validate(
        {**summary.__dict__, "line_items": [line_output(line) for line in lines_of(session, po)]}
    )


# --------------------------------------------------------------------------- numbers


def next_po_number(session: Session, organization_id: uuid.UUID) -> str:
    """PO-000001, PO-000002, ... per organization; skips numbers typed in by hand."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table = PurchaseOrderSequence.__table__
    while True:
        stmt = (
            insert(table)  # type: ignore[arg-type]
            .values(organization_id=organization_id, last_value=1)
            .on_conflict_do_update(
                index_elements=[table.c.organization_id],
                set_={"last_value": table.c.last_value + 1},
            )
            .returning(table.c.last_value)
        )
        number = f"PO-{int(session.execute(stmt).scalar_one()):06d}"
        taken = session.scalar(select(exists().where(PurchaseOrder.po_number == number)))
        if not taken:
            return number


# --------------------------------------------------------------------------- writing helpers


def _record(
    session: Session,
    caller: Caller,
    po: PurchaseOrder,
    action: str,
    message: str,
    *,
    severity: AuditSeverity = AuditSeverity.INFO,
    **details: Any,
) -> None:
    audit.record(
        session,
        actor=caller,
        organization_id=po.organization_id,
        action=f"purchase_order.{action}",
        category=AuditCategory.DATA,
        severity=severity,
        entity_type="purchase_order",
        entity_id=po.id,
        message=message,
        details={
            "poNumber": po.po_number,
            "status": po.status.value,
            "totalCents": po.total_cents,
            **details,
        },
    )


def _check_department(
    session: Session, caller: Caller, own: uuid.UUID | None, wanted: uuid.UUID | None
) -> None:
    if wanted is None:
        return
    if session.get(Department, wanted) is None:
        raise ValidationFailed("Unknown department", details={"field": "departmentId"})
    if not vendor_service.sees_everything(caller) and wanted != own:
        raise PermissionDenied(
            "You may only order for your own department", details={"field": "departmentId"}
        )


def _check_vendor(
    session: Session, caller: Caller, own: uuid.UUID | None, vendor_id: uuid.UUID | None
) -> Vendor | None:
    if vendor_id is None:
        return None
    try:
        vendor = vendor_service.get_visible_vendor(session, caller, vendor_id, department_id=own)
    except NotFound as exc:
        raise ValidationFailed("Unknown vendor", details={"field": "vendorId"}) from exc
    if vendor.status is VendorStatus.INACTIVE:
        raise BusinessRuleViolation(
            f"{vendor.name} is inactive: no new orders", details={"field": "vendorId"}
        )
    return vendor


def _check_ref(session: Session, model: type[Any], ref: uuid.UUID | None, field: str) -> None:
    if ref is not None and session.get(model, ref) is None:
        raise ValidationFailed(f"Unknown {field[:-2]}", details={"field": field})


def _parts_of(session: Session, items: Iterable[LineItemIn]) -> dict[uuid.UUID, Part]:
    wanted = {item.part_id for item in items if item.part_id is not None}
    if not wanted:
        return {}
    found = {p.id: p for p in session.scalars(select(Part).where(Part.id.in_(wanted)))}
    for index, item in enumerate(items):
        if item.part_id is not None and item.part_id not in found:
            raise ValidationFailed("Unknown part", details={"field": f"lineItems[{index}].partId"})
    return found


def _fill_line(line: PurchaseOrderLine, item: LineItemIn, parts: dict[uuid.UUID, Part]) -> None:
    line.part_id = item.part_id
    line.description = item.description
    part = parts.get(item.part_id) if item.part_id else None
    line.part_number = item.part_number or (part.part_number if part is not None else None)
    if line.quantity_received and item.quantity < line.quantity_received:
        raise BusinessRuleViolation(
            "A line cannot order fewer than it already received",
            details={"field": "lineItems.quantity"},
        )
    line.quantity_ordered = item.quantity
    line.unit_cost_cents = cents(item.unit_cost)
    line.line_total_cents = line.quantity_ordered * line.unit_cost_cents


def _retotal(po: PurchaseOrder, lines: Iterable[PurchaseOrderLine]) -> None:
    live = list(lines)
    po.subtotal_cents = sum(line.line_total_cents for line in live)
    po.total_cents = po.subtotal_cents + po.tax_cents + po.shipping_cents
    po.line_count = len(live)


def _line_summary(lines: Iterable[PurchaseOrderLine]) -> list[dict[str, Any]]:
    return [
        {
            "lineId": str(line.id),
            "partId": str(line.part_id) if line.part_id else None,
            "description": line.description,
            "quantity": line.quantity_ordered,
            "unitCostCents": line.unit_cost_cents,
            "lineTotalCents": line.line_total_cents,
        }
        for line in lines
    ]


def _notify(
    session: Session,
    *,
    recipients: Iterable[uuid.UUID],
    title: str,
    body: str,
    po: PurchaseOrder,
    actor_id: uuid.UUID,
) -> None:
    """In-app and email notification (per each recipient's preferences)."""
    notify(
        session,
        recipients=list(recipients),
        event=events.PURCHASE_ORDER_APPROVAL,
        title=title,
        body=body,
        link=f"/api/purchase-orders/{po.id}",
        actor_id=actor_id,
        organization_id=po.organization_id,
    )


# --------------------------------------------------------------------------- create and edit


def create_purchase_order(
    session: Session,
    *,
    caller: Caller,
    organization_id: uuid.UUID,
    data: PurchaseOrderCreate,
    own_department_id: uuid.UUID | None,
) -> PurchaseOrder:
    department_id = (
        data.department_id if "department_id" in data.model_fields_set else own_department_id
    )
    _check_department(session, caller, own_department_id, department_id)
    _check_vendor(session, caller, own_department_id, data.vendor_id)
    _check_ref(session, Ticket, data.ticket_id, "ticketId")
    _check_ref(session, StockLocation, data.ship_to_location_id, "shipToLocationId")
    parts = _parts_of(session, data.line_items)

    po = PurchaseOrder(
        organization_id=organization_id,
        po_number=data.po_number or next_po_number(session, organization_id),
        status=S.DRAFT,
        vendor_id=data.vendor_id,
        department_id=department_id,
        ticket_id=data.ticket_id,
        ship_to_location_id=data.ship_to_location_id,
        description=data.description,
        notes=data.notes,
        funding_source=data.funding_source,
        tax_cents=cents(data.tax),
        shipping_cents=cents(data.shipping),
        requested_by_id=caller.user_id,
    )
    lines = []
    for position, item in enumerate(data.line_items):
        line = PurchaseOrderLine(organization_id=organization_id, position=position)
        _fill_line(line, item, parts)
        lines.append(line)
    _retotal(po, lines)
    if data.total_amount is not None and cents(data.total_amount) != po.total_cents:
        raise ValidationFailed(
            "totalAmount does not match the lines, tax and shipping",
            details={"field": "totalAmount", "computedTotalCents": po.total_cents},
        )
    session.add(po)
    flush_unique(session, message=f"Purchase order {po.po_number} exists", field="poNumber")
    for line in lines:
        line.purchase_order_id = po.id
    session.add_all(lines)
    session.flush()
    _record(
        session,
        caller,
        po,
        "created",
        f"{caller.email} created purchase order {po.po_number}",
        lines=_line_summary(lines),
    )
    if data.status == S.PENDING_APPROVAL.value:
        submit(session, caller=caller, po=po)
    return po


_DRAFT_ONLY = {
    "po_number",
    "vendor_id",
    "department_id",
    "ticket_id",
    "ship_to_location_id",
    "tax",
    "shipping",
    "funding_source",
    "description",
    "line_items",
}
_NOT_NULL = {"po_number", "tax", "shipping", "line_items"}


def update_purchase_order(
    session: Session,
    *,
    caller: Caller,
    po: PurchaseOrder,
    data: PurchaseOrderUpdate,
    own_department_id: uuid.UUID | None,
) -> PurchaseOrder:
    changes = data.model_dump(exclude_unset=True)
    locked = sorted(changes.keys() & _DRAFT_ONLY)
    if po.status is not S.DRAFT and locked:
        raise Conflict(
            f"Purchase order {po.po_number} is {po.status.value}: only its notes can change "
            "(an approver can reject it back to draft)",
            details={"status": po.status.value, "fields": locked},
        )
    for key in _NOT_NULL & changes.keys():
        if changes[key] is None:
            raise ValidationFailed(f"{key} cannot be null", details={"field": key})
    if "department_id" in changes:
        _check_department(session, caller, own_department_id, changes["department_id"])
    if "vendor_id" in changes:
        _check_vendor(session, caller, own_department_id, changes["vendor_id"])
    if "ticket_id" in changes:
        _check_ref(session, Ticket, changes["ticket_id"], "ticketId")
    if "ship_to_location_id" in changes:
        _check_ref(session, StockLocation, changes["ship_to_location_id"], "shipToLocationId")

    plain = {k: v for k, v in changes.items() if k not in {"tax", "shipping", "line_items"}}
    if "tax" in changes:
        plain["tax_cents"] = cents(changes["tax"])
    if "shipping" in changes:
        plain["shipping_cents"] = cents(changes["shipping"])
    before = {key: getattr(po, key) for key in plain}
    before_total = po.total_cents
    for key, value in plain.items():
        setattr(po, key, value)
    diff = audit.field_changes(before, {key: getattr(po, key) for key in plain})

    lines = lines_of(session, po)
    details: dict[str, Any] = {}
    if data.line_items is not None:
        old_summary = _line_summary(lines)
        lines = _replace_lines(session, po, lines, data.line_items)
        new_summary = _line_summary(lines)
        if old_summary != new_summary:
            details["lines"] = {"from": old_summary, "to": new_summary}
    _retotal(po, lines)
    if po.total_cents != before_total:
        diff["totalCents"] = {"from": before_total, "to": po.total_cents}
    flush_unique(session, message="A purchase order with this number exists", field="poNumber")
    if diff or details:
        po.updated_at = utcnow()
        _record(
            session,
            caller,
            po,
            "updated",
            f"{caller.email} changed {', '.join(sorted([*diff, *details]))} of purchase "
            f"order {po.po_number}",
            changes=vendor_service._jsonable(diff),
            **details,
        )
    return po


def _replace_lines(
    session: Session,
    po: PurchaseOrder,
    current: list[PurchaseOrderLine],
    items: list[LineItemUpdate],
) -> list[PurchaseOrderLine]:
    by_id = {line.id: line for line in current}
    kept_ids = [item.id for item in items if item.id is not None]
    for index, item in enumerate(items):
        if item.id is not None and item.id not in by_id:
            raise ValidationFailed(
                "Not a line of this purchase order", details={"field": f"lineItems[{index}].id"}
            )
    duplicates = [i for i, n in Counter(kept_ids).items() if n > 1]
    if duplicates:
        raise ValidationFailed(
            "A line appears twice",
            details={"field": "lineItems.id", "ids": [str(d) for d in duplicates]},
        )
    parts = _parts_of(session, items)
    result: list[PurchaseOrderLine] = []
    for position, item in enumerate(items):
        line = by_id.get(item.id) if item.id else None
        if line is None:
            line = PurchaseOrderLine(
                organization_id=po.organization_id, purchase_order_id=po.id, position=position
            )
            session.add(line)
        line.position = position
        _fill_line(line, item, parts)
        result.append(line)
    for line in current:
        if line.id not in set(kept_ids):
            soft_delete(line)
    session.flush()
    return result


# --------------------------------------------------------------------------- status actions


def submit(
    session: Session, *, caller: Caller, po: PurchaseOrder, note: str | None = None
) -> PurchaseOrder:
    check(po.status, "submit", capacities(caller))
    lines = lines_of(session, po)
    if not lines:
        raise BusinessRuleViolation(
            "Add at least one line before submitting", details={"field": "lineItems"}
        )
    if po.vendor_id is None:
        raise BusinessRuleViolation(
            "Choose a vendor before submitting", details={"field": "vendorId"}
        )
    vendor = session.get(Vendor, po.vendor_id)
    if vendor is None or vendor.status is VendorStatus.INACTIVE:
        raise BusinessRuleViolation(
            "The vendor is inactive or gone: choose another", details={"field": "vendorId"}
        )
    po.status = S.PENDING_APPROVAL
    po.submitted_at = utcnow()
    session.flush()
    _record(
        session,
        caller,
        po,
        "submitted",
        f"{caller.email} submitted purchase order {po.po_number} for approval",
        note=note,
        fromStatus=S.DRAFT.value,
    )
    _notify(
        session,
        recipients=vendor_service.approvers(session, po.organization_id),
        title=f"Purchase order {po.po_number} needs approval",
        body=f"{caller.email} asks for approval of {po.po_number} to {vendor.name}: "
        f"${po.total_cents / 100:,.2f}.",
        po=po,
        actor_id=caller.user_id,
    )
    return po


def approve(
    session: Session, *, caller: Caller, po: PurchaseOrder, note: str | None = None
) -> PurchaseOrder:
    check(po.status, "approve", capacities(caller))
    po.status = S.APPROVED
    po.approved_by_id = caller.user_id
    po.approved_at = utcnow()
    session.flush()
    _record(
        session,
        caller,
        po,
        "approved",
        f"{caller.email} approved purchase order {po.po_number} (${po.total_cents / 100:,.2f})",
        note=note,
        fromStatus=S.PENDING_APPROVAL.value,
    )
    _tell_requester(session, caller, po, "approved", note)
    return po


def reject(session: Session, *, caller: Caller, po: PurchaseOrder, reason: str) -> PurchaseOrder:
    check(po.status, "reject", capacities(caller))
    po.status = S.DRAFT
    po.rejected_at = utcnow()
    po.rejection_reason = reason
    session.flush()
    _record(
        session,
        caller,
        po,
        "rejected",
        f"{caller.email} rejected purchase order {po.po_number}: {reason}",
        severity=AuditSeverity.WARNING,
        reason=reason,
        fromStatus=S.PENDING_APPROVAL.value,
    )
    _tell_requester(session, caller, po, "rejected", reason)
    return po


def send(
    session: Session, *, caller: Caller, po: PurchaseOrder, note: str | None = None
) -> PurchaseOrder:
    check(po.status, "send", capacities(caller))
    po.status = S.SENT
    po.sent_at = utcnow()
    session.flush()
    _record(
        session,
        caller,
        po,
        "sent",
        f"{caller.email} sent purchase order {po.po_number} to the vendor",
        note=note,
        fromStatus=S.APPROVED.value,
    )
    return po


def cancel(session: Session, *, caller: Caller, po: PurchaseOrder, reason: str) -> PurchaseOrder:
    before = po.status
    check(po.status, "cancel", capacities(caller))
    po.status = S.CANCELLED
    po.cancelled_at = utcnow()
    po.cancelled_by_id = caller.user_id
    po.cancel_reason = reason
    session.flush()
    _record(
        session,
        caller,
        po,
        "cancelled",
        f"{caller.email} cancelled purchase order {po.po_number}: {reason}",
        severity=AuditSeverity.WARNING,
        reason=reason,
        fromStatus=before.value,
    )
    return po


def _tell_requester(
    session: Session, caller: Caller, po: PurchaseOrder, verb: str, text: str | None
) -> None:
    if po.requested_by_id is None:
        return
    _notify(
        session,
        recipients=[po.requested_by_id],
        title=f"Purchase order {po.po_number} was {verb}",
        body=f"{caller.email} {verb} {po.po_number}." + (f" {text}" if text else ""),
        po=po,
        actor_id=caller.user_id,
    )


# --------------------------------------------------------------------------- receiving


def receive(
    session: Session, *, caller: Caller, po: PurchaseOrder, data: ReceiveBody
) -> PurchaseOrder:
    """Receive some or all outstanding quantities into a stock location.

    Every catalogue line writes a receive movement into the inventory ledger (free-text
    lines have nothing to stock and only count as received). Receiving more than a
    line has outstanding is refused and changes nothing.
    """
    before = po.status
    moves = check(po.status, "receive", capacities(caller))
    location_id = data.location_id or po.ship_to_location_id
    if location_id is None:
        raise ValidationFailed(
            "Say which stock location the goods go to", details={"field": "locationId"}
        )
    if session.get(StockLocation, location_id) is None:
        raise ValidationFailed("Unknown stock location", details={"field": "locationId"})
    lines = {
        line.id: line
        for line in session.scalars(
            select(PurchaseOrderLine)
            .where(PurchaseOrderLine.purchase_order_id == po.id)
            .with_for_update()
        )
    }
    wanted: dict[uuid.UUID, int] = defaultdict(int)
    for index, item in enumerate(data.lines):
        if item.line_id not in lines:
            raise ValidationFailed(
                "Not a line of this purchase order", details={"field": f"lines[{index}].lineId"}
            )
        wanted[item.line_id] += item.quantity
    over = [
        {
            "lineId": str(line_id),
            "outstanding": lines[line_id].quantity_ordered - lines[line_id].quantity_received,
            "requested": quantity,
        }
        for line_id, quantity in wanted.items()
        if quantity > lines[line_id].quantity_ordered - lines[line_id].quantity_received
    ]
    if over:
        raise BusinessRuleViolation(
            "More than was ordered and not yet received", details={"field": "lines", "lines": over}
        )
    received: list[dict[str, Any]] = []
    for line_id, quantity in wanted.items():
        line = lines[line_id]
        line.quantity_received += quantity
        movement_id = None
        if line.part_id is not None:
            movement = ledger.receive(
                session,
                part_id=line.part_id,
                location_id=location_id,
                quantity=quantity,
                actor_id=caller.user_id,
                source_type="purchase_order",
                source_id=po.id,
                unit_cost_cents=line.unit_cost_cents,
                note=data.note or f"Received on {po.po_number}",
            )
            movement_id = getattr(movement, "id", None)
        received.append(
            {
                "lineId": str(line_id),
                "partId": str(line.part_id) if line.part_id else None,
                "quantity": quantity,
                "unitCostCents": line.unit_cost_cents,
                "movementId": str(movement_id) if movement_id else None,
            }
        )
    complete = all(line.quantity_received >= line.quantity_ordered for line in lines.values())
    target = S.RECEIVED if complete else S.PARTIAL
    assert any(t.target == target for t in moves)
    po.status = target
    if complete:
        po.received_at = utcnow()
    po.updated_at = utcnow()
    session.flush()
    value = sum(r["quantity"] * r["unitCostCents"] for r in received)
    _record(
        session,
        caller,
        po,
        "received",
        f"{caller.email} received {sum(wanted.values())} item(s) "
        f"(${value / 100:,.2f}) on purchase order {po.po_number}"
        + ("; the order is complete" if complete else ""),
        locationId=str(location_id),
        received=received,
        receivedValueCents=value,
        note=data.note,
        fromStatus=before.value,
    )
    return po


# --------------------------------------------------------------------------- low stock


@dataclass
class LowStockResult:
    created: list[PurchaseOrder]
    skipped: list[SkippedPartOut]


def create_from_low_stock(
    session: Session,
    *,
    caller: Caller,
    organization_id: uuid.UUID,
    data: FromLowStockBody,
    own_department_id: uuid.UUID | None,
) -> LowStockResult:
    """Draft orders for every part at or below its reorder point, one per vendor and
    department; quantity = the part's reorder quantity.

    Parts without a vendor (or with an inactive one) and parts already on an open
    order are reported, not ordered.
    """
    if data.department_id is not None:
        _check_department(session, caller, own_department_id, data.department_id)
    _check_ref(session, StockLocation, data.ship_to_location_id, "shipToLocationId")
    stmt = select(Part).where(
        Part.reorder_quantity > 0,
        Part.on_hand <= Part.reorder_point,
        Part.status != PartStatus.DISCONTINUED.value,
    )
    if data.part_ids:
        stmt = stmt.where(Part.id.in_(data.part_ids))
    if data.department_id is not None:
        stmt = stmt.where((Part.department_id == data.department_id) | Part.department_id.is_(None))
    elif not vendor_service.sees_everything(caller):
        stmt = stmt.where(
            (Part.department_id == own_department_id) | Part.department_id.is_(None)
            if own_department_id
            else Part.department_id.is_(None)
        )
    low = list(session.scalars(stmt.order_by(Part.name, Part.id)))
    on_order = set(
        session.scalars(
            select(PurchaseOrderLine.part_id)
            .join(PurchaseOrder, PurchaseOrder.id == PurchaseOrderLine.purchase_order_id)
            .where(
                PurchaseOrderLine.part_id.in_([p.id for p in low]),
                PurchaseOrder.status.in_(vendor_service.OPEN_PO_STATUSES),
            )
        )
    )
    vendor_ids = {p.vendor_id for p in low if p.vendor_id}
    vendors = {v.id: v for v in session.scalars(select(Vendor).where(Vendor.id.in_(vendor_ids)))}
    skipped: list[SkippedPartOut] = []
    groups: dict[tuple[uuid.UUID, uuid.UUID | None], list[Part]] = defaultdict(list)
    for part in low:
        vendor = vendors.get(part.vendor_id) if part.vendor_id else None
        if part.id in on_order:
            reason = "already_on_order"
        elif vendor is None:
            reason = "no_vendor"
        elif vendor.status is VendorStatus.INACTIVE:
            reason = "vendor_inactive"
        else:
            department = data.department_id or part.department_id
            groups[(vendor.id, department)].append(part)
            continue
        skipped.append(SkippedPartOut(part_id=part.id, name=part.name, reason=reason))
    created: list[PurchaseOrder] = []
    batches = [
        (key, group[start : start + MAX_LINES])
        for key, group in sorted(
            groups.items(), key=lambda kv: (vendors[kv[0][0]].name, str(kv[0][1]))
        )
        for start in range(0, len(group), MAX_LINES)
    ]
    for (vendor_id, department_id), group in batches:
        po = create_purchase_order(
            session,
            caller=caller,
            organization_id=organization_id,
            own_department_id=own_department_id,
            data=PurchaseOrderCreate(
                vendor_id=vendor_id,
                department_id=department_id,
                ship_to_location_id=data.ship_to_location_id,
                description="Restock of low-stock parts",
                line_items=[
                    LineItemIn(
                        part_id=part.id,
                        description=part.name[:500],
                        part_number=part.part_number,
                        quantity=part.reorder_quantity,
                        unit_cost=_amount(part.unit_cost_cents),
                    )
                    for part in group
                ],
            ),
        )
        created.append(po)
    return LowStockResult(created=created, skipped=skipped)


def _amount(cents_value: int | None) -> Any:
    from decimal import Decimal

    return Decimal(cents_value or 0) / 100
