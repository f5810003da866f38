"""Parts, stock locations, movement requests and the negative-stock review queue.

Who sees what (department isolation): organization admins (and platform admins acting
on the organization) see every part. Other staff see the district-wide parts (no
department) and the parts of their own department; a part of another department
does not exist for them (404). Requesters have no access to inventory at all (the
routes refuse them). Locations are shared by all staff; what a location holds is
listed only for the parts the caller may see.

Who moves what: agents and admins record every kind of movement; technicians
consume, return and transfer, but may not take stock out of another person's van
or bag, and may not receive or adjust.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from pydantic.alias_generators import to_camel
from sqlalchemy import ColumnElement, Select, func, literal, or_, select, true
from sqlalchemy.orm import Session

from common.enums import AuditCategory, AuditSeverity, Role
from server.assets.models import Asset
from server.audit import service as audit
from server.core.db import flush_unique, utcnow
from server.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from server.core.listing import text_filter
from server.core.tenancy import Caller
from server.inventory import ledger
from server.inventory.models import (
    LocationKind,
    Part,
    PartStatus,
    ReviewStatus,
    StockLevel,
    StockLocation,
    StockMovement,
)
from server.inventory.schemas import (
    LocationCreate,
    LocationUpdate,
    MovementCreate,
    MovementOut,
    PartCreate,
    PartOut,
    PartUpdate,
    StockLevelOut,
    amount,
    cents,
)
from server.inventory.vendor_models import Vendor
from server.organizations.models import Department
from server.sites.models import Building, Room, Site
from server.users.models import User

PART_SORT_FIELDS = {
    "name": Part.name,
    "partNumber": Part.part_number,
    "category": Part.category,
    "manufacturer": Part.manufacturer,
    "status": Part.status,
    "currentStock": Part.on_hand,
    "unitCost": Part.unit_cost_cents,
    "reorderPoint": Part.reorder_point,
    "createdAt": Part.created_at,
    "updatedAt": Part.updated_at,
}
LOCATION_SORT_FIELDS = {
    "name": StockLocation.name,
    "kind": StockLocation.kind,
    "createdAt": StockLocation.created_at,
}
MOVEMENT_SORT_FIELDS = {
    "occurredAt": StockMovement.occurred_at,
    "createdAt": StockMovement.created_at,
    "quantity": StockMovement.quantity,
    "kind": StockMovement.kind,
}
LEVEL_SORT_FIELDS = {
    "quantity": StockLevel.quantity,
    "partName": Part.name,
    "locationName": StockLocation.name,
    "updatedAt": StockLevel.updated_at,
}
DESK_ROLES = frozenset({Role.SUPER_ADMIN, Role.ORG_ADMIN, Role.AGENT})
#: how far in the future a client clock may put ``occurredAt``
CLOCK_SKEW = timedelta(minutes=5)


# ---------------------------------------------------------------- department isolation


@dataclass(frozen=True, slots=True)
class PartScope:
    """Which parts a caller may see: all of them, or the district-wide ones plus
    those of one department."""

    all_departments: bool
    department_id: uuid.UUID | None = None

    def allows(self, department_id: uuid.UUID | None) -> bool:
        return self.all_departments or department_id is None or department_id == self.department_id

    def filter(self) -> ColumnElement[bool]:
        if self.all_departments:
            return true()
        if self.department_id is None:
            return Part.department_id.is_(None)
        return or_(Part.department_id.is_(None), Part.department_id == self.department_id)


EVERYTHING = PartScope(all_departments=True)


def part_scope(session: Session, caller: Caller) -> PartScope:
    if caller.role.is_admin:
        return EVERYTHING
    department_id = session.scalar(select(User.department_id).where(User.id == caller.user_id))
    return PartScope(all_departments=False, department_id=department_id)


def is_desk(caller: Caller) -> bool:
    return caller.role in DESK_ROLES


# ----------------------------------------------------------------------------- parts


def get_part(session: Session, scope: PartScope, part_id: uuid.UUID) -> Part:
    part = session.get(Part, part_id)
    if part is None or part.deleted_at is not None or not scope.allows(part.department_id):
        raise NotFound("Part")
    return part


def part_out(part: Part, *, location_quantity: int | None = None) -> PartOut:
    return PartOut(
        id=part.id,
        organization_id=part.organization_id,
        name=part.name,
        part_number=part.part_number,
        manufacturer=part.manufacturer,
        category=part.category,
        description=part.description,
        unit_cost=amount(part.unit_cost_cents),
        unit_cost_cents=part.unit_cost_cents,
        compatible_models=list(part.compatible_models or []),
        reorder_point=part.reorder_point,
        reorder_quantity=part.reorder_quantity,
        status=part.status,
        department_id=part.department_id,
        vendor_id=part.vendor_id,
        owner_user_id=part.owner_user_id,
        current_stock=part.on_hand,
        low_stock=part.status != PartStatus.DISCONTINUED and part.on_hand <= part.reorder_point,
        location_quantity=location_quantity,
        created_at=part.created_at,
        updated_at=part.updated_at,
    )


def query_parts(
    scope: PartScope,
    *,
    q: str | None = None,
    category: str | None = None,
    status: str | None = None,
    low_stock: bool | None = None,
    department_id: uuid.UUID | None = None,
    location_id: uuid.UUID | None = None,
    vendor_id: uuid.UUID | None = None,
) -> Select[Any]:
    """Rows of (Part, quantity at ``location_id`` or None): one statement per page."""
    stmt: Select[Any]
    if location_id is not None:
        stmt = cast(
            Select[Any],
            select(Part, StockLevel.quantity)
            .join(StockLevel, StockLevel.part_id == Part.id)
            .where(StockLevel.location_id == location_id, StockLevel.quantity != 0),
        )
    else:
        stmt = cast(Select[Any], select(Part, literal(None).label("location_quantity")))
    stmt = stmt.where(scope.filter())
    if q:
        stmt = stmt.where(
            text_filter(q, Part.name, Part.part_number, Part.manufacturer, Part.category)
        )
    if category:
        stmt = stmt.where(func.lower(Part.category) == category.lower())
    if status:
        stmt = stmt.where(Part.status == status)
    if low_stock is not None:
        low = (Part.on_hand <= Part.reorder_point) & (Part.status != PartStatus.DISCONTINUED.value)
        stmt = stmt.where(low if low_stock else ~low)
    if department_id is not None:
        stmt = stmt.where(Part.department_id == department_id)
    if vendor_id is not None:
        stmt = stmt.where(Part.vendor_id == vendor_id)
    return stmt


def _check_department(session: Session, scope: PartScope, department_id: uuid.UUID | None) -> None:
    if department_id is None:
        return
    if session.get(Department, department_id) is None:
        raise ValidationFailed("departmentId does not exist", details={"field": "departmentId"})
    if not scope.allows(department_id):
        raise PermissionDenied(
            "You can only keep parts in your own department or district-wide",
            details={"field": "departmentId"},
        )


def _check_staff_user(session: Session, user_id: uuid.UUID | None, field: str) -> None:
    if user_id is None:
        return
    user = session.get(User, user_id)
    if user is None or user.deleted_at is not None:
        raise ValidationFailed(f"{field} does not exist", details={"field": field})
    if not user.role.is_staff or not user.is_active:
        raise ValidationFailed(f"{field} must be an active staff member", details={"field": field})


def _clean_number(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _opening_location(
    session: Session, *, caller: Caller, organization_id: uuid.UUID, data: PartCreate
) -> StockLocation | None:
    if data.location_id is not None:
        location = session.get(StockLocation, data.location_id)
        if location is None or location.deleted_at is not None:
            raise ValidationFailed("locationId does not exist", details={"field": "locationId"})
        return location
    name = (data.location_name or "").strip()
    if not name:
        return None
    found = session.scalars(
        select(StockLocation).where(func.lower(StockLocation.name) == name.lower())
    ).first()
    if found is not None:
        return found
    location = StockLocation(
        organization_id=organization_id, name=name, kind=LocationKind.WAREHOUSE.value
    )
    session.add(location)
    flush_unique(session, message=f"A location named '{name}' exists", field="locationName")
    _audit(session, caller, location, "stock_location.created", f"added location {name}")
    return location


def _check_vendor(session: Session, vendor_id: uuid.UUID | None) -> None:
    """A part names a vendor of its own organization (the session's scope)."""
    if vendor_id is None:
        return
    vendor = session.get(Vendor, vendor_id)
    if vendor is None or vendor.deleted_at is not None:
        raise ValidationFailed("vendorId does not name a vendor", details={"field": "vendorId"})


def create_part(
    session: Session,
    *,
    caller: Caller,
    scope: PartScope,
    organization_id: uuid.UUID,
    data: PartCreate,
) -> Part:
    _check_department(session, scope, data.department_id)
    _check_staff_user(session, data.owner_user_id, "ownerUserId")
    _check_vendor(session, data.vendor_id)
    opening = data.location_quantity if data.location_quantity is not None else data.current_stock
    if (
        data.location_quantity is not None
        and data.current_stock is not None
        and data.location_quantity != data.current_stock
    ):
        raise ValidationFailed(
            "currentStock and locationQuantity differ: a new part's stock is at one location",
            details={"field": "currentStock"},
        )
    location = _opening_location(session, caller=caller, organization_id=organization_id, data=data)
    if opening and location is None:
        raise ValidationFailed(
            "Say where the opening stock is (locationName or locationId)",
            details={"field": "locationName"},
        )
    requested = data.status or PartStatus.ACTIVE.value
    if requested == PartStatus.LOW_STOCK:
        requested = PartStatus.ACTIVE.value
    part = Part(
        organization_id=organization_id,
        name=data.name,
        part_number=_clean_number(data.part_number),
        manufacturer=data.manufacturer,
        category=data.category,
        description=data.description,
        unit_cost_cents=cents(data.unit_cost),
        compatible_models=list(dict.fromkeys(data.compatible_models)),
        reorder_point=data.reorder_point,
        reorder_quantity=data.reorder_quantity,
        # the status the opening stock leads to, so creating a part notifies no one
        status=ledger.next_status(requested, opening or 0, data.reorder_point),
        department_id=data.department_id,
        vendor_id=data.vendor_id,
        owner_user_id=data.owner_user_id,
        on_hand=0,
    )
    session.add(part)
    flush_unique(
        session, message=f"A part numbered '{part.part_number}' exists", field="partNumber"
    )
    _audit(session, caller, part, "part.created", f"added part {part.name}")
    if opening and location is not None:
        ledger.receive(
            session,
            part_id=part.id,
            location_id=location.id,
            quantity=opening,
            actor_id=caller.user_id,
            note="Opening stock",
        )
    return part


def update_part(
    session: Session, *, caller: Caller, scope: PartScope, part: Part, data: PartUpdate
) -> Part:
    changes = data.model_dump(exclude_unset=True)
    for key in ("name", "reorder_point", "reorder_quantity", "status", "compatible_models"):
        if key in changes and changes[key] is None:
            raise ValidationFailed(f"{key} cannot be null", details={"field": to_camel(key)})
    if "unit_cost" in changes:
        changes["unit_cost_cents"] = cents(changes.pop("unit_cost"))
    if "part_number" in changes:
        changes["part_number"] = _clean_number(changes["part_number"])
    if "compatible_models" in changes:
        changes["compatible_models"] = list(dict.fromkeys(changes["compatible_models"]))
    if "department_id" in changes:
        _check_department(session, scope, changes["department_id"])
    if "owner_user_id" in changes:
        _check_staff_user(session, changes["owner_user_id"], "ownerUserId")
    if "vendor_id" in changes:
        _check_vendor(session, changes["vendor_id"])
    requested_status = changes.pop("status", None)
    old_status = part.status
    before = {key: getattr(part, key) for key in changes}
    for key, value in changes.items():
        setattr(part, key, value)
    if requested_status in (PartStatus.BACKORDERED, PartStatus.DISCONTINUED):
        part.status = requested_status
    elif requested_status is not None:
        part.status = PartStatus.ACTIVE.value  # active or low_stock: the stock decides
    flush_unique(session, message="A part with this number exists", field="partNumber")
    if requested_status is not None or "reorder_point" in changes:
        # Decide on the committed total, with the row locked against movements.
        session.refresh(part, ["on_hand", "status", "reorder_point"], with_for_update=True)
        status = ledger.next_status(part.status, part.on_hand, part.reorder_point)
        if status != part.status:
            part.status = status
            session.flush()
        if status == PartStatus.LOW_STOCK and old_status != PartStatus.LOW_STOCK:
            ledger.notify_low_stock(session, part, total=part.on_hand, actor_id=caller.user_id)
    after = {key: getattr(part, key) for key in changes}
    before["status"], after["status"] = old_status, part.status
    diff = audit.field_changes(before, after)
    if diff:
        _audit(
            session,
            caller,
            part,
            "part.updated",
            f"changed {', '.join(sorted(diff))} of part {part.name}",
            details={"changes": _jsonable(diff)},
        )
    return part


def query_part_stock(scope: PartScope, *, part_id: uuid.UUID | None = None) -> Select[Any]:
    """Rows of (StockLevel, part name, part number, location name, location kind)."""
    stmt: Select[Any] = cast(
        Select[Any],
        select(
            StockLevel,
            Part.name,
            Part.part_number,
            StockLocation.name,
            StockLocation.kind,
        )
        .join(Part, Part.id == StockLevel.part_id)
        .join(StockLocation, StockLocation.id == StockLevel.location_id)
        .where(scope.filter()),
    )
    if part_id is not None:
        stmt = stmt.where(StockLevel.part_id == part_id)
    return stmt


def level_out(row: Any) -> StockLevelOut:
    level, part_name, part_number, location_name, location_kind = row
    return StockLevelOut(
        part_id=level.part_id,
        part_name=part_name,
        part_number=part_number,
        location_id=level.location_id,
        location_name=location_name,
        location_kind=location_kind,
        quantity=level.quantity,
        updated_at=level.updated_at,
    )


# ------------------------------------------------------------------------- locations


def get_location(session: Session, location_id: uuid.UUID) -> StockLocation:
    location = session.get(StockLocation, location_id)
    if location is None or location.deleted_at is not None:
        raise NotFound("Stock location")
    return location


def query_locations(
    *,
    q: str | None = None,
    kind: str | None = None,
    site_id: uuid.UUID | None = None,
    building_id: uuid.UUID | None = None,
    holder_user_id: uuid.UUID | None = None,
    active: bool | None = None,
) -> Select[Any]:
    stmt = select(StockLocation)
    if q:
        stmt = stmt.where(text_filter(q, StockLocation.name, StockLocation.notes))
    if kind:
        stmt = stmt.where(StockLocation.kind == kind)
    if site_id:
        stmt = stmt.where(StockLocation.site_id == site_id)
    if building_id:
        stmt = stmt.where(StockLocation.building_id == building_id)
    if holder_user_id:
        stmt = stmt.where(StockLocation.holder_user_id == holder_user_id)
    if active is not None:
        stmt = stmt.where(StockLocation.active == active)
    return stmt


def _check_place(session: Session, values: dict[str, Any]) -> None:
    """Site, building and room exist and agree with one another; missing levels are
    filled in from the more precise one (a room gives its building and site)."""
    room = building = None
    if values.get("room_id") is not None:
        room = session.get(Room, values["room_id"])
        if room is None or room.deleted_at is not None:
            raise ValidationFailed("roomId does not exist", details={"field": "roomId"})
        if values.get("building_id") is None:
            values["building_id"] = room.building_id
        elif values["building_id"] != room.building_id:
            raise ValidationFailed("The room is not in that building", details={"field": "roomId"})
    if values.get("building_id") is not None:
        building = session.get(Building, values["building_id"])
        if building is None or building.deleted_at is not None:
            raise ValidationFailed("buildingId does not exist", details={"field": "buildingId"})
        if values.get("site_id") is None:
            values["site_id"] = building.site_id
        elif values["site_id"] != building.site_id:
            raise ValidationFailed(
                "The building is not on that site", details={"field": "buildingId"}
            )
    if values.get("site_id") is not None:
        site = session.get(Site, values["site_id"])
        if site is None or site.deleted_at is not None:
            raise ValidationFailed("siteId does not exist", details={"field": "siteId"})


def create_location(
    session: Session, *, caller: Caller, organization_id: uuid.UUID, data: LocationCreate
) -> StockLocation:
    values = data.model_dump(exclude={"organization_id"})
    _check_place(session, values)
    _check_staff_user(session, values["holder_user_id"], "holderUserId")
    location = StockLocation(organization_id=organization_id, **values)
    session.add(location)
    flush_unique(session, message=f"A location named '{data.name}' exists", field="name")
    _audit(session, caller, location, "stock_location.created", f"added location {location.name}")
    return location


def update_location(
    session: Session, *, caller: Caller, location: StockLocation, data: LocationUpdate
) -> StockLocation:
    changes = data.model_dump(exclude_unset=True)
    for key in ("name", "kind", "active"):
        if key in changes and changes[key] is None:
            raise ValidationFailed(f"{key} cannot be null", details={"field": key})
    place_keys = {"site_id", "building_id", "room_id"}
    if place_keys & changes.keys():
        place = {key: changes.get(key, getattr(location, key)) for key in place_keys}
        # a new room or building re-derives what lies above it
        if "room_id" in changes and "building_id" not in changes:
            place["building_id"] = None
        if ("room_id" in changes or "building_id" in changes) and "site_id" not in changes:
            place["site_id"] = None
        _check_place(session, place)
        changes.update(place)
    if "holder_user_id" in changes:
        _check_staff_user(session, changes["holder_user_id"], "holderUserId")
    if changes.get("active") is False and location.active:
        held = session.scalar(
            select(func.count())
            .select_from(StockLevel)
            .where(StockLevel.location_id == location.id, StockLevel.quantity != 0)
        )
        if held:
            raise Conflict(
                f"{location.name} still holds stock of {held} part(s): transfer it out first",
                details={"field": "active"},
            )
    before = {key: getattr(location, key) for key in changes}
    for key, value in changes.items():
        setattr(location, key, value)
    flush_unique(session, message="A location with this name exists", field="name")
    diff = audit.field_changes(before, {key: getattr(location, key) for key in changes})
    if diff:
        _audit(
            session,
            caller,
            location,
            "stock_location.updated",
            f"changed {', '.join(sorted(diff))} of location {location.name}",
            details={"changes": _jsonable(diff)},
        )
    return location


# ------------------------------------------------------------------------- movements


def check_may_take_from(session: Session, caller: Caller, location: StockLocation) -> None:
    """Technicians take stock from shared locations and their own van or bag only."""
    if is_desk(caller) or location.holder_user_id in (None, caller.user_id):
        return
    raise PermissionDenied(
        f"{location.name} is another technician's {location.kind}: ask them to transfer it",
        details={"field": "locationId"},
    )


def check_asset(session: Session, asset_id: uuid.UUID | None) -> Asset | None:
    """The asset a part went into (422 on ``assetId`` when there is no such asset)."""
    if asset_id is None:
        return None
    asset = session.get(Asset, asset_id)
    if asset is None or asset.deleted_at is not None:
        raise ValidationFailed("assetId does not exist", details={"field": "assetId"})
    return asset


def _occurred_at(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValidationFailed("occurredAt needs a time zone", details={"field": "occurredAt"})
    if value > utcnow() + CLOCK_SKEW:
        raise ValidationFailed("occurredAt is in the future", details={"field": "occurredAt"})
    return value


def record_movement(
    session: Session, *, caller: Caller, scope: PartScope, data: MovementCreate
) -> list[StockMovement]:
    """A movement asked for over the API (a transfer gives its two legs)."""
    kind = data.kind
    if kind in ("receive", "adjust") and not is_desk(caller):
        raise PermissionDenied(f"Only agents and administrators {kind} stock")
    part = get_part(session, scope, data.part_id)
    location = get_location(session, data.location_id)
    occurred_at = _occurred_at(data.occurred_at)
    if kind != "transfer" and data.to_location_id is not None:
        raise ValidationFailed(
            "toLocationId is only for transfers", details={"field": "toLocationId"}
        )
    if kind != "receive" and data.unit_cost is not None:
        raise ValidationFailed("unitCost is only for receive", details={"field": "unitCost"})
    if kind != "consume" and data.asset_id is not None:
        raise ValidationFailed("assetId is only for consume", details={"field": "assetId"})
    actor = caller.user_id
    if kind == "receive":
        moved = [
            ledger.receive(
                session,
                part_id=part.id,
                location_id=location.id,
                quantity=data.quantity,
                actor_id=actor,
                unit_cost_cents=cents(data.unit_cost),
                note=data.reason,
                occurred_at=occurred_at,
            )
        ]
    elif kind == "consume":
        check_may_take_from(session, caller, location)
        check_asset(session, data.asset_id)
        moved = [
            ledger.consume(
                session,
                part_id=part.id,
                location_id=location.id,
                quantity=data.quantity,
                actor_id=actor,
                asset_id=data.asset_id,
                note=data.reason,
                occurred_at=occurred_at,
            )
        ]
    elif kind == "return":
        moved = [
            ledger.return_unused(
                session,
                part_id=part.id,
                location_id=location.id,
                quantity=data.quantity,
                actor_id=actor,
                note=data.reason,
                occurred_at=occurred_at,
            )
        ]
    elif kind == "transfer":
        if data.to_location_id is None:
            raise ValidationFailed(
                "A transfer needs toLocationId", details={"field": "toLocationId"}
            )
        check_may_take_from(session, caller, location)
        moved = list(
            ledger.transfer(
                session,
                part_id=part.id,
                from_location_id=location.id,
                to_location_id=data.to_location_id,
                quantity=data.quantity,
                actor_id=actor,
                note=data.reason,
                occurred_at=occurred_at,
            )
        )
    else:
        movement = ledger.adjust(
            session,
            part_id=part.id,
            location_id=location.id,
            delta=data.quantity,
            reason=data.reason or "",
            actor_id=actor,
            occurred_at=occurred_at,
        )
        _audit(
            session,
            caller,
            part,
            "stock.adjusted",
            f"adjusted {part.name} at {location.name} by {movement.quantity:+d}: {movement.reason}",
            details={
                "locationId": str(location.id),
                "quantity": movement.quantity,
                "balanceAfter": movement.balance_after,
                "reason": movement.reason,
            },
            severity=AuditSeverity.WARNING if movement.quantity < 0 else AuditSeverity.INFO,
        )
        moved = [movement]
    return moved


def movement_out(
    movement: StockMovement, *, part_name: str, part_number: str | None, location_name: str
) -> MovementOut:
    return MovementOut(
        id=movement.id,
        organization_id=movement.organization_id,
        part_id=movement.part_id,
        part_name=part_name,
        part_number=part_number,
        location_id=movement.location_id,
        location_name=location_name,
        kind=movement.kind,
        quantity=movement.quantity,
        balance_after=movement.balance_after,
        reason=movement.reason,
        actor_id=movement.actor_id,
        occurred_at=movement.occurred_at,
        created_at=movement.created_at,
        source_type=movement.source_type,
        source_id=movement.source_id,
        ticket_id=movement.ticket_id,
        asset_id=movement.asset_id,
        transfer_id=movement.transfer_id,
        related_movement_id=movement.related_movement_id,
        unit_cost_cents=movement.unit_cost_cents,
        flagged_negative=movement.flagged_negative,
        review_status=movement.review_status,
        reviewed_by_id=movement.reviewed_by_id,
        reviewed_at=movement.reviewed_at,
        review_note=movement.review_note,
    )


def movement_out_loaded(session: Session, movement: StockMovement) -> MovementOut:
    """For a movement whose part and location are in the session already."""
    part = session.get(Part, movement.part_id)
    location = session.get(StockLocation, movement.location_id)
    assert part is not None
    assert location is not None
    return movement_out(
        movement, part_name=part.name, part_number=part.part_number, location_name=location.name
    )


def movement_row_out(row: Any) -> MovementOut:
    movement, part_name, part_number, location_name = row
    return movement_out(
        movement, part_name=part_name, part_number=part_number, location_name=location_name
    )


def query_movements(
    scope: PartScope,
    *,
    part_id: uuid.UUID | None = None,
    location_id: uuid.UUID | None = None,
    kind: str | None = None,
    ticket_id: uuid.UUID | None = None,
    asset_id: uuid.UUID | None = None,
    actor_id: uuid.UUID | None = None,
    source_type: str | None = None,
    source_id: uuid.UUID | None = None,
    flagged: bool | None = None,
    review_status: str | None = None,
    occurred_from: datetime | None = None,
    occurred_to: datetime | None = None,
    q: str | None = None,
) -> Select[Any]:
    """Rows of (StockMovement, part name, part number, location name)."""
    stmt: Select[Any] = cast(
        Select[Any],
        select(StockMovement, Part.name, Part.part_number, StockLocation.name)
        .join(Part, Part.id == StockMovement.part_id)
        .join(StockLocation, StockLocation.id == StockMovement.location_id)
        .where(scope.filter()),
    )
    filters: list[ColumnElement[bool]] = []
    if part_id:
        filters.append(StockMovement.part_id == part_id)
    if location_id:
        filters.append(StockMovement.location_id == location_id)
    if kind:
        filters.append(StockMovement.kind == kind)
    if ticket_id:
        filters.append(StockMovement.ticket_id == ticket_id)
    if asset_id:
        filters.append(StockMovement.asset_id == asset_id)
    if actor_id:
        filters.append(StockMovement.actor_id == actor_id)
    if source_type:
        filters.append(StockMovement.source_type == source_type)
    if source_id:
        filters.append(StockMovement.source_id == source_id)
    if flagged is not None:
        filters.append(StockMovement.flagged_negative.is_(flagged))
    if review_status:
        filters.append(StockMovement.review_status == review_status)
    if occurred_from:
        filters.append(StockMovement.occurred_at >= occurred_from)
    if occurred_to:
        filters.append(StockMovement.occurred_at <= occurred_to)
    if q:
        filters.append(text_filter(q, Part.name, Part.part_number, StockMovement.reason))
    return stmt.where(*filters)


def resolve_review(
    session: Session,
    *,
    caller: Caller,
    scope: PartScope,
    movement_id: uuid.UUID,
    note: str | None,
) -> StockMovement:
    movement = session.get(StockMovement, movement_id)
    if movement is None or not movement.flagged_negative:
        raise NotFound("Flagged movement")
    part = get_part(session, scope, movement.part_id)
    if movement.review_status == ReviewStatus.RESOLVED:
        raise Conflict("This movement was reviewed already", details={"field": "id"})
    movement.review_status = ReviewStatus.RESOLVED.value
    movement.reviewed_by_id = caller.user_id
    movement.reviewed_at = utcnow()
    movement.review_note = note
    session.flush()
    _audit(
        session,
        caller,
        part,
        "stock.review_resolved",
        f"resolved the negative-stock flag on {part.name} ({movement.quantity:+d})",
        details={"movementId": str(movement.id), "note": note},
    )
    return movement


# ------------------------------------------------------------------------- helpers


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, uuid.UUID | datetime):
        return str(value)
    return value


def _audit(
    session: Session,
    caller: Caller,
    item: Part | StockLocation,
    action: str,
    message: str,
    **kw: Any,
) -> None:
    entity = "part" if isinstance(item, Part) else "stock_location"
    audit.record(
        session,
        actor=caller,
        organization_id=item.organization_id,
        action=action,
        category=AuditCategory.DATA,
        entity_type=entity,
        entity_id=item.id,
        message=f"{caller.email} {message}",
        **kw,
    )
