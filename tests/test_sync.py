"""The server side of sync (docs/sync-protocol.md): what a replica pulls, page by page,
for each role; what leaves a scope; the cost of a sync with nothing new."""

from __future__ import annotations

import re
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from common.enums import Role
from common.ids import uuid7
from server.core.engine import Database
from server.tickets.models import TicketEvent
from sync.replica import Replica
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

    first = _pull(client, tech, uuid7(), limit=2)
    assert first["ticketsTotal"] == 3 and first["complete"] is True
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
    world: World, client: httpx.Client, db: Database
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
    with count_statements(db) as few:
        page = _pull(client, tech, device, cursor)
    assert page["changes"] == [], page
    assert page["cursor"] != cursor, "the cursor moves past changes outside the scope"
    for i in range(12):
        elsewhere = {"requesterId": str(teacher.id), "assigneeId": str(other_tech.id)}
        new_ticket(client, desk, title=f"More elsewhere {i}", **elsewhere)
    with count_statements(db) as many:
        again = _pull(client, tech, device, page["cursor"])
    assert again["changes"] == []
    assert len(many) == len(few) <= 16, (len(few), len(many), many)
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


# --- push ------------------------------------------------------------------------------


def _push(
    client: httpx.Client, who: Account, device: uuid.UUID, *mutations: dict[str, Any]
) -> dict[str, Any]:
    body = {"protocolVersion": 1, "deviceId": str(device), "mutations": list(mutations)}
    response = client.post("/api/sync/push", json=body, headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _mutation(seq: int, kind: str, **fields: Any) -> dict[str, Any]:
    return {"id": str(uuid7()), "seq": seq, "kind": kind, "at": "2026-12-06T08:00:00Z", **fields}


def _scene(world: World, client: httpx.Client):
    tenant = world.org()
    agent = world.user(tenant.id, Role.AGENT)
    tech = world.user(tenant.id, Role.TECHNICIAN)
    teacher = world.user(tenant.id, Role.REQUESTER)
    ticket = new_ticket(
        client, agent, requesterId=str(teacher.id), assigneeId=str(tech.id), priority="medium"
    )
    return tenant, agent, tech, teacher, ticket


def _history(client: httpx.Client, who: Account, ticket_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/tickets/{ticket_id}/history", headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_an_edit_is_applied_once_however_often_it_is_sent(
    world: World, client: httpx.Client
) -> None:
    _, agent, tech, _, ticket = _scene(world, client)
    device = uuid7()
    edit = _mutation(
        1,
        "ticket.update",
        ticketId=ticket["id"],
        base={"title": ticket["title"]},
        changes={"title": "Projector in 204: lamp replaced"},
    )
    comment_id = str(uuid7())
    note = _mutation(
        2, "ticket.comment", ticketId=ticket["id"], commentId=comment_id, body="Lamp swapped"
    )
    first = _push(client, tech, device, edit, note)
    assert [r["verdict"] for r in first["results"]] == ["applied", "applied"]
    assert first["lastSequence"] == 2
    tickets_rows = [
        t for r in first["results"][0]["rows"] if r["table"] == "tickets" for t in r["rows"]
    ]
    assert tickets_rows[0]["title"] == "Projector in 204: lamp replaced"
    # the answer was lost: the same push again, and once more with the next edit
    again = _push(client, tech, device, edit, note)
    assert [r["verdict"] for r in again["results"]] == ["applied", "applied"]
    comments = client.get(f"/api/tickets/{ticket['id']}/comments", headers=agent.headers)
    assert [c["id"] for c in comments.json()["data"]] == [comment_id]
    titles = [e for e in _history(client, agent, ticket["id"]) if e.get("field") == "title"]
    assert len(titles) <= 1, "one title change in the history, not two"


def test_a_field_both_sides_changed_is_a_conflict_a_person_resolves(
    world: World, client: httpx.Client
) -> None:
    _, agent, tech, _, ticket = _scene(world, client)
    raised = client.patch(
        f"/api/tickets/{ticket['id']}", json={"priority": "critical"}, headers=agent.headers
    )
    assert raised.status_code == 200, raised.text
    device = uuid7()
    result = _push(
        client,
        tech,
        device,
        _mutation(
            1,
            "ticket.update",
            ticketId=ticket["id"],
            base={"priority": "medium", "title": ticket["title"]},
            changes={"priority": "high", "title": "Lamp dead (room 204)"},
        ),
    )["results"][0]
    assert result["verdict"] == "conflict"
    (conflict,) = result["conflicts"]
    assert (conflict["field"], conflict["base"], conflict["mine"], conflict["server"]) == (
        "priority",
        "medium",
        "high",
        "critical",
    )
    now = client.get(f"/api/tickets/{ticket['id']}", headers=agent.headers).json()["data"]
    assert now["priority"] == "critical", "the server kept its value"
    assert now["title"] == "Lamp dead (room 204)", "the field nobody else touched applied"
    listed_response = client.get("/api/sync/conflicts", headers=agent.headers)
    assert listed_response.status_code == 200, listed_response.text
    listed = listed_response.json()["data"]
    assert [(c["id"], c["ticketNumber"]) for c in listed] == [(conflict["id"], ticket["number"])]
    # the conflict travels with the ticket to the technician's replica
    rows, _, _, _ = _pull_all(client, tech, device)
    assert conflict["id"] in rows["sync_conflicts"]

    resolved = _push(
        client,
        tech,
        device,
        _mutation(2, "conflict.resolve", conflictId=conflict["id"], keep="mine"),
    )["results"][0]
    assert resolved["verdict"] == "applied", resolved
    now = client.get(f"/api/tickets/{ticket['id']}", headers=agent.headers).json()["data"]
    assert now["priority"] == "high"
    assert client.get("/api/sync/conflicts", headers=agent.headers).json()["data"] == []


def test_a_rejected_edit_says_why_and_does_not_block_the_next(
    world: World, client: httpx.Client
) -> None:
    _, agent, tech, _, ticket = _scene(world, client)
    cancelled = client.post(
        f"/api/tickets/{ticket['id']}/cancel", json={"note": "Duplicate"}, headers=agent.headers
    )
    assert cancelled.status_code == 200, cancelled.text
    other = new_ticket(client, agent, assigneeId=str(tech.id))
    results = _push(
        client,
        tech,
        uuid7(),
        _mutation(
            1,
            "ticket.transition",
            ticketId=ticket["id"],
            to="resolved",
            resolutionNotes="Replaced the lamp",
        ),
        _mutation(2, "ticket.comment", ticketId=other["id"], commentId=str(uuid7()), body="Next"),
        _mutation(3, "ticket.update", ticketId=other["id"], changes={"colour": "red"}),
        _mutation(4, "no.such.kind"),
        _mutation(5, "ticket.comment", ticketId=str(uuid7()), commentId=str(uuid7()), body="?"),
    )["results"]
    assert [r["verdict"] for r in results] == [
        "rejected",
        "applied",
        "rejected",
        "rejected",
        "rejected",
    ]
    assert results[0]["code"] in ("INVALID_STATUS_TRANSITION", "TICKET_ALREADY_CLOSED")
    assert ticket["number"] in results[0]["message"] and "cancelled" in results[0]["message"]
    assert results[4]["code"] == "RESOURCE_NOT_FOUND"


def test_a_ticket_made_offline_gets_its_number_on_arrival(
    world: World, client: httpx.Client
) -> None:
    tenant = world.org()
    tech = world.user(tenant.id, Role.TECHNICIAN)
    ticket_id = str(uuid7())
    result = _push(
        client,
        tech,
        uuid7(),
        _mutation(
            1,
            "ticket.create",
            ticket={
                "id": ticket_id,
                "title": "Cracked screen on cart 3, slot 12",
                "urgency": "low",
            },
        ),
    )["results"][0]
    assert result["verdict"] == "applied", result
    (row,) = [t for r in result["rows"] if r["table"] == "tickets" for t in r["rows"]]
    assert row["id"] == ticket_id and row["number"].startswith("INC-")


def test_parts_used_offline_on_two_laptops_both_count(world: World, client: httpx.Client) -> None:
    tenant, agent, tech, _, ticket = _scene(world, client)
    tech2 = world.user(tenant.id, Role.TECHNICIAN)
    second = new_ticket(client, agent, assigneeId=str(tech2.id))
    admin = tenant.admin.headers
    part = client.post("/api/inventory/parts", json={"name": "Projector lamp"}, headers=admin)
    shelf = client.post(
        "/api/inventory/locations", json={"name": "Depot", "kind": "warehouse"}, headers=admin
    )
    part_id, shelf_id = part.json()["data"]["id"], shelf.json()["data"]["id"]
    received = client.post(
        "/api/inventory/movements",
        json={"kind": "receive", "partId": part_id, "locationId": shelf_id, "quantity": 10},
        headers=admin,
    )
    assert received.status_code == 201, received.text
    for who, on in ((tech, ticket), (tech2, second)):
        use = _mutation(
            1,
            "part.use",
            ticketId=on["id"],
            movementId=str(uuid7()),
            partId=part_id,
            locationId=shelf_id,
            quantity=3,
        )
        assert _push(client, who, uuid7(), use)["results"][0]["verdict"] == "applied"
    stock = client.get(f"/api/inventory/parts/{part_id}", headers=admin).json()["data"]
    assert stock["currentStock"] == 4


def test_an_admin_wipes_a_lost_laptop_at_its_next_sync(world: World, client: httpx.Client) -> None:
    tenant = world.org()
    tech = world.user(tenant.id, Role.TECHNICIAN)
    other = world.user(tenant.id, Role.TECHNICIAN)
    device = uuid7()
    _pull(client, tech, device)
    listed = client.get("/api/sync/devices", headers=tenant.admin.headers).json()["data"]
    assert [d["id"] for d in listed] == [str(device)]
    assert client.get("/api/sync/devices", headers=other.headers).json()["data"] == []
    refused = client.post(f"/api/sync/devices/{device}/wipe", headers=other.headers)
    assert_error(refused, 404)
    ordered = client.post(f"/api/sync/devices/{device}/wipe", headers=tenant.admin.headers)
    assert ordered.status_code == 200 and ordered.json()["data"]["wipeRequestedAt"]
    page = _pull(client, tech, device)
    assert page["wipe"] is True and page["changes"] == []
    # what a wiped laptop still sends is refused, and none of it is applied
    ticket = new_ticket(client, tenant.admin, assigneeId=str(tech.id))
    body = {
        "protocolVersion": 1,
        "deviceId": str(device),
        "mutations": [
            _mutation(1, "ticket.comment", ticketId=ticket["id"], commentId=str(uuid7()), body="x")
        ],
    }
    refused = client.post("/api/sync/push", json=body, headers=tech.headers)
    assert assert_error(refused, 410, "DEVICE_WIPED")["details"]["wipeRequestedAt"]
    comments = client.get(f"/api/tickets/{ticket['id']}/comments", headers=tenant.admin.headers)
    assert comments.json()["data"] == []
    (listed,) = client.get("/api/sync/devices", headers=tenant.admin.headers).json()["data"]
    assert listed["wipedAt"], "when the wipe was carried out is recorded"


def test_concurrent_writers_never_slip_under_a_returned_cursor(
    world: World, client: httpx.Client, server_url: str
) -> None:
    """Guarantee 1: comments committed while replicas pull all reach every replica.
    A change that committed at or below a cursor already handed out would be missed
    for good; writers and pullers run at once to give it every chance."""
    tenant = world.org()
    agent = world.user(tenant.id, Role.AGENT)
    tech = world.user(tenant.id, Role.TECHNICIAN)
    tickets = [new_ticket(client, agent, assigneeId=str(tech.id)) for _ in range(3)]
    written: list[str] = []
    done = threading.Event()

    def write(ticket: dict[str, Any]) -> None:
        with httpx.Client(base_url=server_url, timeout=30) as own:
            for i in range(15):
                response = own.post(
                    f"/api/tickets/{ticket['id']}/comments",
                    json={"body": f"step {i}"},
                    headers=agent.headers,
                )
                assert response.status_code == 201, response.text
                written.append(response.json()["data"]["id"])

    def replicate(device: uuid.UUID, seen: set[str]) -> None:
        cursor = None
        with httpx.Client(base_url=server_url, timeout=30) as own:
            while True:
                finishing = done.is_set()
                while True:
                    page = _pull(own, tech, device, cursor)
                    for change in page["changes"]:
                        if change["table"] == "ticket_comments":
                            seen.update(row["id"] for row in change["rows"])
                    cursor = page["cursor"]
                    if not page["hasMore"]:
                        break
                if finishing:
                    return

    replicas = [(uuid7(), set[str]()) for _ in range(2)]
    pullers = [threading.Thread(target=replicate, args=r) for r in replicas]
    writers = [threading.Thread(target=write, args=(t,)) for t in tickets]
    for thread in pullers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    for thread in pullers:
        thread.join()
    assert len(written) == 45
    for _, seen in replicas:
        assert set(written) <= seen, f"{len(set(written) - seen)} comments never reached a replica"


def test_sync_pages_travel_compressed(world: World, client: httpx.Client) -> None:
    tenant = world.org()
    agent = world.user(tenant.id, Role.AGENT)
    for i in range(6):
        new_ticket(client, agent, title=f"Chromebook cart {i}: three screens cracked")
    body = {"protocolVersion": 1, "deviceId": str(uuid7())}
    response = client.post(
        "/api/sync/pull", json=body, headers={**agent.headers, "Accept-Encoding": "gzip"}
    )
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.num_bytes_downloaded * 3 < len(response.content)
    plain = client.get("/api/tickets", headers={**agent.headers, "Accept-Encoding": "gzip"})
    assert "content-encoding" not in plain.headers, "only sync answers are compressed"


def test_a_technician_holds_their_sites_devices_and_their_stock(
    world: World, client: httpx.Client
) -> None:
    from tests.test_assets import build_campus, make_asset

    campus = build_campus(client, world, slug=f"sync{uuid.uuid4().hex[:6]}")
    admin = campus.admin
    other_site = client.post("/api/sites", json={"name": "Elm Elementary"}, headers=admin)
    other_building = client.post(
        f"/api/sites/{other_site.json()['data']['id']}/buildings",
        json={"name": "Elm Main"},
        headers=admin,
    ).json()["data"]
    elm_room = client.post(
        f"/api/buildings/{other_building['id']}/rooms", json={"number": "7"}, headers=admin
    ).json()["data"]
    tech = world.user(campus.tenant.id, Role.TECHNICIAN, site_id=uuid.UUID(campus.site["id"]))
    projector = make_asset(
        client, campus, "MPS-P101", type="Projector", roomId=campus.rooms["101"]["id"]
    )
    cart = make_asset(client, campus, "MPS-C102", roomId=campus.rooms["102"]["id"])
    elsewhere = make_asset(client, campus, "ELM-0007", roomId=elm_room["id"])
    van = client.post(
        "/api/inventory/locations",
        json={"name": "Priya's van", "kind": "van", "holderUserId": str(tech.id)},
        headers=admin,
    )
    assert van.status_code == 201, van.text
    part = client.post("/api/inventory/parts", json={"name": "Lamp"}, headers=admin).json()["data"]
    stocked = client.post(
        "/api/inventory/movements",
        json={
            "kind": "receive",
            "partId": part["id"],
            "locationId": van.json()["data"]["id"],
            "quantity": 4,
        },
        headers=admin,
    )
    assert stocked.status_code == 201, stocked.text

    device = uuid7()
    rows, _, cursor, _ = _pull_all(client, tech, device)
    assert set(rows["assets"]) == {projector["id"], cart["id"]}, "the home site's devices only"
    (level,) = rows["stock_levels"].values()
    assert (level["partId"], level["quantity"]) == (part["id"], 4)

    moved = client.patch(
        f"/api/assets/{cart['id']}", json={"roomId": elm_room["id"]}, headers=admin
    )
    assert moved.status_code == 200, moved.text
    rows, removed, cursor, _ = _pull_all(client, tech, device, cursor)
    assert removed.get("assets") == {cart["id"]}, "a device moved to another school leaves"
    assert elsewhere["id"] not in rows.get("assets", {})

    # the van goes to another technician: its stock leaves one replica, enters the other
    jorge = world.user(campus.tenant.id, Role.TECHNICIAN)
    jorge_device = uuid7()
    rows, _, jorge_cursor, _ = _pull_all(client, jorge, jorge_device)
    assert "stock_levels" not in rows
    handed = client.patch(
        f"/api/inventory/locations/{van.json()['data']['id']}",
        json={"holderUserId": str(jorge.id)},
        headers=admin,
    )
    assert handed.status_code == 200, handed.text
    _, removed, _, _ = _pull_all(client, tech, device, cursor)
    assert removed.get("stock_levels") == {level["id"]}
    rows, _, _, _ = _pull_all(client, jorge, jorge_device, jorge_cursor)
    assert set(rows["stock_levels"]) == {level["id"]}, "unchanged levels arrive with the van"


def _replicate(client: httpx.Client, who: Account, path: Path) -> tuple[Replica, str]:
    """A real replica store filled by pulling, as the client engine does."""
    replica = Replica.open(path, server_url="http://test", user_id=str(who.id))
    device = uuid.UUID(replica.device_id)
    cursor = None
    while True:
        page = _pull(client, who, device, cursor)
        replica.apply_page(page)
        cursor = page["cursor"]
        if not page["hasMore"]:
            break
    assert replica.hydrate_queue() == [], "a first download needs no hydration"
    return replica, cursor


def test_each_roles_replica_verifies_against_the_server(
    world: World, client: httpx.Client, tmp_path: Path
) -> None:
    tenant = world.org()
    agent = world.user(tenant.id, Role.AGENT)
    tech = world.user(tenant.id, Role.TECHNICIAN)
    teacher = world.user(tenant.id, Role.REQUESTER)
    for i in range(3):
        ticket = new_ticket(
            client, agent, requesterId=str(teacher.id), assigneeId=str(tech.id), title=f"T{i}"
        )
        client.post(
            f"/api/tickets/{ticket['id']}/internal-notes", json={"body": "n"}, headers=tech.headers
        )
        client.post(
            f"/api/tickets/{ticket['id']}/comments", json={"body": "c"}, headers=tech.headers
        )
    new_ticket(client, agent, title="Someone else's")
    for who in (agent, tech, teacher):
        replica, cursor = _replicate(client, who, tmp_path / f"{who.role.value}.sqlite3")
        answer = client.post(
            "/api/sync/verify",
            json={"protocolVersion": 1, "deviceId": replica.device_id, "cursor": cursor},
            headers=who.headers,
        )
        assert answer.status_code == 200, answer.text
        data = answer.json()["data"]
        assert data["stale"] is False
        for table in data["tables"]:
            count, digest = replica.verify_digest(table["table"])
            assert (count, digest) == (table["count"], table["sha256"]), (who.role, table)
        counts = {t["table"]: t["count"] for t in data["tables"]}
        expected_notes = 0 if who is teacher else 3
        assert counts["ticket_comments"] == 3 + expected_notes, who.role
        replica.close()

    # a replica that lost rows is caught, table by table
    replica = Replica.open(tmp_path / "technician.sqlite3")
    with sqlite3.connect(tmp_path / "technician.sqlite3") as raw:
        raw.execute(
            "DELETE FROM ticket_comments WHERE rowid IN (SELECT rowid FROM ticket_comments LIMIT 1)"
        )
    answer = client.post(
        "/api/sync/verify",
        json={"protocolVersion": 1, "deviceId": replica.device_id, "cursor": cursor},
        headers=tech.headers,
    ).json()["data"]
    wrong = [
        t["table"]
        for t in answer["tables"]
        if replica.verify_digest(t["table"]) != (t["count"], t["sha256"])
    ]
    assert wrong == ["ticket_comments"]
    replica.close()


def test_a_replica_away_longer_than_the_retention_downloads_again(
    world: World, client: httpx.Client, db: Database
) -> None:
    """Guarantee 12: tombstones older than the retention period are purged for good,
    and a cursor from before them is answered RESYNC_REQUIRED (the outbox is the
    client's to keep); a replayed edit whose verdict was purged never runs twice."""
    from datetime import timedelta

    from server.core.db import utcnow
    from server.sync import retention
    from server.tickets.models import TicketLink

    tenant, agent, tech, _, ticket = _scene(world, client)
    blocker = new_ticket(client, agent, assigneeId=str(tech.id))
    device = uuid7()
    comment = _mutation(
        1, "ticket.comment", ticketId=ticket["id"], commentId=str(uuid7()), body="Done"
    )
    assert _push(client, tech, device, comment)["results"][0]["verdict"] == "applied"
    _, _, old_cursor, _ = _pull_all(client, tech, device)
    url = f"/api/tickets/{ticket['id']}/blockers"
    linked = client.post(url, json={"blockerId": blocker["id"]}, headers=agent.headers)
    assert linked.status_code == 201, linked.text
    unlinked = client.delete(f"{url}/{blocker['id']}", headers=agent.headers)
    assert unlinked.status_code in (200, 204), unlinked.text

    long_ago = utcnow() - timedelta(days=200)
    with db.engine.begin() as connection:  # the edit was judged that long ago, too
        connection.execute(text("UPDATE sync_mutations SET judged_at = :t"), {"t": long_ago})
    with db.transaction(tenant=tenant.id) as session:
        assert retention.run(session, tenant.id, long_ago, keep_days=90).horizon is None
    with db.transaction(tenant=tenant.id) as session:
        result = retention.run(session, tenant.id, utcnow(), keep_days=90)
    assert result.horizon is not None and result.purged >= 2  # the tombstone, the verdict
    with db.engine.connect() as connection:
        left = connection.execute(
            text("SELECT count(*) FROM ticket_links WHERE deleted_at IS NOT NULL")
        ).scalar_one()
    assert left == 0, "the tombstone is gone for good"
    assert TicketLink.__tablename__ == "ticket_links"

    stale = client.post(
        "/api/sync/pull",
        json={"protocolVersion": 1, "deviceId": str(device), "cursor": old_cursor},
        headers=tech.headers,
    )
    assert_error(stale, 410, "RESYNC_REQUIRED")
    rows, _, _, _ = _pull_all(client, tech, device)  # downloads again from no cursor
    assert set(rows["tickets"]) == {ticket["id"], blocker["id"]}
    again = _push(client, tech, device, comment)["results"][0]
    assert again["verdict"] == "rejected" and again["code"] == "DUPLICATE_RESOURCE"
    comments = client.get(f"/api/tickets/{ticket['id']}/comments", headers=agent.headers)
    assert len(comments.json()["data"]) == 1, "the old edit did not run a second time"


def test_devices_are_linked_and_unlinked_offline_as_set_operations(
    world: World, client: httpx.Client
) -> None:
    from tests.test_assets import build_campus, make_asset

    campus = build_campus(client, world, slug=f"link{uuid.uuid4().hex[:6]}")
    agent = world.user(campus.tenant.id, Role.AGENT)
    tech = world.user(campus.tenant.id, Role.TECHNICIAN)
    teacher = world.user(campus.tenant.id, Role.REQUESTER)
    ticket = new_ticket(client, agent, assigneeId=str(tech.id))
    panel = make_asset(client, campus, "MPS-PANEL-7", type="Projector")
    device = uuid7()
    link = {"ticketId": ticket["id"], "assetId": panel["id"]}
    verdicts = [
        r["verdict"]
        for r in _push(
            client,
            tech,
            device,
            _mutation(1, "asset.link", **link),
            _mutation(2, "asset.link", **link),  # the other laptop linked it too
            _mutation(3, "asset.unlink", **link),
            _mutation(4, "asset.unlink", **link),
        )["results"]
    ]
    assert verdicts == ["applied", "merged", "applied", "merged"]
    kinds = [e["kind"] for e in _history(client, agent, ticket["id"])]
    assert kinds.count("asset_linked") == 1 and kinds.count("asset_unlinked") == 1
    own = new_ticket(client, teacher)
    refusal = _mutation(1, "asset.link", ticketId=own["id"], assetId=panel["id"])
    refused = _push(client, teacher, uuid7(), refusal)
    assert refused["results"][0]["code"] == "PERMISSION_DENIED"


def _api_list(client: httpx.Client, who: Account, url: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    page = 1
    while True:
        response = client.get(url, params={"page": page, "perPage": 100}, headers=who.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        rows.extend(body["data"])
        if not body["pagination"]["hasNext"]:
            return rows
        page += 1


COMPARED_FIELDS = (
    "number",
    "title",
    "status",
    "priority",
    "minutesWorked",
    "partsCostCents",
    "internalNoteCount",
    "assigneeId",
)


def test_a_replica_holds_what_the_api_shows_the_same_person(
    world: World, client: httpx.Client, tmp_path: Path
) -> None:
    """For each role, the tickets, their fields and their comments and notes in the
    replica are what the same person reads through the API: nothing more (no
    internal note, cost or time for a requester), nothing less."""
    tenant = world.org()
    agent = world.user(tenant.id, Role.AGENT)
    tech = world.user(tenant.id, Role.TECHNICIAN)
    teacher = world.user(tenant.id, Role.REQUESTER)
    mine = [
        new_ticket(client, agent, requesterId=str(teacher.id), assigneeId=str(tech.id), title=t)
        for t in ("Lamp out", "Panel flickers", "No sound")
    ]
    new_ticket(client, agent, title="Front office printer")  # nobody's but the desk's
    for ticket in mine:
        client.post(
            f"/api/tickets/{ticket['id']}/internal-notes",
            json={"body": "Spare lamp in the van", "minutesWorked": 15},
            headers=tech.headers,
        )
        client.post(
            f"/api/tickets/{ticket['id']}/comments", json={"body": "On it"}, headers=tech.headers
        )
    closed = client.post(f"/api/tickets/{mine[2]['id']}/cancel", json={}, headers=agent.headers)
    assert closed.status_code == 200, closed.text

    for who in (agent, tech, teacher):
        replica, _ = _replicate(client, who, tmp_path / f"{who.role.value}.sqlite3")
        listed = _api_list(client, who, "/api/tickets")
        if who is agent:  # a desk replica keeps the open queue
            listed = [t for t in listed if t["statusCategory"] != "closed"]
        held = {row.id: row.data for row in replica.rows("tickets")}
        assert set(held) == {t["id"] for t in listed}, who.role
        for ticket in listed:
            shown = client.get(f"/api/tickets/{ticket['id']}", headers=who.headers).json()["data"]
            for field in COMPARED_FIELDS:
                assert held[ticket["id"]].get(field) == shown.get(field), (who.role, field)
            api_comments = {
                c["id"]
                for c in client.get(
                    f"/api/tickets/{ticket['id']}/comments", headers=who.headers
                ).json()["data"]
            }
            if who.role.is_staff:
                notes = client.get(
                    f"/api/tickets/{ticket['id']}/internal-notes", headers=who.headers
                ).json()["data"]
                api_comments |= {n["id"] for n in notes}
            replica_comments = {
                row.id
                for row in replica.rows("ticket_comments")
                if row.data["ticketId"] == ticket["id"]
            }
            assert replica_comments == api_comments, (who.role, ticket["title"])
        if who is teacher:  # people by name: herself, who filed for her, who works on it
            people = {row.id: row.data for row in replica.rows("users")}
            assert set(people) == {str(teacher.id), str(agent.id), str(tech.id)}
            assert people[str(teacher.id)]["email"] == teacher.email
            assert "email" not in people[str(tech.id)] and people[str(tech.id)]["id"]
            assert replica.rows("teams") == [] and replica.rows("sla_rules") == []
        replica.close()


def test_a_photo_taken_offline_is_uploaded_then_attached_once(
    world: World, client: httpx.Client
) -> None:
    from tests.test_uploads import PNG, _intent, _put

    _, agent, tech, _, ticket = _scene(world, client)
    intent = _intent(client, tech.headers, ticketId=ticket["id"])
    assert _put(client, intent, PNG).status_code in (200, 201, 204)
    attachment_id = str(uuid7())
    attach = _mutation(
        1,
        "ticket.attach",
        ticketId=ticket["id"],
        attachmentId=attachment_id,
        storageKey=intent["storageKey"],
    )
    device = uuid7()
    assert _push(client, tech, device, attach)["results"][0]["verdict"] == "applied"
    assert _push(client, tech, device, attach)["results"][0]["verdict"] == "applied"  # replay
    listed = client.get(f"/api/tickets/{ticket['id']}/attachments", headers=agent.headers)
    assert [a["id"] for a in listed.json()["data"]] == [attachment_id]
    rows, _, _, _ = _pull_all(client, tech, uuid7())
    (row,) = rows["ticket_attachments"].values()
    assert row["sha256"] and row["fileName"] == "projector.png"
    other = _intent(client, tech.headers, ticketId=ticket["id"])
    assert _put(client, other, PNG).status_code in (200, 201, 204)
    swapped = _mutation(
        2,
        "ticket.attach",
        ticketId=ticket["id"],
        attachmentId=str(uuid7()),
        storageKey=other["storageKey"],
        sha256="0" * 64,
    )
    refused = _push(client, tech, device, swapped)["results"][0]
    assert (refused["verdict"], refused["code"]) == ("rejected", "VALIDATION_ERROR")
    assert "not the one attached offline" in refused["message"]
    missing = _mutation(
        3, "ticket.attach", ticketId=ticket["id"], attachmentId=str(uuid7()), storageKey="nope"
    )
    refused = _push(client, tech, device, missing)["results"][0]
    assert refused["verdict"] == "rejected", refused


def test_an_app_too_old_for_the_server_is_told_to_update(
    world: World, client: httpx.Client, settings: Any
) -> None:
    from server.core.errors import ApiError
    from server.sync.service import check_protocol

    tenant = world.org()
    tech = world.user(tenant.id, Role.TECHNICIAN)
    answer = client.get("/api/sync/versions", headers=tech.headers)
    assert answer.status_code == 200, answer.text
    served = answer.json()["data"]
    assert served["minProtocol"] == 1 and served["maxProtocol"] >= 1
    assert served["latestClientVersion"]
    ok = _pull(client, tech, uuid7(), clientVersion="0.1.0")
    assert ok["cursor"]

    newer_app = settings.model_copy(update={"sync_min_client_version": "2.0.0"})
    newer_protocol = settings.model_copy(update={"sync_min_protocol": 2})
    refusals = ((1, "1.9.9", newer_app), (0, None, settings), (1, None, newer_protocol))
    for version, app, served_by in refusals:
        with pytest.raises(ApiError) as refused:
            check_protocol(version, served_by, app)
        assert refused.value.code == "UPGRADE_REQUIRED" and refused.value.status_code == 426
        assert "update it" in refused.value.message and "kept" in refused.value.message
    assert refused.value.details["minProtocol"] == 2
    check_protocol(1, newer_app, "2.0.1")


def test_a_device_clock_an_hour_off_is_recorded_and_decides_nothing(
    world: World, client: httpx.Client
) -> None:
    from datetime import UTC, datetime, timedelta

    _, agent, tech, _, ticket = _scene(world, client)
    device = uuid7()
    ahead = datetime.now(UTC) + timedelta(hours=1)
    body = {
        "protocolVersion": 1,
        "deviceId": str(device),
        "sentAt": ahead.isoformat(),
        "mutations": [
            {
                "id": str(uuid7()),
                "seq": 1,
                "kind": "ticket.update",
                "at": (ahead - timedelta(minutes=5)).isoformat(),
                "ticketId": ticket["id"],
                "base": {"priority": "medium"},
                "changes": {"priority": "high"},
            }
        ],
    }
    # someone at the desk changes the title "after" the laptop's edit, by its clock
    client.patch(f"/api/tickets/{ticket['id']}", json={"title": "Renamed"}, headers=agent.headers)
    pushed = client.post("/api/sync/push", json=body, headers=tech.headers).json()["data"]
    assert pushed["results"][0]["verdict"] in ("applied", "merged")
    now = client.get(f"/api/tickets/{ticket['id']}", headers=agent.headers).json()["data"]
    assert (now["priority"], now["title"]) == ("high", "Renamed"), "values merge, times don't"
    (listed,) = client.get("/api/sync/devices", headers=tech.headers).json()["data"]
    assert 3500 <= listed["clockSkewSeconds"] <= 3700


def test_a_reused_sequence_number_is_sent_back_for_renumbering_not_lost(
    world: World, client: httpx.Client
) -> None:
    """A replica restored from a backup numbers its next edit as one it sent before:
    the server does not judge it (nor what follows it in the push) and says from
    which number to go on, so the client renumbers and nothing typed is lost."""
    _, agent, tech, _, ticket = _scene(world, client)
    device = uuid7()
    first = _mutation(1, "ticket.comment", ticketId=ticket["id"], commentId=str(uuid7()), body="a")
    assert _push(client, tech, device, first)["results"][0]["verdict"] == "applied"
    reused = _mutation(1, "ticket.comment", ticketId=ticket["id"], commentId=str(uuid7()), body="b")
    after = _mutation(2, "ticket.comment", ticketId=ticket["id"], commentId=str(uuid7()), body="c")
    answer = _push(client, tech, device, reused, after)
    assert [(r["verdict"], r.get("code")) for r in answer["results"]] == [
        ("rejected", "SEQUENCE_REUSED")
    ]
    assert answer["lastSequence"] == 1
    renumbered = _push(client, tech, device, {**reused, "seq": 2}, {**after, "seq": 3})
    assert [r["verdict"] for r in renumbered["results"]] == ["applied", "applied"]
    bodies = client.get(f"/api/tickets/{ticket['id']}/comments", headers=agent.headers).json()
    assert sorted(c["body"] for c in bodies["data"]) == ["a", "b", "c"]


def test_a_technicians_changed_tickets_are_read_through_the_scope_indexes(
    world: World, client: httpx.Client, db: Database
) -> None:
    """Guarantee 2 as a query plan: the pull reads one index range per scope key
    (assignee, requester, filer, each team), never the organization's whole change
    log, so 100,000 changes by others cost what a sync with nothing new costs."""
    from server.core.tenancy import Caller, bind_tenant
    from server.sync.service import Cursor, Scope, changed_tickets

    tenant = world.org()
    tech = world.user(tenant.id, Role.TECHNICIAN)
    _team_with(client, tenant.admin, tech)
    caller = Caller(
        user_id=tech.id,
        organization_id=tenant.id,
        role=tech.role,
        email=tech.email,
        scopes=frozenset({"*"}),
    )
    with db.session() as session:
        bind_tenant(session, tenant.id)
        statement = changed_tickets(Scope.of(session, caller), Cursor(12), 200)
        compiled = statement.compile(db.engine, compile_kwargs={"literal_binds": True})
        if db.is_sqlite:
            plan = " ".join(
                str(row[-1]) for row in session.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
            )
        else:
            plan = " ".join(str(row[0]) for row in session.execute(text(f"EXPLAIN {compiled}")))
    used = {name for name in re.findall(r"ix_tickets_sync_\w+", plan)}
    assert (
        used
        == {
            "ix_tickets_sync_assignee",
            "ix_tickets_sync_requester",
            "ix_tickets_sync_creator",
            "ix_tickets_sync_team",
        }
        or not db.is_sqlite
    ), plan
    assert "ix_tickets_org_change" not in plan, plan


def test_a_push_answer_carries_what_the_edit_wrote_not_the_whole_history(
    world: World, client: httpx.Client
) -> None:
    _, agent, tech, _, ticket = _scene(world, client)
    for i in range(5):
        client.post(
            f"/api/tickets/{ticket['id']}/comments",
            json={"body": f"old {i}"},
            headers=agent.headers,
        )
    comment_id = str(uuid7())
    result = _push(
        client,
        tech,
        uuid7(),
        _mutation(1, "ticket.comment", ticketId=ticket["id"], commentId=comment_id, body="new"),
    )["results"][0]
    tables = {r["table"]: r["rows"] for r in result["rows"]}
    assert [c["id"] for c in tables["ticket_comments"]] == [comment_id]
    assert [t["commentCount"] for t in tables["tickets"]] == [6]


def test_the_daily_retention_job_checkpoints_every_active_district(
    world: World, db: Database, settings: Any
) -> None:
    from server.jobs import sync_retention

    tenant = world.org()
    horizons = sync_retention(db, settings)
    assert horizons is not None and horizons[tenant.id] is None  # a first checkpoint only
    with db.engine.connect() as connection:
        taken = connection.execute(
            text("SELECT count(*) FROM sync_checkpoints WHERE organization_id = :org"),
            {"org": tenant.id.hex if db.is_sqlite else tenant.id},
        ).scalar_one()
    assert taken == 1
