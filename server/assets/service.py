"""Assets: lookup, lifecycle (create, edit, move, status, check-out and check-in),
history, links to tickets, the organization's asset types, status labels and people.

Every change to an asset writes its history (``AssetEvent``) and an audit event in
the caller's transaction. Other domains write into an asset's history through
``record_event`` (the inventory writes ``part_used``), and the ticket service links
tickets to assets through ``link_ticket_assets`` / ``unlink_ticket_asset``.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any, cast

from pydantic.alias_generators import to_camel
from sqlalchemy import ColumnElement, Select, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from common.enums import AuditCategory, Role
from common.errors import ErrorCode
from server.assets.models import (
    Asset,
    AssetEvent,
    AssetStatusLabel,
    AssetType,
    Person,
    TicketAsset,
)
from server.assets.schemas import (
    AssetCreate,
    AssetOut,
    AssetTypeCreate,
    AssetTypeUpdate,
    AssetUpdate,
    CheckinIn,
    CheckoutIn,
    PersonCreate,
    PersonUpdate,
    StatusLabelCreate,
    StatusLabelUpdate,
)
from server.audit import service as audit
from server.core.db import flush_unique, utcnow
from server.core.errors import BusinessRuleViolation, Conflict, NotFound, ValidationFailed
from server.core.listing import ListParams, apply_sort, text_filter
from server.core.schemas import Pagination
from server.core.tenancy import INCLUDE_DELETED, Caller, soft_delete
from server.inventory.vendor_models import Vendor
from server.organizations.models import Department
from server.sites.models import Building, Room, Site
from server.tickets import timeline
from server.tickets import visibility as tickets_visibility
from server.tickets.models import Ticket
from server.users.models import User

# ------------------------------------------------------------------------ defaults

DEFAULT_TYPES = (
    "Chromebook",
    "Laptop",
    "Desktop",
    "Tablet",
    "Projector",
    "Interactive panel",
    "Printer",
    "Network gear",
    "HVAC unit",
    "Other",
)

# (name, status type, key, requires a police report, default for new assets, color)
DEFAULT_LABELS = (
    ("In Service", "deployable", "in_service", False, True, "#2E7D32"),
    ("Spare", "deployable", "spare", False, False, "#1565C0"),
    ("Broken", "in_repair", "broken", False, False, "#C62828"),
    ("Needs Tech Attention", "in_repair", "needs_tech_attention", False, False, "#EF6C00"),
    ("Missing", "undeployable", "missing", False, False, "#6A1B9A"),
    ("Stolen", "undeployable", "stolen", True, False, "#4E342E"),
    ("Retired", "archived", "retired", False, False, "#616161"),
)

STAFF = (Role.ORG_ADMIN, Role.AGENT, Role.TECHNICIAN)

ASSET_SORT_FIELDS = {
    "assetTag": Asset.asset_tag,
    "name": Asset.name,
    "serialNumber": Asset.serial_number,
    "manufacturer": Asset.manufacturer,
    "model": Asset.model,
    "purchaseDate": Asset.purchase_date,
    "warrantyEnd": Asset.warranty_end,
    "createdAt": Asset.created_at,
    "updatedAt": Asset.updated_at,
}
TYPE_SORT_FIELDS = {"name": AssetType.name, "sortOrder": AssetType.sort_order}
LABEL_SORT_FIELDS = {
    "name": AssetStatusLabel.name,
    "sortOrder": AssetStatusLabel.sort_order,
    "statusType": AssetStatusLabel.status_type,
}
PERSON_SORT_FIELDS = {
    "name": Person.name,
    "externalId": Person.external_id,
    "grade": Person.grade,
    "createdAt": Person.created_at,
}
EVENT_KINDS = (
    "created",
    "updated",
    "moved",
    "checked_out",
    "checked_in",
    "status_changed",
    "audited",
    "part_used",
    "part_returned",
    "ticket_linked",
    "ticket_unlinked",
)


def normalize_tag(value: str) -> str:
    """Tags and serial numbers are compared trimmed and upper-cased (scanners and
    people disagree about case; districts do not issue tags differing only by it)."""
    return value.strip().upper()


def _jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        to_camel(key): {"from": _jsonable(before.get(key)), "to": _jsonable(after.get(key))}
        for key in after
        if before.get(key) != after.get(key)
    }


def _has_any(
    session: Session, model: type[AssetType] | type[AssetStatusLabel], org_id: uuid.UUID
) -> bool:
    stmt = (
        select(model.id)
        .where(model.organization_id == org_id)  # also right on an all-tenants session
        .limit(1)
        .execution_options(**{INCLUDE_DELETED: True})
    )
    return session.execute(stmt).first() is not None


def ensure_defaults(session: Session, organization_id: uuid.UUID | None) -> None:
    """Give an organization the default asset types and status labels the first time
    it needs them (it can rename, add and hide them afterwards). Cheap when done:
    two one-row index reads. Safe when two requests race: the loser's savepoint is
    rolled back and the winner's rows are used."""
    if organization_id is None:
        return
    for model, make in ((AssetType, _default_types), (AssetStatusLabel, _default_labels)):
        if _has_any(session, model, organization_id):
            continue
        try:
            with session.begin_nested():
                session.add_all(make(organization_id))
                session.flush()
        except IntegrityError:
            pass  # another request seeded them first


def _default_types(org_id: uuid.UUID) -> list[AssetType]:
    return [
        AssetType(organization_id=org_id, name=name, sort_order=i * 10)
        for i, name in enumerate(DEFAULT_TYPES)
    ]


def _default_labels(org_id: uuid.UUID) -> list[AssetStatusLabel]:
    return [
        AssetStatusLabel(
            organization_id=org_id,
            name=name,
            status_type=kind,
            key=key,
            requires_police_report=police,
            is_default=default,
            color=color,
            sort_order=i * 10,
        )
        for i, (name, kind, key, police, default, color) in enumerate(DEFAULT_LABELS)
    ]


# ------------------------------------------------------------------- asset types


def get_type(session: Session, type_id: uuid.UUID) -> AssetType:
    item = session.get(AssetType, type_id)
    if item is None or item.deleted_at is not None:
        raise NotFound("Asset type")
    return item


def query_types(*, q: str | None = None, is_active: bool | None = None) -> Select[Any]:
    stmt = select(AssetType)
    if q:
        stmt = stmt.where(text_filter(q, AssetType.name))
    if is_active is not None:
        stmt = stmt.where(AssetType.is_active == is_active)
    return stmt


def _config_audit(session: Session, caller: Caller, item: Any, action: str, msg: str) -> None:
    audit.record(
        session,
        actor=caller,
        organization_id=item.organization_id,
        action=action,
        category=AuditCategory.CONFIGURATION,
        entity_type=item.__tablename__.removesuffix("s"),
        entity_id=item.id,
        message=msg,
    )


def create_type(
    session: Session, *, caller: Caller, organization_id: uuid.UUID, data: AssetTypeCreate
) -> AssetType:
    ensure_defaults(session, organization_id)
    fields = data.model_dump(exclude={"organization_id"})
    item = AssetType(organization_id=organization_id, **fields)
    session.add(item)
    flush_unique(session, message=f"An asset type named '{data.name}' exists", field="name")
    _config_audit(
        session, caller, item, "asset_type.created", f"{caller.email} added asset type {data.name}"
    )
    return item


def update_type(
    session: Session, *, caller: Caller, item: AssetType, data: AssetTypeUpdate
) -> AssetType:
    changes = data.model_dump(exclude_unset=True)
    _no_nulls(changes, {"name", "is_active", "sort_order"})
    before = {k: getattr(item, k) for k in changes}
    for key, value in changes.items():
        setattr(item, key, value)
    flush_unique(session, message="An asset type with this name exists", field="name")
    diff = _changes(before, changes)
    if diff:
        _config_audit(
            session,
            caller,
            item,
            "asset_type.updated",
            f"{caller.email} changed {', '.join(sorted(diff))} of asset type {item.name}",
        )
    return item


def _no_nulls(changes: dict[str, Any], fields: Iterable[str]) -> None:
    for key in fields:
        if key in changes and changes[key] is None:
            field = to_camel(key)
            raise ValidationFailed(f"{field} cannot be null", details={"field": field})


# ----------------------------------------------------------------- status labels


def get_label(session: Session, label_id: uuid.UUID) -> AssetStatusLabel:
    item = session.get(AssetStatusLabel, label_id)
    if item is None or item.deleted_at is not None:
        raise NotFound("Asset status")
    return item


def query_labels(*, q: str | None = None, status_type: str | None = None) -> Select[Any]:
    stmt = select(AssetStatusLabel)
    if q:
        stmt = stmt.where(text_filter(q, AssetStatusLabel.name))
    if status_type:
        stmt = stmt.where(AssetStatusLabel.status_type == status_type)
    return stmt


def _make_default(session: Session, label: AssetStatusLabel) -> None:
    if label.status_type != "deployable":
        raise BusinessRuleViolation(
            "Only a deployable status can be the default for new assets",
            details={"field": "isDefault"},
        )
    for other in session.scalars(
        select(AssetStatusLabel).where(
            AssetStatusLabel.organization_id == label.organization_id,
            AssetStatusLabel.is_default.is_(True),
            AssetStatusLabel.id != label.id,
        )
    ):
        other.is_default = False
    label.is_default = True


def create_label(
    session: Session, *, caller: Caller, organization_id: uuid.UUID, data: StatusLabelCreate
) -> AssetStatusLabel:
    ensure_defaults(session, organization_id)
    fields = data.model_dump(exclude={"organization_id", "is_default"})
    item = AssetStatusLabel(organization_id=organization_id, is_default=False, **fields)
    session.add(item)
    if data.is_default:
        _make_default(session, item)
    flush_unique(session, message=f"A status named '{data.name}' exists", field="name")
    _config_audit(
        session, caller, item, "asset_status.created", f"{caller.email} added status {data.name}"
    )
    return item


def update_label(
    session: Session, *, caller: Caller, item: AssetStatusLabel, data: StatusLabelUpdate
) -> AssetStatusLabel:
    changes = data.model_dump(exclude_unset=True)
    _no_nulls(changes, {"name", "status_type", "requires_police_report", "sort_order"})
    make_default = changes.pop("is_default", None)
    if make_default is False and item.is_default:
        raise BusinessRuleViolation(
            "Make another status the default instead", details={"field": "isDefault"}
        )
    before = {k: getattr(item, k) for k in changes}
    for key, value in changes.items():
        setattr(item, key, value)
    if item.is_default and item.status_type != "deployable":
        raise BusinessRuleViolation(
            "The default status for new assets must stay deployable",
            details={"field": "statusType"},
        )
    if make_default:
        before["is_default"], changes["is_default"] = item.is_default, True
        _make_default(session, item)
    flush_unique(session, message="A status with this name exists", field="name")
    diff = _changes(before, changes)
    if diff:
        _config_audit(
            session,
            caller,
            item,
            "asset_status.updated",
            f"{caller.email} changed {', '.join(sorted(diff))} of status {item.name}",
        )
    return item


def default_label(session: Session, organization_id: uuid.UUID | None) -> AssetStatusLabel:
    ensure_defaults(session, organization_id)
    stmt = select(AssetStatusLabel).where(AssetStatusLabel.status_type == "deployable")
    if organization_id is not None:
        stmt = stmt.where(AssetStatusLabel.organization_id == organization_id)
    label = session.scalars(
        stmt.order_by(AssetStatusLabel.is_default.desc(), AssetStatusLabel.sort_order).limit(1)
    ).first()
    if label is None:
        raise BusinessRuleViolation(
            "The organization has no deployable status: add one or name statusLabelId",
            details={"field": "statusLabelId"},
        )
    return label


def label_by_key(
    session: Session, key: str, organization_id: uuid.UUID | None = None
) -> AssetStatusLabel | None:
    stmt = select(AssetStatusLabel).where(AssetStatusLabel.key == key)
    if organization_id is not None:
        stmt = stmt.where(AssetStatusLabel.organization_id == organization_id)
    return session.scalars(stmt.limit(1)).first()


# ------------------------------------------------------------------------- people


def get_person(session: Session, person_id: uuid.UUID) -> Person:
    item = session.get(Person, person_id)
    if item is None or item.deleted_at is not None:
        raise NotFound("Person")
    return item


def query_people(
    *,
    q: str | None = None,
    kind: str | None = None,
    site_id: uuid.UUID | None = None,
    grade: str | None = None,
    external_id: str | None = None,
    is_active: bool | None = None,
) -> Select[Any]:
    stmt = select(Person)
    if q:
        stmt = stmt.where(text_filter(q, Person.name, Person.external_id, Person.email))
    if kind:
        stmt = stmt.where(Person.kind == kind)
    if site_id:
        stmt = stmt.where(Person.site_id == site_id)
    if grade:
        stmt = stmt.where(Person.grade == grade)
    if external_id:
        stmt = stmt.where(Person.external_id == external_id.strip())
    if is_active is not None:
        stmt = stmt.where(Person.is_active == is_active)
    return stmt


def _check_person_refs(
    session: Session, changes: dict[str, Any], kind: str, org_id: uuid.UUID
) -> None:
    _load(session, Site, changes.get("site_id"), "siteId", org_id)
    if changes.get("user_id") is not None:
        _load(session, User, changes["user_id"], "userId", org_id)
        if kind != "staff":
            raise ValidationFailed(
                "Only a staff record links to a user account", details={"field": "userId"}
            )


def _person_audit(session: Session, caller: Caller, person: Person, action: str, msg: str) -> None:
    audit.record(
        session,
        actor=caller,
        organization_id=person.organization_id,
        action=action,
        category=AuditCategory.DATA,
        entity_type="person",
        entity_id=person.id,
        message=msg,
    )


def create_person(
    session: Session, *, caller: Caller, organization_id: uuid.UUID, data: PersonCreate
) -> Person:
    fields = data.model_dump(exclude={"organization_id"})
    _check_person_refs(session, fields, data.kind, organization_id)
    person = Person(organization_id=organization_id, **fields)
    session.add(person)
    flush_unique(
        session,
        message=f"Someone with id '{data.external_id}' exists",
        field="externalId",
    )
    _person_audit(
        session, caller, person, "person.created", f"{caller.email} added {data.kind} {data.name}"
    )
    return person


def update_person(
    session: Session, *, caller: Caller, person: Person, data: PersonUpdate
) -> Person:
    changes = data.model_dump(exclude_unset=True)
    _no_nulls(changes, {"kind", "name", "is_active"})
    kind = changes.get("kind", person.kind)
    if kind != "staff" and "user_id" not in changes and person.user_id is not None:
        changes["user_id"] = None  # a student record is never linked to an account
    _check_person_refs(session, changes, kind, person.organization_id)
    before = {k: getattr(person, k) for k in changes}
    for key, value in changes.items():
        setattr(person, key, value)
    flush_unique(session, message="Someone with this id exists", field="externalId")
    diff = _changes(before, changes)
    if diff:
        _person_audit(
            session,
            caller,
            person,
            "person.updated",
            f"{caller.email} changed {', '.join(sorted(diff))} of {person.name}",
        )
    return person


# ------------------------------------------------------------------ asset reading


def _own_people(caller: Caller) -> Select[Any]:
    return select(Person.id).where(Person.user_id == caller.user_id)


def visible_filter(caller: Caller) -> ColumnElement[bool] | None:
    """Staff see every asset of the organization; a requester sees only the devices
    assigned to them (a staff person record linked to their account)."""
    if caller.role.is_staff:
        return None
    return Asset.assigned_person_id.in_(_own_people(caller))


def asset_rows() -> Select[Any]:
    """Assets with the names a list shows, in one statement (outer joins by key)."""
    stmt = (
        select(
            Asset,
            AssetType.name,
            AssetStatusLabel.name,
            AssetStatusLabel.status_type,
            Person.name,
            Room.number,
            Building.name,
            Site.name,
        )
        .outerjoin(AssetType, AssetType.id == Asset.asset_type_id)
        .outerjoin(AssetStatusLabel, AssetStatusLabel.id == Asset.status_label_id)
        .outerjoin(Person, Person.id == Asset.assigned_person_id)
        .outerjoin(Room, Room.id == Asset.room_id)
        .outerjoin(Building, Building.id == Asset.building_id)
        .outerjoin(Site, Site.id == Asset.site_id)
    )
    return cast(Select[Any], stmt)  # a row of (Asset, 7 names)


_REDACTED: dict[str, Any] = {
    "purchase_cost_cents": None,
    "funding_source": None,
    "vendor_id": None,
    "notes": None,
    "police_report_number": None,
    "custom_fields": {},
}


def asset_out(row: Sequence[Any], caller: Caller | None = None) -> AssetOut:
    asset, type_name, status_name, status_type, person, room, building, site = row
    out = AssetOut.model_validate(asset)
    out.asset_type_name = type_name
    out.status_name = status_name
    out.status_type = status_type
    out.assigned_person_name = person
    out.room_number = room
    out.building_name = building
    out.site_name = site
    if caller is not None and not caller.role.is_staff:
        for key, value in _REDACTED.items():
            setattr(out, key, value)
    return out


def asset_filters(
    caller: Caller,
    *,
    tag: str | None = None,
    serial: str | None = None,
    q: str | None = None,
    asset_type_id: uuid.UUID | None = None,
    status_label_id: uuid.UUID | None = None,
    status_type: str | None = None,
    site_id: uuid.UUID | None = None,
    building_id: uuid.UUID | None = None,
    room_id: uuid.UUID | None = None,
    assigned_person_id: uuid.UUID | None = None,
    department_id: uuid.UUID | None = None,
    vendor_id: uuid.UUID | None = None,
    warranty_before: date | None = None,
    checked_out: bool | None = None,
) -> list[ColumnElement[bool]]:
    """The conditions of the asset list, over ``Asset`` alone. ``tag`` and ``serial``
    are exact and served by the unique indexes."""
    conditions: list[ColumnElement[bool]] = []
    visible = visible_filter(caller)
    if visible is not None:
        conditions.append(visible)
    if tag is not None:
        conditions.append(Asset.asset_tag == normalize_tag(tag))
    if serial is not None:
        conditions.append(Asset.serial_number == normalize_tag(serial))
    if q:
        conditions.append(
            text_filter(
                q, Asset.asset_tag, Asset.serial_number, Asset.name, Asset.model, Asset.manufacturer
            )
        )
    if status_type:
        labels = select(AssetStatusLabel.id).where(AssetStatusLabel.status_type == status_type)
        conditions.append(Asset.status_label_id.in_(labels))
    if warranty_before:
        conditions.append(Asset.warranty_end < warranty_before)
    if checked_out is not None:
        conditions.append(
            Asset.checked_out_at.is_not(None) if checked_out else Asset.checked_out_at.is_(None)
        )
    for column, value in (
        (Asset.asset_type_id, asset_type_id),
        (Asset.status_label_id, status_label_id),
        (Asset.site_id, site_id),
        (Asset.building_id, building_id),
        (Asset.room_id, room_id),
        (Asset.assigned_person_id, assigned_person_id),
        (Asset.department_id, department_id),
        (Asset.vendor_id, vendor_id),
    ):
        if value is not None:
            conditions.append(column == value)
    return conditions


def query_assets(caller: Caller, **filters: Any) -> Select[Any]:
    """The asset list's statement (``asset_rows`` shape); filters as ``asset_filters``."""
    return asset_rows().where(*asset_filters(caller, **filters))


def list_assets(
    session: Session, caller: Caller, params: ListParams, **filters: Any
) -> tuple[list[AssetOut], Pagination]:
    """One page of assets (one statement) and the total. The total is counted over
    ``assets`` alone: SQLite does not drop the display joins from a count, which at
    100,000 assets made the count fifty times slower than the page."""
    conditions = asset_filters(caller, **filters)
    page = apply_sort(
        asset_rows().where(*conditions),
        params.sort,
        ASSET_SORT_FIELDS,
        [Asset.asset_tag],
        Asset.id,
    )
    offset = (params.page - 1) * params.per_page
    rows = session.execute(page.limit(params.per_page).offset(offset)).all()
    if 0 < len(rows) < params.per_page or (not rows and params.page == 1):
        total = offset + len(rows)  # the page ends the list (as listing.paginate does)
    else:
        total = session.execute(
            select(func.count()).select_from(Asset).where(*conditions)
        ).scalar_one()
    total_pages = max(1, math.ceil(total / params.per_page)) if total else 0
    pagination = Pagination(
        page=params.page,
        per_page=params.per_page,
        total=total,
        total_pages=total_pages,
        has_next=params.page < total_pages,
        has_prev=params.page > 1,
    )
    return [asset_out(r, caller) for r in rows], pagination


def get_asset(session: Session, asset_id: uuid.UUID, *, caller: Caller | None = None) -> Asset:
    """One asset, 404 when it does not exist, is in another organization, or (for a
    requester) is not assigned to them."""
    asset = session.get(Asset, asset_id)
    if asset is None or asset.deleted_at is not None:
        raise NotFound("Asset")
    if caller is not None and not caller.role.is_staff:
        mine = session.scalar(
            select(
                exists().where(
                    Person.id == asset.assigned_person_id, Person.user_id == caller.user_id
                )
            )
        )
        if not mine:
            raise NotFound("Asset")
    return asset


def read_asset(session: Session, asset_id: uuid.UUID, caller: Caller) -> AssetOut:
    """The API view of one asset in one statement (visibility included)."""
    stmt = asset_rows().where(Asset.id == asset_id)
    visible = visible_filter(caller)
    if visible is not None:
        stmt = stmt.where(visible)
    row = session.execute(stmt).first()
    if row is None:
        raise NotFound("Asset")
    return asset_out(row, caller)


def find_by_tag(session: Session, tag: str) -> Asset | None:
    return session.scalars(select(Asset).where(Asset.asset_tag == normalize_tag(tag))).first()


def find_by_serial(session: Session, serial: str) -> Asset | None:
    return session.scalars(
        select(Asset).where(Asset.serial_number == normalize_tag(serial))
    ).first()


# ------------------------------------------------------------------------ history


def record_event(
    session: Session,
    asset: Asset,
    kind: str,
    actor_id: uuid.UUID | None = None,
    *,
    ticket_id: uuid.UUID | None = None,
    **data: Any,
) -> AssetEvent:
    """Add one entry to the asset's history in the caller's transaction.

    ``kind`` is one of ``EVENT_KINDS``; ``data`` is JSON with camelCase keys (ids and
    dates may be given as objects, they are stored as strings). The inventory records
    ``part_used`` (partId, partName, locationId, quantity) with the ticket's id."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown asset event kind {kind!r}")
    event = AssetEvent(
        organization_id=asset.organization_id,
        asset_id=asset.id,
        actor_id=actor_id,
        kind=kind,
        ticket_id=ticket_id,
        data={key: _deep_jsonable(value) for key, value in data.items()},
        created_at=utcnow(),
    )
    session.add(event)
    return event


def _deep_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_deep_jsonable(v) for v in value]
    return _jsonable(value)


def query_events(asset_id: uuid.UUID, *, kind: str | None = None) -> Select[Any]:
    stmt = select(AssetEvent).where(AssetEvent.asset_id == asset_id)
    if kind:
        stmt = stmt.where(AssetEvent.kind == kind)
    return stmt.order_by(AssetEvent.created_at.desc(), AssetEvent.id.desc())


def _asset_audit(
    session: Session,
    caller: Caller,
    asset: Asset,
    action: str,
    message: str,
    details: dict[str, Any] | None = None,
) -> None:
    audit.record(
        session,
        actor=caller,
        organization_id=asset.organization_id,
        action=action,
        category=AuditCategory.DATA,
        entity_type="asset",
        entity_id=asset.id,
        message=message,
        details=details,
    )


# ------------------------------------------------------------------------- places

Place = tuple[uuid.UUID | None, uuid.UUID | None, uuid.UUID | None]  # site, building, room


def _load(
    session: Session,
    model: Any,
    item_id: uuid.UUID | None,
    field: str,
    org_id: uuid.UUID | None = None,
) -> Any:
    """A referenced row, or 422 naming ``field``. ``org_id`` guards sessions bound to
    all tenants (a platform administrator): the row must be of that organization."""
    if item_id is None:
        return None
    item = session.get(model, item_id)
    if (
        item is None
        or item.deleted_at is not None
        or (org_id is not None and item.organization_id != org_id)
    ):
        raise ValidationFailed(f"{field} does not exist", details={"field": field})
    return item


def resolve_place(
    session: Session, current: Place, changes: dict[str, Any], org_id: uuid.UUID | None = None
) -> Place:
    """Where an asset is after ``changes`` (any of site_id, building_id, room_id).

    A room fixes its building and site; a building fixes its site. A place named
    in the request that contradicts a more precise one is refused; a place carried
    over from before that no longer fits is dropped (moving an asset to another
    building clears its old room)."""
    site_id, building_id, room_id = current
    given = {k for k in ("site_id", "building_id", "room_id") if k in changes}
    if "site_id" in given:
        site_id = changes["site_id"]
    if "building_id" in given:
        building_id = changes["building_id"]
    if "room_id" in given:
        room_id = changes["room_id"]
    if "site_id" in given and site_id is None:
        building_id = None if "building_id" not in given else building_id
        room_id = None if "room_id" not in given else room_id
    if "building_id" in given and building_id is None and "room_id" not in given:
        room_id = None

    room = _load(session, Room, room_id, "roomId", org_id)
    if room is not None:
        room_building = _load(session, Building, room.building_id, "roomId")
        upper_given = ("building_id" in given and building_id != room.building_id) or (
            "site_id" in given and site_id != room_building.site_id
        )
        if upper_given and "room_id" not in given:
            room, room_id = None, None  # carried over, and no longer where the asset goes
        elif "building_id" in given and building_id not in (None, room.building_id):
            raise ValidationFailed(
                "buildingId is not the room's building", details={"field": "buildingId"}
            )
        elif "site_id" in given and site_id not in (None, room_building.site_id):
            raise ValidationFailed("siteId is not the room's site", details={"field": "siteId"})
        else:
            building_id, site_id = room.building_id, room_building.site_id
    building = _load(session, Building, building_id, "buildingId", org_id)
    if building is not None and room is None:
        if "site_id" in given and site_id != building.site_id:
            if "building_id" not in given:
                building_id = None
            elif site_id is not None:
                raise ValidationFailed(
                    "siteId is not the building's site", details={"field": "siteId"}
                )
            else:
                site_id = building.site_id
        else:
            site_id = building.site_id
    _load(session, Site, site_id, "siteId", org_id)
    return site_id, building_id, room_id


def describe_place(session: Session, place: Place) -> dict[str, Any]:
    """A place with its names, as history keeps it (names may change later)."""
    site_id, building_id, room_id = place
    site = session.get(Site, site_id) if site_id else None
    building = session.get(Building, building_id) if building_id else None
    room = session.get(Room, room_id) if room_id else None
    return {
        "siteId": _jsonable(site_id),
        "siteName": site.name if site else None,
        "buildingId": _jsonable(building_id),
        "buildingName": building.name if building else None,
        "roomId": _jsonable(room_id),
        "roomNumber": room.number if room else None,
    }


def _place_of(asset: Asset) -> Place:
    return asset.site_id, asset.building_id, asset.room_id


def move_asset(
    session: Session, *, caller: Caller, asset: Asset, place: Place, note: str | None = None
) -> bool:
    """Put the asset at ``place`` (already resolved); history and audit. False when
    it was already there."""
    before = _place_of(asset)
    if before == place:
        return False
    asset.site_id, asset.building_id, asset.room_id = place
    origin, target = describe_place(session, before), describe_place(session, place)
    moved: dict[str, Any] = {"from": origin, "to": target}
    record_event(session, asset, "moved", caller.user_id, **moved, note=note)
    _asset_audit(
        session,
        caller,
        asset,
        "asset.moved",
        f"{caller.email} moved {asset.asset_tag} to {_place_text(target)}",
        {"from": origin, "to": target},
    )
    return True


def _place_text(place: dict[str, Any]) -> str:
    parts = [place.get("siteName"), place.get("buildingName"), place.get("roomNumber")]
    return " / ".join(p for p in parts if p) or "no location"


# ------------------------------------------------------------------------- status


def set_status(
    session: Session,
    *,
    caller: Caller,
    asset: Asset,
    label: AssetStatusLabel,
    police_report_number: str | None = None,
    note: str | None = None,
    current: AssetStatusLabel | None = None,
) -> bool:
    """Give the asset another status label; history and audit. A label that needs a
    police report (Stolen) needs its number in the same request. False when the
    asset already had the label."""
    if label.id == asset.status_label_id:
        if police_report_number:
            asset.police_report_number = police_report_number
        return False
    current = current or session.get(AssetStatusLabel, asset.status_label_id)
    if label.requires_police_report and not police_report_number:
        raise ValidationFailed(
            f"'{label.name}' needs the police report number",
            details={"field": "policeReportNumber"},
        )
    if police_report_number:
        asset.police_report_number = police_report_number
    asset.status_label_id = label.id
    data: dict[str, Any] = {
        "from": {"id": _jsonable(current.id) if current else None,
                 "name": current.name if current else None,
                 "statusType": current.status_type if current else None},
        "to": {"id": str(label.id), "name": label.name, "statusType": label.status_type},
    }  # fmt: skip
    if label.requires_police_report:
        data["policeReportNumber"] = police_report_number
    record_event(session, asset, "status_changed", caller.user_id, **data, note=note)
    _asset_audit(
        session,
        caller,
        asset,
        "asset.status_changed",
        f"{caller.email} set {asset.asset_tag} to {label.name}",
        data,
    )
    return True


def _label_for(
    session: Session, label_id: uuid.UUID, field: str, org_id: uuid.UUID
) -> AssetStatusLabel:
    label: AssetStatusLabel = _load(session, AssetStatusLabel, label_id, field, org_id)
    return label


# ------------------------------------------------------------------------- writes


def _check_unique(
    session: Session,
    org_id: uuid.UUID,
    asset_id: uuid.UUID | None,
    tag: str | None,
    serial: str | None,
) -> None:
    if tag is not None:
        clash = select(Asset.id).where(Asset.organization_id == org_id, Asset.asset_tag == tag)
        if asset_id:
            clash = clash.where(Asset.id != asset_id)
        if session.execute(clash.limit(1)).first():
            raise Conflict(
                f"Asset tag {tag} is in use",
                code=ErrorCode.DUPLICATE_RESOURCE,
                details={"field": "assetTag"},
            )
    if serial is not None:
        clash = select(Asset.id).where(
            Asset.organization_id == org_id, Asset.serial_number == serial
        )
        if asset_id:
            clash = clash.where(Asset.id != asset_id)
        if session.execute(clash.limit(1)).first():
            raise Conflict(
                f"Serial number {serial} is on another asset",
                code=ErrorCode.DUPLICATE_RESOURCE,
                details={"field": "serialNumber"},
            )


def _check_refs(session: Session, changes: dict[str, Any], org_id: uuid.UUID) -> None:
    _load(session, AssetType, changes.get("asset_type_id"), "assetTypeId", org_id)
    _load(session, Department, changes.get("department_id"), "departmentId", org_id)
    _load(session, Vendor, changes.get("vendor_id"), "vendorId", org_id)


def _active_person(session: Session, person_id: uuid.UUID, field: str, org_id: uuid.UUID) -> Person:
    person = _load(session, Person, person_id, field, org_id)
    if not person.is_active:
        raise BusinessRuleViolation(f"{person.name} is inactive", details={"field": field})
    assert isinstance(person, Person)
    return person


def create_asset(
    session: Session, *, caller: Caller, organization_id: uuid.UUID, data: AssetCreate
) -> Asset:
    fields = data.model_dump(exclude={"organization_id"})
    fields["asset_tag"] = normalize_tag(data.asset_tag)
    if data.serial_number is not None:
        fields["serial_number"] = normalize_tag(data.serial_number)
    org = organization_id
    _check_refs(session, fields, org)
    _check_unique(session, org, None, fields["asset_tag"], fields["serial_number"])
    place = resolve_place(
        session,
        (None, None, None),
        {k: fields[k] for k in ("site_id", "building_id", "room_id") if fields[k] is not None},
        org,
    )
    if data.status_label_id is not None:
        label = _label_for(session, data.status_label_id, "statusLabelId", org)
    else:
        label = default_label(session, organization_id)
    if label.requires_police_report and not data.police_report_number:
        raise ValidationFailed(
            f"'{label.name}' needs the police report number",
            details={"field": "policeReportNumber"},
        )
    person = None
    if data.assigned_person_id is not None:
        person = _active_person(session, data.assigned_person_id, "assignedPersonId", org)
        if label.status_type != "deployable":
            raise BusinessRuleViolation(
                f"A {label.name} asset cannot be checked out",
                details={"field": "assignedPersonId"},
            )
    asset_type = session.get(AssetType, data.asset_type_id)
    if not fields.get("name"):
        fields["name"] = (
            " ".join(p for p in (data.manufacturer, data.model) if p)
            or (asset_type.name if asset_type else "")
            or fields["asset_tag"]
        )
    fields["site_id"], fields["building_id"], fields["room_id"] = place
    fields["status_label_id"] = label.id
    asset = Asset(organization_id=organization_id, **fields)
    if person is not None:
        asset.checked_out_at = utcnow()
    session.add(asset)
    flush_unique(session, message=f"Asset tag {asset.asset_tag} is in use", field="assetTag")
    record_event(
        session,
        asset,
        "created",
        caller.user_id,
        assetTag=asset.asset_tag,
        status={"id": label.id, "name": label.name, "statusType": label.status_type},
        place=describe_place(session, place),
    )
    if person is not None:
        record_event(
            session,
            asset,
            "checked_out",
            caller.user_id,
            personId=person.id,
            personName=person.name,
            personKind=person.kind,
        )
    _asset_audit(
        session,
        caller,
        asset,
        "asset.created",
        f"{caller.email} added {asset_type.name if asset_type else 'asset'} {asset.asset_tag}",
    )
    return asset


# the fields PATCH changes plainly (location, status and assignment have their own rules)
_PLAIN_FIELDS = (
    "asset_tag",
    "asset_type_id",
    "name",
    "serial_number",
    "manufacturer",
    "model",
    "department_id",
    "purchase_date",
    "purchase_cost_cents",
    "funding_source",
    "warranty_end",
    "vendor_id",
    "notes",
    "custom_fields",
)


def update_asset(session: Session, *, caller: Caller, asset: Asset, data: AssetUpdate) -> Asset:
    changes = data.model_dump(exclude_unset=True)
    note = changes.pop("note", None)
    _no_nulls(changes, {"asset_tag", "asset_type_id", "name", "status_label_id"})
    if "asset_tag" in changes:
        changes["asset_tag"] = normalize_tag(changes["asset_tag"])
    if changes.get("serial_number") is not None:
        changes["serial_number"] = normalize_tag(changes["serial_number"])
    if "custom_fields" in changes:
        merged = changes["custom_fields"] or {}
        changes["custom_fields"] = {k: v for k, v in merged.items() if v is not None}
    org = asset.organization_id
    _check_refs(session, changes, org)
    _check_unique(
        session,
        org,
        asset.id,
        changes.get("asset_tag") if changes.get("asset_tag") != asset.asset_tag else None,
        changes.get("serial_number")
        if changes.get("serial_number") != asset.serial_number
        else None,
    )
    label = None
    if changes.get("status_label_id") is not None:
        label = _label_for(session, changes["status_label_id"], "statusLabelId", org)
    place_keys = ("site_id", "building_id", "room_id")
    place_changes: dict[str, Any] = {k: changes[k] for k in place_keys if k in changes}
    place = resolve_place(session, _place_of(asset), place_changes, org) if place_changes else None

    plain = {k: changes[k] for k in _PLAIN_FIELDS if k in changes}
    before = {k: getattr(asset, k) for k in plain}
    for key, value in plain.items():
        setattr(asset, key, value)
    diff = _changes(before, plain)
    police = changes.get("police_report_number")
    if label is not None:
        set_status(
            session,
            caller=caller,
            asset=asset,
            label=label,
            police_report_number=police,
            note=note,
        )
    elif police is not None and police != asset.police_report_number:
        diff["policeReportNumber"] = {"from": asset.police_report_number, "to": police}
        asset.police_report_number = police
    if place is not None:
        move_asset(session, caller=caller, asset=asset, place=place, note=note)
    flush_unique(session, message=f"Asset tag {asset.asset_tag} is in use", field="assetTag")
    if diff:
        record_event(session, asset, "updated", caller.user_id, changes=diff, note=note)
        _asset_audit(
            session,
            caller,
            asset,
            "asset.updated",
            f"{caller.email} changed {', '.join(sorted(diff))} of {asset.asset_tag}",
            {"changes": diff},
        )
    return asset


def checkout(session: Session, *, caller: Caller, asset: Asset, data: CheckoutIn) -> Asset:
    """Hand the asset to a person (until ``due_back``); history and audit."""
    if asset.assigned_person_id is not None:
        holder = session.get(Person, asset.assigned_person_id)
        raise Conflict(
            f"{asset.asset_tag} is checked out to {holder.name if holder else 'someone'}: "
            "check it in first",
            details={"field": "personId"},
        )
    label = session.get(AssetStatusLabel, asset.status_label_id)
    if label is None or label.status_type != "deployable":
        name = label.name if label else "this"
        raise BusinessRuleViolation(
            f"A {name} asset cannot be checked out", details={"field": "statusLabelId"}
        )
    person = _active_person(session, data.person_id, "personId", asset.organization_id)
    if data.due_back is not None and data.due_back < utcnow().date():
        raise ValidationFailed("dueBack is in the past", details={"field": "dueBack"})
    asset.assigned_person_id = person.id
    asset.checked_out_at = utcnow()
    asset.due_back = data.due_back
    record_event(
        session,
        asset,
        "checked_out",
        caller.user_id,
        personId=person.id,
        personName=person.name,
        personKind=person.kind,
        dueBack=data.due_back,
        note=data.note,
    )
    _asset_audit(
        session,
        caller,
        asset,
        "asset.checked_out",
        f"{caller.email} checked {asset.asset_tag} out to {person.name}",
        {"personId": str(person.id), "dueBack": _jsonable(data.due_back)},
    )
    session.flush()
    return asset


def checkin(session: Session, *, caller: Caller, asset: Asset, data: CheckinIn) -> Asset:
    """Take the asset back (its condition, optionally a new status and a place)."""
    if asset.assigned_person_id is None:
        raise Conflict(f"{asset.asset_tag} is not checked out", details={"field": "id"})
    label = (
        _label_for(session, data.status_label_id, "statusLabelId", asset.organization_id)
        if data.status_label_id
        else None
    )
    place = None
    if data.room_id:
        changes = {"room_id": data.room_id}
        place = resolve_place(session, _place_of(asset), changes, asset.organization_id)
    person = session.get(Person, asset.assigned_person_id)
    started = asset.checked_out_at
    asset.assigned_person_id = None
    asset.checked_out_at = None
    asset.due_back = None
    record_event(
        session,
        asset,
        "checked_in",
        caller.user_id,
        personId=person.id if person else None,
        personName=person.name if person else None,
        checkedOutAt=started,
        condition=data.condition,
        note=data.note,
    )
    _asset_audit(
        session,
        caller,
        asset,
        "asset.checked_in",
        f"{caller.email} checked {asset.asset_tag} in from {person.name if person else 'someone'}",
        {"condition": data.condition},
    )
    if label is not None:
        set_status(
            session,
            caller=caller,
            asset=asset,
            label=label,
            police_report_number=data.police_report_number,
            note=data.note,
        )
    if place is not None:
        move_asset(session, caller=caller, asset=asset, place=place, note=data.note)
    session.flush()
    return asset


# ---------------------------------------------------------------- ticket links


def ticket_visibility(caller: Caller) -> ColumnElement[bool]:
    """Which tickets the caller may see: the ticket service's rule."""
    return tickets_visibility.visible_filter(caller)


def get_visible_ticket(session: Session, caller: Caller, ticket_id: uuid.UUID) -> Ticket:
    return tickets_visibility.get_visible(session, caller, ticket_id)


def query_asset_tickets(asset_id: uuid.UUID, caller: Caller) -> Select[Any]:
    stmt = cast(
        Select[Any],
        select(Ticket, TicketAsset.created_at)
        .join(TicketAsset, TicketAsset.ticket_id == Ticket.id)
        .where(TicketAsset.asset_id == asset_id),
    )
    stmt = stmt.where(ticket_visibility(caller))
    return stmt.order_by(TicketAsset.created_at.desc(), Ticket.id.desc())


def link_ticket_assets(
    session: Session,
    ticket: Ticket,
    asset_ids: Iterable[uuid.UUID],
    actor_id: uuid.UUID | None,
) -> list[TicketAsset]:
    """Link ``ticket`` to the assets (idempotent: existing links are kept). Every asset
    must be a live asset of the ticket's organization. Writes history on both sides:
    the ticket's timeline (``asset_linked``) and each asset's (``ticket_linked``).
    Returns the links made."""
    wanted = list(dict.fromkeys(asset_ids))
    if not wanted:
        return []
    assets = {
        a.id: a
        for a in session.scalars(
            select(Asset).where(
                Asset.id.in_(wanted), Asset.organization_id == ticket.organization_id
            )
        )
    }
    missing = [str(i) for i in wanted if i not in assets]
    if missing:
        raise ValidationFailed(
            "Some assets do not exist", details={"field": "assetIds", "missing": missing}
        )
    linked = set(
        session.scalars(
            select(TicketAsset.asset_id).where(
                TicketAsset.ticket_id == ticket.id, TicketAsset.asset_id.in_(wanted)
            )
        )
    )
    made = []
    for asset_id in wanted:
        if asset_id in linked:
            continue
        asset = assets[asset_id]
        link = TicketAsset(
            organization_id=ticket.organization_id,
            ticket_id=ticket.id,
            asset_id=asset.id,
            created_by_id=actor_id,
        )
        session.add(link)
        made.append(link)
        timeline.record(
            session,
            ticket,
            timeline.EventKind.ASSET_LINKED,
            actor_id=actor_id,
            assetId=str(asset.id),
            assetTag=asset.asset_tag,
            assetName=asset.name,
        )
        record_event(
            session,
            asset,
            "ticket_linked",
            actor_id,
            ticket_id=ticket.id,
            ticketNumber=ticket.number,
            title=ticket.title,
        )
    flush_unique(session, message="The ticket is already linked to the asset", field="assetIds")
    return made


def unlink_ticket_asset(
    session: Session, ticket: Ticket, asset_id: uuid.UUID, actor_id: uuid.UUID | None
) -> None:
    """Remove the link (tombstone); history on both sides. 404 when not linked."""
    link = session.scalars(
        select(TicketAsset).where(
            TicketAsset.ticket_id == ticket.id, TicketAsset.asset_id == asset_id
        )
    ).first()
    asset = session.get(Asset, asset_id)
    if link is None or asset is None:
        raise NotFound("Asset link")
    soft_delete(link)
    timeline.record(
        session,
        ticket,
        timeline.EventKind.ASSET_UNLINKED,
        actor_id=actor_id,
        assetId=str(asset.id),
        assetTag=asset.asset_tag,
    )
    record_event(
        session,
        asset,
        "ticket_unlinked",
        actor_id,
        ticket_id=ticket.id,
        ticketNumber=ticket.number,
        title=ticket.title,
    )
    session.flush()


# ------------------------------------------------------------------------ rooms


def room_summary(session: Session, room_id: uuid.UUID) -> dict[str, Any]:
    """Counts of a room's assets by type, by status and by status type (one query)."""
    rows = session.execute(
        select(
            Asset.asset_type_id,
            AssetType.name,
            Asset.status_label_id,
            AssetStatusLabel.name,
            AssetStatusLabel.status_type,
            func.count(),
        )
        .outerjoin(AssetType, AssetType.id == Asset.asset_type_id)
        .outerjoin(AssetStatusLabel, AssetStatusLabel.id == Asset.status_label_id)
        .where(Asset.room_id == room_id)
        .group_by(
            Asset.asset_type_id,
            AssetType.name,
            Asset.status_label_id,
            AssetStatusLabel.name,
            AssetStatusLabel.status_type,
        )
    ).all()
    by_type: dict[Any, dict[str, Any]] = {}
    by_status: dict[Any, dict[str, Any]] = {}
    by_status_type = dict.fromkeys(("deployable", "in_repair", "undeployable", "archived"), 0)
    total = 0
    for type_id, type_name, label_id, label_name, status_type, count in rows:
        total += count
        entry = by_type.setdefault(type_id, {"id": type_id, "name": type_name or "", "count": 0})
        entry["count"] += count
        status = by_status.setdefault(
            label_id, {"id": label_id, "name": label_name or "", "count": 0}
        )
        status["count"] += count
        if status_type in by_status_type:
            by_status_type[status_type] += count
    order = lambda e: (-e["count"], e["name"])  # noqa: E731
    return {
        "room_id": room_id,
        "total": total,
        "by_type": sorted(by_type.values(), key=order),
        "by_status": sorted(by_status.values(), key=order),
        "by_status_type": [{"status_type": kind, "count": n} for kind, n in by_status_type.items()],
    }
