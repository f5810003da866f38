from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query

from common.enums import OrganizationStatus, Role
from server.auth.deps import RequestContext, access
from server.core.listing import ListQuery, apply_sort, paginate
from server.core.routing import api_router
from server.core.schemas import DataResponse, ListResponse
from server.core.tenancy import ALL_TENANTS, bind_tenant
from server.organizations import service
from server.organizations.models import Department, Organization
from server.organizations.schemas import (
    DepartmentCreate,
    DepartmentOut,
    DepartmentUpdate,
    OrganizationCreate,
    OrganizationOut,
    OrganizationUpdate,
)

organizations = api_router(prefix="/api/organizations", tags=["Organizations"])
departments = api_router(prefix="/api/departments", tags=["Departments"])

PlatformAdmin = Annotated[RequestContext, access("organizations:write", Role.SUPER_ADMIN)]
PlatformReader = Annotated[RequestContext, access("organizations:read", Role.SUPER_ADMIN)]
OrgReader = Annotated[RequestContext, access("organizations:read", Role.ORG_ADMIN)]
OrgWriter = Annotated[RequestContext, access("organizations:write", Role.ORG_ADMIN)]
DeptReader = Annotated[RequestContext, access("departments:read")]
DeptWriter = Annotated[RequestContext, access("departments:write", Role.ORG_ADMIN)]


def _org(org: Organization) -> OrganizationOut:
    return OrganizationOut.model_validate(org)


@organizations.get("", summary="List organizations for platform administrators.")
def list_organizations(
    ctx: PlatformReader,
    params: ListQuery,
    status: Annotated[OrganizationStatus | None, Query()] = None,
) -> ListResponse[OrganizationOut]:
    stmt = service.query_organizations(q=params.q, status=status)
    stmt = apply_sort(
        stmt, params.sort, service.ORG_SORT_FIELDS, [Organization.name], Organization.id
    )
    rows, pagination = paginate(ctx.session, stmt, params)
    return ListResponse(data=[_org(o) for o in rows], pagination=pagination)


@organizations.post("", status_code=201, summary="Create an organization.")
def create_organization(
    ctx: PlatformAdmin, body: OrganizationCreate
) -> DataResponse[OrganizationOut]:
    bind_tenant(ctx.session, ALL_TENANTS)  # the new organization's rows are written here
    org = service.create_organization(
        ctx.session, settings=ctx.settings, caller=ctx.caller, data=body
    )
    return DataResponse(data=_org(org))


@organizations.get("/{id}", summary="View one organization with domains and settings.")
def get_organization(ctx: OrgReader, id: uuid.UUID) -> DataResponse[OrganizationOut]:
    return DataResponse(data=_org(service.get_organization(ctx.session, ctx.caller, id)))


@organizations.patch("/{id}", summary="Update organization profile, branding, or lifecycle status.")
def update_organization(
    ctx: OrgWriter, id: uuid.UUID, body: OrganizationUpdate
) -> DataResponse[OrganizationOut]:
    org = service.get_organization(ctx.session, ctx.caller, id)
    return DataResponse(
        data=_org(service.update_organization(ctx.session, caller=ctx.caller, org=org, data=body))
    )


@organizations.delete("/{id}", summary="Archive an organization.")
def archive_organization(ctx: PlatformAdmin, id: uuid.UUID) -> DataResponse[OrganizationOut]:
    org = service.get_organization(ctx.session, ctx.caller, id)
    return DataResponse(
        data=_org(service.archive_organization(ctx.session, caller=ctx.caller, org=org))
    )


@departments.get("", summary="List departments in the current organization.")
def list_departments(ctx: DeptReader, params: ListQuery) -> ListResponse[DepartmentOut]:
    stmt = service.query_departments(q=params.q)
    stmt = apply_sort(
        stmt, params.sort, service.DEPARTMENT_SORT_FIELDS, [Department.name], Department.id
    )
    rows, pagination = paginate(ctx.session, stmt, params)
    return ListResponse(data=[DepartmentOut.model_validate(d) for d in rows], pagination=pagination)


@departments.post("", status_code=201, summary="Create a department.")
def create_department(ctx: DeptWriter, body: DepartmentCreate) -> DataResponse[DepartmentOut]:
    org_id = ctx.resolve_organization(body.organization_id)
    dept = service.create_department(
        ctx.session, caller=ctx.caller, organization_id=org_id, data=body
    )
    return DataResponse(data=DepartmentOut.model_validate(dept))


@departments.get("/{id}", summary="View one department.")
def get_department(ctx: DeptReader, id: uuid.UUID) -> DataResponse[DepartmentOut]:
    return DataResponse(data=DepartmentOut.model_validate(service.get_department(ctx.session, id)))


@departments.patch("/{id}", summary="Update a department.")
def update_department(
    ctx: DeptWriter, id: uuid.UUID, body: DepartmentUpdate
) -> DataResponse[DepartmentOut]:
    dept = service.get_department(ctx.session, id)
    dept = service.update_department(ctx.session, caller=ctx.caller, dept=dept, data=body)
    return DataResponse(data=DepartmentOut.model_validate(dept))


@departments.delete("/{id}", status_code=204, summary="Delete a department.")
def delete_department(ctx: DeptWriter, id: uuid.UUID) -> None:
    service.delete_department(
        ctx.session, caller=ctx.caller, dept=service.get_department(ctx.session, id)
    )
