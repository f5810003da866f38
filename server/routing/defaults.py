"""What a new district's routing starts with: a "Help desk" team and one rule set,
"Assignment", whose single rule sends every ticket to it. Admins add members to the
team and put their own rules (by category, site, keyword) before that last rule.

An organization gets them when it is created (``server.organizations.provisioning``);
the demo district builds its richer set with the same helpers (``server.routing.demo``).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.organizations.models import Organization
from server.routing.models import RoutingRule, RoutingRuleSet
from server.routing.schemas import RuleActions, RuleConditions
from server.routing.service import actions_json, conditions_json
from server.teams.models import Team

HELP_DESK = "Help desk"
HELP_DESK_DESCRIPTION = "First line: triage, accounts, how-to questions"
CATCH_ALL = "Everything else"


def install_defaults(session: Session, organization: Organization) -> Team:
    """The help desk team and, when the organization has no routing rules yet, the
    rule that sends every ticket no earlier rule matched to it. Returns the team."""
    org_id = organization.id
    team = session.scalar(
        select(Team).where(Team.organization_id == org_id, Team.name == HELP_DESK)
    )
    if team is None:
        team = Team(organization_id=org_id, name=HELP_DESK, description=HELP_DESK_DESCRIPTION)
        session.add(team)
        session.flush()
    if session.scalar(
        select(RoutingRuleSet.id).where(RoutingRuleSet.organization_id == org_id).limit(1)
    ):
        return team  # the district has rules already: leave them as they are
    assignment = add_rule_set(session, org_id, "Assignment", "first_match", 0)
    add_rule(
        session,
        assignment,
        CATCH_ALL,
        0,
        "Tickets no other rule matched go to the help desk for triage",
        {},
        {"assignTeamId": team.id},
    )
    session.flush()
    return team


def add_rule_set(
    session: Session, org_id: uuid.UUID, name: str, mode: str, position: int
) -> RoutingRuleSet:
    rule_set = RoutingRuleSet(organization_id=org_id, name=name, mode=mode, position=position)
    session.add(rule_set)
    session.flush()
    return rule_set


def add_rule(
    session: Session,
    rule_set: RoutingRuleSet,
    name: str,
    position: int,
    description: str | None,
    conditions: dict[str, Any],
    actions: dict[str, Any],
) -> None:
    """A rule, its conditions and actions validated as the API validates them."""
    session.add(
        RoutingRule(
            organization_id=rule_set.organization_id,
            rule_set_id=rule_set.id,
            name=name,
            description=description,
            position=position,
            conditions=conditions_json(RuleConditions.model_validate(conditions)),
            actions=actions_json(RuleActions.model_validate(actions)),
        )
    )
