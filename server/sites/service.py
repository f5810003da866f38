"""Sites, their buildings and rooms: where people, tickets and devices are."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import Select, exists, select
from sqlalchemy.orm import Session

from common.enums import AuditCategory, AuditSeverity
from server.audit import service as audit
from server.core.db import flush_unique
from server.core.errors import Conflict, NotFound, ValidationFailed
from server.core.listing import text_filter
from server.core.tenancy import Caller, soft_delete
from server.sites.models import Building, Room, Site
from server.sites.schemas import (
    BuildingCreate,
    BuildingUpdate,
    RoomCreate,
    RoomOut,
    RoomUpdate,
    SiteCreate,
    SiteUpdate,
)

SITE_SORT_FIELDS = {"name": Site.name, "code": Site.code, "createdAt": Site.created_at}
BUILDING_SORT_FIELDS = {"name": Building.name, "code": Building.code}
ROOM_SORT_FIELDS = {
    "number": Room.number,
    "name": Room.name,
    "floor": Room.floor,
    "buildingName": Building.name,
    "siteName": Site.name,
}

Place = Site | Building | Room
P = TypeVar("P", Site, Building, Room)


def _get(session: Session, model: type[P], item_id: uuid.UUID, what: str) -> P:
    item = session.get(model, item_id)
    if item is None or item.deleted_at is not None:
        raise NotFound(what)
    return item


def get_site(session: Session, site_id: uuid.UUID) -> Site:
    return _get(session, Site, site_id, "Site")


def get_building(session: Session, building_id: uuid.UUID) -> Building:
    return _get(session, Building, building_id, "Building")


def get_room(session: Session, room_id: uuid.UUID) -> Room:
    return _get(session, Room, room_id, "Room")


def query_sites(*, q: str | None = None, site_type: str | None = None) -> Select[Any]:
    stmt = select(Site)
    if q:
        stmt = stmt.where(text_filter(q, Site.name, Site.code))
    if site_type:
        stmt = stmt.where(Site.site_type == site_type)
    return stmt


def query_buildings(*, site_id: uuid.UUID, q: str | None = None) -> Select[Any]:
    stmt = select(Building).where(Building.site_id == site_id)
    if q:
        stmt = stmt.where(text_filter(q, Building.name, Building.code))
    return stmt


def room_rows() -> Select[Any]:
    """Rooms with the names of their building and site, in one statement: rows of
    (Room, building name, site id, site name) for ``room_out``."""
    stmt = (
        select(Room, Building.name, Site.id, Site.name)
        .join(Building, Building.id == Room.building_id)
        .join(Site, Site.id == Building.site_id)
    )
    return cast(Select[Any], stmt)


def room_out(row: Sequence[Any]) -> RoomOut:
    room, building_name, site_id, site_name = row
    return RoomOut.model_validate(
        {
            **{key: getattr(room, key) for key in RoomOut.model_fields if hasattr(room, key)},
            "building_name": building_name,
            "site_id": site_id,
            "site_name": site_name,
        }
    )


def room_view(session: Session, room: Room) -> RoomOut:
    """One room as the API shows it (one statement for the names)."""
    row = session.execute(
        select(Building.name, Site.id, Site.name)
        .join(Site, Site.id == Building.site_id)
        .where(Building.id == room.building_id)
    ).one()
    return room_out((room, *row))


def query_rooms(
    *,
    building_id: uuid.UUID | None = None,
    site_id: uuid.UUID | None = None,
    q: str | None = None,
    room_type: str | None = None,
) -> Select[Any]:
    """``room_rows`` filtered. ``q`` is words, each of which must be in the room's
    number or name, or its building's or site's name or code: "Lincoln 104" finds
    room 104 of Lincoln Middle School and not the high school's."""
    stmt = room_rows()
    if building_id:
        stmt = stmt.where(Room.building_id == building_id)
    if site_id:
        stmt = stmt.where(Building.site_id == site_id)
    for word in (q or "").split():
        stmt = stmt.where(
            text_filter(
                word, Room.number, Room.name, Building.name, Building.code, Site.name, Site.code
            )
        )
    if room_type:
        stmt = stmt.where(Room.room_type == room_type)
    return stmt


def _record(
    session: Session, caller: Caller, item: Place, action: str, message: str, **kw: Any
) -> None:
    audit.record(
        session,
        actor=caller,
        organization_id=item.organization_id,
        action=action,
        category=AuditCategory.ORGANIZATION,
        entity_type=type(item).__name__.lower(),
        entity_id=item.id,
        message=message,
        **kw,
    )


def _apply(item: Place, changes: dict[str, Any], required: set[str]) -> dict[str, Any]:
    """Set the changed fields; returns {field: {from, to}} in API names."""
    for key in required & changes.keys():
        if changes[key] is None:
            raise ValidationFailed(f"{key} cannot be null", details={"field": key})
    before = {key: getattr(item, key) for key in changes}
    for key, value in changes.items():
        setattr(item, key, value)
    return audit.field_changes(before, {key: getattr(item, key) for key in changes})


# --------------------------------------------------------------------------- sites


def create_site(
    session: Session, *, caller: Caller, organization_id: uuid.UUID, data: SiteCreate
) -> Site:
    site = Site(
        organization_id=organization_id,
        **data.model_dump(exclude={"organization_id"}),
    )
    session.add(site)
    flush_unique(session, message=f"A site named '{data.name}' exists", field="name")
    _record(session, caller, site, "site.created", f"{caller.email} created site {site.name}")
    return site


def update_site(session: Session, *, caller: Caller, site: Site, data: SiteUpdate) -> Site:
    diff = _apply(site, data.model_dump(exclude_unset=True), {"name", "site_type"})
    flush_unique(session, message="A site with this name exists", field="name")
    if diff:
        _record(
            session,
            caller,
            site,
            "site.updated",
            f"{caller.email} changed {', '.join(sorted(diff))} of site {site.name}",
            details={"changes": diff},
        )
    return site


def delete_site(session: Session, *, caller: Caller, site: Site) -> None:
    if session.scalar(select(exists().where(Building.site_id == site.id))):
        raise Conflict("Delete or move the site's buildings first", details={"field": "id"})
    soft_delete(site)
    session.flush()
    _record(
        session,
        caller,
        site,
        "site.deleted",
        f"{caller.email} deleted site {site.name}",
        severity=AuditSeverity.WARNING,
    )


# --------------------------------------------------------------------------- buildings


def create_building(
    session: Session, *, caller: Caller, site: Site, data: BuildingCreate
) -> Building:
    building = Building(organization_id=site.organization_id, site_id=site.id, **data.model_dump())
    session.add(building)
    flush_unique(session, message=f"{site.name} has a building named '{data.name}'", field="name")
    _record(
        session,
        caller,
        building,
        "building.created",
        f"{caller.email} added building {building.name} to {site.name}",
    )
    return building


def update_building(
    session: Session, *, caller: Caller, building: Building, data: BuildingUpdate
) -> Building:
    diff = _apply(building, data.model_dump(exclude_unset=True), {"name"})
    flush_unique(session, message="The site has a building with this name", field="name")
    if diff:
        _record(
            session,
            caller,
            building,
            "building.updated",
            f"{caller.email} changed {', '.join(sorted(diff))} of building {building.name}",
            details={"changes": diff},
        )
    return building


def delete_building(session: Session, *, caller: Caller, building: Building) -> None:
    if session.scalar(select(exists().where(Room.building_id == building.id))):
        raise Conflict("Delete or move the building's rooms first", details={"field": "id"})
    soft_delete(building)
    session.flush()
    _record(
        session,
        caller,
        building,
        "building.deleted",
        f"{caller.email} deleted building {building.name}",
        severity=AuditSeverity.WARNING,
    )


# --------------------------------------------------------------------------- rooms


def create_room(session: Session, *, caller: Caller, building: Building, data: RoomCreate) -> Room:
    room = Room(
        organization_id=building.organization_id, building_id=building.id, **data.model_dump()
    )
    session.add(room)
    flush_unique(
        session, message=f"{building.name} has a room numbered '{data.number}'", field="number"
    )
    _record(
        session,
        caller,
        room,
        "room.created",
        f"{caller.email} added room {room.number} to {building.name}",
    )
    return room


def update_room(session: Session, *, caller: Caller, room: Room, data: RoomUpdate) -> Room:
    diff = _apply(room, data.model_dump(exclude_unset=True), {"number", "room_type"})
    flush_unique(session, message="The building has a room with this number", field="number")
    if diff:
        _record(
            session,
            caller,
            room,
            "room.updated",
            f"{caller.email} changed {', '.join(sorted(diff))} of room {room.number}",
            details={"changes": diff},
        )
    return room


def delete_room(session: Session, *, caller: Caller, room: Room) -> None:
    soft_delete(room)
    session.flush()
    _record(
        session,
        caller,
        room,
        "room.deleted",
        f"{caller.email} deleted room {room.number}",
        severity=AuditSeverity.WARNING,
    )
