"""Routing rules: the pure engine (every condition, first-match and apply-all sets,
keyword edge cases), the API an admin sets them up with, and dry runs and replays
that explain what the rules would do without changing anything."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

from common.enums import Role
from server.core.db import utcnow
from server.core.engine import Database
from server.routing import engine, service
from server.routing.engine import (
    Actions,
    Conditions,
    Rule,
    RuleSet,
    TicketFacts,
    evaluate,
    find_keyword,
)
from server.tickets.models import Ticket
from tests.conftest import Account, Tenant, World, assert_error
from tests.test_bad_input import fingerprint, fingerprint_diff
from tests.test_query_counts import count_statements

# ------------------------------------------------------------------------ the engine

LINCOLN, OAK = uuid.uuid4(), uuid.uuid4()
MAIN, ANNEX = uuid.uuid4(), uuid.uuid4()
ROOM_204, ROOM_101 = uuid.uuid4(), uuid.uuid4()
TECH_DEPT, FACILITIES = uuid.uuid4(), uuid.uuid4()
SOUTH_TEAM, NETWORK_TEAM, AV_TEAM = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
PRIYA, MARCUS = uuid.uuid4(), uuid.uuid4()
NAMES = {
    LINCOLN: "Lincoln Middle School",
    OAK: "Oak Street Elementary",
    MAIN: "Main Building",
    ANNEX: "Annex",
    ROOM_204: "204",
    ROOM_101: "101",
    TECH_DEPT: "Technology",
    FACILITIES: "Facilities",
    SOUTH_TEAM: "South campus technicians",
    NETWORK_TEAM: "Network & infrastructure",
    PRIYA: "Priya Raman",
    MARCUS: "Marcus Lee",
}


def facts(**kw: Any) -> TicketFacts:
    base: dict[str, Any] = {
        "ticket_type": "incident",
        "priority": "medium",
        "category": "Hardware",
        "subcategory": "Projector",
        "department_id": TECH_DEPT,
        "site_id": LINCOLN,
        "building_id": MAIN,
        "room_id": ROOM_204,
        "requester_role": "requester",
        "title": "Projector in room 204 shows no picture",
        "description": "The lamp light is on but the screen stays blue.",
    }
    return TicketFacts(**{**base, **kw})


def rule(name: str, *, position: int = 0, active: bool = True, **kw: Any) -> Rule:
    conditions = {k: v for k, v in kw.items() if k in Conditions.__dataclass_fields__}
    actions = {k: v for k, v in kw.items() if k in Actions.__dataclass_fields__}
    assert len(conditions) + len(actions) == len(kw), kw
    return Rule(
        id=uuid.uuid4(),
        name=name,
        conditions=Conditions(**conditions),
        actions=Actions(**actions) if actions else Actions(add_tags=("routed",)),
        position=position,
        active=active,
    )


def one_set(*rules: Rule, mode: str = engine.FIRST_MATCH, name: str = "Main") -> RuleSet:
    return RuleSet(id=uuid.uuid4(), name=name, mode=mode, rules=tuple(rules))


# (condition, a value that holds for facts(), a value that does not, the reason when it
# holds, the reason when it does not)
CONDITION_CASES = [
    (
        "ticket_types",
        ("incident",),
        ("service_request", "change"),
        "ticket type is incident",
        "ticket type is incident, not service request or change",
    ),
    (
        "priorities",
        ("medium", "high"),
        ("critical",),
        "priority is medium",
        "priority is medium, not critical",
    ),
    (
        "categories",
        ("hardware",),  # case does not matter
        ("Network",),
        "category is Hardware",
        "category is Hardware, not Network",
    ),
    (
        "subcategories",
        ("Projector ",),
        ("Wi-Fi", "Switch"),
        "subcategory is Projector",
        "subcategory is Projector, not Wi-Fi or Switch",
    ),
    (
        "department_ids",
        (TECH_DEPT,),
        (FACILITIES,),
        "department is Technology",
        "department is Technology, not Facilities",
    ),
    (
        "site_ids",
        (OAK, LINCOLN),
        (OAK,),
        "site is Lincoln Middle School",
        "site is Lincoln Middle School, not Oak Street Elementary",
    ),
    (
        "building_ids",
        (MAIN,),
        (ANNEX,),
        "building is Main Building",
        "building is Main Building, not Annex",
    ),
    ("room_ids", (ROOM_204,), (ROOM_101,), "room is 204", "room is 204, not 101"),
    (
        "requester_roles",
        ("requester", "agent"),
        ("technician",),
        "the requester is a requester",
        "the requester is a requester, not a technician",
    ),
    (
        "keywords",
        ("projector", "display"),
        ("printer", "toner"),
        "title contains 'projector'",
        "neither title nor description contains 'printer' or 'toner'",
    ),
]


@pytest.mark.parametrize(
    ("field", "holds", "fails", "why", "why_not"),
    CONDITION_CASES,
    ids=[c[0] for c in CONDITION_CASES],
)
def test_each_condition_kind_matches_and_explains(
    field: str, holds: tuple[Any, ...], fails: tuple[Any, ...], why: str, why_not: str
) -> None:
    good = rule("good", **{field: holds}, assign_team_id=SOUTH_TEAM)
    bad = rule("bad", **{field: fails}, assign_team_id=NETWORK_TEAM)
    decision = evaluate([one_set(bad, good, mode=engine.APPLY_ALL)], facts(), names=NAMES)
    assert [m.rule_name for m in decision.matches] == ["good"]
    assert decision.matches[0].reasons == [why]
    assert decision.team_id == SOUTH_TEAM
    assert [(m.rule_name, m.reasons) for m in decision.considered] == [("bad", [why_not])]


def test_a_missing_fact_fails_the_condition_with_a_reason() -> None:
    ticket = facts(site_id=None, category=None, requester_role=None)
    decision = evaluate(
        [
            one_set(
                rule("site", site_ids=(LINCOLN,)),
                rule("category", categories=("Network",)),
                rule("role", requester_roles=("technician",)),
                mode=engine.APPLY_ALL,
            )
        ],
        ticket,
        names=NAMES,
    )
    assert not decision.matches
    reasons = {m.rule_name: m.reasons for m in decision.considered}
    assert reasons == {
        "site": ["no site given (the rule needs Lincoln Middle School)"],
        "category": ["no category given (the rule needs Network)"],
        "role": ["the requester's role is not known (the rule needs a technician)"],
    }


def test_every_condition_must_hold_and_all_are_explained() -> None:
    both = rule("both", site_ids=(LINCOLN,), keywords=("projector",), assign_user_id=PRIYA)
    decision = evaluate([one_set(both)], facts(), names=NAMES)
    assert decision.assignee_id == PRIYA
    assert decision.matches[0].reasons == [
        "site is Lincoln Middle School",
        "title contains 'projector'",
    ]
    assert decision.matches[0].effects == ["assigns to Priya Raman"]
    assert decision.explanation == (
        "Rule 'both' (set 'Main') matched because site is Lincoln Middle School and title "
        "contains 'projector': assigns to Priya Raman."
    )
    elsewhere = evaluate([one_set(both)], facts(site_id=OAK, title="Printer jam"), names=NAMES)
    assert not elsewhere.matches
    assert elsewhere.assignee_id is None
    assert elsewhere.considered[0].reasons == [
        "site is Oak Street Elementary, not Lincoln Middle School",
        "neither title nor description contains 'projector'",
    ]
    assert elsewhere.explanation == "No routing rule matched."


def test_a_rule_without_conditions_matches_every_ticket() -> None:
    decision = evaluate([one_set(rule("catch-all", assign_team_id=SOUTH_TEAM))], facts())
    assert decision.team_id == SOUTH_TEAM
    assert decision.matches[0].reasons == ["the rule has no conditions, so it matches every ticket"]
    # without names, ids are shown as they are
    assert decision.matches[0].effects == [f"assigns to team {SOUTH_TEAM}"]


def test_first_match_set_stops_at_the_first_matching_rule() -> None:
    first = rule("lincoln", position=1, site_ids=(LINCOLN,), assign_team_id=SOUTH_TEAM)
    second = rule("projectors", position=2, keywords=("projector",), assign_team_id=AV_TEAM)
    earlier = rule("network", position=0, categories=("Network",), assign_team_id=NETWORK_TEAM)
    decision = evaluate([one_set(second, first, earlier)], facts(), names=NAMES)
    assert decision.team_id == SOUTH_TEAM
    assert [m.rule_name for m in decision.matches] == ["lincoln"]
    assert [(m.rule_name, m.reasons) for m in decision.considered] == [
        ("network", ["category is Hardware, not Network"]),
        ("projectors", ["not evaluated: rule 'lincoln' matched first in this set"]),
    ]


def test_apply_all_set_applies_every_match_in_order() -> None:
    rules = (
        rule("to south", position=0, site_ids=(LINCOLN,), assign_team_id=SOUTH_TEAM),
        rule("av tag", position=1, keywords=("projector",), add_tags=("av", "hardware")),
        rule(
            "av team",
            position=2,
            keywords=("projector",),
            assign_team_id=AV_TEAM,
            add_tags=("AV", "classroom"),
            add_watcher_ids=(MARCUS,),
        ),
        rule("printers", position=3, keywords=("printer",), assign_user_id=PRIYA),
    )
    start = facts(tags=["urgent"], watcher_ids=[PRIYA, MARCUS])
    decision = evaluate([one_set(*rules, mode=engine.APPLY_ALL)], start, names=NAMES)
    assert [m.rule_name for m in decision.matches] == ["to south", "av tag", "av team"]
    assert decision.team_id == AV_TEAM, "a later assignment overrides an earlier one"
    assert decision.tags == ["urgent", "av", "hardware", "classroom"], "tags add up, no repeats"
    assert decision.watcher_ids == [PRIYA, MARCUS], "watchers add up, no repeats"
    assert decision.assignee_id is None
    assert decision.changes(start) == {
        "teamId": {"from": None, "to": str(AV_TEAM)},
        "tags": {"from": ["urgent"], "to": ["urgent", "av", "hardware", "classroom"]},
    }


def test_rule_sets_run_in_position_order_and_later_rules_see_the_new_priority() -> None:
    escalate = RuleSet(
        id=uuid.uuid4(),
        name="Escalation",
        position=1,
        rules=(rule("server room", keywords=("server",), set_priority="critical"),),
    )
    watchers = RuleSet(
        id=uuid.uuid4(),
        name="Watchers",
        position=2,
        rules=(rule("critical", priorities=("critical",), add_watcher_ids=(MARCUS,)),),
    )
    decision = evaluate(
        [watchers, escalate], facts(title="Server is down", description=""), names=NAMES
    )
    assert [(m.rule_set, m.rule_name) for m in decision.matches] == [
        ("Escalation", "server room"),
        ("Watchers", "critical"),
    ]
    assert decision.priority == "critical"
    assert decision.watcher_ids == [MARCUS]
    assert decision.matches[1].reasons == ["priority is critical"]
    assert decision.matches[1].effects == ["adds watcher Marcus Lee"]


def test_switched_off_rules_and_sets_do_nothing_but_say_so() -> None:
    off_rule = rule("off", active=False, assign_team_id=SOUTH_TEAM)
    off_set = RuleSet(
        id=uuid.uuid4(),
        name="Paused",
        active=False,
        rules=(rule("in paused set", assign_team_id=NETWORK_TEAM),),
    )
    decision = evaluate([one_set(off_rule), off_set], facts())
    assert not decision.matches
    assert decision.team_id is None
    assert {m.rule_name: m.reasons for m in decision.considered} == {
        "off": ["the rule is switched off"],
        "in paused set": ["its rule set 'Paused' is switched off"],
    }


@pytest.mark.parametrize(
    ("keyword", "title", "description", "where"),
    [
        ("projector", "Projector broken", "", "title"),  # case-insensitive
        ("PROJECTOR", "the projector.", "", "title"),  # punctuation ends a word
        ("projector", "Projectors broken", "", None),  # whole words only
        ("projector", "projectorless room", "", None),
        ("projector", "", "the (projector) fell", "description"),
        ("projector", "Broken", "Projector in 204", "description"),
        ("smart board", "Smart\n  Board frozen", "", "title"),  # phrases, any whitespace
        ("smart board", "smartboard frozen", "", None),
        ("wi-fi", "No Wi-Fi in the gym", "", "title"),  # punctuation inside a keyword
        ("wi-fi", "No wifi in the gym", "", None),
        ("c++", "C++ compiler missing", "", "title"),
        ("a.b", "axb", "", None),  # not a regular expression
        ("café", "Le CAFÉ est fermé", "", "title"),  # beyond ASCII
        ("  ", "anything", "", None),  # blank never matches
        ("panel", "", "", None),
    ],
)
def test_keyword_edge_cases(keyword: str, title: str, description: str, where: str | None) -> None:
    assert find_keyword(keyword, title, description) == where


def test_keywords_any_or_all() -> None:
    ticket = facts(title="Projector and speakers", description="The HDMI panel is loose")
    any_rule = rule("any", keywords=("display", "panel"))
    all_rule = rule("all", keywords=("projector", "panel"), keywords_mode="all")
    all_missing = rule("all missing", keywords=("projector", "bulb", "fan"), keywords_mode="all")
    decision = evaluate([one_set(any_rule, all_rule, all_missing, mode=engine.APPLY_ALL)], ticket)
    assert {m.rule_name: m.reasons for m in decision.matches} == {
        "any": ["description contains 'panel'"],
        "all": ["title contains 'projector'", "description contains 'panel'"],
    }
    assert decision.considered[0].reasons == [
        "neither title nor description contains 'bulb' or 'fan'"
    ]


# ------------------------------------------------------------------------ the district


@dataclass
class District:
    tenant: Tenant
    admin: dict[str, str]
    agent: Account
    tech: Account
    tech2: Account
    teacher: Account
    sites: dict[str, dict[str, Any]]
    rooms: dict[str, dict[str, Any]]
    department: dict[str, Any]
    teams: dict[str, dict[str, Any]]


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()["data"] if response.content else None


def _district(world: World, client: httpx.Client, slug: str = "maple") -> District:
    tenant = world.org(slug)
    admin = tenant.admin.headers
    agent = world.user(tenant.id, Role.AGENT, first_name="Marcus", last_name="Lee")
    tech = world.user(tenant.id, Role.TECHNICIAN, first_name="Priya", last_name="Raman")
    tech2 = world.user(tenant.id, Role.TECHNICIAN, first_name="Jorge", last_name="Alvarez")
    teacher = world.user(tenant.id, Role.REQUESTER, first_name="Emily", last_name="Carter")
    sites: dict[str, dict[str, Any]] = {}
    rooms: dict[str, dict[str, Any]] = {}
    for name in ("Lincoln Middle School", "Oak Street Elementary"):
        site = _ok(client.post("/api/sites", json={"name": name}, headers=admin), 201)
        sites[name] = site
        building = _ok(
            client.post(f"/api/sites/{site['id']}/buildings", json={"name": "Main"}, headers=admin),
            201,
        )
        room = _ok(
            client.post(
                f"/api/buildings/{building['id']}/rooms", json={"number": "204"}, headers=admin
            ),
            201,
        )
        rooms[name] = room
    department = _ok(
        client.post("/api/departments", json={"name": "Technology"}, headers=admin), 201
    )
    teams = {}
    for name, members in (
        ("South campus technicians", [tech.id]),
        ("Network & infrastructure", [tech2.id]),
    ):
        teams[name] = _ok(
            client.post(
                "/api/teams",
                json={"name": name, "memberIds": [str(m) for m in members]},
                headers=admin,
            ),
            201,
        )
    return District(tenant, admin, agent, tech, tech2, teacher, sites, rooms, department, teams)


def _rule(client: httpx.Client, d: District, body: dict[str, Any]) -> dict[str, Any]:
    return _ok(client.post("/api/routing-rules", json=body, headers=d.admin), 201)


def _standard_rules(client: httpx.Client, d: District) -> dict[str, dict[str, Any]]:
    _ok(
        client.post(
            "/api/routing-rule-sets",
            json={"name": "Campus", "mode": "first_match", "position": 0},
            headers=d.admin,
        ),
        201,
    )
    _ok(
        client.post(
            "/api/routing-rule-sets",
            json={"name": "Tags and watchers", "mode": "apply_all", "position": 1},
            headers=d.admin,
        ),
        201,
    )
    lincoln, oak = d.sites["Lincoln Middle School"], d.sites["Oak Street Elementary"]
    made = {
        "network": _rule(
            client,
            d,
            {
                "name": "Network problems",
                "ruleSet": "Campus",
                "conditions": {"categories": ["Network"]},
                "actions": {"assignTeamId": d.teams["Network & infrastructure"]["id"]},
            },
        ),
        "lincoln": _rule(
            client,
            d,
            {
                "name": "Lincoln",
                "ruleSet": "Campus",
                "conditions": {"siteIds": [lincoln["id"]]},
                "actions": {"assignTeamId": d.teams["South campus technicians"]["id"]},
            },
        ),
        "oak": _rule(
            client,
            d,
            {
                "name": "Oak Street",
                "ruleSet": "Campus",
                "conditions": {"siteIds": [oak["id"]]},
                "actions": {"assignUserId": str(d.tech2.id)},
            },
        ),
        "av": _rule(
            client,
            d,
            {
                "name": "AV equipment",
                "ruleSet": "Tags and watchers",
                "conditions": {"keywords": ["projector", "panel", "display"]},
                "actions": {"addTags": ["av"]},
            },
        ),
        "critical": _rule(
            client,
            d,
            {
                "name": "Critical watchers",
                "ruleSet": "Tags and watchers",
                "conditions": {"priorities": ["critical"]},
                "actions": {"addWatcherIds": [str(d.agent.id)]},
            },
        ),
    }
    return made


# ------------------------------------------------------------------------------ API


def test_admin_sets_up_rules_and_an_agent_tries_them_on_a_sample(
    world: World, client: httpx.Client
) -> None:
    d = _district(world, client)
    made = _standard_rules(client, d)
    assert made["lincoln"]["ruleSet"]["name"] == "Campus"
    assert made["lincoln"]["conditions"] == {
        **{k: None for k in made["lincoln"]["conditions"]},
        "siteIds": [d.sites["Lincoln Middle School"]["id"]],
        "keywordsMode": "any",
    }
    listed = _ok(client.get("/api/routing-rules", headers=d.agent.headers))
    assert [(r["ruleSet"]["name"], r["name"]) for r in listed] == [
        ("Campus", "Network problems"),
        ("Campus", "Lincoln"),
        ("Campus", "Oak Street"),
        ("Tags and watchers", "AV equipment"),
        ("Tags and watchers", "Critical watchers"),
    ]
    sets = _ok(client.get("/api/routing-rule-sets", headers=d.agent.headers))
    assert [(s["name"], s["mode"], s["ruleCount"]) for s in sets] == [
        ("Campus", "first_match", 3),
        ("Tags and watchers", "apply_all", 2),
    ]

    sample = {
        "title": "Projector in room 204 is dead",
        "description": "No picture at all",
        "priority": "critical",
        "roomId": d.rooms["Lincoln Middle School"]["id"],  # fills in building and site
        "requesterRole": "requester",
    }
    result = _ok(
        client.post("/api/routing-rules/test", json={"ticket": sample}, headers=d.agent.headers)
    )
    decision = result["decision"]
    assert result["mode"] == "sample"
    assert decision["teamId"] == d.teams["South campus technicians"]["id"]
    assert decision["teamName"] == "South campus technicians"
    assert decision["tags"] == ["av"]
    assert decision["watcherIds"] == [str(d.agent.id)]
    assert [(m["ruleName"], m["reasons"]) for m in decision["matches"]] == [
        ("Lincoln", ["site is Lincoln Middle School"]),
        ("AV equipment", ["title contains 'projector'"]),
        ("Critical watchers", ["priority is critical"]),
    ]
    assert decision["matches"][0]["effects"] == ["assigns to team South campus technicians"]
    not_matched = {m["ruleName"]: m["reasons"] for m in decision["notMatched"]}
    assert not_matched == {
        "Network problems": ["no category given (the rule needs Network)"],
        "Oak Street": ["not evaluated: rule 'Lincoln' matched first in this set"],
    }
    assert {c["field"]: c["to"] for c in decision["changes"]} == {
        "teamId": d.teams["South campus technicians"]["id"],
        "tags": ["av"],
        "watcherIds": [str(d.agent.id)],
    }
    assert (
        "Rule 'Lincoln' (set 'Campus') matched because site is Lincoln" in (decision["explanation"])
    )

    # Category Network at Oak Street: the network rule comes first in its set.
    oak = _ok(
        client.post(
            "/api/routing-rules/test",
            json={
                "ticket": {
                    "title": "Switch down",
                    "category": "network",
                    "siteId": d.sites["Oak Street Elementary"]["id"],
                }
            },
            headers=d.agent.headers,
        )
    )["decision"]
    assert oak["teamName"] == "Network & infrastructure"
    assert oak["assigneeId"] is None
    assert oak["tags"] == []

    # who may do what
    for who in (d.tech, d.teacher):
        assert_error(client.get("/api/routing-rules", headers=who.headers), 403)
        assert_error(
            client.post("/api/routing-rules/test", json={"ticket": sample}, headers=who.headers),
            403,
        )
    assert_error(
        client.post(
            "/api/routing-rules",
            json={"name": "mine", "actions": {"addTags": ["x"]}},
            headers=d.agent.headers,
        ),
        403,
        "PERMISSION_DENIED",
    )
    assert_error(
        client.delete(f"/api/routing-rules/{made['av']['id']}", headers=d.agent.headers), 403
    )


def test_rules_refuse_what_does_not_exist_in_the_organization(
    world: World, client: httpx.Client, db: Database
) -> None:
    d = _district(world, client)
    other = _district(world, client, "other")
    foreign_site = other.sites["Lincoln Middle School"]["id"]
    cases = [
        ({"conditions": {"siteIds": [foreign_site]}}, "conditions.siteIds"),
        ({"conditions": {"roomIds": [str(uuid.uuid4())]}}, "conditions.roomIds"),
        ({"conditions": {"departmentIds": [other.department["id"]]}}, "conditions.departmentIds"),
        ({"actions": {"assignUserId": str(d.teacher.id)}}, "actions.assignUserId"),
        ({"actions": {"assignUserId": str(other.tech.id)}}, "actions.assignUserId"),
        (
            {"actions": {"assignTeamId": other.teams["South campus technicians"]["id"]}},
            "actions.assignTeamId",
        ),
        ({"actions": {"addWatcherIds": [str(other.agent.id)]}}, "actions.addWatcherIds"),
        ({"actions": {}}, "actions"),
        ({"actions": {"addTags": []}}, "actions"),
        ({"actions": {"setPriority": "urgent"}}, "actions.setPriority"),
        ({"conditions": {"ticketTypes": ["ticket"]}}, "conditions.ticketTypes"),
        ({"conditions": {"keywordsMode": "some"}}, "conditions.keywordsMode"),
        ({"conditions": {"keywords": ["  "]}}, "conditions.keywords"),
        ({"conditions": {"requesterRoles": ["super_admin"]}}, "conditions.requesterRoles"),
        ({"conditions": {"siteId": foreign_site}}, "conditions.siteId"),
        ({"ruleSetId": str(uuid.uuid4())}, "ruleSetId"),
    ]
    before = fingerprint(db)
    for change, field in cases:
        body = {"name": "Bad", "actions": {"addTags": ["x"]}, **change}
        error = assert_error(
            client.post("/api/routing-rules", json=body, headers=d.admin), 422, "VALIDATION_ERROR"
        )
        fields = (
            [e["field"] for e in error["details"]]
            if isinstance(error["details"], list)
            else [error["details"]["field"]]
        )
        assert any(f == field or f.startswith(field + ".") for f in fields), (change, error)
    assert fingerprint_diff(before, fingerprint(db)) == {}
    missing = assert_error(
        client.post(
            "/api/routing-rules",
            json={
                "name": "Bad",
                "conditions": {"siteIds": [d.sites["Lincoln Middle School"]["id"], foreign_site]},
                "actions": {"addTags": ["x"]},
            },
            headers=d.admin,
        ),
        422,
    )
    assert missing["details"]["missing"] == [foreign_site]
    assert_error(
        client.post(
            "/api/routing-rules/test", json={"ticket": {}, "replayLast": 5}, headers=d.admin
        ),
        422,
    )
    assert_error(client.post("/api/routing-rules/test", json={}, headers=d.admin), 422)
    for n in (0, 501, "ten"):
        assert_error(
            client.post("/api/routing-rules/test", json={"replayLast": n}, headers=d.admin), 422
        )


def test_rule_and_set_lifecycle_is_audited(world: World, client: httpx.Client) -> None:
    d = _district(world, client)
    made = _standard_rules(client, d)
    assert_error(
        client.post("/api/routing-rule-sets", json={"name": "Campus"}, headers=d.admin),
        409,
        "DUPLICATE_RESOURCE",
    )
    assert_error(
        client.post(
            "/api/routing-rules",
            json={"name": "Lincoln", "ruleSet": "Campus", "actions": {"addTags": ["x"]}},
            headers=d.admin,
        ),
        409,
    )
    # a rule without a set goes to "Default", made on first use
    loose = _rule(client, d, {"name": "Everything", "actions": {"addTags": ["triage"]}})
    assert loose["ruleSet"]["name"] == "Default"
    assert loose["ruleSet"]["mode"] == "first_match"

    # edit: conditions are replaced as a whole; null for a required field is refused
    url = f"/api/routing-rules/{made['lincoln']['id']}"
    edited = _ok(
        client.patch(
            url,
            json={
                "conditions": {"siteIds": [d.sites["Oak Street Elementary"]["id"]]},
                "active": False,
                "description": "moved",
            },
            headers=d.admin,
        )
    )
    assert edited["conditions"]["siteIds"] == [d.sites["Oak Street Elementary"]["id"]]
    assert edited["active"] is False
    assert_error(client.patch(url, json={"name": None}, headers=d.admin), 422)
    assert_error(client.patch(url, json={"actions": {}}, headers=d.admin), 422)
    # move to another set: it goes last there
    moved = _ok(client.patch(url, json={"ruleSetId": loose["ruleSetId"]}, headers=d.admin))
    assert moved["ruleSet"]["name"] == "Default"
    assert moved["position"] == 1

    # reorder within a set
    campus_ids = [made["oak"]["id"], made["network"]["id"]]
    ordered = _ok(
        client.post("/api/routing-rules/reorder", json={"ids": campus_ids}, headers=d.admin)
    )
    assert [r["name"] for r in ordered] == ["Oak Street", "Network problems"]
    assert_error(
        client.post(
            "/api/routing-rules/reorder",
            json={"ids": [made["oak"]["id"], made["av"]["id"]]},
            headers=d.admin,
        ),
        422,
    )

    # a set with rules cannot go; switch it off, empty it, then delete
    campus = made["oak"]["ruleSetId"]
    assert_error(client.delete(f"/api/routing-rule-sets/{campus}", headers=d.admin), 409)
    off = _ok(
        client.patch(
            f"/api/routing-rule-sets/{campus}",
            json={"active": False, "mode": "apply_all"},
            headers=d.admin,
        )
    )
    assert (off["active"], off["mode"], off["ruleCount"]) == (False, "apply_all", 2)
    for rule_id in campus_ids:
        assert client.delete(f"/api/routing-rules/{rule_id}", headers=d.admin).status_code == 204
        assert_error(client.get(f"/api/routing-rules/{rule_id}", headers=d.admin), 404)
    assert client.delete(f"/api/routing-rule-sets/{campus}", headers=d.admin).status_code == 204
    assert_error(client.get(f"/api/routing-rule-sets/{campus}", headers=d.admin), 404)
    # the name can be used again
    _ok(client.post("/api/routing-rule-sets", json={"name": "Campus"}, headers=d.admin), 201)

    events = _ok(
        client.get(
            "/api/audit-logs",
            headers=d.admin,
            params={"perPage": 100, "entityType": "routing_rule"},
        )
    )
    actions = [e["action"] for e in events]
    assert actions.count("routing_rule.created") == 6
    assert actions.count("routing_rule.deleted") == 2
    update = next(e for e in events if e["action"] == "routing_rule.updated")
    assert "changes" in update["details"]
    set_events = _ok(
        client.get(
            "/api/audit-logs",
            headers=d.admin,
            params={"perPage": 100, "entityType": "routing_rule_set"},
        )
    )
    assert {
        "routing_rule_set.created",
        "routing_rule_set.reordered",
        "routing_rule_set.deleted",
    } <= {e["action"] for e in set_events}


def test_actions_naming_people_who_left_are_skipped(
    world: World, client: httpx.Client, db: Database
) -> None:
    d = _district(world, client)
    _rule(
        client,
        d,
        {
            "name": "To Priya",
            "actions": {"assignUserId": str(d.tech.id), "addWatcherIds": [str(d.agent.id)]},
        },
    )
    _ok(client.post(f"/api/users/{d.tech.id}/deactivate", headers=d.admin))
    with db.transaction(tenant=d.tenant.id) as session:
        decision = service.decide(session, TicketFacts(ticket_type="incident", priority="low"))
    assert decision.assignee_id is None, "a deactivated technician gets no new work"
    assert decision.watcher_ids == [d.agent.id]
    assert decision.matches[0].effects == ["adds watcher Marcus Lee"]


# ------------------------------------------------------------------ decide & replay


def _ticket(
    session: Any, requester: uuid.UUID, number: str, *, minutes_ago: int, **kw: Any
) -> Ticket:
    ticket = Ticket(
        number=number,
        ticket_type=kw.pop("ticket_type", "incident"),
        title=kw.pop("title", f"Ticket {number}"),
        status="new",
        status_category="open",
        status_changed_at=utcnow(),
        priority=kw.pop("priority", "medium"),
        requester_id=requester,
        created_at=utcnow() - timedelta(minutes=minutes_ago),
        **kw,
    )
    session.add(ticket)
    session.flush()
    return ticket


def test_ticket_creation_can_decide_and_apply(
    world: World, client: httpx.Client, db: Database
) -> None:
    """What the ticket service does on create: decide from the ticket's facts, apply."""
    d = _district(world, client)
    _standard_rules(client, d)
    lincoln = uuid.UUID(d.sites["Lincoln Middle School"]["id"])
    with db.transaction(tenant=d.tenant.id) as session:
        ticket = _ticket(
            session,
            d.teacher.id,
            "INC-000001",
            minutes_ago=0,
            site_id=lincoln,
            title="Display panel flickers",
        )
        decision = service.decide(session, service.facts_for(ticket, Role.REQUESTER))
        changes = service.apply_decision(ticket, decision)
        session.flush()
        assert ticket.team_id == uuid.UUID(d.teams["South campus technicians"]["id"])
        assert ticket.tags == ["av"]
        assert set(changes) == {"teamId", "tags"}
        assert [m.rule_name for m in decision.matches] == ["Lincoln", "AV equipment"]
        assert decision.matches[1].reasons == [
            "title contains 'panel'",
            "title contains 'display'",
        ]


def test_replay_shows_what_would_change_on_the_last_tickets_and_changes_nothing(
    world: World, client: httpx.Client, db: Database
) -> None:
    d = _district(world, client)
    _standard_rules(client, d)
    lincoln = uuid.UUID(d.sites["Lincoln Middle School"]["id"])
    oak = uuid.UUID(d.sites["Oak Street Elementary"]["id"])
    south = uuid.UUID(d.teams["South campus technicians"]["id"])
    with db.transaction(tenant=d.tenant.id) as session:
        _ticket(session, d.teacher.id, "INC-000001", minutes_ago=50, site_id=oak)  # oldest
        _ticket(
            session,
            d.teacher.id,
            "INC-000002",
            minutes_ago=30,
            site_id=lincoln,
            team_id=south,
            title="Projector bulb",
            tags=["av"],
        )
        _ticket(
            session,
            d.agent.id,
            "INC-000003",
            minutes_ago=20,
            site_id=oak,
            title="Smart panel frozen",
            priority="critical",
        )
        _ticket(session, d.teacher.id, "INC-000004", minutes_ago=10, category="Network")
    before = fingerprint(db)
    result = _ok(
        client.post("/api/routing-rules/test", json={"replayLast": 3}, headers=d.agent.headers)
    )
    assert fingerprint_diff(before, fingerprint(db)) == {}, "a replay writes nothing"
    assert result["mode"] == "replay"
    assert (result["replayed"], result["wouldChange"]) == (3, 2)
    tickets = result["tickets"]
    assert [t["number"] for t in tickets] == ["INC-000004", "INC-000003", "INC-000002"]
    changes = {t["number"]: {c["field"]: c for c in t["changes"]} for t in tickets}
    assert changes["INC-000004"] == {
        "teamId": {
            "field": "teamId",
            "from": None,
            "to": d.teams["Network & infrastructure"]["id"],
        }
    }
    assert changes["INC-000003"]["assigneeId"]["to"] == str(d.tech2.id)
    assert changes["INC-000003"]["tags"] == {"field": "tags", "from": [], "to": ["av"]}
    assert changes["INC-000003"]["watcherIds"]["to"] == [str(d.agent.id)]
    assert changes["INC-000002"] == {}, "already routed as the rules say"
    assert [m["ruleName"] for m in tickets[2]["matches"]] == ["Lincoln", "AV equipment"]
    assert "Rule 'Oak Street'" in tickets[1]["explanation"]

    everything = _ok(
        client.post("/api/routing-rules/test", json={"replayLast": 500}, headers=d.admin)
    )
    assert everything["replayed"] == 4


def test_dry_run_of_a_sample_writes_nothing(
    world: World, client: httpx.Client, db: Database
) -> None:
    d = _district(world, client)
    _standard_rules(client, d)
    before = fingerprint(db)
    result = _ok(
        client.post(
            "/api/routing-rules/test",
            json={
                "ticket": {
                    "title": "Projector",
                    "siteId": d.sites["Lincoln Middle School"]["id"],
                    "requesterId": str(d.teacher.id),
                }
            },
            headers=d.admin,
        )
    )
    assert result["decision"]["matches"]
    assert result["wouldChange"] == 1
    assert fingerprint_diff(before, fingerprint(db)) == {}


def test_another_organizations_rules_never_apply(
    world: World, client: httpx.Client, db: Database
) -> None:
    d = _district(world, client)
    other = _district(world, client, "other")
    _standard_rules(client, other)
    result = _ok(
        client.post(
            "/api/routing-rules/test",
            json={"ticket": {"title": "Projector", "category": "Network"}},
            headers=d.admin,
        )
    )["decision"]
    assert result["matches"] == [] and result["notMatched"] == []
    assert _ok(client.get("/api/routing-rules", headers=d.admin)) == []
    rule_id = _ok(client.get("/api/routing-rules", headers=other.admin))[0]["id"]
    assert_error(client.get(f"/api/routing-rules/{rule_id}", headers=d.admin), 404)
    assert_error(
        client.patch(f"/api/routing-rules/{rule_id}", json={"name": "x"}, headers=d.admin), 404
    )
    assert_error(
        client.post("/api/routing-rules/reorder", json={"ids": [rule_id]}, headers=d.admin), 422
    )


# ------------------------------------------------------------------- query counts


def _more_rules(client: httpx.Client, d: District, n: int, start: int) -> None:
    for i in range(start, start + n):
        _rule(
            client,
            d,
            {
                "name": f"Rule {i}",
                "ruleSet": f"Set {i % 3}",
                "conditions": {
                    "siteIds": [d.sites["Lincoln Middle School"]["id"]],
                    "keywords": [f"word{i}"],
                },
                "actions": {"assignTeamId": d.teams["South campus technicians"]["id"]},
            },
        )


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/routing-rules", None),
        ("GET", "/api/routing-rule-sets", None),
        ("GET", "/api/routing-rule-sets/{set}", None),
        ("GET", "/api/routing-rules/{rule}", None),
        ("POST", "/api/routing-rules/test", {"ticket": {"title": "word3", "siteId": "{site}"}}),
        ("POST", "/api/routing-rules/test", {"replayLast": 100}),
    ],
)
def test_statement_count_does_not_grow_with_rules_or_tickets(
    world: World,
    client: httpx.Client,
    db: Database,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    d = _district(world, client)
    _more_rules(client, d, 3, 0)
    first = _ok(client.get("/api/routing-rules", headers=d.admin))[0]
    url = path.format(set=first["ruleSetId"], rule=first["id"])
    if body and "ticket" in body:
        body = {"ticket": {**body["ticket"], "siteId": d.sites["Lincoln Middle School"]["id"]}}
    counter = iter(range(1, 1000))

    def tickets(n: int) -> None:
        with db.transaction(tenant=d.tenant.id) as session:
            for _ in range(n):
                i = next(counter)
                _ticket(
                    session,
                    d.teacher.id,
                    f"INC-{i:06d}",
                    minutes_ago=i,
                    title=f"word{i % 5}",
                    site_id=uuid.UUID(d.sites["Lincoln Middle School"]["id"]),
                )

    def measure() -> int:
        client.request(method, url, json=body, headers=d.admin)
        with count_statements(db) as statements:
            response = client.request(
                method, url, json=body, headers=d.admin, params={"perPage": 100}
            )
        assert response.status_code == 200, response.text
        return len(statements)

    tickets(2)
    few = measure()
    _more_rules(client, d, 12, 3)
    tickets(20)
    many = measure()
    assert many == few, f"{path}: {few} statements with few rows, {many} with many"
    assert few <= 14, f"{path} runs {few} statements"


# -------------------------------------------------------------------------- demo data


def test_demo_district_routes_its_tickets(db: Database) -> None:
    from sqlalchemy import func, select

    from server import seed
    from server.core.tenancy import ALL_TENANTS
    from server.routing import demo
    from server.routing.models import RoutingRule
    from server.sites.models import Site
    from server.teams.models import Team, TeamMember

    with db.transaction(tenant=ALL_TENANTS) as session:
        org, _logins, _created = seed.seed_demo(session)
        teams = demo.seed_demo(session, org)
        demo.seed_demo(session, org)  # a second start changes nothing
        assert (
            session.scalar(select(func.count(Team.id)).where(Team.organization_id == org.id)) == 4
        )
        assert (
            session.scalar(
                select(func.count(RoutingRule.id)).where(RoutingRule.organization_id == org.id)
            )
            == 6
        )
        assert (
            session.scalar(
                select(func.count(TeamMember.id)).where(TeamMember.team_id == teams[demo.NORTH].id)
            )
            == 1
        )
        org_id = org.id
    with db.transaction(tenant=org_id) as session:
        lincoln = session.scalar(select(Site.id).where(Site.name == "Lincoln Middle School"))
        high = session.scalar(select(Site.id).where(Site.name == "Maplewood High School"))
        south = session.scalar(select(Team.id).where(Team.name == demo.SOUTH))
        network = session.scalar(select(Team.id).where(Team.name == demo.NETWORK))
        help_desk = session.scalar(select(Team.id).where(Team.name == demo.HELP_DESK))
        projector = service.decide(
            session,
            TicketFacts(
                ticket_type="incident",
                priority="critical",
                site_id=lincoln,
                title="Projector in the media center is dead",
            ),
        )
        assert projector.team_id == south
        assert projector.tags == ["av"]
        assert len(projector.watcher_ids) == 2
        assert projector.matches[0].reasons == ["site is Lincoln Middle School"]
        wifi = service.decide(
            session,
            TicketFacts(ticket_type="incident", priority="high", category="Network", site_id=high),
        )
        assert wifi.team_id == network
        assert [m.rule_name for m in wifi.matches] == ["Network problems"]
        nowhere = service.decide(session, TicketFacts(ticket_type="general", priority="low"))
        assert nowhere.team_id == help_desk
