from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query

from common.enums import Role
from server.auth.deps import RequestContext, access
from server.core.listing import ListQuery, apply_sort, paginate
from server.core.routing import api_router
from server.core.schemas import DataResponse, ListResponse
from server.teams import service
from server.teams.models import Team, TeamMember
from server.teams.schemas import TeamCreate, TeamMemberAdd, TeamMemberOut, TeamOut, TeamUpdate
from server.users.models import User

router = api_router(prefix="/api/teams", tags=["Teams"])

# Staff read teams (a technician sees which teams they are on); organization admins edit.
Reader = Annotated[
    RequestContext, access("users:read", Role.ORG_ADMIN, Role.AGENT, Role.TECHNICIAN)
]
Admin = Annotated[RequestContext, access("users:write", Role.ORG_ADMIN)]


def _team_out(team: Team, member_count: int) -> TeamOut:
    out = TeamOut.model_validate(team)
    out.member_count = member_count
    return out


def _member_out(membership: TeamMember, user: User) -> TeamMemberOut:
    return TeamMemberOut(
        team_id=membership.team_id,
        user_id=user.id,
        email=user.email,
        first_name=user.first_name,
        last_name=user.last_name,
        full_name=user.full_name,
        role=user.role,
        is_active=user.is_active,
        job_title=user.job_title,
        added_at=membership.created_at,
    )


@router.get("", summary="List the organization's teams.")
def list_teams(
    ctx: Reader,
    params: ListQuery,
    department_id: Annotated[uuid.UUID | None, Query(alias="departmentId")] = None,
    user_id: Annotated[
        uuid.UUID | None, Query(alias="userId", description="Only teams this user is on")
    ] = None,
) -> ListResponse[TeamOut]:
    stmt = service.query_teams(q=params.q, department_id=department_id, user_id=user_id)
    stmt = apply_sort(stmt, params.sort, service.SORT_FIELDS, [Team.name], Team.id)
    rows, pagination = paginate(ctx.session, stmt, params, scalars=False)
    return ListResponse(data=[_team_out(t, n) for t, n in rows], pagination=pagination)


@router.post("", status_code=201, summary="Create a team.")
def create_team(ctx: Admin, body: TeamCreate) -> DataResponse[TeamOut]:
    ctx.require_organization()
    team = service.create_team(ctx.session, caller=ctx.caller, data=body)
    return DataResponse(data=_team_out(team, len(set(body.member_ids or []))))


@router.get("/{id}", summary="View one team.")
def get_team(ctx: Reader, id: uuid.UUID) -> DataResponse[TeamOut]:
    return DataResponse(data=_team_out(*service.team_with_count(ctx.session, id)))


@router.patch("/{id}", summary="Rename a team, or change its department or lead.")
def update_team(ctx: Admin, id: uuid.UUID, body: TeamUpdate) -> DataResponse[TeamOut]:
    team = service.update_team(
        ctx.session, caller=ctx.caller, team=service.get_team(ctx.session, id), data=body
    )
    return DataResponse(data=_team_out(*service.team_with_count(ctx.session, team.id)))


@router.delete(
    "/{id}",
    status_code=204,
    summary="Delete a team that has no open tickets and no routing rule sending it work.",
)
def delete_team(ctx: Admin, id: uuid.UUID) -> None:
    service.delete_team(ctx.session, caller=ctx.caller, team=service.get_team(ctx.session, id))


@router.get("/{id}/members", summary="List a team's members.")
def list_members(ctx: Reader, id: uuid.UUID, params: ListQuery) -> ListResponse[TeamMemberOut]:
    service.get_team(ctx.session, id)
    stmt = service.query_members(team_id=id, q=params.q)
    stmt = apply_sort(
        stmt,
        params.sort,
        service.MEMBER_SORT_FIELDS,
        [User.last_name, User.first_name],
        TeamMember.id,
    )
    rows, pagination = paginate(ctx.session, stmt, params, scalars=False)
    return ListResponse(data=[_member_out(m, u) for m, u in rows], pagination=pagination)


@router.post("/{id}/members", status_code=201, summary="Add a technician, agent or admin.")
def add_member(ctx: Admin, id: uuid.UUID, body: TeamMemberAdd) -> DataResponse[TeamMemberOut]:
    team = service.get_team(ctx.session, id)
    membership, user = service.add_member(
        ctx.session, caller=ctx.caller, team=team, user_id=body.user_id
    )
    return DataResponse(data=_member_out(membership, user))


@router.delete("/{id}/members/{userId}", status_code=204, summary="Take someone off a team.")
def remove_member(ctx: Admin, id: uuid.UUID, userId: uuid.UUID) -> None:
    team = service.get_team(ctx.session, id)
    service.remove_member(ctx.session, caller=ctx.caller, team=team, user_id=userId)
