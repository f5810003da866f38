"""Teams as a district admin sets them up: who may be on one, who sees them, and what
keeps a team from disappearing while it still has work."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from common.enums import Role
from server.core.db import utcnow
from server.core.engine import Database
from server.teams import service
from server.teams.models import Team
from server.tickets.models import Ticket
from tests.conftest import World, assert_error
from tests.test_bad_input import fingerprint, fingerprint_diff
from tests.test_query_counts import count_statements


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()["data"] if response.content else None


def test_admin_builds_a_team_and_staff_can_see_it(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    admin = tenant.admin.headers
    priya = world.user(tenant.id, Role.TECHNICIAN, first_name="Priya", last_name="Raman")
    jorge = world.user(tenant.id, Role.TECHNICIAN, first_name="Jorge", last_name="Alvarez")
    marcus = world.user(tenant.id, Role.AGENT, first_name="Marcus", last_name="Lee")
    teacher = world.user(tenant.id, Role.REQUESTER)
    dept = _ok(client.post("/api/departments", json={"name": "Technology"}, headers=admin), 201)

    team = _ok(
        client.post(
            "/api/teams",
            json={
                "name": "North campus technicians",
                "description": "Maplewood High and Oak Street",
                "departmentId": dept["id"],
                "leadId": str(marcus.id),
                "memberIds": [str(priya.id)],
            },
            headers=admin,
        ),
        201,
    )
    assert team["memberCount"] == 1
    assert team["leadId"] == str(marcus.id)
    url = f"/api/teams/{team['id']}"
    added = _ok(client.post(f"{url}/members", json={"userId": str(jorge.id)}, headers=admin), 201)
    assert (added["fullName"], added["role"]) == ("Jorge Alvarez", "technician")
    _ok(client.post(f"{url}/members", json={"user_id": str(marcus.id)}, headers=admin), 201)
    _ok(client.post(f"{url}/members", json={"userId": str(tenant.admin.id)}, headers=admin), 201)
    help_desk = _ok(client.post("/api/teams", json={"name": "Help desk"}, headers=admin), 201)
    _ok(
        client.post(
            f"/api/teams/{help_desk['id']}/members", json={"userId": str(priya.id)}, headers=admin
        ),
        201,
    )

    # a technician reads teams and members
    teams = _ok(client.get("/api/teams", headers=priya.headers))
    assert [(t["name"], t["memberCount"]) for t in teams] == [
        ("Help desk", 1),
        ("North campus technicians", 4),
    ]
    members = _ok(client.get(f"{url}/members", headers=priya.headers))
    assert [m["lastName"] for m in members] == ["", "Alvarez", "Lee", "Raman"]
    assert _ok(client.get(f"{url}/members", headers=priya.headers, params={"q": "raman"}))[0][
        "userId"
    ] == str(priya.id)
    mine = _ok(client.get("/api/teams", headers=marcus.headers, params={"userId": str(priya.id)}))
    assert {t["name"] for t in mine} == {"Help desk", "North campus technicians"}
    by_dept = _ok(client.get("/api/teams", headers=admin, params={"departmentId": dept["id"]}))
    assert [t["name"] for t in by_dept] == ["North campus technicians"]
    assert _ok(client.get(url, headers=marcus.headers))["memberCount"] == 4

    # requesters see no teams; technicians and agents change nothing
    assert_error(client.get("/api/teams", headers=teacher.headers), 403, "PERMISSION_DENIED")
    assert_error(client.get(f"{url}/members", headers=teacher.headers), 403)
    for who in (priya, marcus):
        assert_error(client.post("/api/teams", json={"name": "Mine"}, headers=who.headers), 403)
        assert_error(client.patch(url, json={"name": "Mine"}, headers=who.headers), 403)
        assert_error(client.delete(f"{url}/members/{jorge.id}", headers=who.headers), 403)


def test_only_active_staff_of_the_organization_can_be_members(
    world: World, client: httpx.Client, db: Database
) -> None:
    tenant = world.org("alpha")
    admin = tenant.admin.headers
    tech = world.user(tenant.id, Role.TECHNICIAN)
    teacher = world.user(tenant.id, Role.REQUESTER, login=False)
    gone = world.user(tenant.id, Role.AGENT, login=False)
    _ok(client.post(f"/api/users/{gone.id}/deactivate", headers=admin))
    bravo = world.org("bravo")
    outsider = world.user(bravo.id, Role.TECHNICIAN, login=False)
    bravo_dept = _ok(
        client.post("/api/departments", json={"name": "Bravo IT"}, headers=bravo.admin.headers),
        201,
    )
    team = _ok(client.post("/api/teams", json={"name": "Help desk"}, headers=admin), 201)
    url = f"/api/teams/{team['id']}/members"
    before = fingerprint(db)
    for user_id in (teacher.id, gone.id, outsider.id, uuid.uuid4()):
        error = assert_error(
            client.post(url, json={"userId": str(user_id)}, headers=admin),
            422,
            "VALIDATION_ERROR",
        )
        assert error["details"]["field"] == "userId"
    assert (
        "requester"
        in assert_error(client.post(url, json={"userId": str(teacher.id)}, headers=admin), 422)[
            "message"
        ]
    )
    for body, field in (
        ({"name": "X", "leadId": str(teacher.id)}, "leadId"),
        ({"name": "X", "memberIds": [str(tech.id), str(outsider.id)]}, "memberIds"),
        ({"name": "X", "departmentId": bravo_dept["id"]}, "departmentId"),
        ({"name": ""}, "name"),
    ):
        error = assert_error(client.post("/api/teams", json=body, headers=admin), 422)
        fields = (
            [e["field"] for e in error["details"]]
            if isinstance(error["details"], list)
            else [error["details"]["field"]]
        )
        assert field in fields, (body, error)
    assert fingerprint_diff(before, fingerprint(db)) == {}, "refusals change nothing"

    _ok(client.post(url, json={"userId": str(tech.id)}, headers=admin), 201)
    assert_error(
        client.post(url, json={"userId": str(tech.id)}, headers=admin), 409, "DUPLICATE_RESOURCE"
    )
    assert_error(
        client.post("/api/teams", json={"name": "Help desk"}, headers=admin),
        409,
        "DUPLICATE_RESOURCE",
    )
    # another organization's team is not found, even by its admin's own members
    assert_error(
        client.post(url, json={"userId": str(outsider.id)}, headers=bravo.admin.headers), 404
    )
    assert_error(client.get(f"/api/teams/{team['id']}", headers=bravo.admin.headers), 404)


def test_membership_changes_are_audited_and_drive_team_ids_of(
    world: World, client: httpx.Client, db: Database
) -> None:
    tenant = world.org("alpha")
    admin = tenant.admin.headers
    tech = world.user(tenant.id, Role.TECHNICIAN)
    north = _ok(client.post("/api/teams", json={"name": "North"}, headers=admin), 201)
    south = _ok(client.post("/api/teams", json={"name": "South"}, headers=admin), 201)
    for team in (north, south):
        _ok(
            client.post(
                f"/api/teams/{team['id']}/members", json={"userId": str(tech.id)}, headers=admin
            ),
            201,
        )
    with db.transaction(tenant=tenant.id) as session:
        assert service.team_ids_of(session, tech.id) == [
            uuid.UUID(north["id"]),
            uuid.UUID(south["id"]),
        ]
        assert service.member_ids_of(session, uuid.UUID(north["id"])) == [tech.id]
        names = session.scalars(
            select(Team.name).where(Team.id.in_(service.teams_of(tech.id))).order_by(Team.name)
        ).all()
        assert names == ["North", "South"]
    assert (
        client.delete(f"/api/teams/{north['id']}/members/{tech.id}", headers=admin).status_code
        == 204
    )
    assert_error(client.delete(f"/api/teams/{north['id']}/members/{tech.id}", headers=admin), 404)
    renamed = _ok(
        client.patch(
            f"/api/teams/{south['id']}",
            json={"name": "South campus", "leadId": str(tech.id)},
            headers=admin,
        )
    )
    assert (renamed["name"], renamed["memberCount"]) == ("South campus", 1)
    assert_error(client.patch(f"/api/teams/{south['id']}", json={"name": None}, headers=admin), 422)
    with db.transaction(tenant=tenant.id) as session:
        assert service.team_ids_of(session, tech.id) == [uuid.UUID(south["id"])]
    # a member can be added back after removal
    _ok(
        client.post(
            f"/api/teams/{north['id']}/members", json={"userId": str(tech.id)}, headers=admin
        ),
        201,
    )
    events = _ok(
        client.get("/api/audit-logs", headers=admin, params={"entityType": "team", "perPage": 100})
    )
    actions = [e["action"] for e in events]
    assert actions.count("team.created") == 2
    assert actions.count("team.member_added") == 3
    assert actions.count("team.member_removed") == 1
    change = next(e for e in events if e["action"] == "team.updated")
    assert change["details"]["changes"]["name"] == {"from": "South", "to": "South campus"}
    assert change["details"]["changes"]["leadId"] == {"from": None, "to": str(tech.id)}


def test_a_team_with_work_cannot_be_deleted(
    world: World, client: httpx.Client, db: Database
) -> None:
    tenant = world.org("alpha")
    admin = tenant.admin.headers
    tech = world.user(tenant.id, Role.TECHNICIAN, login=False)
    team = _ok(
        client.post(
            "/api/teams", json={"name": "Network", "memberIds": [str(tech.id)]}, headers=admin
        ),
        201,
    )
    url = f"/api/teams/{team['id']}"
    rule = _ok(
        client.post(
            "/api/routing-rules",
            json={
                "name": "Network to network",
                "conditions": {"categories": ["Network"]},
                "actions": {"assignTeamId": team["id"]},
            },
            headers=admin,
        ),
        201,
    )
    error = assert_error(client.delete(url, headers=admin), 409, "RESOURCE_CONFLICT")
    assert error["details"]["rules"] == ["Network to network"]
    assert client.delete(f"/api/routing-rules/{rule['id']}", headers=admin).status_code == 204
    with db.transaction(tenant=tenant.id) as session:
        ticket = Ticket(
            number="INC-000001",
            ticket_type="incident",
            title="Switch down",
            status="assigned",
            status_category="open",
            status_changed_at=utcnow(),
            priority="high",
            requester_id=tenant.admin.id,
            team_id=uuid.UUID(team["id"]),
        )
        session.add(ticket)
        session.flush()
        ticket_id = ticket.id
    error = assert_error(client.delete(url, headers=admin), 409)
    assert error["details"]["openTickets"] == 1
    with db.transaction(tenant=tenant.id) as session:
        found = session.get(Ticket, ticket_id)
        assert found is not None
        found.status, found.status_category = "closed", "closed"
    assert client.delete(url, headers=admin).status_code == 204
    assert_error(client.get(url, headers=admin), 404)
    assert _ok(client.get("/api/teams", headers=admin)) == []
    with db.transaction(tenant=tenant.id) as session:
        assert service.team_ids_of(session, tech.id) == []
    # the name is free again
    _ok(client.post("/api/teams", json={"name": "Network"}, headers=admin), 201)


@pytest.mark.parametrize("path", ["/api/teams", "/api/teams/{team}", "/api/teams/{team}/members"])
def test_statement_count_does_not_grow_with_teams_or_members(
    world: World, client: httpx.Client, db: Database, path: str
) -> None:
    tenant = world.org("alpha")
    admin = tenant.admin.headers
    team = _ok(client.post("/api/teams", json={"name": "Team 0"}, headers=admin), 201)
    url = path.format(team=team["id"])
    counter = iter(range(1, 1000))

    def grow(n: int) -> None:
        for _ in range(n):
            i = next(counter)
            user = world.user(tenant.id, Role.TECHNICIAN, login=False)
            _ok(
                client.post(
                    f"/api/teams/{team['id']}/members",
                    json={"userId": str(user.id)},
                    headers=admin,
                ),
                201,
            )
            _ok(
                client.post(
                    "/api/teams",
                    json={"name": f"Team {i}", "memberIds": [str(user.id)]},
                    headers=admin,
                ),
                201,
            )

    def measure() -> int:
        client.get(url, headers=admin)
        with count_statements(db) as statements:
            response = client.get(url, headers=admin, params={"perPage": 100})
        assert response.status_code == 200, response.text
        return len(statements)

    grow(2)
    few = measure()
    grow(10)
    many = measure()
    assert many == few, f"{path}: {few} statements with few rows, {many} with many"
    assert few <= 8, f"{path} runs {few} statements"
