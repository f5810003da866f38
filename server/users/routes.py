from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query

from common.enums import Role
from server.auth.deps import RequestContext, access
from server.core.listing import ListQuery, apply_sort, paginate
from server.core.routing import api_router
from server.core.schemas import DataResponse, ListResponse
from server.core.tenancy import ALL_TENANTS, bind_tenant
from server.organizations.models import Organization
from server.organizations.schemas import OrganizationOut
from server.users import service
from server.users.models import User
from server.users.schemas import MeOut, UserCreate, UserOut, UserUpdate

router = api_router(prefix="/api/users", tags=["Users"])
me_router = api_router(prefix="/api/me", tags=["Users"])

STAFF = (Role.ORG_ADMIN, Role.AGENT, Role.TECHNICIAN)
Reader = Annotated[RequestContext, access("users:read", *STAFF)]
Admin = Annotated[RequestContext, access("users:write", Role.ORG_ADMIN)]


def _out(user: User) -> UserOut:
    return UserOut.model_validate(user)


@router.get("", summary="List users in the current organization.")
def list_users(
    ctx: Reader,
    params: ListQuery,
    role: Annotated[Role | None, Query()] = None,
    is_active: Annotated[bool | None, Query(alias="isActive")] = None,
    department_id: Annotated[uuid.UUID | None, Query(alias="departmentId")] = None,
    search: Annotated[str | None, Query(max_length=200, description="Alias of q")] = None,
) -> ListResponse[UserOut]:
    stmt = service.query_users(
        q=params.q or (search or "").strip() or None,
        role=role,
        is_active=is_active,
        department_id=department_id,
    )
    stmt = apply_sort(
        stmt, params.sort, service.SORT_FIELDS, [User.last_name, User.first_name], User.id
    )
    rows, pagination = paginate(ctx.session, stmt, params)
    return ListResponse(data=[_out(u) for u in rows], pagination=pagination)


@router.post("", status_code=201, summary="Create or invite a user.")
def create_user(ctx: Admin, body: UserCreate) -> DataResponse[UserOut]:
    org_id = ctx.resolve_organization(body.organization_id)
    user = service.create_user(
        ctx.session, settings=ctx.settings, caller=ctx.caller, organization_id=org_id, data=body
    )
    return DataResponse(data=_out(user))


@router.get("/{id}", summary="View one user.")
def get_user(ctx: Reader, id: uuid.UUID) -> DataResponse[UserOut]:
    return DataResponse(data=_out(service.get_user(ctx.session, id)))


@router.patch("/{id}", summary="Update a user's profile, department or role.")
def update_user(ctx: Admin, id: uuid.UUID, body: UserUpdate) -> DataResponse[UserOut]:
    user = service.get_user(ctx.session, id)
    return DataResponse(
        data=_out(service.update_user(ctx.session, caller=ctx.caller, user=user, data=body))
    )


@router.delete("/{id}", status_code=204, summary="Delete a user (kept as a tombstone).")
def delete_user(ctx: Admin, id: uuid.UUID) -> None:
    service.delete_user(ctx.session, caller=ctx.caller, user=service.get_user(ctx.session, id))


@router.post("/{id}/activate", summary="Reactivate a user (also clears a lockout).")
def activate_user(ctx: Admin, id: uuid.UUID) -> DataResponse[UserOut]:
    user = service.get_user(ctx.session, id)
    return DataResponse(
        data=_out(service.set_active(ctx.session, caller=ctx.caller, user=user, active=True))
    )


@router.post("/{id}/deactivate", summary="Deactivate a user and end their sessions.")
def deactivate_user(ctx: Admin, id: uuid.UUID) -> DataResponse[UserOut]:
    user = service.get_user(ctx.session, id)
    return DataResponse(
        data=_out(service.set_active(ctx.session, caller=ctx.caller, user=user, active=False))
    )


@me_router.get("", summary="The signed-in user, their organization and scopes.")
def me(
    ctx: Annotated[RequestContext, access(None, allow_mfa_enrollment=True)],
) -> DataResponse[MeOut]:
    # Only the caller's own rows, by primary key: read them whatever organization
    # a super admin is acting on.
    bind_tenant(ctx.session, ALL_TENANTS)
    user = service.get_user(ctx.session, ctx.caller.user_id)
    org = (
        ctx.session.get(Organization, ctx.caller.organization_id)
        if ctx.caller.organization_id
        else None
    )
    return DataResponse(
        data=MeOut(
            user=_out(user),
            organization=OrganizationOut.model_validate(org).model_dump(by_alias=True, mode="json")
            if org
            else None,
            scopes=sorted(ctx.caller.scopes),
            via_api_token=ctx.caller.via_api_token,
        )
    )
