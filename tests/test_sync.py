"""The server side of sync (docs/sync-protocol.md): what a replica pulls, page by page,
for each role; what leaves a scope; the cost of a sync with nothing new."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import text

from common.enums import Role
from common.ids import uuid7
from server.core.engine import Database
from server.tickets.models import TicketEvent
from tests.conftest import Account, World, assert_error
from tests.test_query_counts import count_statements
from tests.test_tickets import new_ticket


def _pull(
    client: httpx.Client,
    who: Account,
    device: uuid.UUID,
    cursor: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body = {"protocolVersion": 1, "deviceId": str(device), "cursor": cursor, **extra}
    response = client.post("/api/sync/pull", json=body, headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _pull_all(client: httpx.Client, who: Account, device: uuid.UUID, cursor: str | None = None):
    """Pull until no more pages; the rows by table and id, removals, last cursor."""
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    removed: dict[str, set[str]] = {}
    pages = 0
    while True:
        page = _pull(client, who, device, cursor, limit=2)
        pages += 1
        for change in page["changes"]:
            for row in change["rows"]:
                rows.setdefault(change["table"], {})[row["id"]] = row
        for removal in page["removals"]:
            removed.setdefault(removal["table"], set()).update(removal["ids"])
        cursor = page["cursor"]
        if not page["hasMore"]:
            return rows, removed, cursor, pages


def _team_with(client: httpx.Client, admin: Account, *members: Account) -> str:
    team = client.post(
        "/api/teams", json={"name": f"Team {uuid.uuid4().hex[:6]}"}, headers=admin.headers
    )
    team_id = team.json()["data"]["id"]
    for member in members:
        added = client.post(
            f"/api/teams/{team_id}/members", json={"userId": str(member.id)}, headers=admin.headers
        )
        assert added.status_code == 201, added.text
    return team_id


def test_each_role_pulls_its_own_scope_page_by_page(world: World, client: httpx.Client) -> None:
    tenant = world.org()
    agent = world.user(tenant.id, Role.AGENT)
    tech = world.user(tenant.id, Role.TECHNICIAN)
    teacher = world.user(tenant.id, Role.REQUESTER)
    other_teacher = world.user(tenant.id, Role.REQUESTER)
    team_id = _team_with(client, tenant.admin, tech)

    mine = [new_ticket(client, teacher, title=f"Projector {i}") for i in range(3)]
    theirs = new_ticket(client, other_teacher, title="Printer jam")
    for ticket in mine:
        assigned = client.patch(
            f"/api/tickets/{ticket['id']}/assign",
            json={"teamId": team_id},
            headers=agent.headers,
        )
        assert assigned.status_code == 200, assigned.text
    note = client.post(
        f"/api/tickets/{mine[0]['id']}/internal-notes",
        json={"body": "Lamp hours at 4,900: order a lamp"},
        headers=tech.headers,
    )
    assert note.status_code == 201, note.text
    public = client.post(
        f"/api/tickets/{mine[0]['id']}/comments",
        json={"body": "We will come by at 2 pm"},
        headers=tech.headers,
    )
    assert public.status_code == 201, public.text

    rows, _, _, pages = _pull_all(client, tech, uuid7())
    assert pages == 2, "two tickets a page: the technician's three came in two pages"
    assert set(rows["tickets"]) == {t["id"] for t in mine}
    comments = {c["body"] for c in rows["ticket_comments"].values()}
    assert comments == {"Lamp hours at 4,900: order a lamp", "We will come by at 2 pm"}
    users = rows["users"]
    assert str(tech.id) in users and not any("passwordHash" in u for u in users.values())
    assert all("mfaSecret" not in u and "lastLoginAt" not in u for u in users.values())

    rows, _, _, _ = _pull_all(client, teacher, uuid7())
    assert set(rows["tickets"]) == {t["id"] for t in mine}, "a requester holds their own tickets"
    assert theirs["id"] not in rows["tickets"]
    assert {c["body"] for c in rows["ticket_comments"].values()} == {"We will come by at 2 pm"}
    ticket = rows["tickets"][mine[0]["id"]]
    assert ticket["minutesWorked"] is None and ticket["internalNoteCount"] is None
    assert "sla_rules" not in rows and "parts" not in rows, "staff lookups stay with staff"

    rows, _, _, _ = _pull_all(client, agent, uuid7())
    assert set(rows["tickets"]) == {t["id"] for t in mine} | {theirs["id"]}


def test_a_sync_with_nothing_new_is_one_read_and_small(
    world: World, client: httpx.Client, db: Database
) -> None:
    tenant = world.org()
    desk = world.user(tenant.id, Role.AGENT)
    tech = world.user(tenant.id, Role.TECHNICIAN)
    teacher = world.user(tenant.id, Role.REQUESTER)
    for i in range(5):
        new_ticket(
            client,
            desk,
            title=f"Chromebook {i}",
            requesterId=str(teacher.id),
            assigneeId=str(tech.id),
        )
    device = uuid7()
    _, _, cursor, _ = _pull_all(client, tech, device)
    body = {"protocolVersion": 1, "deviceId": str(device), "cursor": cursor}
    with count_statements(db) as statements:
        response = client.post("/api/sync/pull", json=body, headers=tech.headers)
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["changes"] == [] and data["cursor"] == cursor and not data["hasMore"]
    assert len(response.content) < 1024
    sync_reads = [s for s in statements if "change_counters" in s or "sync_devices" in s]
    assert len(sync_reads) == 2, sync_reads  # the device, and the organization's position
    assert not [s for s in statements if "FROM tickets" in s], statements


def test_changes_by_others_outside_the_scope_cost_nothing_but_empty_ranges(
    world: World, client: httpx.Client
) -> None:
    tenant = world.org()
    desk = world.user(tenant.id, Role.AGENT)
    tech = world.user(tenant.id, Role.TECHNICIAN)
    other_tech = world.user(tenant.id, Role.TECHNICIAN)
    teacher = world.user(tenant.id, Role.REQUESTER)
    mine = new_ticket(client, desk, requesterId=str(teacher.id), assigneeId=str(tech.id))
    device = uuid7()
    _, _, cursor, _ = _pull_all(client, tech, device)
    for i in range(4):
        new_ticket(
            client,
            desk,
            title=f"Elsewhere {i}",
            requesterId=str(teacher.id),
            assigneeId=str(other_tech.id),
        )
    page = _pull(client, tech, device, cursor)
    assert [c["table"] for c in page["changes"]] == ["users"] or page["changes"] == [], page
    assert page["cursor"] != cursor, "the cursor moves past changes outside the scope"
    comment = client.post(
        f"/api/tickets/{mine['id']}/comments", json={"body": "On my way"}, headers=tech.headers
    )
    assert comment.status_code == 201
    page = _pull(client, tech, device, page["cursor"])
    tables = {c["table"]: c["rows"] for c in page["changes"]}
    assert [t["id"] for t in tables["tickets"]] == [mine["id"]]
    assert [c["body"] for c in tables["ticket_comments"]] == ["On my way"]


def test_a_reassigned_ticket_leaves_and_a_newly_assigned_one_arrives(
    world: World, client: httpx.Client
) -> None:
    tenant = world.org()
    agent = world.user(tenant.id, Role.AGENT)
    tech = world.user(tenant.id, Role.TECHNICIAN)
    other_tech = world.user(tenant.id, Role.TECHNICIAN)
    teacher = world.user(tenant.id, Role.REQUESTER)
    leaving = new_ticket(client, agent, requesterId=str(teacher.id), assigneeId=str(tech.id))
    arriving = new_ticket(client, agent, requesterId=str(teacher.id), assigneeId=str(other_tech.id))
    client.post(
        f"/api/tickets/{arriving['id']}/comments",
        json={"body": "Old history"},
        headers=agent.headers,
    )
    device = uuid7()
    rows, _, cursor, _ = _pull_all(client, tech, device)
    assert set(rows["tickets"]) == {leaving["id"]}

    for ticket, to in ((leaving, other_tech), (arriving, tech)):
        moved = client.patch(
            f"/api/tickets/{ticket['id']}/assign",
            json={"assigneeId": str(to.id)},
            headers=agent.headers,
        )
        assert moved.status_code == 200, moved.text
    rows, removed, cursor, _ = _pull_all(client, tech, device, cursor)
    assert removed == {"tickets": {leaving["id"]}}
    assert set(rows["tickets"]) == {arriving["id"]}
    # the ticket is new to this replica: hydrate brings all of its history
    hydrated = client.post(
        "/api/sync/hydrate",
        json={
            "protocolVersion": 1,
            "deviceId": str(device),
            "ticketIds": [arriving["id"], leaving["id"]],
        },
        headers=tech.headers,
    )
    assert hydrated.status_code == 200, hydrated.text
    tables = {c["table"]: c["rows"] for c in hydrated.json()["data"]["changes"]}
    assert [t["id"] for t in tables["tickets"]] == [arriving["id"]], "only what the scope holds"
    assert "Old history" in [c["body"] for c in tables["ticket_comments"]]


def test_a_childs_change_moves_its_ticket(world: World, client: httpx.Client, db: Database) -> None:
    """Every child row's position is at or below its ticket's, whatever path wrote it."""
    tenant = world.org()
    desk = world.user(tenant.id, Role.AGENT)
    tech = world.user(tenant.id, Role.TECHNICIAN)
    teacher = world.user(tenant.id, Role.REQUESTER)
    ticket = new_ticket(client, desk, requesterId=str(teacher.id), assigneeId=str(tech.id))
    client.post(f"/api/tickets/{ticket['id']}/comments", json={"body": "a"}, headers=tech.headers)
    started = client.post(f"/api/tickets/{ticket['id']}/start-work", json={}, headers=tech.headers)
    assert started.status_code == 200, started.text
    # a path that writes only a child row (a job recording history) moves the ticket too
    with db.transaction(tenant=tenant.id) as session:
        session.add(
            TicketEvent(ticket_id=uuid.UUID(ticket["id"]), kind="note", data={"by": "a job"})
        )
    with db.engine.connect() as connection:
        for child in ("ticket_comments", "ticket_events", "ticket_attachments", "ticket_assets"):
            above = connection.execute(
                text(
                    f"SELECT count(*) FROM {child} c JOIN tickets t ON t.id = c.ticket_id "
                    "WHERE c.change_position > t.change_position"
                )
            ).scalar_one()
            assert above == 0, child
        counted = connection.execute(
            text("SELECT count(*) FROM ticket_events WHERE ticket_id = :id"),
            {"id": uuid.UUID(ticket["id"]).hex if db.is_sqlite else ticket["id"]},
        ).scalar_one()
    assert counted >= 2


def test_bad_sync_input_is_refused_clearly(world: World, client: httpx.Client) -> None:
    tenant = world.org()
    tech = world.user(tenant.id, Role.TECHNICIAN)
    other = world.user(tenant.id, Role.TECHNICIAN)
    device = uuid7()
    _pull(client, tech, device)
    taken = client.post(
        "/api/sync/pull",
        json={"protocolVersion": 1, "deviceId": str(device)},
        headers=other.headers,
    )
    assert assert_error(taken, 422, "VALIDATION_ERROR")["details"] == {"field": "deviceId"}
    for cursor in ("p12-", "garbage", "pn", "p" + "9" * 30):
        bad = client.post(
            "/api/sync/pull",
            json={"protocolVersion": 1, "deviceId": str(device), "cursor": cursor},
            headers=tech.headers,
        )
        assert bad.status_code == 422, (cursor, bad.text)
    ahead = client.post(
        "/api/sync/pull",
        json={"protocolVersion": 1, "deviceId": str(device), "cursor": "p999999"},
        headers=tech.headers,
    )
    assert_error(ahead, 410, "RESYNC_REQUIRED")
    old = client.post(
        "/api/sync/pull",
        json={"protocolVersion": 99, "deviceId": str(device)},
        headers=tech.headers,
    )
    assert assert_error(old, 426, "UPGRADE_REQUIRED")["details"]["maxProtocol"] == 1
