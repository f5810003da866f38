from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query

from common.enums import Role
from server.auth.deps import RequestContext, access
from server.core.listing import ListQuery, apply_sort, paginate
from server.core.routing import api_router
from server.core.schemas import DataResponse, ListResponse
from server.sites import service
from server.sites.models import Building, Room, Site
from server.sites.schemas import (
    BuildingCreate,
    BuildingOut,
    BuildingUpdate,
    RoomCreate,
    RoomOut,
    RoomType,
    RoomUpdate,
    SiteCreate,
    SiteOut,
    SiteType,
    SiteUpdate,
)

sites = api_router(prefix="/api/sites", tags=["Sites, buildings and rooms"])
buildings = api_router(prefix="/api/buildings", tags=["Sites, buildings and rooms"])
rooms = api_router(prefix="/api/rooms", tags=["Sites, buildings and rooms"])

# Everyone signed in reads places (a teacher picks their room on a ticket); admins edit.
Reader = Annotated[RequestContext, access("sites:read")]
Admin = Annotated[RequestContext, access("sites:write", Role.ORG_ADMIN)]


@sites.get("", summary="List the organization's sites.")
def list_sites(
    ctx: Reader,
    params: ListQuery,
    site_type: Annotated[SiteType | None, Query(alias="siteType")] = None,
) -> ListResponse[SiteOut]:
    stmt = service.query_sites(q=params.q, site_type=site_type)
    stmt = apply_sort(stmt, params.sort, service.SITE_SORT_FIELDS, [Site.name], Site.id)
    rows, pagination = paginate(ctx.session, stmt, params)
    return ListResponse(data=[SiteOut.model_validate(s) for s in rows], pagination=pagination)


@sites.post("", status_code=201, summary="Create a site.")
def create_site(ctx: Admin, body: SiteCreate) -> DataResponse[SiteOut]:
    org_id = ctx.resolve_organization(body.organization_id)
    site = service.create_site(ctx.session, caller=ctx.caller, organization_id=org_id, data=body)
    return DataResponse(data=SiteOut.model_validate(site))


@sites.get("/{id}", summary="View one site.")
def get_site(ctx: Reader, id: uuid.UUID) -> DataResponse[SiteOut]:
    return DataResponse(data=SiteOut.model_validate(service.get_site(ctx.session, id)))


@sites.patch("/{id}", summary="Update a site.")
def update_site(ctx: Admin, id: uuid.UUID, body: SiteUpdate) -> DataResponse[SiteOut]:
    site = service.update_site(
        ctx.session, caller=ctx.caller, site=service.get_site(ctx.session, id), data=body
    )
    return DataResponse(data=SiteOut.model_validate(site))


@sites.delete("/{id}", status_code=204, summary="Delete a site that has no buildings left.")
def delete_site(ctx: Admin, id: uuid.UUID) -> None:
    service.delete_site(ctx.session, caller=ctx.caller, site=service.get_site(ctx.session, id))


@sites.get("/{id}/buildings", summary="List a site's buildings.")
def list_buildings(ctx: Reader, id: uuid.UUID, params: ListQuery) -> ListResponse[BuildingOut]:
    service.get_site(ctx.session, id)
    stmt = service.query_buildings(site_id=id, q=params.q)
    stmt = apply_sort(stmt, params.sort, service.BUILDING_SORT_FIELDS, [Building.name], Building.id)
    rows, pagination = paginate(ctx.session, stmt, params)
    return ListResponse(data=[BuildingOut.model_validate(b) for b in rows], pagination=pagination)


@sites.post("/{id}/buildings", status_code=201, summary="Add a building to a site.")
def create_building(ctx: Admin, id: uuid.UUID, body: BuildingCreate) -> DataResponse[BuildingOut]:
    site = service.get_site(ctx.session, id)
    building = service.create_building(ctx.session, caller=ctx.caller, site=site, data=body)
    return DataResponse(data=BuildingOut.model_validate(building))


@buildings.get("/{id}", summary="View one building.")
def get_building(ctx: Reader, id: uuid.UUID) -> DataResponse[BuildingOut]:
    return DataResponse(data=BuildingOut.model_validate(service.get_building(ctx.session, id)))


@buildings.patch("/{id}", summary="Update a building.")
def update_building(ctx: Admin, id: uuid.UUID, body: BuildingUpdate) -> DataResponse[BuildingOut]:
    building = service.update_building(
        ctx.session, caller=ctx.caller, building=service.get_building(ctx.session, id), data=body
    )
    return DataResponse(data=BuildingOut.model_validate(building))


@buildings.delete("/{id}", status_code=204, summary="Delete a building that has no rooms left.")
def delete_building(ctx: Admin, id: uuid.UUID) -> None:
    building = service.get_building(ctx.session, id)
    service.delete_building(ctx.session, caller=ctx.caller, building=building)


@buildings.get("/{id}/rooms", summary="List a building's rooms.")
def list_building_rooms(ctx: Reader, id: uuid.UUID, params: ListQuery) -> ListResponse[RoomOut]:
    service.get_building(ctx.session, id)
    stmt = service.query_rooms(building_id=id, q=params.q)
    stmt = apply_sort(stmt, params.sort, service.ROOM_SORT_FIELDS, [Room.number], Room.id)
    rows, pagination = paginate(ctx.session, stmt, params, scalars=False)
    return ListResponse(data=[service.room_out(r) for r in rows], pagination=pagination)


@buildings.post("/{id}/rooms", status_code=201, summary="Add a room to a building.")
def create_room(ctx: Admin, id: uuid.UUID, body: RoomCreate) -> DataResponse[RoomOut]:
    building = service.get_building(ctx.session, id)
    room = service.create_room(ctx.session, caller=ctx.caller, building=building, data=body)
    return DataResponse(data=service.room_view(ctx.session, room))


@rooms.get(
    "",
    summary="Find rooms across the organization (by site, building, number, type); each names "
    "its building and site.",
)
def list_rooms(
    ctx: Reader,
    params: ListQuery,
    site_id: Annotated[uuid.UUID | None, Query(alias="siteId")] = None,
    building_id: Annotated[uuid.UUID | None, Query(alias="buildingId")] = None,
    room_type: Annotated[RoomType | None, Query(alias="roomType")] = None,
) -> ListResponse[RoomOut]:
    stmt = service.query_rooms(
        site_id=site_id, building_id=building_id, q=params.q, room_type=room_type
    )
    stmt = apply_sort(stmt, params.sort, service.ROOM_SORT_FIELDS, [Room.number], Room.id)
    rows, pagination = paginate(ctx.session, stmt, params, scalars=False)
    return ListResponse(data=[service.room_out(r) for r in rows], pagination=pagination)


@rooms.get("/{id}", summary="View one room.")
def get_room(ctx: Reader, id: uuid.UUID) -> DataResponse[RoomOut]:
    return DataResponse(data=service.room_view(ctx.session, service.get_room(ctx.session, id)))


@rooms.patch("/{id}", summary="Update a room.")
def update_room(ctx: Admin, id: uuid.UUID, body: RoomUpdate) -> DataResponse[RoomOut]:
    room = service.update_room(
        ctx.session, caller=ctx.caller, room=service.get_room(ctx.session, id), data=body
    )
    return DataResponse(data=service.room_view(ctx.session, room))


@rooms.delete("/{id}", status_code=204, summary="Delete a room.")
def delete_room(ctx: Admin, id: uuid.UUID) -> None:
    service.delete_room(ctx.session, caller=ctx.caller, room=service.get_room(ctx.session, id))
