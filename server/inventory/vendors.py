"""Vendors: who the district buys from, which departments they serve, what they supply.

Visibility follows departments (the primary spec: "vendors connected to visible
departments, assets, parts, or purchase orders"):

- organization admins (and platform admins acting on the organization) see every vendor;
- other staff see a vendor that serves no department in particular, one that serves
  their own department, or one connected to something of their department: a
  purchase order, a catalogue part or an asset of their department;
- requesters see no vendor at all (the routes refuse them).

A vendor another department cannot see is "not found" for them, like another
organization's rows.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, delete, exists, false, func, or_, select
from sqlalchemy.orm import Session

from common.enums import AuditCategory, AuditSeverity, Role
from server.assets.models import Asset
from server.audit import service as audit
from server.core.db import flush_unique, utcnow
from server.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from server.core.listing import text_filter
from server.core.tenancy import Caller, soft_delete
from server.inventory.models import Part
from server.inventory.procurement_schemas import VendorCreate, VendorOut, VendorUpdate
from server.inventory.vendor_models import (
    PurchaseOrder,
    PurchaseOrderStatus,
    Vendor,
    VendorDepartment,
    VendorStatus,
)
from server.organizations.models import Department
from server.users.models import User

VENDOR_SORT_FIELDS = {
    "name": Vendor.name,
    "type": Vendor.vendor_type,
    "status": Vendor.status,
    "createdAt": Vendor.created_at,
    "updatedAt": Vendor.updated_at,
    "performanceRating": Vendor.performance_rating,
}

OPEN_PO_STATUSES = (
    PurchaseOrderStatus.DRAFT,
    PurchaseOrderStatus.PENDING_APPROVAL,
    PurchaseOrderStatus.APPROVED,
    PurchaseOrderStatus.SENT,
    PurchaseOrderStatus.PARTIAL,
)


# --------------------------------------------------------------------------- who sees what


def sees_everything(caller: Caller) -> bool:
    return caller.role.is_admin


def caller_department(session: Session, caller: Caller) -> uuid.UUID | None:
    """The caller's department (one indexed read; admins need none)."""
    if sees_everything(caller):
        return None
    return session.scalar(select(User.department_id).where(User.id == caller.user_id))


def _supplied_models() -> list[tuple[str, Any]]:
    """(label, model) of the tables that name a vendor."""
    return [("part", Part), ("asset", Asset)]


def po_visible(caller: Caller, department_id: uuid.UUID | None) -> ColumnElement[bool] | None:
    """Which purchase orders the caller sees (None: all of the organization's)."""
    if sees_everything(caller):
        return None
    if not caller.role.is_staff:
        return false()
    return _department_rows(caller, PurchaseOrder, department_id)


def vendor_visible(caller: Caller, department_id: uuid.UUID | None) -> ColumnElement[bool] | None:
    """Which vendors the caller sees (None: all of the organization's)."""
    if sees_everything(caller):
        return None
    if not caller.role.is_staff:
        return false()
    serves_anyone = ~exists().where(VendorDepartment.vendor_id == Vendor.id)
    if department_id is None:
        return serves_anyone
    connected: list[ColumnElement[bool]] = [
        serves_anyone,
        exists().where(
            VendorDepartment.vendor_id == Vendor.id,
            VendorDepartment.department_id == department_id,
        ),
        exists().where(
            PurchaseOrder.vendor_id == Vendor.id, PurchaseOrder.department_id == department_id
        ),
    ]
    for _label, model in _supplied_models():
        if hasattr(model, "department_id"):
            connected.append(
                exists().where(model.vendor_id == Vendor.id, model.department_id == department_id)
            )
    return or_(*connected)


def get_vendor(session: Session, vendor_id: uuid.UUID) -> Vendor:
    vendor = session.get(Vendor, vendor_id)
    if vendor is None or vendor.deleted_at is not None:
        raise NotFound("Vendor")
    return vendor


def get_visible_vendor(
    session: Session, caller: Caller, vendor_id: uuid.UUID, *, department_id: uuid.UUID | None
) -> Vendor:
    """The vendor, or 404 when it does not exist or the caller may not see it."""
    stmt = select(Vendor).where(Vendor.id == vendor_id)
    visible = vendor_visible(caller, department_id)
    if visible is not None:
        stmt = stmt.where(visible)
    vendor = session.scalar(stmt)
    if vendor is None:
        raise NotFound("Vendor")
    return vendor


# --------------------------------------------------------------------------- reading


def query_vendors(
    caller: Caller,
    *,
    department_id: uuid.UUID | None,
    q: str | None = None,
    status: VendorStatus | None = None,
    vendor_type: str | None = None,
    serves_department_id: uuid.UUID | None = None,
) -> Select[Any]:
    """Vendors with their supply counts, one statement (the counts are subqueries)."""
    stmt = select(Vendor, *_count_columns(caller, department_id))
    visible = vendor_visible(caller, department_id)
    if visible is not None:
        stmt = stmt.where(visible)
    if q:
        stmt = stmt.where(
            text_filter(q, Vendor.name, Vendor.contact_name, Vendor.email, Vendor.account_number)
        )
    if status:
        stmt = stmt.where(Vendor.status == status)
    if vendor_type:
        stmt = stmt.where(Vendor.vendor_type == vendor_type)
    if serves_department_id:
        stmt = stmt.where(
            exists().where(
                VendorDepartment.vendor_id == Vendor.id,
                VendorDepartment.department_id == serves_department_id,
            )
        )
    return stmt


def _department_rows(
    caller: Caller, model: Any, department_id: uuid.UUID | None
) -> ColumnElement[bool] | None:
    """Rows of ``model`` (parts, assets, orders) of the caller's department or of none."""
    if sees_everything(caller):
        return None
    if department_id is None:
        return cast("ColumnElement[bool]", model.department_id.is_(None))
    return or_(model.department_id.is_(None), model.department_id == department_id)


def _count_columns(caller: Caller, department_id: uuid.UUID | None) -> list[Any]:
    """Correlated counts of what the vendor supplies, as far as the caller sees it."""
    columns: list[Any] = []
    counted = [(f"{label}_count", model, False) for label, model in _supplied_models()]
    counted += [
        ("purchase_order_count", PurchaseOrder, False),
        ("open_purchase_order_count", PurchaseOrder, True),
    ]
    for label, model, only_open in counted:
        sub = select(func.count()).select_from(model).where(model.vendor_id == Vendor.id)
        visible = _department_rows(caller, model, department_id)
        if visible is not None:
            sub = sub.where(visible)
        if only_open:
            sub = sub.where(PurchaseOrder.status.in_(OPEN_PO_STATUSES))
        columns.append(sub.correlate(Vendor).scalar_subquery().label(label))
    return columns


def query_vendor_parts(
    caller: Caller, vendor_id: uuid.UUID, *, department_id: uuid.UUID | None, q: str | None
) -> Select[Any]:
    stmt = select(Part).where(Part.vendor_id == vendor_id)
    visible = _department_rows(caller, Part, department_id)
    if visible is not None:
        stmt = stmt.where(visible)
    if q:
        stmt = stmt.where(text_filter(q, Part.name, Part.part_number, Part.category))
    return stmt


def department_ids_of(session: Session, vendor_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list]:
    """Departments served, for a page of vendors in one statement."""
    found: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    if vendor_ids:
        rows = session.execute(
            select(VendorDepartment.vendor_id, VendorDepartment.department_id)
            .where(VendorDepartment.vendor_id.in_(list(vendor_ids)))
            .order_by(VendorDepartment.vendor_id, VendorDepartment.department_id)
        ).all()
        for vendor_id, dept_id in rows:
            found[vendor_id].append(dept_id)
    return found


def vendor_outputs(session: Session, rows: Iterable[Any]) -> list[VendorOut]:
    """Output for rows of ``query_vendors`` (vendor, part, asset, order, open order counts)."""
    rows = list(rows)
    departments = department_ids_of(session, [row[0].id for row in rows])
    return [
        _out(vendor, departments.get(vendor.id, []), parts, assets, orders, open_orders)
        for vendor, parts, assets, orders, open_orders in rows
    ]


def vendor_output(
    session: Session, caller: Caller, vendor: Vendor, *, department_id: uuid.UUID | None
) -> VendorOut:
    row = session.execute(
        select(Vendor, *_count_columns(caller, department_id)).where(Vendor.id == vendor.id)
    ).one()
    return vendor_outputs(session, [row])[0]


def _out(
    vendor: Vendor,
    department_ids: list[uuid.UUID],
    parts: int | None,
    assets: int | None,
    orders: int | None,
    open_orders: int | None,
) -> VendorOut:
    data = {c.key: getattr(vendor, c.key) for c in Vendor.__mapper__.column_attrs}
    return VendorOut.model_validate(
        {
            **data,
            "department_ids": department_ids,
            "part_count": parts or 0,
            "asset_count": assets or 0,
            "purchase_order_count": orders or 0,
            "open_purchase_order_count": open_orders or 0,
        }
    )


# --------------------------------------------------------------------------- writing


def _check_departments(
    session: Session, caller: Caller, own: uuid.UUID | None, wanted: list[uuid.UUID]
) -> list[uuid.UUID]:
    wanted = list(dict.fromkeys(wanted))
    if not wanted:
        return wanted
    found = set(session.scalars(select(Department.id).where(Department.id.in_(wanted))))
    missing = [str(d) for d in wanted if d not in found]
    if missing:
        raise ValidationFailed(
            "Unknown department", details={"field": "departmentIds", "unknown": missing}
        )
    if not sees_everything(caller) and any(d != own for d in wanted):
        raise PermissionDenied(
            "You may only assign a vendor to your own department",
            details={"field": "departmentIds"},
        )
    return wanted


def _set_departments(session: Session, vendor: Vendor, department_ids: list[uuid.UUID]) -> None:
    session.execute(
        delete(VendorDepartment)
        .where(VendorDepartment.vendor_id == vendor.id)
        .execution_options(synchronize_session=False)
    )
    session.add_all(
        VendorDepartment(
            organization_id=vendor.organization_id, vendor_id=vendor.id, department_id=dept_id
        )
        for dept_id in department_ids
    )
    session.flush()


def _record(
    session: Session, caller: Caller, vendor: Vendor, action: str, message: str, **kw: Any
) -> None:
    audit.record(
        session,
        actor=caller,
        organization_id=vendor.organization_id,
        action=action,
        category=AuditCategory.DATA,
        entity_type="vendor",
        entity_id=vendor.id,
        message=message,
        **kw,
    )


def create_vendor(
    session: Session,
    *,
    caller: Caller,
    organization_id: uuid.UUID,
    data: VendorCreate,
    department_id: uuid.UUID | None,
) -> Vendor:
    departments = _check_departments(session, caller, department_id, data.department_ids)
    fields = data.model_dump(exclude={"organization_id", "department_ids"})
    vendor = Vendor(organization_id=organization_id, **fields)
    session.add(vendor)
    flush_unique(session, message=f"A vendor named '{data.name}' exists", field="name")
    _set_departments(session, vendor, departments)
    _record(
        session,
        caller,
        vendor,
        "vendor.created",
        f"{caller.email} added vendor {vendor.name}",
        details={"departmentIds": [str(d) for d in departments]},
    )
    return vendor


def update_vendor(
    session: Session,
    *,
    caller: Caller,
    vendor: Vendor,
    data: VendorUpdate,
    department_id: uuid.UUID | None,
) -> Vendor:
    changes = data.model_dump(exclude_unset=True)
    new_departments = changes.pop("department_ids", None)
    for key in ("name", "vendor_type", "status", "w9_on_file", "insurance_on_file"):
        if key in changes and changes[key] is None:
            field = "type" if key == "vendor_type" else key
            raise ValidationFailed(f"{field} cannot be null", details={"field": field})
    if "department_ids" in data.model_fields_set and new_departments is None:
        raise ValidationFailed("departmentIds cannot be null", details={"field": "departmentIds"})
    before = {key: getattr(vendor, key) for key in changes}
    for key, value in changes.items():
        setattr(vendor, key, value)
    diff = audit.field_changes(before, {key: getattr(vendor, key) for key in changes})
    flush_unique(session, message="A vendor with this name exists", field="name")
    if new_departments is not None:
        wanted = _check_departments(session, caller, department_id, new_departments)
        current = department_ids_of(session, [vendor.id]).get(vendor.id, [])
        if set(current) != set(wanted):
            _set_departments(session, vendor, wanted)
            vendor.updated_at = utcnow()  # replicas and lists see the change
            diff["departmentIds"] = {
                "from": sorted(str(d) for d in current),
                "to": sorted(str(d) for d in wanted),
            }
    if diff:
        _record(
            session,
            caller,
            vendor,
            "vendor.updated",
            f"{caller.email} changed {', '.join(sorted(diff))} of vendor {vendor.name}",
            details={"changes": _jsonable(diff)},
        )
    return vendor


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def delete_vendor(session: Session, *, caller: Caller, vendor: Vendor) -> None:
    """A vendor that orders were placed with stays (set it inactive); others go."""
    if session.scalar(select(exists().where(PurchaseOrder.vendor_id == vendor.id))):
        raise Conflict(
            "Purchase orders were placed with this vendor: set its status to inactive instead",
            details={"field": "id"},
        )
    for _label, model in _supplied_models():
        if session.scalar(select(exists().where(model.vendor_id == vendor.id))):
            raise Conflict(
                f"{model.__name__}s name this vendor: change them first or set the vendor inactive",
                details={"field": "id"},
            )
    soft_delete(vendor)
    session.flush()
    _record(
        session,
        caller,
        vendor,
        "vendor.deleted",
        f"{caller.email} deleted vendor {vendor.name}",
        severity=AuditSeverity.WARNING,
    )


def approvers(session: Session, organization_id: uuid.UUID) -> list[uuid.UUID]:
    """Active organization admins: who approves purchase orders."""
    return list(
        session.scalars(
            select(User.id).where(
                User.organization_id == organization_id,
                User.role == Role.ORG_ADMIN,
                User.is_active.is_(True),
            )
        )
    )
