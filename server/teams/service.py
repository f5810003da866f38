"""Teams: groups of technicians and agents that tickets are assigned to.

A technician sees the tickets of the teams they belong to (``team_ids_of``), and
routing rules send tickets to teams.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session

from common.enums import AuditCategory, AuditSeverity, Role
from common.errors import ErrorCode
from common.workflow import StatusCategory
from server.audit import service as audit
from server.core.db import flush_unique
from server.core.errors import Conflict, NotFound, ValidationFailed
from server.core.listing import text_filter
from server.core.tenancy import Caller, soft_delete
from server.organizations.models import Department
from server.routing.models import RoutingRule
from server.teams.models import Team, TeamMember
from server.teams.schemas import TeamCreate, TeamUpdate
from server.tickets.models import Ticket
from server.users.models import User

#: who may be on a team (or lead one)
STAFF_ROLES = (Role.ORG_ADMIN, Role.AGENT, Role.TECHNICIAN)

SORT_FIELDS = {"name": Team.name, "createdAt": Team.created_at, "updatedAt": Team.updated_at}
MEMBER_SORT_FIELDS = {
    "lastName": User.last_name,
    "firstName": User.first_name,
    "email": User.email,
    "role": User.role,
    "addedAt": TeamMember.created_at,
}


# --------------------------------------------------------------------------- reading


def get_team(session: Session, team_id: uuid.UUID) -> Team:
    team = session.get(Team, team_id)
    if team is None or team.deleted_at is not None:
        raise NotFound("Team")
    return team


def _member_count() -> Any:
    return (
        select(func.count(TeamMember.id))
        .where(TeamMember.team_id == Team.id)
        .correlate(Team)
        .scalar_subquery()
        .label("member_count")
    )


def query_teams(
    *,
    q: str | None = None,
    department_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
) -> Select[Any]:
    """Rows of (team, number of members)."""
    stmt = select(Team, _member_count())
    if q:
        stmt = stmt.where(text_filter(q, Team.name, Team.description))
    if department_id:
        stmt = stmt.where(Team.department_id == department_id)
    if user_id:
        stmt = stmt.where(
            Team.id.in_(select(TeamMember.team_id).where(TeamMember.user_id == user_id))
        )
    return stmt


def team_with_count(session: Session, team_id: uuid.UUID) -> tuple[Team, int]:
    row = session.execute(select(Team, _member_count()).where(Team.id == team_id)).first()
    if row is None:
        raise NotFound("Team")
    return row[0], int(row[1])


def query_members(*, team_id: uuid.UUID, q: str | None = None) -> Select[Any]:
    """Rows of (membership, user)."""
    joined = (
        select(TeamMember, User)
        .join(User, User.id == TeamMember.user_id)
        .where(TeamMember.team_id == team_id)
    )
    stmt = cast(Select[Any], joined)
    if q:
        stmt = stmt.where(text_filter(q, User.email, User.first_name, User.last_name))
    return stmt


def teams_of(user_id: uuid.UUID) -> Select[Any]:
    """The ids of the live teams ``user_id`` belongs to, as a subquery for SQL filters
    (``Ticket.team_id.in_(teams_of(caller.user_id))``)."""
    return (
        select(TeamMember.team_id)
        .join(Team, Team.id == TeamMember.team_id)
        .where(TeamMember.user_id == user_id)
    )


def team_ids_of(session: Session, user_id: uuid.UUID) -> list[uuid.UUID]:
    """The live teams ``user_id`` belongs to (for "technicians see their teams' tickets")."""
    return list(session.scalars(teams_of(user_id).order_by(Team.name)))


def member_ids_of(session: Session, team_id: uuid.UUID) -> list[uuid.UUID]:
    """The people on a team (e.g. to notify them of a ticket routed to it)."""
    stmt = (
        select(TeamMember.user_id)
        .join(User, User.id == TeamMember.user_id)
        .where(TeamMember.team_id == team_id, User.is_active.is_(True))
    )
    return list(session.scalars(stmt))


# -------------------------------------------------------------------------- checking


def _staff(session: Session, user_id: uuid.UUID, field: str) -> User:
    user = session.get(User, user_id)
    if user is None or user.deleted_at is not None or user.organization_id is None:
        raise ValidationFailed(
            f"{field} does not name a user of the organization", details={"field": field}
        )
    if user.role not in STAFF_ROLES:
        raise ValidationFailed(
            f"{user.email} is a {user.role.value}: only technicians, agents and admins "
            "can be on a team",
            details={"field": field},
        )
    if not user.is_active:
        raise ValidationFailed(
            f"{user.email} is deactivated and cannot be put on a team", details={"field": field}
        )
    return user


def _check_department(session: Session, department_id: uuid.UUID | None) -> None:
    if department_id is None:
        return
    department = session.get(Department, department_id)
    if department is None or department.deleted_at is not None:
        raise ValidationFailed(
            "departmentId does not name a department of the organization",
            details={"field": "departmentId"},
        )


def _record(
    session: Session, caller: Caller, team: Team, action: str, message: str, **kw: Any
) -> None:
    audit.record(
        session,
        actor=caller,
        organization_id=team.organization_id,
        action=action,
        category=AuditCategory.USER_MANAGEMENT,
        entity_type="team",
        entity_id=team.id,
        message=message,
        **kw,
    )


# --------------------------------------------------------------------------- writing


def create_team(session: Session, *, caller: Caller, data: TeamCreate) -> Team:
    _check_department(session, data.department_id)
    if data.lead_id is not None:
        _staff(session, data.lead_id, "leadId")
    members = [
        _staff(session, user_id, "memberIds") for user_id in dict.fromkeys(data.member_ids or [])
    ]
    team = Team(
        name=data.name,
        description=data.description,
        department_id=data.department_id,
        lead_id=data.lead_id,
    )
    session.add(team)
    flush_unique(session, message=f"A team named '{data.name}' exists", field="name")
    for user in members:
        session.add(TeamMember(team_id=team.id, user_id=user.id))
    session.flush()
    _record(
        session,
        caller,
        team,
        "team.created",
        f"{caller.email} created team {team.name}",
        details={"members": [u.email for u in members]} if members else None,
    )
    return team


def update_team(session: Session, *, caller: Caller, team: Team, data: TeamUpdate) -> Team:
    changes = data.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] is None:
        raise ValidationFailed("name cannot be null", details={"field": "name"})
    if changes.get("department_id") is not None:
        _check_department(session, changes["department_id"])
    if changes.get("lead_id") is not None:
        _staff(session, changes["lead_id"], "leadId")
    before = {key: getattr(team, key) for key in changes}
    for key, value in changes.items():
        setattr(team, key, value)
    flush_unique(session, message="A team with this name exists", field="name")
    diff = audit.field_changes(before, {key: getattr(team, key) for key in changes})
    if diff:
        _record(
            session,
            caller,
            team,
            "team.updated",
            f"{caller.email} changed {', '.join(sorted(diff))} of team {team.name}",
            details={"changes": {k: _jsonable(v) for k, v in diff.items()}},
        )
    return team


def _jsonable(change: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in change.items()}


def _rules_assigning_to(session: Session, team_id: uuid.UUID) -> list[str]:
    rows = session.execute(select(RoutingRule.name, RoutingRule.actions)).all()
    return [name for name, actions in rows if (actions or {}).get("assignTeamId") == str(team_id)]


def delete_team(session: Session, *, caller: Caller, team: Team) -> None:
    rules = _rules_assigning_to(session, team.id)
    if rules:
        raise Conflict(
            f"Routing rules send tickets to this team: change or delete {', '.join(rules)} first",
            details={"field": "id", "rules": rules},
        )
    open_tickets = session.scalar(
        select(func.count(Ticket.id)).where(
            Ticket.team_id == team.id,
            Ticket.status_category.in_([StatusCategory.OPEN, StatusCategory.PAUSED]),
        )
    )
    if open_tickets:
        raise Conflict(
            f"The team has {open_tickets} open ticket(s): reassign them first",
            details={"field": "id", "openTickets": open_tickets},
        )
    for membership in session.scalars(select(TeamMember).where(TeamMember.team_id == team.id)):
        soft_delete(membership)
    soft_delete(team)
    session.flush()
    _record(
        session,
        caller,
        team,
        "team.deleted",
        f"{caller.email} deleted team {team.name}",
        severity=AuditSeverity.WARNING,
    )


def add_member(
    session: Session, *, caller: Caller, team: Team, user_id: uuid.UUID
) -> tuple[TeamMember, User]:
    user = _staff(session, user_id, "userId")
    already = session.scalar(
        select(exists().where(TeamMember.team_id == team.id, TeamMember.user_id == user.id))
    )
    if already:
        raise Conflict(
            f"{user.email} is already on team {team.name}",
            code=ErrorCode.DUPLICATE_RESOURCE,
            details={"field": "userId"},
        )
    membership = TeamMember(team_id=team.id, user_id=user.id)
    session.add(membership)
    flush_unique(session, message=f"{user.email} is already on team {team.name}", field="userId")
    _record(
        session,
        caller,
        team,
        "team.member_added",
        f"{caller.email} added {user.email} to team {team.name}",
        details={"userId": str(user.id)},
    )
    return membership, user


def remove_member(session: Session, *, caller: Caller, team: Team, user_id: uuid.UUID) -> None:
    membership = session.scalar(
        select(TeamMember).where(TeamMember.team_id == team.id, TeamMember.user_id == user_id)
    )
    if membership is None:
        raise NotFound("Team member")
    user = session.get(User, user_id)
    soft_delete(membership)
    session.flush()
    who = user.email if user is not None else str(user_id)
    _record(
        session,
        caller,
        team,
        "team.member_removed",
        f"{caller.email} removed {who} from team {team.name}",
        details={"userId": str(user_id)},
    )
