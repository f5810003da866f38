"""Routing rules: managing them, and deciding with them.

``decide(session, facts)`` is what ticket creation calls; ``dry_run`` and ``replay``
answer "what would the rules do" without writing anything.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from pydantic import ValidationError
from pydantic.alias_generators import to_camel
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from common.enums import AuditCategory, AuditSeverity, Role
from server.audit import service as audit
from server.core.db import flush_unique
from server.core.errors import Conflict, NotFound, ValidationFailed
from server.core.listing import text_filter
from server.core.tenancy import Caller, soft_delete
from server.organizations.models import Department
from server.routing import engine
from server.routing.engine import RoutingDecision, TicketFacts
from server.routing.models import RoutingRule, RoutingRuleSet
from server.routing.schemas import (
    RuleActions,
    RuleActionsOut,
    RuleConditions,
    RuleConditionsOut,
    RuleCreate,
    RuleReorder,
    RuleSetCreate,
    RuleSetUpdate,
    RuleUpdate,
    TicketSample,
)
from server.sites.models import Building, Room, Site
from server.teams.models import Team
from server.tickets.models import Ticket
from server.users.models import User

log = logging.getLogger(__name__)

DEFAULT_SET = "Default"
ASSIGNABLE_ROLES = (Role.ORG_ADMIN, Role.AGENT, Role.TECHNICIAN)

RULE_SET_SORT_FIELDS = {
    "position": RoutingRuleSet.position,
    "name": RoutingRuleSet.name,
    "createdAt": RoutingRuleSet.created_at,
}
RULE_SORT_FIELDS = {
    "position": RoutingRule.position,
    "name": RoutingRule.name,
    "createdAt": RoutingRule.created_at,
    "updatedAt": RoutingRule.updated_at,
}


# --------------------------------------------------------------------------- reading


def get_rule_set(session: Session, rule_set_id: uuid.UUID) -> RoutingRuleSet:
    rule_set = session.get(RoutingRuleSet, rule_set_id)
    if rule_set is None or rule_set.deleted_at is not None:
        raise NotFound("Routing rule set")
    return rule_set


def get_rule(session: Session, rule_id: uuid.UUID) -> RoutingRule:
    rule = session.get(RoutingRule, rule_id)
    if rule is None or rule.deleted_at is not None:
        raise NotFound("Routing rule")
    return rule


def _rule_count() -> Any:
    return (
        select(func.count(RoutingRule.id))
        .where(RoutingRule.rule_set_id == RoutingRuleSet.id)
        .correlate(RoutingRuleSet)
        .scalar_subquery()
        .label("rule_count")
    )


def query_rule_sets(*, q: str | None = None, active: bool | None = None) -> Select[Any]:
    """Rows of (rule set, number of rules)."""
    stmt = select(RoutingRuleSet, _rule_count())
    if q:
        stmt = stmt.where(text_filter(q, RoutingRuleSet.name, RoutingRuleSet.description))
    if active is not None:
        stmt = stmt.where(RoutingRuleSet.active == active)
    return stmt


def rule_set_with_count(session: Session, rule_set_id: uuid.UUID) -> tuple[RoutingRuleSet, int]:
    row = session.execute(
        select(RoutingRuleSet, _rule_count()).where(RoutingRuleSet.id == rule_set_id)
    ).first()
    if row is None:
        raise NotFound("Routing rule set")
    return row[0], int(row[1])


def query_rules(
    *,
    q: str | None = None,
    rule_set_id: uuid.UUID | None = None,
    active: bool | None = None,
) -> Select[Any]:
    """Rows of (rule, its set), in evaluation order unless sorted otherwise."""
    joined = select(RoutingRule, RoutingRuleSet).join(
        RoutingRuleSet, RoutingRuleSet.id == RoutingRule.rule_set_id
    )
    stmt = cast(Select[Any], joined)
    if q:
        stmt = stmt.where(text_filter(q, RoutingRule.name, RoutingRule.description))
    if rule_set_id:
        stmt = stmt.where(RoutingRule.rule_set_id == rule_set_id)
    if active is not None:
        stmt = stmt.where(RoutingRule.active == active)
    return stmt


EVALUATION_ORDER = (RoutingRuleSet.position, RoutingRuleSet.id, RoutingRule.position)


# -------------------------------------------------------------------------- auditing


def _record(
    session: Session,
    caller: Caller,
    item: RoutingRule | RoutingRuleSet,
    action: str,
    message: str,
    **kw: Any,
) -> None:
    audit.record(
        session,
        actor=caller,
        organization_id=item.organization_id,
        action=action,
        category=AuditCategory.CONFIGURATION,
        entity_type="routing_rule" if isinstance(item, RoutingRule) else "routing_rule_set",
        entity_id=item.id,
        message=message,
        **kw,
    )


def _next_position(session: Session, column: Any, *where: Any) -> int:
    current = session.scalar(select(func.max(column)).where(*where))
    return 0 if current is None else int(current) + 1


# ------------------------------------------------------------------------- rule sets


def create_rule_set(session: Session, *, caller: Caller, data: RuleSetCreate) -> RoutingRuleSet:
    position = data.position
    if position is None:
        position = _next_position(session, RoutingRuleSet.position)
    rule_set = RoutingRuleSet(
        name=data.name,
        description=data.description,
        mode=data.mode,
        position=position,
        active=data.active,
    )
    session.add(rule_set)
    flush_unique(session, message=f"A rule set named '{data.name}' exists", field="name")
    _record(
        session,
        caller,
        rule_set,
        "routing_rule_set.created",
        f"{caller.email} created routing rule set {rule_set.name} ({rule_set.mode})",
    )
    return rule_set


def update_rule_set(
    session: Session, *, caller: Caller, rule_set: RoutingRuleSet, data: RuleSetUpdate
) -> RoutingRuleSet:
    changes = data.model_dump(exclude_unset=True)
    for key in ("name", "mode", "position", "active"):
        if key in changes and changes[key] is None:
            raise ValidationFailed(f"{key} cannot be null", details={"field": key})
    before = {key: getattr(rule_set, key) for key in changes}
    for key, value in changes.items():
        setattr(rule_set, key, value)
    flush_unique(session, message="A rule set with this name exists", field="name")
    diff = audit.field_changes(before, {key: getattr(rule_set, key) for key in changes})
    if diff:
        _record(
            session,
            caller,
            rule_set,
            "routing_rule_set.updated",
            f"{caller.email} changed {', '.join(sorted(diff))} of routing rule set {rule_set.name}",
            details={"changes": diff},
        )
    return rule_set


def delete_rule_set(session: Session, *, caller: Caller, rule_set: RoutingRuleSet) -> None:
    count = session.scalar(
        select(func.count(RoutingRule.id)).where(RoutingRule.rule_set_id == rule_set.id)
    )
    if count:
        raise Conflict(
            f"The rule set has {count} rule(s): delete or move them first",
            details={"field": "id", "rules": count},
        )
    soft_delete(rule_set)
    session.flush()
    _record(
        session,
        caller,
        rule_set,
        "routing_rule_set.deleted",
        f"{caller.email} deleted routing rule set {rule_set.name}",
        severity=AuditSeverity.WARNING,
    )


def _set_for_new_rule(session: Session, *, caller: Caller, data: RuleCreate) -> RoutingRuleSet:
    if data.rule_set_id is not None:
        if data.rule_set is not None:
            raise ValidationFailed(
                "Give ruleSetId or ruleSet, not both", details={"field": "ruleSet"}
            )
        rule_set = session.get(RoutingRuleSet, data.rule_set_id)
        if rule_set is None or rule_set.deleted_at is not None:
            raise ValidationFailed(
                "ruleSetId does not name a rule set of the organization",
                details={"field": "ruleSetId"},
            )
        return rule_set
    name = data.rule_set or DEFAULT_SET
    found = session.scalar(select(RoutingRuleSet).where(RoutingRuleSet.name == name))
    if found is not None:
        return found
    return create_rule_set(session, caller=caller, data=RuleSetCreate(name=name))


# ----------------------------------------------------------------------------- rules


def conditions_json(conditions: RuleConditions) -> dict[str, Any]:
    """The stored form: the API's camelCase, empty conditions and duplicates left out."""
    raw = RuleConditionsOut.model_validate(conditions.model_dump()).model_dump(
        by_alias=True, exclude_none=True, mode="json"
    )
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, list):
            value = _unique(value)
            if value:
                out[key] = value
    if out.get("keywords") and conditions.keywords_mode != "any":
        out["keywordsMode"] = conditions.keywords_mode
    return out


def actions_json(actions: RuleActions) -> dict[str, Any]:
    raw = RuleActionsOut.model_validate(actions.model_dump()).model_dump(
        by_alias=True, exclude_none=True, mode="json"
    )
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, list):
            value = _unique(value)
            if not value:
                continue
        out[key] = value
    return out


def _unique(values: Iterable[Any]) -> list[Any]:
    seen: set[Any] = set()
    out = []
    for value in values:
        key = value.casefold() if isinstance(value, str) else value
        if key not in seen:
            seen.add(key)
            out.append(value)
    return out


def _missing(session: Session, model: Any, ids: Sequence[uuid.UUID], *where: Any) -> list[str]:
    if not ids:
        return []
    found = set(session.scalars(select(model.id).where(model.id.in_(set(ids)), *where)))
    return [str(i) for i in dict.fromkeys(ids) if i not in found]


def validate_references(
    session: Session, conditions: RuleConditions | None, actions: RuleActions | None
) -> None:
    """Every id a rule names must be a live row of the organization (422 otherwise)."""
    if conditions is not None:
        for name, model, ids in (
            ("departmentIds", Department, conditions.department_ids),
            ("siteIds", Site, conditions.site_ids),
            ("buildingIds", Building, conditions.building_ids),
            ("roomIds", Room, conditions.room_ids),
        ):
            missing = _missing(session, model, ids or [])
            if missing:
                raise ValidationFailed(
                    f"conditions.{name} names rows that do not exist in the organization",
                    details={"field": f"conditions.{name}", "missing": missing},
                )
    if actions is None:
        return
    if not actions_json(actions):
        raise ValidationFailed(
            "A rule needs at least one action (assignUserId, assignTeamId, setPriority, "
            "addTags or addWatcherIds)",
            details={"field": "actions"},
        )
    if actions.assign_user_id is not None and _missing(
        session,
        User,
        [actions.assign_user_id],
        User.role.in_(ASSIGNABLE_ROLES),
        User.is_active.is_(True),
    ):
        raise ValidationFailed(
            "assignUserId must be an active technician, agent or admin of the organization",
            details={"field": "actions.assignUserId"},
        )
    if actions.assign_team_id is not None and _missing(session, Team, [actions.assign_team_id]):
        raise ValidationFailed(
            "assignTeamId does not name a team of the organization",
            details={"field": "actions.assignTeamId"},
        )
    missing = _missing(session, User, actions.add_watcher_ids or [], User.is_active.is_(True))
    if missing:
        raise ValidationFailed(
            "addWatcherIds must name active users of the organization",
            details={"field": "actions.addWatcherIds", "missing": missing},
        )


def create_rule(session: Session, *, caller: Caller, data: RuleCreate) -> RoutingRule:
    validate_references(session, data.conditions, data.actions)
    rule_set = _set_for_new_rule(session, caller=caller, data=data)
    position = data.position
    if position is None:
        position = _next_position(
            session, RoutingRule.position, RoutingRule.rule_set_id == rule_set.id
        )
    rule = RoutingRule(
        rule_set_id=rule_set.id,
        name=data.name,
        description=data.description,
        position=position,
        active=data.active,
        conditions=conditions_json(data.conditions),
        actions=actions_json(data.actions),
    )
    session.add(rule)
    flush_unique(
        session, message=f"The set '{rule_set.name}' has a rule named '{data.name}'", field="name"
    )
    _record(
        session,
        caller,
        rule,
        "routing_rule.created",
        f"{caller.email} created routing rule {rule.name} in {rule_set.name}",
        details={"conditions": rule.conditions, "actions": rule.actions},
    )
    return rule


def update_rule(
    session: Session, *, caller: Caller, rule: RoutingRule, data: RuleUpdate
) -> RoutingRule:
    given = data.model_dump(exclude_unset=True)
    for key in ("name", "position", "active", "conditions", "actions", "rule_set_id"):
        if key in given and given[key] is None:
            raise ValidationFailed(f"{key} cannot be null", details={"field": to_camel(key)})
    validate_references(session, data.conditions, data.actions)
    changes: dict[str, Any] = {
        k: v for k, v in given.items() if k in ("name", "description", "position", "active")
    }
    if data.conditions is not None and "conditions" in given:
        changes["conditions"] = conditions_json(data.conditions)
    if data.actions is not None and "actions" in given:
        changes["actions"] = actions_json(data.actions)
    if data.rule_set_id is not None and data.rule_set_id != rule.rule_set_id:
        target = session.get(RoutingRuleSet, data.rule_set_id)
        if target is None or target.deleted_at is not None:
            raise ValidationFailed(
                "ruleSetId does not name a rule set of the organization",
                details={"field": "ruleSetId"},
            )
        changes["rule_set_id"] = target.id
        if "position" not in changes:
            changes["position"] = _next_position(
                session, RoutingRule.position, RoutingRule.rule_set_id == target.id
            )
    before = {key: getattr(rule, key) for key in changes}
    for key, value in changes.items():
        setattr(rule, key, value)
    flush_unique(session, message="The set has a rule with this name", field="name")
    diff = audit.field_changes(before, {key: getattr(rule, key) for key in changes})
    if diff:
        _record(
            session,
            caller,
            rule,
            "routing_rule.updated",
            f"{caller.email} changed {', '.join(sorted(diff))} of routing rule {rule.name}",
            details={"changes": _jsonable(diff)},
        )
    return rule


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, uuid.UUID | datetime):
        return str(value)
    return value


def delete_rule(session: Session, *, caller: Caller, rule: RoutingRule) -> None:
    soft_delete(rule)
    session.flush()
    _record(
        session,
        caller,
        rule,
        "routing_rule.deleted",
        f"{caller.email} deleted routing rule {rule.name}",
        severity=AuditSeverity.WARNING,
    )


def reorder_rules(session: Session, *, caller: Caller, data: RuleReorder) -> list[RoutingRule]:
    """Put the listed rules of one set first, in the order given; the set's other
    rules follow in their present order. Returns the set's rules in the new order."""
    ids = list(data.ids)
    if len(set(ids)) != len(ids):
        raise ValidationFailed("ids lists a rule twice", details={"field": "ids"})
    listed = {r.id: r for r in session.scalars(select(RoutingRule).where(RoutingRule.id.in_(ids)))}
    missing = [str(i) for i in ids if i not in listed]
    if missing:
        raise ValidationFailed(
            "ids names rules that do not exist", details={"field": "ids", "missing": missing}
        )
    set_ids = {r.rule_set_id for r in listed.values()}
    if len(set_ids) != 1:
        raise ValidationFailed("ids must all be rules of one rule set", details={"field": "ids"})
    set_id = set_ids.pop()
    rest = session.scalars(
        select(RoutingRule)
        .where(RoutingRule.rule_set_id == set_id, RoutingRule.id.not_in(ids))
        .order_by(RoutingRule.position, RoutingRule.id)
    ).all()
    ordered = [listed[i] for i in ids] + list(rest)
    for position, rule in enumerate(ordered):
        rule.position = position
    session.flush()
    rule_set = get_rule_set(session, set_id)
    _record(
        session,
        caller,
        rule_set,
        "routing_rule_set.reordered",
        f"{caller.email} reordered the rules of routing rule set {rule_set.name}",
        details={"order": [r.name for r in ordered]},
    )
    return ordered


# -------------------------------------------------------------------------- deciding


def facts_for(ticket: Any, requester_role: str | Role | None) -> TicketFacts:
    """What routing looks at on a ticket (a ``Ticket`` or a row with the same names)."""
    return TicketFacts(
        ticket_type=str(ticket.ticket_type),
        priority=str(ticket.priority),
        category=ticket.category,
        subcategory=ticket.subcategory,
        department_id=ticket.department_id,
        site_id=ticket.site_id,
        building_id=ticket.building_id,
        room_id=ticket.room_id,
        requester_role=_role_text(requester_role),
        title=ticket.title or "",
        description=ticket.description or "",
        assignee_id=ticket.assignee_id,
        team_id=ticket.team_id,
        tags=list(ticket.tags or []),
        watcher_ids=_uuids(ticket.watcher_ids or []),
    )


def _role_text(role: str | Role | None) -> str | None:
    if role is None:
        return None
    return role.value if isinstance(role, Role) else str(role)


def _uuids(values: Iterable[Any]) -> list[uuid.UUID]:
    out = []
    for value in values:
        try:
            out.append(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
        except ValueError:
            continue
    return out


def load_rule_sets(session: Session, *, active_only: bool = True) -> list[engine.RuleSet]:
    """The organization's rule sets with their rules, in two queries."""
    sets_stmt = select(RoutingRuleSet)
    rules_stmt = select(RoutingRule).join(
        RoutingRuleSet, RoutingRuleSet.id == RoutingRule.rule_set_id
    )
    if active_only:
        sets_stmt = sets_stmt.where(RoutingRuleSet.active.is_(True))
        rules_stmt = rules_stmt.where(RoutingRuleSet.active.is_(True), RoutingRule.active.is_(True))
    set_rows = session.scalars(sets_stmt).all()
    by_set: dict[uuid.UUID, list[engine.Rule]] = {s.id: [] for s in set_rows}
    for row in session.scalars(rules_stmt):
        rule = to_engine_rule(row)
        if rule is not None and row.rule_set_id in by_set:
            by_set[row.rule_set_id].append(rule)
    return [
        engine.RuleSet(
            id=s.id,
            name=s.name,
            mode=s.mode,
            rules=tuple(by_set[s.id]),
            position=s.position,
            active=s.active,
        )
        for s in set_rows
    ]


def to_engine_rule(row: RoutingRule) -> engine.Rule | None:
    try:
        c = RuleConditionsOut.model_validate(row.conditions or {})
        a = RuleActionsOut.model_validate(row.actions or {})
    except ValidationError:
        # Written by another version, or by hand: skip it rather than fail ticket creation.
        log.warning("routing rule %s has conditions or actions that do not parse", row.id)
        return None
    return engine.Rule(
        id=row.id,
        name=row.name,
        position=row.position,
        active=row.active,
        conditions=engine.Conditions(
            ticket_types=tuple(str(t.value) for t in c.ticket_types or ()),
            priorities=tuple(str(p.value) for p in c.priorities or ()),
            categories=tuple(c.categories or ()),
            subcategories=tuple(c.subcategories or ()),
            department_ids=tuple(c.department_ids or ()),
            site_ids=tuple(c.site_ids or ()),
            building_ids=tuple(c.building_ids or ()),
            room_ids=tuple(c.room_ids or ()),
            requester_roles=tuple(c.requester_roles or ()),
            keywords=tuple(c.keywords or ()),
            keywords_mode=c.keywords_mode,
        ),
        actions=engine.Actions(
            assign_user_id=a.assign_user_id,
            assign_team_id=a.assign_team_id,
            set_priority=str(a.set_priority.value) if a.set_priority else None,
            add_tags=tuple(a.add_tags or ()),
            add_watcher_ids=tuple(a.add_watcher_ids or ()),
        ),
    )


@dataclass
class Names:
    """Labels of the ids in rules and tickets, and which people and teams can still
    be given work (live, and for people active)."""

    labels: dict[uuid.UUID, str]
    assignable_users: set[uuid.UUID]
    active_users: set[uuid.UUID]
    teams: set[uuid.UUID]


def load_names(
    session: Session, rule_sets: Sequence[engine.RuleSet], facts: Sequence[TicketFacts]
) -> Names:
    """One query per kind of thing named (departments, sites, buildings, rooms, users,
    teams), only for kinds that appear: the count does not grow with rows."""
    places: dict[str, set[uuid.UUID]] = {k: set() for k in ("dept", "site", "bldg", "room")}
    users: set[uuid.UUID] = set()
    teams: set[uuid.UUID] = set()
    for rule_set in rule_sets:
        for rule in rule_set.rules:
            c, a = rule.conditions, rule.actions
            places["dept"].update(c.department_ids)
            places["site"].update(c.site_ids)
            places["bldg"].update(c.building_ids)
            places["room"].update(c.room_ids)
            if a.assign_user_id:
                users.add(a.assign_user_id)
            if a.assign_team_id:
                teams.add(a.assign_team_id)
            users.update(a.add_watcher_ids)
    for f in facts:
        for kind, value in (
            ("dept", f.department_id),
            ("site", f.site_id),
            ("bldg", f.building_id),
            ("room", f.room_id),
        ):
            if value is not None:
                places[kind].add(value)
        if f.assignee_id:
            users.add(f.assignee_id)
        if f.team_id:
            teams.add(f.team_id)
    names = Names(labels={}, assignable_users=set(), active_users=set(), teams=set())
    if places["dept"]:
        stmt = select(Department.id, Department.name).where(Department.id.in_(places["dept"]))
        names.labels.update({i: n for i, n in session.execute(stmt)})
    if places["site"]:
        stmt = select(Site.id, Site.name).where(Site.id.in_(places["site"]))
        names.labels.update({i: n for i, n in session.execute(stmt)})
    if places["bldg"]:
        bldg = (
            select(Building.id, Building.name, Site.name)
            .join(Site, Site.id == Building.site_id)
            .where(Building.id.in_(places["bldg"]))
        )
        for i, name, site in session.execute(bldg):
            names.labels[i] = f"{name} ({site})"
    if places["room"]:
        room = select(Room.id, Room.number, Room.name).where(Room.id.in_(places["room"]))
        for i, number, room_name in session.execute(room):
            names.labels[i] = (
                f"{number} ({room_name})" if room_name and room_name != number else number
            )
    if users:
        people = select(
            User.id, User.first_name, User.last_name, User.email, User.role, User.is_active
        ).where(User.id.in_(users))
        for i, first, last, email, role, is_active in session.execute(people):
            names.labels[i] = f"{first} {last}".strip() or email
            if is_active:
                names.active_users.add(i)
                if role in ASSIGNABLE_ROLES:
                    names.assignable_users.add(i)
    if teams:
        stmt = select(Team.id, Team.name).where(Team.id.in_(teams))
        for i, name in session.execute(stmt):
            names.labels[i] = name
            names.teams.add(i)
    return names


def _usable(rule_sets: Sequence[engine.RuleSet], names: Names) -> list[engine.RuleSet]:
    """Drop actions that name people or teams who can no longer take work (deleted,
    deactivated, or no longer staff since the rule was saved)."""
    out = []
    for rule_set in rule_sets:
        rules = []
        for rule in rule_set.rules:
            a = rule.actions
            actions = engine.Actions(
                assign_user_id=a.assign_user_id
                if a.assign_user_id in names.assignable_users
                else None,
                assign_team_id=a.assign_team_id if a.assign_team_id in names.teams else None,
                set_priority=a.set_priority,
                add_tags=a.add_tags,
                add_watcher_ids=tuple(w for w in a.add_watcher_ids if w in names.active_users),
            )
            rules.append(
                engine.Rule(
                    id=rule.id,
                    name=rule.name,
                    conditions=rule.conditions,
                    actions=actions,
                    position=rule.position,
                    active=rule.active,
                )
            )
        out.append(
            engine.RuleSet(
                id=rule_set.id,
                name=rule_set.name,
                mode=rule_set.mode,
                rules=tuple(rules),
                position=rule_set.position,
                active=rule_set.active,
            )
        )
    return out


def decide(session: Session, facts: TicketFacts) -> RoutingDecision:
    """What the organization's active rules do to a ticket with ``facts``.

    Reads only; the caller applies the decision (and records it on the timeline)."""
    return explain(session, facts)[0]


def explain(session: Session, facts: TicketFacts) -> tuple[RoutingDecision, Names]:
    rule_sets = load_rule_sets(session)
    names = load_names(session, rule_sets, [facts])
    decision = engine.evaluate(_usable(rule_sets, names), facts, names=names.labels)
    return decision, names


def apply_decision(ticket: Ticket, decision: RoutingDecision) -> dict[str, dict[str, Any]]:
    """Set the decided values on ``ticket``; returns what changed ({field: {from, to}}).

    A convenience for ticket creation: history and notifications stay the caller's."""
    changes = decision.changes(facts_for(ticket, None))
    ticket.assignee_id = decision.assignee_id
    ticket.team_id = decision.team_id
    ticket.priority = decision.priority
    ticket.tags = list(decision.tags)
    ticket.watcher_ids = [str(w) for w in decision.watcher_ids]
    return changes


# ------------------------------------------------------------------------- dry runs


def facts_from_sample(session: Session, sample: TicketSample) -> TicketFacts:
    """The facts of a sample ticket; a room fills in its building and site, a requester
    their role."""
    building_id, site_id = sample.building_id, sample.site_id
    if sample.room_id is not None and (building_id is None or site_id is None):
        row = session.execute(
            select(Room.building_id, Building.site_id)
            .join(Building, Building.id == Room.building_id)
            .where(Room.id == sample.room_id)
        ).first()
        if row is not None:
            building_id = building_id or row[0]
            site_id = site_id or row[1]
    if building_id is not None and site_id is None:
        site_id = session.scalar(select(Building.site_id).where(Building.id == building_id))
    role: str | None = sample.requester_role
    if role is None and sample.requester_id is not None:
        found = session.scalar(select(User.role).where(User.id == sample.requester_id))
        role = str(found.value) if found is not None else None
    return TicketFacts(
        ticket_type=str(sample.ticket_type.value),
        priority=str(sample.priority.value),
        category=sample.category or None,
        subcategory=sample.subcategory or None,
        department_id=sample.department_id,
        site_id=site_id,
        building_id=building_id,
        room_id=sample.room_id,
        requester_role=role,
        title=sample.title,
        description=sample.description,
        assignee_id=sample.assignee_id,
        team_id=sample.team_id,
        tags=list(sample.tags or []),
        watcher_ids=list(sample.watcher_ids or []),
    )


@dataclass
class DryRun:
    facts: TicketFacts
    decision: RoutingDecision
    names: Names


def dry_run(session: Session, sample: TicketSample) -> DryRun:
    """What the active rules would do to ``sample``. Writes nothing."""
    facts = facts_from_sample(session, sample)
    decision, names = explain(session, facts)
    return DryRun(facts=facts, decision=decision, names=names)


@dataclass
class Replayed:
    ticket_id: uuid.UUID
    number: str
    title: str
    created_at: datetime
    facts: TicketFacts
    decision: RoutingDecision

    @property
    def changes(self) -> dict[str, dict[str, Any]]:
        return self.decision.changes(self.facts)


REPLAY_COLUMNS = (
    Ticket.id,
    Ticket.number,
    Ticket.created_at,
    Ticket.ticket_type,
    Ticket.priority,
    Ticket.category,
    Ticket.subcategory,
    Ticket.department_id,
    Ticket.site_id,
    Ticket.building_id,
    Ticket.room_id,
    Ticket.title,
    Ticket.description,
    Ticket.assignee_id,
    Ticket.team_id,
    Ticket.tags,
    Ticket.watcher_ids,
)


def replay(session: Session, last_n: int) -> tuple[list[Replayed], Names]:
    """What the active rules would set on each of the organization's last ``last_n``
    tickets (newest first), compared with what each has now. Writes nothing; a fixed
    number of queries whatever ``last_n``."""
    stmt = (
        select(*REPLAY_COLUMNS, User.role)
        .outerjoin(User, User.id == Ticket.requester_id)
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .limit(last_n)
    )
    rows = session.execute(stmt).all()
    facts = [facts_for(row, row.role.value if row.role is not None else None) for row in rows]
    rule_sets = load_rule_sets(session)
    names = load_names(session, rule_sets, facts)
    usable = _usable(rule_sets, names)
    out = [
        Replayed(
            ticket_id=row.id,
            number=row.number,
            title=row.title,
            created_at=row.created_at,
            facts=f,
            decision=engine.evaluate(usable, f, names=names.labels),
        )
        for row, f in zip(rows, facts, strict=True)
    ]
    return out, names
