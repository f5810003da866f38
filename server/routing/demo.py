"""Demo teams and routing rules for the demo district (see ``server.seed``).

``seed_demo(session, organization)`` adds them when missing (so it can run on every
start); the session may be bound to the organization or to all tenants.

Teams
  North campus technicians   Maplewood High School, Oak Street Elementary
  South campus technicians   Lincoln Middle School, District Office
  Network & infrastructure
  Help desk

Rules (set "Assignment", first match): category Network -> network team; each
campus's sites -> its team; anything else -> help desk. Set "Tags and watchers"
(apply all): projector / panel / display -> tag "av"; critical tickets -> the help
desk lead and the director of technology watch them.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.enums import Role
from server.organizations.models import Organization
from server.routing.defaults import (
    CATCH_ALL,
    HELP_DESK,
    HELP_DESK_DESCRIPTION,
    add_rule,
    add_rule_set,
)
from server.routing.models import RoutingRuleSet
from server.sites.models import Site
from server.teams.models import Team, TeamMember
from server.users.models import User

NORTH = "North campus technicians"
SOUTH = "South campus technicians"
NETWORK = "Network & infrastructure"

NORTH_SITES = ("Maplewood High School", "Oak Street Elementary")
SOUTH_SITES = ("Lincoln Middle School", "District Office")

#: team -> (description, members by the local part of their demo email)
TEAMS: dict[str, tuple[str, tuple[str, ...]]] = {
    NORTH: ("Field technicians for " + " and ".join(NORTH_SITES), ("tech",)),
    SOUTH: ("Field technicians for " + " and ".join(SOUTH_SITES), ("tech2",)),
    NETWORK: ("Switches, Wi-Fi, firewalls and the server room", ("tech", "admin")),
    HELP_DESK: (HELP_DESK_DESCRIPTION, ("agent", "admin")),
}
STAFF = (Role.ORG_ADMIN, Role.AGENT, Role.TECHNICIAN)


def seed_demo(session: Session, organization: Organization) -> dict[str, Team]:
    """Teams and routing rules of the demo district; returns the teams by name."""
    org_id = organization.id
    people = {
        user.email.split("@", 1)[0]: user
        for user in session.scalars(select(User).where(User.organization_id == org_id))
    }
    sites = {
        site.name: site.id
        for site in session.scalars(select(Site).where(Site.organization_id == org_id))
    }
    teams = _teams(session, org_id, people)
    if session.scalar(
        select(RoutingRuleSet.id).where(RoutingRuleSet.organization_id == org_id).limit(1)
    ):
        return teams  # the district has rules already: leave them as they are
    assignment = add_rule_set(session, org_id, "Assignment", "first_match", 0)
    add_rule(
        session,
        assignment,
        "Network problems",
        0,
        "Anything filed under Network goes to the network team, wherever it is",
        {"categories": ["Network"]},
        {"assignTeamId": teams[NETWORK].id},
    )
    add_rule(
        session,
        assignment,
        "North campus",
        1,
        None,
        {"siteIds": [sites[name] for name in NORTH_SITES if name in sites]},
        {"assignTeamId": teams[NORTH].id},
    )
    add_rule(
        session,
        assignment,
        "South campus",
        2,
        None,
        {"siteIds": [sites[name] for name in SOUTH_SITES if name in sites]},
        {"assignTeamId": teams[SOUTH].id},
    )
    add_rule(
        session,
        assignment,
        CATCH_ALL,
        3,
        "Tickets without a campus go to the help desk for triage",
        {},
        {"assignTeamId": teams[HELP_DESK].id},
    )
    extras = add_rule_set(session, org_id, "Tags and watchers", "apply_all", 1)
    add_rule(
        session,
        extras,
        "AV equipment",
        0,
        "Projectors and interactive panels",
        {"keywords": ["projector", "panel", "display"]},
        {"addTags": ["av"]},
    )
    watchers = [people[local].id for local in ("agent", "admin") if local in people]
    if watchers:
        add_rule(
            session,
            extras,
            "Critical tickets",
            1,
            "The help desk lead and the director of technology watch every critical ticket",
            {"priorities": ["critical"]},
            {"addWatcherIds": watchers},
        )
    session.flush()
    return teams


def _teams(session: Session, org_id: uuid.UUID, people: dict[str, User]) -> dict[str, Team]:
    existing = {
        team.name: team
        for team in session.scalars(select(Team).where(Team.organization_id == org_id))
    }
    for name, (description, members) in TEAMS.items():
        if name in existing:
            continue
        team = Team(organization_id=org_id, name=name, description=description)
        session.add(team)
        session.flush()
        for local in members:
            user = people.get(local)
            if user is not None and user.role in STAFF:
                session.add(TeamMember(organization_id=org_id, team_id=team.id, user_id=user.id))
        if "agent" in people and name == HELP_DESK:
            team.lead_id = people["agent"].id
        existing[name] = team
    session.flush()
    return existing
