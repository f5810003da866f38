"""Ticket rules: who sees what, creating, editing, assigning, the workflow, comments,
notes, attachments, blockers, merging and the timeline.

Every change is written in the caller's transaction together with its history
entry, its notifications (in-app rows and outbox emails) and its SLA effects, so
a ticket never shows a change its timeline does not explain.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pydantic.alias_generators import to_camel
from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import InstrumentedAttribute, Session

from common.enums import Role
from common.errors import ErrorCode
from common.tickets import Level, Priority, TicketType, priority_for
from common.workflow import (
    Capacity,
    StatusCategory,
    TicketStatus,
    Transition,
    WorkflowError,
    available,
    category,
    check,
)
from server.assets import service as assets
from server.core.db import utcnow
from server.core.errors import (
    ApiError,
    BusinessRuleViolation,
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from server.core.tenancy import Caller
from server.notifications import events as notification_events
from server.notifications import service as notifications
from server.organizations.models import Department
from server.routing import service as routing
from server.sites.models import Building, Room, Site
from server.sla import service as sla
from server.teams import service as teams
from server.teams.models import Team
from server.tickets import search
from server.tickets.models import (
    Ticket,
    TicketAttachment,
    TicketComment,
    TicketEvent,
    TicketLink,
    TicketSequence,
)
from server.tickets.schemas import SearchFilters, TicketCreate, TicketUpdate
from server.tickets.timeline import EventKind, record
from server.tickets.visibility import (
    STAFF_ONLY_DATA,
    STAFF_ONLY_EVENTS,
    capacities,
    get_visible,
    is_desk,
    sees_internal,
    visible_filter,
)
from server.uploads import service as uploads
from server.users.models import User

STAFF_ROLES = (Role.ORG_ADMIN, Role.AGENT, Role.TECHNICIAN)
_MENTION_EMAIL = re.compile(r"(?<![\w.])@([\w.+-]+@[\w-]+(?:\.[\w-]+)+)")
_MENTION_ID = re.compile(r"@\[[^\]]{0,100}\]\(([0-9a-fA-F-]{36})\)")

SORT_FIELDS: dict[str, Any] = {
    "createdAt": Ticket.created_at,
    "updatedAt": Ticket.updated_at,
    "number": Ticket.number,
    "title": Ticket.title,
    "status": Ticket.status,
    "dueAt": Ticket.due_at,
    "resolutionDueAt": Ticket.resolution_due_at,
    "responseDueAt": Ticket.response_due_at,
    "priority": case({p.value: p.rank for p in Priority}, value=Ticket.priority, else_=-1),
}


# --- who may see and do what -------------------------------------------------------


def transitions_for(session: Session, caller: Caller, ticket: Ticket) -> list[Transition]:
    return available(TicketStatus(ticket.status), capacities(session, caller, ticket))


# --- numbers ---------------------------------------------------------------------


def next_number(session: Session, organization_id: uuid.UUID, ticket_type: TicketType) -> str:
    """INC-000042: a per-organization sequence per type, taken under the row's lock."""
    prefix = ticket_type.prefix
    table = TicketSequence.__table__
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(table)  # type: ignore[arg-type]
        .values(organization_id=organization_id, prefix=prefix, last_value=1)
        .on_conflict_do_update(
            index_elements=[table.c.organization_id, table.c.prefix],
            set_={"last_value": table.c.last_value + 1},
        )
        .returning(table.c.last_value)
    )
    value = int(session.execute(stmt).scalar_one())
    return f"{prefix}-{value:06d}"


# --- validation of references ------------------------------------------------------


def _staff_user(session: Session, user_id: uuid.UUID, what: str) -> User:
    user = session.get(User, user_id)
    if user is None or user.deleted_at is not None or not user.is_active:
        raise ValidationFailed(f"{what} is not an active user", details={"field": what})
    if user.role not in STAFF_ROLES:
        raise ValidationFailed(
            f"{what} must be a technician, agent or administrator", details={"field": what}
        )
    return user


def _active_user(session: Session, user_id: uuid.UUID, what: str) -> User:
    user = session.get(User, user_id)
    if user is None or user.deleted_at is not None or not user.is_active:
        raise ValidationFailed(f"{what} is not an active user", details={"field": what})
    return user


def _check_place(session: Session, values: dict[str, Any]) -> None:
    """Site, building and room exist and agree with each other; fill in the parents."""
    room_id, building_id, site_id = (
        values.get("room_id"),
        values.get("building_id"),
        values.get("site_id"),
    )
    if room_id is not None:
        room = session.get(Room, room_id)
        if room is None or room.deleted_at is not None:
            raise ValidationFailed("roomId does not name a room", details={"field": "roomId"})
        if building_id is not None and building_id != room.building_id:
            raise ValidationFailed("The room is not in that building", details={"field": "roomId"})
        building_id = values["building_id"] = room.building_id
    if building_id is not None:
        building = session.get(Building, building_id)
        if building is None or building.deleted_at is not None:
            raise ValidationFailed(
                "buildingId does not name a building", details={"field": "buildingId"}
            )
        if site_id is not None and site_id != building.site_id:
            raise ValidationFailed(
                "The building is not on that site", details={"field": "buildingId"}
            )
        site_id = values["site_id"] = building.site_id
    if site_id is not None:
        site = session.get(Site, site_id)
        if site is None or site.deleted_at is not None:
            raise ValidationFailed("siteId does not name a site", details={"field": "siteId"})


def _check_refs(session: Session, values: dict[str, Any]) -> None:
    if values.get("department_id") is not None:
        department = session.get(Department, values["department_id"])
        if department is None or department.deleted_at is not None:
            raise ValidationFailed(
                "departmentId does not name a department", details={"field": "departmentId"}
            )
    if values.get("team_id") is not None:
        team = session.get(Team, values["team_id"])
        if team is None or team.deleted_at is not None:
            raise ValidationFailed("teamId does not name a team", details={"field": "teamId"})
    if values.get("assignee_id") is not None:
        _staff_user(session, values["assignee_id"], "assigneeId")
    for watcher in values.get("watcher_ids") or ():
        _active_user(session, uuid.UUID(str(watcher)), "watcherIds")
    if any(k in values for k in ("site_id", "building_id", "room_id")):
        _check_place(session, values)


#: what a requester's priority says about how soon it hurts them
URGENCY_OF_REQUESTED_PRIORITY = {
    Priority.LOW: Level.LOW,
    Priority.MEDIUM: Level.MEDIUM,
    Priority.HIGH: Level.HIGH,
    Priority.CRITICAL: Level.HIGH,
}


def _derive_priority(ticket_type: TicketType, data: Any) -> Priority:
    if data.priority is not None:
        return Priority(data.priority)
    if ticket_type is TicketType.INCIDENT and data.impact and data.urgency:
        return priority_for(Level(data.impact), Level(data.urgency))
    return Priority.MEDIUM


def _clean_tags(tags: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for tag in tags:
        seen.setdefault(tag.strip().lower(), None)
    return list(seen)


# --- create ----------------------------------------------------------------------


def create(
    session: Session,
    caller: Caller,
    *,
    organization_id: uuid.UUID,
    data: TicketCreate,
    ticket_id: uuid.UUID | None = None,
) -> Ticket:
    """File a ticket: number, routing, SLA deadlines, history and notifications.

    The ticket row is written first (the rows that name it need it in the table),
    the rest in one flush at the end: one batched INSERT per table and one more
    change-position allocation, instead of a flush before every lookup.
    """
    with session.no_autoflush:
        return _create(session, caller, organization_id, data, ticket_id)


def _create(
    session: Session,
    caller: Caller,
    organization_id: uuid.UUID,
    data: TicketCreate,
    ticket_id: uuid.UUID | None,
) -> Ticket:
    now = utcnow()
    values = data.model_dump(exclude={"organization_id", "asset_ids"})
    staff = caller.role.is_staff
    requester_id = values.pop("requester_id") or caller.user_id
    if requester_id != caller.user_id and not staff:
        raise PermissionDenied("Only staff can file a ticket on behalf of someone else")
    if not staff:
        # A requester describes the problem; the desk and the routing rules decide the rest.
        for field in ("assignee_id", "team_id", "due_at"):
            if values.get(field) is not None:
                raise PermissionDenied(f"Only staff can set {field.replace('_id', '')}")
        # The priority they ask for is a request: kept as urgency for the desk to weigh,
        # while the ticket's priority (and so its SLA) comes from the routing rules or
        # staff, as it would on a later change (which requesters may not make either).
        requested = values.pop("priority", None)
        if values.get("urgency") is None and requested is not None:
            values["urgency"] = URGENCY_OF_REQUESTED_PRIORITY[Priority(requested)].value
        data = data.model_copy(update={"priority": None, "impact": None, "urgency": None})
    requester = _active_user(session, requester_id, "requesterId")
    _check_refs(session, values)
    parent = _parent(session, caller, values.get("parent_id"))

    ticket_type = TicketType(data.ticket_type)
    ticket = Ticket(
        # a ticket made offline keeps the id its replica gave it (sync)
        **({"id": ticket_id} if ticket_id is not None else {}),
        organization_id=organization_id,
        number=next_number(session, organization_id, ticket_type),
        ticket_type=ticket_type.value,
        title=values["title"],
        description=values["description"],
        status=TicketStatus.NEW.value,
        status_category=StatusCategory.OPEN.value,
        status_changed_at=now,
        priority=_derive_priority(ticket_type, data).value,
        impact=values.get("impact"),
        urgency=values.get("urgency"),
        category=values.get("category"),
        subcategory=values.get("subcategory"),
        source=values["source"],
        department_id=values.get("department_id") or requester.department_id,
        site_id=values.get("site_id") or (None if values.get("room_id") else requester.site_id),
        building_id=values.get("building_id"),
        room_id=values.get("room_id"),
        requester_id=requester_id,
        created_by_id=caller.user_id if requester_id != caller.user_id else None,
        watcher_ids=[str(w) for w in dict.fromkeys(values["watcher_ids"])],
        tags=_clean_tags(values["tags"]),
        custom_fields=values["custom_fields"],
        due_at=values.get("due_at"),
        parent_id=parent.id if parent else None,
        created_at=now,
        updated_at=now,
    )
    session.add(ticket)
    session.flush()
    record(session, ticket, EventKind.CREATED, actor_id=caller.user_id, number=ticket.number)

    _route(session, ticket, requester.role.value, values)
    if values.get("assignee_id") is not None or values.get("team_id") is not None:
        _set_assignment(
            session,
            caller,
            ticket,
            assignee_id=values.get("assignee_id", ticket.assignee_id),
            team_id=values.get("team_id", ticket.team_id),
            note=None,
        )
    sla.apply_on_create(session, ticket, now)

    if data.asset_ids:
        assets.link_ticket_assets(session, ticket, data.asset_ids, caller.user_id)

    watchers = [uuid.UUID(w) for w in ticket.watcher_ids]
    notifications.notify(
        session,
        recipients=watchers,
        event=notification_events.TICKET_STATUS_CHANGED,
        title=f"{ticket.number} opened: {ticket.title}",
        body=f"A ticket you watch was opened by {caller.email}.",
        ticket=ticket,
        actor_id=caller.user_id,
    )
    return ticket


def _parent(session: Session, caller: Caller, parent_id: uuid.UUID | None) -> Ticket | None:
    if parent_id is None:
        return None
    # A ticket the caller may not see is as absent as a missing one: linking to it
    # would list the caller's ticket among its children and confirm that it exists.
    parent = session.scalars(
        select(Ticket).where(
            Ticket.id == parent_id, Ticket.deleted_at.is_(None), visible_filter(caller)
        )
    ).one_or_none()
    if parent is None:
        raise ValidationFailed("parentId does not name a ticket", details={"field": "parentId"})
    return parent


def _route(session: Session, ticket: Ticket, requester_role: str, explicit: dict[str, Any]) -> None:
    """Apply the routing rules; they fill what the person filing did not choose."""
    facts = routing.facts_for(ticket, requester_role)
    decision = routing.decide(session, facts)
    changes = decision.changes(facts)
    if "priority" in changes and explicit.get("priority") is not None:
        del changes["priority"]
    chose_owner = explicit.get("assignee_id") is not None or explicit.get("team_id") is not None
    if chose_owner:
        changes.pop("assigneeId", None)
        changes.pop("teamId", None)
    if "priority" in changes:
        ticket.priority = Priority(decision.priority).value
    if "tags" in changes:
        ticket.tags = _clean_tags(decision.tags)
    if "watcherIds" in changes:
        ticket.watcher_ids = [str(w) for w in dict.fromkeys(decision.watcher_ids)]
    if decision.matches:
        record(
            session,
            ticket,
            EventKind.ROUTED,
            internal=True,
            matches=[
                {
                    "ruleId": str(m.rule_id),
                    "name": m.rule_name,
                    "ruleSet": m.rule_set,
                    "reasons": list(m.reasons),
                    "effects": list(m.effects),
                }
                for m in decision.matches
            ],
            changes=changes,
        )
    if "assigneeId" in changes or "teamId" in changes:
        _set_assignment(
            session,
            None,
            ticket,
            assignee_id=decision.assignee_id,
            team_id=decision.team_id,
            note="Routed automatically",
        )


# --- edit ------------------------------------------------------------------------

_REQUESTER_FIELDS = {"title", "description", "satisfaction_rating", "satisfaction_comment"}
_SATISFACTION = {"satisfaction_rating", "satisfaction_comment"}
_SLA_INPUTS = {"priority", "ticket_type", "department_id", "site_id"}


def _jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID | datetime | date):
        return str(value)
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def update(session: Session, caller: Caller, ticket: Ticket, data: TicketUpdate) -> Ticket:
    values = data.model_dump(exclude_unset=True)
    if not values:
        return ticket
    held = capacities(session, caller, ticket)
    staff_capacity = held & {Capacity.ASSIGNEE, Capacity.AGENT, Capacity.ADMIN}
    if category(TicketStatus(ticket.status)) is StatusCategory.CLOSED and not (
        set(values) <= _SATISFACTION
    ):
        raise ApiError(
            f"{ticket.number} is {ticket.status}; reopen it before changing it",
            code=ErrorCode.TICKET_ALREADY_CLOSED,
            status_code=409,
        )
    if not staff_capacity:
        refused = set(values) - _REQUESTER_FIELDS
        if refused:
            raise PermissionDenied(
                "You can change only the title, the description and your rating",
                details={"fields": sorted(refused)},
            )
        if {"title", "description"} & set(values) and ticket.status not in (
            TicketStatus.NEW,
            TicketStatus.OPEN,
        ):
            raise PermissionDenied("The ticket is being worked on; add a comment instead")
    if set(values) & _SATISFACTION:
        if Capacity.REQUESTER not in held:
            raise PermissionDenied("Only the requester rates a ticket")
        if (
            category(TicketStatus(ticket.status))
            not in (
                StatusCategory.RESOLVED,
                StatusCategory.CLOSED,
            )
            or ticket.status == TicketStatus.CANCELLED
        ):
            raise BusinessRuleViolation("A ticket can be rated once it is resolved")
    for nullable_required in ("title", "ticket_type", "priority"):
        if nullable_required in values and values[nullable_required] is None:
            raise ValidationFailed(f"{nullable_required} cannot be empty")
    if "tags" in values:
        values["tags"] = _clean_tags(values["tags"] or [])
    if "watcher_ids" in values:
        values["watcher_ids"] = [str(w) for w in dict.fromkeys(values["watcher_ids"] or [])]
    if "parent_id" in values and values["parent_id"] is not None:
        if values["parent_id"] == ticket.id:
            raise ValidationFailed("A ticket cannot be its own parent")
        _parent(session, caller, values["parent_id"])
    # An incident's priority follows impact x urgency unless set explicitly.
    ticket_type = TicketType(values.get("ticket_type") or ticket.ticket_type)
    impact = values.get("impact", ticket.impact)
    urgency = values.get("urgency", ticket.urgency)
    if (
        "priority" not in values
        and ticket_type is TicketType.INCIDENT
        and ({"impact", "urgency"} & set(values))
        and impact
        and urgency
    ):
        values["priority"] = priority_for(Level(impact), Level(urgency)).value
    _check_refs(session, values)

    changes: dict[str, dict[str, Any]] = {}
    for field, new in values.items():
        old = getattr(ticket, field)
        stored = new.value if hasattr(new, "value") else new
        if old == stored:
            continue
        changes[to_camel(field)] = {"from": _jsonable(old), "to": _jsonable(stored)}
        setattr(ticket, field, stored)
    if not changes:
        return ticket
    ticket.updated_at = utcnow()
    record(session, ticket, EventKind.FIELDS_CHANGED, actor_id=caller.user_id, changes=changes)
    if {to_camel(f) for f in _SLA_INPUTS} & set(changes):
        sla.recompute(session, ticket, utcnow(), reason="fields changed")
    return ticket


# --- assignment ------------------------------------------------------------------


def assign(
    session: Session,
    caller: Caller,
    ticket: Ticket,
    *,
    fields: set[str],
    assignee_id: uuid.UUID | None,
    team_id: uuid.UUID | None,
    note: str | None,
) -> Ticket:
    _refuse_if_closed(ticket)
    self_claim = (
        caller.role is Role.TECHNICIAN
        and fields == {"assignee_id"}
        and assignee_id == caller.user_id
    )
    if not is_desk(caller) and not self_claim:
        raise PermissionDenied("Only the help desk assigns tickets; technicians can take one")
    values: dict[str, Any] = {}
    if "assignee_id" in fields:
        values["assignee_id"] = assignee_id
    if "team_id" in fields:
        values["team_id"] = team_id
    _check_refs(session, values)
    _set_assignment(
        session,
        caller,
        ticket,
        assignee_id=values.get("assignee_id", ticket.assignee_id),
        team_id=values.get("team_id", ticket.team_id),
        note=note,
    )
    return ticket


def _set_assignment(
    session: Session,
    caller: Caller | None,
    ticket: Ticket,
    *,
    assignee_id: uuid.UUID | None,
    team_id: uuid.UUID | None,
    note: str | None,
) -> None:
    before = (ticket.assignee_id, ticket.team_id)
    if before == (assignee_id, team_id):
        return
    ticket.assignee_id, ticket.team_id = assignee_id, team_id
    ticket.updated_at = utcnow()
    actor_id = caller.user_id if caller else None
    record(
        session,
        ticket,
        EventKind.ASSIGNED,
        actor_id=actor_id,
        assignee={"from": _jsonable(before[0]), "to": _jsonable(assignee_id)},
        team={"from": _jsonable(before[1]), "to": _jsonable(team_id)},
        note=note,
    )
    # The status follows the person: a ticket in the queue that gets a technician is
    # assigned, one that loses its technician goes back to the queue. A team alone
    # is a queue, so the ticket stays new or open in that team's queue.
    status = TicketStatus(ticket.status)
    if assignee_id and status in (TicketStatus.NEW, TicketStatus.OPEN):
        _move(session, ticket, TicketStatus.ASSIGNED, "assign", actor_id=actor_id, note=None)
    elif not assignee_id and status is TicketStatus.ASSIGNED:
        _move(session, ticket, TicketStatus.OPEN, "unassign", actor_id=actor_id, note=None)
    recipients = [assignee_id] if assignee_id and assignee_id != before[0] else []
    if team_id and team_id != before[1] and not assignee_id:
        recipients += teams.member_ids_of(session, team_id)
    if recipients:
        notifications.notify(
            session,
            recipients=recipients,
            event=notification_events.TICKET_ASSIGNED,
            title=f"{ticket.number} assigned to you: {ticket.title}",
            body=note or "A ticket was assigned to you or your team.",
            ticket=ticket,
            actor_id=actor_id,
        )


# --- workflow --------------------------------------------------------------------


def _refuse_if_closed(ticket: Ticket) -> None:
    if category(TicketStatus(ticket.status)) is StatusCategory.CLOSED:
        raise ApiError(
            f"{ticket.number} is {ticket.status}; reopen it before changing it",
            code=ErrorCode.TICKET_ALREADY_CLOSED,
            status_code=409,
        )


def _workflow_error(exc: WorkflowError) -> ApiError:
    if exc.code is ErrorCode.PERMISSION_DENIED:
        return PermissionDenied(exc.message)
    return ApiError(exc.message, code=exc.code, status_code=409)


def transition(
    session: Session,
    ticket: Ticket,
    target: TicketStatus,
    *,
    caller: Caller | None,
    note: str | None = None,
    resolution_notes: str | None = None,
    root_cause: str | None = None,
) -> Ticket:
    """Move the ticket through the workflow, or refuse (409 / 403) without changing it."""
    current = TicketStatus(ticket.status)
    try:
        step = check(current, target, capacities(session, caller, ticket))
    except WorkflowError as exc:
        raise _workflow_error(exc) from exc
    finishing = target is TicketStatus.RESOLVED or (
        target is TicketStatus.CLOSED and current is not TicketStatus.RESOLVED
    )
    if finishing and ticket.open_blocker_count > 0:
        raise BusinessRuleViolation(
            f"{ticket.number} is blocked by {ticket.open_blocker_count} open ticket(s); "
            "resolve those first",
            details={"openBlockers": ticket.open_blocker_count},
        )
    if target is TicketStatus.RESOLVED:
        if resolution_notes is not None:
            ticket.resolution_notes = resolution_notes
        if root_cause is not None:
            ticket.root_cause = root_cause
    actor_id = caller.user_id if caller else None
    _move(session, ticket, target, step.name, actor_id=actor_id, note=note)
    if (
        caller is not None
        and caller.role.is_staff
        and Capacity.REQUESTER not in capacities(session, caller, ticket)
    ):
        _first_response(session, ticket)
    return ticket


def _move(
    session: Session,
    ticket: Ticket,
    target: TicketStatus,
    transition_name: str,
    *,
    actor_id: uuid.UUID | None,
    note: str | None,
) -> None:
    now = utcnow()
    before = TicketStatus(ticket.status)
    old_category, new_category = category(before), category(target)
    ticket.status = target.value
    ticket.status_category = new_category.value
    ticket.status_changed_at = now
    ticket.updated_at = now
    if target is TicketStatus.IN_PROGRESS and ticket.started_at is None:
        ticket.started_at = now
    # The stage timestamps describe where the ticket is now: back at work (a reopen,
    # a rejected resolution) it is neither resolved nor closed.
    if new_category in (StatusCategory.OPEN, StatusCategory.PAUSED):
        ticket.resolved_at = None
        ticket.closed_at = None
    elif target is TicketStatus.RESOLVED:
        ticket.resolved_at = now
        ticket.closed_at = None
    elif target is TicketStatus.CANCELLED:
        ticket.closed_at = now
        ticket.resolved_at = None  # withdrawn, never resolved
    else:
        ticket.closed_at = now
        if ticket.resolved_at is None:  # closed without a resolution step (auto-close)
            ticket.resolved_at = now
    if target is TicketStatus.WAITING_ON_REQUESTER:
        ticket.reminded_at = None
    record(
        session,
        ticket,
        EventKind.STATUS_CHANGED,
        actor_id=actor_id,
        note=note,
        transition=transition_name,
        details={"from": before.value, "to": target.value},
    )
    if old_category is not new_category:
        sla.on_category_change(session, ticket, old_category, new_category, now)
        _update_blocked(session, ticket, old_category, new_category)
    recipients = {ticket.requester_id, *(uuid.UUID(w) for w in ticket.watcher_ids)}
    if ticket.assignee_id:
        recipients.add(ticket.assignee_id)
    event = (
        notification_events.APPROVAL_REQUESTED
        if target is TicketStatus.RESOLVED
        else notification_events.TICKET_STATUS_CHANGED
    )
    title = (
        f"{ticket.number} is resolved — does this fix it?"
        if target is TicketStatus.RESOLVED
        else f"{ticket.number} is now {target.value.replace('_', ' ')}"
    )
    body = note or ticket.resolution_notes or ticket.title
    if target is TicketStatus.RESOLVED:
        notifications.notify(
            session,
            recipients=[ticket.requester_id],
            event=event,
            title=title,
            body=body,
            ticket=ticket,
            actor_id=actor_id,
        )
        recipients.discard(ticket.requester_id)
        event = notification_events.TICKET_STATUS_CHANGED
    notifications.notify(
        session,
        recipients=recipients,
        event=event,
        title=title,
        body=body,
        ticket=ticket,
        actor_id=actor_id,
    )


def _done(cat: StatusCategory) -> bool:
    return cat in (StatusCategory.RESOLVED, StatusCategory.CLOSED)


def _update_blocked(
    session: Session, ticket: Ticket, old: StatusCategory, new: StatusCategory
) -> None:
    """Keep ``open_blocker_count`` of the tickets this one blocks in step."""
    if _done(old) == _done(new):
        return
    delta = -1 if _done(new) else 1
    blocked = select(TicketLink.ticket_id).where(
        TicketLink.blocker_id == ticket.id, TicketLink.deleted_at.is_(None)
    )
    for other in session.scalars(select(Ticket).where(Ticket.id.in_(blocked))):
        other.open_blocker_count = max(0, other.open_blocker_count + delta)


def _first_response(session: Session, ticket: Ticket) -> None:
    if ticket.first_response_at is None:
        ticket.first_response_at = utcnow()
        sla.on_first_response(session, ticket, ticket.first_response_at)


def set_sla(
    session: Session,
    caller: Caller,
    ticket: Ticket,
    *,
    response_due_at: datetime | None,
    resolution_due_at: datetime | None,
    reason: str,
) -> Ticket:
    """The desk overrides the deadlines by hand (a vendor visit, an agreed date)."""
    if not is_desk(caller):
        raise PermissionDenied("Only the help desk sets deadlines by hand")
    _refuse_if_closed(ticket)
    before = {
        "responseDueAt": _jsonable(ticket.response_due_at),
        "resolutionDueAt": _jsonable(ticket.resolution_due_at),
    }
    if response_due_at is not None:
        ticket.response_due_at = response_due_at
        ticket.response_breached_at = None
    if resolution_due_at is not None:
        ticket.resolution_due_at = resolution_due_at
        ticket.resolution_breached_at = None
    ticket.sla_warned_at = None
    ticket.updated_at = utcnow()
    record(
        session,
        ticket,
        EventKind.SLA_APPLIED,
        actor_id=caller.user_id,
        manual=True,
        reason=reason,
        before=before,
        responseDueAt=_jsonable(ticket.response_due_at),
        resolutionDueAt=_jsonable(ticket.resolution_due_at),
    )
    return ticket


# --- comments and notes ------------------------------------------------------------


def _mentions(session: Session, body: str, *, staff_only: bool) -> list[User]:
    emails = {m.lower() for m in _MENTION_EMAIL.findall(body)}
    ids = set()
    for raw in _MENTION_ID.findall(body):
        try:
            ids.add(uuid.UUID(raw))
        except ValueError:
            continue
    if not emails and not ids:
        return []
    conditions = []
    if emails:
        conditions.append(func.lower(User.email).in_(emails))
    if ids:
        conditions.append(User.id.in_(ids))
    stmt = select(User).where(or_(*conditions), User.deleted_at.is_(None), User.is_active)
    if staff_only:
        stmt = stmt.where(User.role.in_(STAFF_ROLES))
    return list(session.scalars(stmt.limit(20)))


def add_comment(
    session: Session,
    caller: Caller,
    ticket: Ticket,
    *,
    body: str,
    internal: bool,
    minutes_worked: int = 0,
    comment_id: uuid.UUID | None = None,
) -> TicketComment:
    if internal and not sees_internal(caller):
        raise PermissionDenied("Only staff can write internal notes")
    if minutes_worked and not caller.role.is_staff:
        raise PermissionDenied("Only staff record time worked")
    _refuse_if_closed(ticket)
    mentioned = _mentions(session, body, staff_only=internal)
    comment = TicketComment(
        **({"id": comment_id} if comment_id is not None else {}),
        organization_id=ticket.organization_id,
        ticket_id=ticket.id,
        author_id=caller.user_id,
        body=body,
        is_internal=internal,
        mention_ids=[str(u.id) for u in mentioned],
        minutes_worked=minutes_worked,
    )
    session.add(comment)
    now = utcnow()
    ticket.updated_at = now
    ticket.minutes_worked += minutes_worked
    if internal:
        ticket.internal_note_count += 1
    else:
        ticket.comment_count += 1
    held = capacities(session, caller, ticket)
    is_requester = Capacity.REQUESTER in held
    if not internal and not is_requester and caller.role.is_staff:
        _first_response(session, ticket)
    if not internal and is_requester and ticket.status == TicketStatus.WAITING_ON_REQUESTER.value:
        _move(session, ticket, TicketStatus.IN_PROGRESS, "requester_replied",
              actor_id=caller.user_id, note="The requester replied")  # fmt: skip
    session.flush()
    if mentioned:
        notifications.notify(
            session,
            recipients=[u.id for u in mentioned],
            event=notification_events.MENTIONED,
            title=f"You were mentioned on {ticket.number}",
            body=body[:500],
            ticket=ticket,
            actor_id=caller.user_id,
        )
    if not internal:
        recipients = {ticket.requester_id, *(uuid.UUID(w) for w in ticket.watcher_ids)}
        if ticket.assignee_id:
            recipients.add(ticket.assignee_id)
        recipients -= {u.id for u in mentioned}
        notifications.notify(
            session,
            recipients=recipients,
            event=notification_events.TICKET_COMMENTED,
            title=f"New comment on {ticket.number}: {ticket.title}",
            body=body[:500],
            ticket=ticket,
            actor_id=caller.user_id,
        )
    return comment


def comments(session: Session, caller: Caller, ticket: Ticket) -> Sequence[TicketComment]:
    stmt = select(TicketComment).where(
        TicketComment.ticket_id == ticket.id, TicketComment.deleted_at.is_(None)
    )
    if not sees_internal(caller):
        stmt = stmt.where(TicketComment.is_internal.is_(False))
    return session.scalars(stmt.order_by(TicketComment.created_at, TicketComment.id)).all()


# --- attachments -----------------------------------------------------------------


def add_attachment(
    session: Session,
    caller: Caller,
    ticket: Ticket,
    *,
    storage_key: str,
    internal: bool,
    attachment_id: uuid.UUID | None = None,
) -> TicketAttachment:
    if internal and not sees_internal(caller):
        raise PermissionDenied("Only staff can add internal attachments")
    _refuse_if_closed(ticket)
    upload = uploads.claim(session, caller, storage_key, "TICKET_ATTACHMENT", ticket_id=ticket.id)
    attachment = TicketAttachment(
        **({"id": attachment_id} if attachment_id is not None else {}),
        organization_id=ticket.organization_id,
        ticket_id=ticket.id,
        upload_id=upload.id,
        uploaded_by_id=caller.user_id,
        file_name=upload.file_name,
        mime_type=upload.mime_type,
        size_bytes=upload.size_bytes,
        sha256=upload.sha256 or "",
        is_internal=internal,
    )
    session.add(attachment)
    session.flush()
    ticket.attachment_count += 1
    ticket.updated_at = utcnow()
    record(
        session,
        ticket,
        EventKind.ATTACHMENT_ADDED,
        actor_id=caller.user_id,
        internal=internal,
        attachmentId=str(attachment.id),
        fileName=attachment.file_name,
        sizeBytes=attachment.size_bytes,
    )
    return attachment


def attachments(session: Session, caller: Caller, ticket: Ticket) -> Sequence[TicketAttachment]:
    stmt = select(TicketAttachment).where(
        TicketAttachment.ticket_id == ticket.id, TicketAttachment.deleted_at.is_(None)
    )
    if not sees_internal(caller):
        stmt = stmt.where(TicketAttachment.is_internal.is_(False))
    return session.scalars(stmt.order_by(TicketAttachment.created_at)).all()


def get_attachment(
    session: Session, caller: Caller, ticket: Ticket, attachment_id: uuid.UUID
) -> TicketAttachment:
    attachment = session.get(TicketAttachment, attachment_id)
    if (
        attachment is None
        or attachment.ticket_id != ticket.id
        or attachment.deleted_at is not None
        or (attachment.is_internal and not sees_internal(caller))
    ):
        raise NotFound("Attachment")
    return attachment


# --- blockers, children, merge ---------------------------------------------------


def add_blocker(
    session: Session, caller: Caller, ticket: Ticket, blocker_id: uuid.UUID
) -> TicketLink:
    if not caller.role.is_staff:
        raise PermissionDenied("Only staff link tickets")
    _refuse_if_closed(ticket)
    if blocker_id == ticket.id:
        raise ValidationFailed("A ticket cannot block itself", details={"field": "blockerId"})
    blocker = get_visible(session, caller, blocker_id)
    if _blocks(session, ticket.id, blocker.id):
        raise Conflict(
            f"{ticket.number} already blocks {blocker.number} (directly or through others)",
            code=ErrorCode.BUSINESS_RULE_VIOLATION,
        )
    existing = session.scalars(
        select(TicketLink).where(
            TicketLink.ticket_id == ticket.id,
            TicketLink.blocker_id == blocker.id,
            TicketLink.deleted_at.is_(None),
        )
    ).first()
    if existing is not None:
        raise Conflict(
            f"{blocker.number} already blocks {ticket.number}",
            code=ErrorCode.DUPLICATE_RESOURCE,
        )
    link = TicketLink(
        organization_id=ticket.organization_id, ticket_id=ticket.id, blocker_id=blocker.id
    )
    session.add(link)
    if not _done(StatusCategory(blocker.status_category)):
        ticket.open_blocker_count += 1
    ticket.updated_at = utcnow()
    for subject, other, relation in ((ticket, blocker, "blocked_by"), (blocker, ticket, "blocks")):
        record(
            session,
            subject,
            EventKind.LINKED,
            actor_id=caller.user_id,
            relation=relation,
            otherId=str(other.id),
            otherNumber=other.number,
        )
    session.flush()
    return link


def _blocks(session: Session, start: uuid.UUID, target: uuid.UUID) -> bool:
    """Whether ``start`` (transitively) blocks ``target``: linking would make a cycle."""
    seen: set[uuid.UUID] = set()
    frontier = {target}
    for _ in range(50):
        if start in frontier:
            return True
        seen |= frontier
        frontier = (
            set(
                session.scalars(
                    select(TicketLink.blocker_id).where(
                        TicketLink.ticket_id.in_(frontier), TicketLink.deleted_at.is_(None)
                    )
                )
            )
            - seen
        )
        if not frontier:
            return False
    return True


def remove_blocker(session: Session, caller: Caller, ticket: Ticket, blocker_id: uuid.UUID) -> None:
    if not caller.role.is_staff:
        raise PermissionDenied("Only staff link tickets")
    link = session.scalars(
        select(TicketLink).where(
            TicketLink.ticket_id == ticket.id,
            TicketLink.blocker_id == blocker_id,
            TicketLink.deleted_at.is_(None),
        )
    ).first()
    if link is None:
        raise NotFound("Link")
    blocker = session.get(Ticket, blocker_id)
    link.deleted_at = utcnow()
    if blocker is not None and not _done(StatusCategory(blocker.status_category)):
        ticket.open_blocker_count = max(0, ticket.open_blocker_count - 1)
    ticket.updated_at = utcnow()
    record(
        session,
        ticket,
        EventKind.UNLINKED,
        actor_id=caller.user_id,
        relation="blocked_by",
        otherId=str(blocker_id),
        otherNumber=blocker.number if blocker else None,
    )


_RELATION_RANK = {"blocked_by": 0, "children": 1, "blocking": 2}


def related(session: Session, caller: Caller, ticket: Ticket) -> dict[str, list[Ticket]]:
    """Blockers, what it blocks and its children, of those the caller may see (a
    requester learns that their ticket waits on other work from its open blocker
    count, not which work).

    One probe of three indexed lookups (``UNION ALL``; an ``OR`` of them made
    PostgreSQL scan every ticket of the organization), and a second query only when
    something is related, which most tickets are not.
    """
    live_links = TicketLink.deleted_at.is_(None)
    relations = union_all(
        select(TicketLink.blocker_id.label("id"), literal("blocked_by").label("relation"))
        .where(TicketLink.ticket_id == ticket.id, live_links),
        select(TicketLink.ticket_id, literal("blocking"))
        .where(TicketLink.blocker_id == ticket.id, live_links),
        select(Ticket.id, literal("children"))
        .where(Ticket.parent_id == ticket.id, Ticket.organization_id == ticket.organization_id),
    )  # fmt: skip
    relation_of: dict[uuid.UUID, str] = {}
    # a blocker that is also a child shows as a blocker
    for link in sorted(session.execute(relations), key=lambda r: _RELATION_RANK[r.relation]):
        relation_of.setdefault(link.id, link.relation)
    result: dict[str, list[Ticket]] = {"blocked_by": [], "blocking": [], "children": []}
    if not relation_of:
        return result
    tickets = session.scalars(
        select(Ticket)
        .where(
            Ticket.deleted_at.is_(None), Ticket.id.in_(list(relation_of)), visible_filter(caller)
        )
        .order_by(Ticket.created_at)
        .limit(300)
    )
    for other in tickets:
        result[relation_of[other.id]].append(other)
    return result


def merge(
    session: Session, caller: Caller, ticket: Ticket, *, into_id: uuid.UUID, note: str | None
) -> Ticket:
    """Close ``ticket`` as a duplicate of another; its comments, notes, attachments
    and watchers move over, and both timelines say so."""
    if not is_desk(caller):
        raise PermissionDenied("Only the help desk merges tickets")
    _refuse_if_closed(ticket)
    if into_id == ticket.id:
        raise ValidationFailed("A ticket cannot be merged into itself", details={"field": "intoId"})
    target = get_visible(session, caller, into_id, for_update=True)
    _refuse_if_closed(target)
    # Through the ORM, not a bulk UPDATE, so the moved rows get new change positions
    # and desktop replicas learn they moved.
    moved_comments = moved_attachments = 0
    for comment in session.scalars(
        select(TicketComment).where(
            TicketComment.ticket_id == ticket.id, TicketComment.deleted_at.is_(None)
        )
    ):
        comment.ticket_id, comment.merged_from_id = target.id, ticket.id
        moved_comments += 1
    for attachment in session.scalars(
        select(TicketAttachment).where(
            TicketAttachment.ticket_id == ticket.id, TicketAttachment.deleted_at.is_(None)
        )
    ):
        attachment.ticket_id = target.id
        moved_attachments += 1
    target.comment_count += ticket.comment_count
    target.internal_note_count += ticket.internal_note_count
    target.attachment_count += ticket.attachment_count
    target.minutes_worked += ticket.minutes_worked
    target.watcher_ids = list(
        dict.fromkeys([*target.watcher_ids, *ticket.watcher_ids, str(ticket.requester_id)])
    )
    target.tags = _clean_tags([*target.tags, *ticket.tags])
    target.updated_at = utcnow()
    ticket.comment_count = ticket.internal_note_count = ticket.attachment_count = 0
    ticket.merged_into_id = target.id
    record(
        session,
        target,
        EventKind.MERGED,
        actor_id=caller.user_id,
        direction="from",
        otherId=str(ticket.id),
        otherNumber=ticket.number,
        comments=moved_comments,
        attachments=moved_attachments,
        note=note,
    )
    record(
        session,
        ticket,
        EventKind.MERGED,
        actor_id=caller.user_id,
        direction="into",
        otherId=str(target.id),
        otherNumber=target.number,
        note=note,
    )
    _move(
        session,
        ticket,
        TicketStatus.CANCELLED,
        "merge",
        actor_id=caller.user_id,
        note=f"Merged into {target.number}",
    )
    return target


# --- history ---------------------------------------------------------------------


def history(session: Session, caller: Caller, ticket: Ticket) -> list[dict[str, Any]]:
    """One timeline: comments, notes and every recorded event, oldest first.

    A merged-in ticket's history comes along, marked with the ticket it came from.
    """
    internal = sees_internal(caller)
    sources = [ticket.id]
    sources += list(
        session.scalars(
            select(Ticket.id).where(Ticket.merged_into_id == ticket.id, Ticket.deleted_at.is_(None))
        )
    )
    events = select(TicketEvent).where(TicketEvent.ticket_id.in_(sources))
    if not internal:
        events = events.where(
            TicketEvent.is_internal.is_(False), TicketEvent.kind.not_in(STAFF_ONLY_EVENTS)
        )
    entries: list[dict[str, Any]] = []
    for event in session.scalars(events):
        data = dict(event.data)
        if event.ticket_id != ticket.id:
            data["fromTicketId"] = str(event.ticket_id)
        entries.append(
            {"id": event.id, "kind": event.kind, "actor_id": event.actor_id,
             "at": event.created_at, "data": data}
        )  # fmt: skip
    for comment in comments(session, caller, ticket):
        entries.append(
            {
                "id": comment.id,
                "kind": "internal_note" if comment.is_internal else "comment",
                "actor_id": comment.author_id,
                "at": comment.created_at,
                "body": comment.body,
                "data": {
                    "mentionIds": comment.mention_ids,
                    "minutesWorked": comment.minutes_worked,
                    **(
                        {"fromTicketId": str(comment.merged_from_id)}
                        if comment.merged_from_id
                        else {}
                    ),
                },
            }
        )
    entries.sort(key=lambda e: (e["at"], str(e["id"])))
    if not internal:
        for entry in entries:
            entry["data"] = {k: v for k, v in entry["data"].items() if k not in STAFF_ONLY_DATA}
    _hide_tickets_out_of_sight(session, caller, entries)
    _name_people_and_teams(session, entries)
    return entries


def _name_people_and_teams(session: Session, entries: list[dict[str, Any]]) -> None:
    """Who acted (``actorName``) and who or which team a ticket went to (``fromName``
    and ``toName`` beside the ids of an assignment), so a timeline reads without a
    look-up per line: the desktop app shows it offline. Two queries per timeline.
    Parts and assets are named in their entries when they are recorded."""
    user_ids: set[uuid.UUID] = {e["actor_id"] for e in entries if e["actor_id"]}
    team_ids: set[uuid.UUID] = set()
    for entry in entries:
        for key, ids in (("assignee", user_ids), ("team", team_ids)):
            change = entry["data"].get(key)
            if isinstance(change, dict):
                ids.update(uuid.UUID(v) for v in (change.get("from"), change.get("to")) if v)
    people: dict[uuid.UUID, str] = {}
    if user_ids:
        rows = session.execute(
            select(User.id, User.first_name, User.last_name, User.email).where(
                User.id.in_(user_ids)
            )
        )
        people = {r.id: f"{r.first_name} {r.last_name}".strip() or r.email for r in rows}
    team_names: dict[uuid.UUID, str] = {}
    if team_ids:
        rows = session.execute(select(Team.id, Team.name).where(Team.id.in_(team_ids)))
        team_names = {r.id: r.name for r in rows}
    for entry in entries:
        entry["actor_name"] = people.get(entry["actor_id"]) if entry["actor_id"] else None
        for key, names in (("assignee", people), ("team", team_names)):
            change = entry["data"].get(key)
            if isinstance(change, dict):
                entry["data"] = {
                    **entry["data"],
                    key: {
                        **change,
                        **{
                            f"{end}Name": names.get(uuid.UUID(change[end]))
                            if change.get(end)
                            else None
                            for end in ("from", "to")
                        },
                    },
                }


def _hide_tickets_out_of_sight(
    session: Session, caller: Caller, entries: list[dict[str, Any]]
) -> None:
    """Links and merges name the other ticket; a caller who may not see it reads that
    there is one (``otherHidden``), not its number or id."""
    if is_desk(caller):
        return
    named = {e["data"]["otherId"] for e in entries if e["data"].get("otherId")}
    if not named:
        return
    ids = [uuid.UUID(value) for value in named]
    seen = {
        str(found)
        for found in session.scalars(
            select(Ticket.id).where(
                Ticket.id.in_(ids), Ticket.deleted_at.is_(None), visible_filter(caller)
            )
        )
    }
    for entry in entries:
        data = entry["data"]
        if data.get("otherId") and data["otherId"] not in seen:
            entry["data"] = {
                **{k: v for k, v in data.items() if k not in ("otherId", "otherNumber")},
                "otherHidden": True,
            }


def _merged_from(ticket_id: uuid.UUID | None) -> dict[str, str]:
    return {"fromTicketId": str(ticket_id)} if ticket_id else {}


# --- lists and search ------------------------------------------------------------


def _day_start(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.combine(value, time.min, tzinfo=UTC)


def _day_end(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.combine(value + timedelta(days=1), time.min, tzinfo=UTC)


def _id_or_none(
    column: InstrumentedAttribute[uuid.UUID | None], values: Sequence[uuid.UUID | str]
) -> ColumnElement[bool]:
    """``column`` is one of the ids, or unset where ``"none"`` is among them."""
    ids = [v for v in values if isinstance(v, uuid.UUID)]
    if len(ids) == len(values):
        return column.in_(ids)
    return or_(column.is_(None), column.in_(ids)) if ids else column.is_(None)


def _tag_filter(dialect: str, tag: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        return Ticket.tags.op("@>")(func.jsonb_build_array(tag))
    each = func.json_each(Ticket.tags).table_valued("value")
    return select(each.c.value).where(each.c.value == tag).exists()


def query(
    caller: Caller,
    filters: SearchFilters,
    *,
    text: str | None,
    dialect: str,
    now: datetime | None = None,
) -> Select[Any]:
    """The caller's visible tickets matching ``filters`` (unsorted)."""
    f = filters
    conditions: list[ColumnElement[bool]] = [Ticket.deleted_at.is_(None), visible_filter(caller)]
    if f.status:
        conditions.append(Ticket.status.in_([s.value for s in f.status]))
    if f.status_category:
        conditions.append(Ticket.status_category.in_([c.value for c in f.status_category]))
    if f.priority:
        conditions.append(Ticket.priority.in_([p.value for p in f.priority]))
    if f.ticket_type:
        conditions.append(Ticket.ticket_type.in_([t.value for t in f.ticket_type]))
    if f.assignee_ids:
        conditions.append(_id_or_none(Ticket.assignee_id, f.assignee_ids))
    if f.assigned_to_me:
        conditions.append(Ticket.assignee_id == caller.user_id)
    if f.unassigned:
        conditions.append(Ticket.assignee_id.is_(None))
    if f.team_ids:
        conditions.append(_id_or_none(Ticket.team_id, f.team_ids))
    if f.requester_ids:
        conditions.append(Ticket.requester_id.in_(f.requester_ids))
    if f.departments:
        conditions.append(Ticket.department_id.in_(f.departments))
    if f.site_ids:
        conditions.append(Ticket.site_id.in_(f.site_ids))
    if f.building_ids:
        conditions.append(Ticket.building_id.in_(f.building_ids))
    if f.room_ids:
        conditions.append(Ticket.room_id.in_(f.room_ids))
    if f.category:
        conditions.append(Ticket.category == f.category)
    for tag in f.tags or ():
        conditions.append(_tag_filter(dialect, tag.strip().lower()))
    if f.created_after:
        conditions.append(Ticket.created_at >= _day_start(f.created_after))
    if f.created_before:
        conditions.append(Ticket.created_at < _day_end(f.created_before))
    if f.updated_after:
        conditions.append(Ticket.updated_at >= _day_start(f.updated_after))
    if f.updated_before:
        conditions.append(Ticket.updated_at < _day_end(f.updated_before))
    if f.sla_breached is not None:
        breached = or_(
            Ticket.response_breached_at.is_not(None), Ticket.resolution_breached_at.is_not(None)
        )
        conditions.append(breached if f.sla_breached else ~breached)
    if f.sla_due_within_minutes:
        moment = now or utcnow()
        horizon = moment + timedelta(minutes=f.sla_due_within_minutes)
        conditions.append(
            and_(
                Ticket.status_category == StatusCategory.OPEN.value,
                Ticket.resolution_breached_at.is_(None),
                Ticket.resolution_due_at.is_not(None),
                Ticket.resolution_due_at <= horizon,
            )
        )
    if text:
        conditions.append(search.matches(dialect, text, include_internal=sees_internal(caller)))
    return select(Ticket).where(*conditions)


def order(stmt: Select[Any], keys: Sequence[tuple[str, bool]]) -> Select[Any]:
    """Sort by whitelisted fields ((name, descending) pairs); newest first by default."""
    clauses = []
    for name, descending in keys:
        column = SORT_FIELDS.get(name)
        if column is None:
            raise ValidationFailed(
                f"Cannot sort by '{name}'", details={"sort": name, "allowed": sorted(SORT_FIELDS)}
            )
        clauses.append(column.desc() if descending else column.asc())
    if not clauses:
        return stmt.order_by(Ticket.created_at.desc(), Ticket.id.desc())
    return stmt.order_by(*clauses, Ticket.id.desc())


def parse_sort(sort: str | None) -> list[tuple[str, bool]]:
    keys = []
    for raw in (sort or "").split(","):
        name = raw.strip()
        if name:
            keys.append((name.lstrip("-+"), name.startswith("-")))
    return keys
