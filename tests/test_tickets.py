"""Tickets over HTTP: create, numbers, visibility, the workflow by role, comments and
internal notes, history, blockers, merging, lists, search and ETags."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from common.enums import Role
from common.workflow import TRANSITIONS, Capacity, TicketStatus, category
from server.core.engine import Database
from server.mail.models import OutboxEmail
from server.tickets.models import Ticket
from server.tickets.timeline import record as timeline_record
from tests.conftest import POSTGRES_URL, Account, Tenant, World, assert_error


@dataclass
class Desk:
    tenant: Tenant
    admin: Account
    agent: Account
    tech: Account
    other_tech: Account
    requester: Account
    neighbour: Account  # another requester of the same district


@pytest.fixture
def desk(world: World) -> Desk:
    tenant = world.org("maple")
    return Desk(
        tenant=tenant,
        admin=tenant.admin,
        agent=world.user(tenant.id, Role.AGENT, email="agent@maple.example"),
        tech=world.user(tenant.id, Role.TECHNICIAN, email="tech@maple.example"),
        other_tech=world.user(tenant.id, Role.TECHNICIAN, email="tech2@maple.example"),
        requester=world.user(tenant.id, Role.REQUESTER, email="teacher@maple.example"),
        neighbour=world.user(tenant.id, Role.REQUESTER, email="teacher2@maple.example"),
    )


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()["data"]


def new_ticket(client: httpx.Client, who: Account, **fields: Any) -> dict[str, Any]:
    body = {"title": "Projector dead in room 204", "description": "No picture at all", **fields}
    return _ok(client.post("/api/tickets", json=body, headers=who.headers), 201)


def force_status(db: Database, org_id: uuid.UUID, ticket_id: str, status: TicketStatus) -> None:
    with db.transaction(tenant=org_id) as session:
        session.execute(
            update(Ticket)
            .where(Ticket.id == uuid.UUID(ticket_id))
            .values(status=status.value, status_category=category(status).value)
        )


# --- create and numbers -----------------------------------------------------------


def test_teacher_reports_a_problem_and_gets_a_numbered_ticket(
    client: httpx.Client, desk: Desk
) -> None:
    first = new_ticket(client, desk.requester)
    second = new_ticket(client, desk.requester, ticketType="service_request", title="New laptop")
    third = new_ticket(client, desk.requester)
    assert first["number"] == "INC-000001"
    assert second["number"] == "SR-000001"
    assert third["number"] == "INC-000002"
    assert first["status"] == "new" and first["statusCategory"] == "open"
    assert first["requesterId"] == str(desk.requester.id)
    assert first["createdById"] is None
    assert first["priority"] == "medium"
    assert first["internalNoteCount"] is None  # a requester never learns notes exist
    # the requester's next steps: cancel only (they cannot triage their own ticket)
    assert {t["name"] for t in first["availableTransitions"]} == {"cancel"}


def test_numbers_are_per_organization(client: httpx.Client, world: World, desk: Desk) -> None:
    other = world.org("oak")
    assert new_ticket(client, desk.requester)["number"] == "INC-000001"
    assert new_ticket(client, other.admin)["number"] == "INC-000001"


def test_incident_priority_follows_impact_and_urgency(client: httpx.Client, desk: Desk) -> None:
    critical = new_ticket(client, desk.agent, impact="high", urgency="high")
    assert critical["priority"] == "critical"
    low = new_ticket(client, desk.agent, impact="low", urgency="medium")
    assert low["priority"] == "low"
    explicit = new_ticket(client, desk.agent, impact="high", urgency="high", priority="low")
    assert explicit["priority"] == "low"
    # raising the urgency later re-derives the priority
    changed = _ok(
        client.patch(
            f"/api/tickets/{low['id']}", json={"urgency": "high"}, headers=desk.agent.headers
        )
    )
    assert changed["priority"] == "medium"


def test_agent_files_on_behalf_of_a_teacher(client: httpx.Client, desk: Desk) -> None:
    ticket = new_ticket(client, desk.agent, requesterId=str(desk.requester.id), source="phone")
    assert ticket["requesterId"] == str(desk.requester.id)
    assert ticket["createdById"] == str(desk.agent.id)
    # the teacher sees it as theirs
    mine = _ok(client.get("/api/tickets", headers=desk.requester.headers))
    assert [t["id"] for t in mine] == [ticket["id"]]
    # a requester cannot file for someone else, or pick the technician
    assert_error(
        client.post(
            "/api/tickets",
            json={"title": "x", "requesterId": str(desk.neighbour.id)},
            headers=desk.requester.headers,
        ),
        403,
    )
    assert_error(
        client.post(
            "/api/tickets",
            json={"title": "x", "assigneeId": str(desk.tech.id)},
            headers=desk.requester.headers,
        ),
        403,
    )


def test_bad_references_are_refused_and_nothing_is_created(
    client: httpx.Client, world: World, desk: Desk, db: Database
) -> None:
    other = world.org("oak")
    stranger = world.user(other.id, Role.TECHNICIAN)
    for body in (
        {"title": "x", "assigneeId": str(desk.requester.id)},  # not staff
        {"title": "x", "assigneeId": str(stranger.id)},  # another district
        {"title": "x", "roomId": str(uuid.uuid4())},
        {"title": "x", "departmentId": str(uuid.uuid4())},
        {"title": "x", "teamId": str(uuid.uuid4())},
        {"title": "x", "watcherIds": [str(uuid.uuid4())]},
        {"title": "x", "priority": "urgent"},
        {"title": ""},
        {"title": "x", "tags": ["has,comma"]},
    ):
        response = client.post("/api/tickets", json=body, headers=desk.agent.headers)
        assert response.status_code == 422, (body, response.text)
    with db.transaction(tenant=desk.tenant.id) as session:
        assert session.scalars(select(Ticket)).all() == []


# --- visibility -------------------------------------------------------------------


def test_who_sees_which_ticket(client: httpx.Client, desk: Desk) -> None:
    ticket = new_ticket(client, desk.requester)
    url = f"/api/tickets/{ticket['id']}"
    for who in (desk.requester, desk.agent, desk.admin):
        _ok(client.get(url, headers=who.headers))
    for who in (desk.neighbour, desk.tech):
        assert_error(client.get(url, headers=who.headers), 404)
    _ok(
        client.patch(
            f"{url}/assign", json={"assigneeId": str(desk.tech.id)}, headers=desk.agent.headers
        )
    )
    _ok(client.get(url, headers=desk.tech.headers))
    assert_error(client.get(url, headers=desk.other_tech.headers), 404)
    listed = _ok(client.get("/api/tickets", headers=desk.tech.headers))
    assert [t["id"] for t in listed] == [ticket["id"]]
    assert _ok(client.get("/api/tickets", headers=desk.other_tech.headers)) == []
    assert _ok(client.get("/api/tickets", headers=desk.neighbour.headers)) == []


def test_internal_notes_stay_with_staff(client: httpx.Client, desk: Desk) -> None:
    ticket = new_ticket(client, desk.requester)
    url = f"/api/tickets/{ticket['id']}"
    _ok(
        client.post(
            f"{url}/internal-notes",
            json={"body": "Vendor says the lamp board is recalled"},
            headers=desk.agent.headers,
        ),
        201,
    )
    _ok(
        client.post(f"{url}/comments", json={"body": "We are on it"}, headers=desk.agent.headers),
        201,
    )
    staff_view = _ok(client.get(url, headers=desk.agent.headers))
    assert staff_view["internalNoteCount"] == 1 and staff_view["commentCount"] == 1
    teacher_view = _ok(client.get(url, headers=desk.requester.headers))
    assert teacher_view["internalNoteCount"] is None and teacher_view["commentCount"] == 1

    history = _ok(client.get(f"{url}/history", headers=desk.requester.headers))
    assert "recalled" not in str(history)
    assert [e["kind"] for e in history if e["kind"] in ("comment", "internal_note")] == ["comment"]
    staff_history = _ok(client.get(f"{url}/history", headers=desk.agent.headers))
    assert "recalled" in str(staff_history)

    assert_error(client.get(f"{url}/internal-notes", headers=desk.requester.headers), 403)
    assert_error(
        client.post(
            f"{url}/internal-notes", json={"body": "sneaky"}, headers=desk.requester.headers
        ),
        403,
    )
    # search never finds a ticket through a note the caller may not read
    found = _ok(client.get("/api/tickets", params={"q": "recalled"}, headers=desk.agent.headers))
    assert [t["id"] for t in found] == [ticket["id"]]
    hidden = _ok(
        client.get("/api/tickets", params={"q": "recalled"}, headers=desk.requester.headers)
    )
    assert hidden == []
    searched = _ok(
        client.post(
            "/api/tickets/search", json={"query": "recalled"}, headers=desk.requester.headers
        )
    )
    assert searched == []


def test_what_a_requester_asks_for_is_urgency_and_staff_set_priority(
    client: httpx.Client, desk: Desk
) -> None:
    """A teacher cannot give their own ticket a critical SLA, on create as on update:
    the priority they ask for becomes the ticket's urgency; staff choose priority."""
    asked = new_ticket(client, desk.requester, priority="critical")
    assert asked["priority"] == "medium" and asked["urgency"] == "high"
    matrix = new_ticket(client, desk.requester, impact="high", urgency="high")
    assert matrix["priority"] == "medium" and matrix["urgency"] == "high"
    refused = client.patch(
        f"/api/tickets/{asked['id']}", json={"priority": "critical"}, headers=desk.requester.headers
    )
    assert_error(refused, 403, "PERMISSION_DENIED")
    # the desk decides, on create or later
    assert new_ticket(client, desk.agent, priority="critical")["priority"] == "critical"
    assert new_ticket(client, desk.agent, impact="high", urgency="high")["priority"] == "critical"
    triaged = _ok(
        client.patch(
            f"/api/tickets/{asked['id']}", json={"priority": "high"}, headers=desk.agent.headers
        )
    )
    assert triaged["priority"] == "high"


# --- the workflow by role -----------------------------------------------------------

ROLE_CAPACITY = {
    "requester": {Capacity.REQUESTER},
    "assignee": {Capacity.ASSIGNEE},
    "agent": {Capacity.AGENT},
    "admin": {Capacity.ADMIN},
}
EDGES = sorted(
    {(source, t.target) for t in TRANSITIONS for source in t.sources},
    key=lambda e: (e[0].value, e[1].value),
)


def _caller(desk: Desk, name: str) -> Account:
    return {
        "requester": desk.requester,
        "assignee": desk.tech,
        "agent": desk.agent,
        "admin": desk.admin,
    }[name]


def _ticket_in(
    client: httpx.Client, db: Database, desk: Desk, status: TicketStatus
) -> dict[str, Any]:
    ticket = new_ticket(client, desk.requester)
    with db.transaction(tenant=desk.tenant.id) as session:
        session.execute(
            update(Ticket)
            .where(Ticket.id == uuid.UUID(ticket["id"]))
            .values(
                status=status.value,
                status_category=category(status).value,
                assignee_id=desk.tech.id,
            )
        )
    return ticket


@pytest.mark.parametrize("role", sorted(ROLE_CAPACITY))
def test_every_workflow_edge_by_role(
    client: httpx.Client, db: Database, desk: Desk, role: str
) -> None:
    """Each (from, to) pair the workflow defines: allowed for exactly the capacities
    its definition names; refused with 403 and no change for the others."""
    who = _caller(desk, role)
    problems = []
    for source, target in EDGES:
        ticket = _ticket_in(client, db, desk, source)
        allowed = any(
            source in t.sources and t.target is target and t.allowed & ROLE_CAPACITY[role]
            for t in TRANSITIONS
        )
        response = client.patch(
            f"/api/tickets/{ticket['id']}/status",
            json={"status": target.value},
            headers=who.headers,
        )
        expected = 200 if allowed else 403
        if response.status_code != expected:
            problems.append(f"{role}: {source}->{target}: {response.status_code} {response.text}")
            continue
        after = _ok(client.get(f"/api/tickets/{ticket['id']}", headers=desk.agent.headers))
        if after["status"] != (target if allowed else source).value:
            problems.append(f"{role}: {source}->{target} left it {after['status']}")
    assert not problems, "\n".join(problems)


def test_moves_the_workflow_does_not_define_are_refused(
    client: httpx.Client, db: Database, desk: Desk
) -> None:
    defined = set(EDGES)
    ticket = new_ticket(client, desk.requester)
    problems = []
    for source, target in itertools.product(TicketStatus, TicketStatus):
        if (source, target) in defined:
            continue
        force_status(db, desk.tenant.id, ticket["id"], source)
        response = client.patch(
            f"/api/tickets/{ticket['id']}/status",
            json={"status": target.value},
            headers=desk.admin.headers,
        )
        closed = category(source).value == "closed"
        code = "TICKET_ALREADY_CLOSED" if closed else "INVALID_STATUS_TRANSITION"
        if response.status_code != 409 or response.json()["error"]["code"] != code:
            problems.append(f"{source}->{target}: {response.status_code} {response.text}")
    assert not problems, "\n".join(problems)


def test_a_closed_ticket_cannot_be_changed_until_reopened(
    client: httpx.Client, db: Database, desk: Desk
) -> None:
    ticket = new_ticket(client, desk.requester)
    url = f"/api/tickets/{ticket['id']}"
    force_status(db, desk.tenant.id, ticket["id"], TicketStatus.CLOSED)
    for method, path, body in (
        ("PATCH", "", {"title": "changed"}),
        ("POST", "/comments", {"body": "hello?"}),
        ("PATCH", "/assign", {"assigneeId": str(desk.tech.id)}),
    ):
        response = client.request(method, url + path, json=body, headers=desk.agent.headers)
        assert_error(response, 409, "TICKET_ALREADY_CLOSED")
    reopened = _ok(client.patch(f"{url}/reopen", json={}, headers=desk.requester.headers))
    assert reopened["status"] == "open" and reopened["closedAt"] is None
    _ok(client.patch(url, json={"title": "Projector dead again"}, headers=desk.agent.headers))


def test_stage_timestamps_agree_with_the_status_after_every_move(
    client: httpx.Client, db: Database, desk: Desk
) -> None:
    """Whatever the timestamps said before, after a move resolvedAt is set exactly when
    the ticket is resolved or closed (not cancelled), and closedAt exactly when it is
    closed or cancelled (a reopen and a rejected resolution clear both)."""
    stale = datetime(2020, 1, 1, tzinfo=UTC)
    problems = []
    for source, target in EDGES:
        if not any(
            source in t.sources and t.target is target and t.allowed & ROLE_CAPACITY["admin"]
            for t in TRANSITIONS
        ):
            continue
        ticket = _ticket_in(client, db, desk, source)
        with db.transaction(tenant=desk.tenant.id) as session:
            session.execute(
                update(Ticket)
                .where(Ticket.id == uuid.UUID(ticket["id"]))
                .values(resolved_at=stale, closed_at=stale)
            )
        moved = _ok(
            client.patch(
                f"/api/tickets/{ticket['id']}/status",
                json={"status": target.value},
                headers=desk.admin.headers,
            )
        )
        stage = category(target).value
        want_resolved = stage in ("resolved", "closed") and target is not TicketStatus.CANCELLED
        want_closed = stage == "closed"
        resolved_at, closed_at = moved["resolvedAt"], moved["closedAt"]
        if want_resolved != (resolved_at is not None) or want_closed != (closed_at is not None):
            problems.append(f"{source}->{target}: resolvedAt={resolved_at} closedAt={closed_at}")
        if source is TicketStatus.RESOLVED and target is TicketStatus.CLOSED:
            resolved_at = None  # closing keeps the time it was resolved
        for value in (resolved_at, closed_at):
            if value is not None and value.startswith("2020"):
                problems.append(f"{source}->{target}: kept a stale timestamp {value}")
    assert not problems, "\n".join(problems)


def test_a_parent_must_be_a_ticket_the_caller_can_see(client: httpx.Client, desk: Desk) -> None:
    """A requester (or a technician) cannot hang their ticket under someone else's
    ticket: the link would list theirs among its children and prove it exists."""
    others = new_ticket(client, desk.neighbour, title="Broken blinds in 12")
    for who in (desk.requester, desk.other_tech):
        body = {"title": "Mine", "parentId": others["id"]}
        refused = client.post("/api/tickets", json=body, headers=who.headers)
        assert assert_error(refused, 422, "VALIDATION_ERROR")["details"] == {"field": "parentId"}
    own = new_ticket(client, desk.requester)  # assigned to the technician, who may edit it
    _ok(
        client.patch(
            f"/api/tickets/{own['id']}/assign",
            json={"assigneeId": str(desk.other_tech.id)},
            headers=desk.agent.headers,
        )
    )
    patched = client.patch(
        f"/api/tickets/{own['id']}",
        json={"parentId": others["id"]},
        headers=desk.other_tech.headers,
    )
    assert assert_error(patched, 422, "VALIDATION_ERROR")["details"] == {"field": "parentId"}
    assert (
        _ok(client.get(f"/api/tickets/{others['id']}", headers=desk.agent.headers))["children"]
        == []
    )
    # a ticket they can see is a parent they may name; the desk may name any
    mine = new_ticket(client, desk.requester)
    child = new_ticket(client, desk.requester, title="Also mine", parentId=mine["id"])
    assert child["parentId"] == mine["id"]
    new_ticket(client, desk.agent, title="Desk follow-up", parentId=others["id"])


def test_the_whole_life_of_a_ticket(client: httpx.Client, desk: Desk, db: Database) -> None:
    ticket = new_ticket(client, desk.requester)
    url = f"/api/tickets/{ticket['id']}"
    assigned = _ok(
        client.patch(
            f"{url}/assign", json={"assigneeId": str(desk.tech.id)}, headers=desk.agent.headers
        )
    )
    assert assigned["status"] == "assigned"
    started = _ok(client.post(f"{url}/start-work", json={}, headers=desk.tech.headers))
    assert started["status"] == "in_progress" and started["startedAt"]
    assert started["firstResponseAt"]
    waiting = _ok(
        client.patch(
            f"{url}/status",
            json={"status": "waiting_on_requester", "note": "Which input is it on?"},
            headers=desk.tech.headers,
        )
    )
    assert waiting["statusCategory"] == "paused"
    # the teacher answers: work continues by itself
    _ok(
        client.post(f"{url}/comments", json={"body": "HDMI 1"}, headers=desk.requester.headers), 201
    )
    assert _ok(client.get(url, headers=desk.tech.headers))["status"] == "in_progress"
    resolved = _ok(
        client.post(
            f"{url}/finish-work",
            json={"resolutionNotes": "Replaced the lamp", "minutesWorked": 30},
            headers=desk.tech.headers,
        )
    )
    assert resolved["status"] == "resolved" and resolved["resolutionNotes"] == "Replaced the lamp"
    assert resolved["minutesWorked"] == 30
    # the teacher says it is still broken
    rejected = _ok(
        client.post(
            f"{url}/reject", json={"reason": "Still flickers"}, headers=desk.requester.headers
        )
    )
    assert rejected["status"] == "in_progress"
    assert rejected["resolvedAt"] is None, "a rejected resolution is no longer resolved"
    _ok(client.post(f"{url}/resolve", json={"note": "New bulb"}, headers=desk.tech.headers))
    closed = _ok(
        client.post(
            f"{url}/approve", json={"satisfactionRating": 5}, headers=desk.requester.headers
        )
    )
    assert closed["status"] == "closed" and closed["closedAt"]
    assert closed["satisfactionRating"] == 5

    history = _ok(client.get(f"{url}/history", headers=desk.agent.headers))
    moves = [(e["data"]["from"], e["data"]["to"]) for e in history if e["kind"] == "status_changed"]
    assert moves == [
        ("new", "assigned"),
        ("assigned", "in_progress"),
        ("in_progress", "waiting_on_requester"),
        ("waiting_on_requester", "in_progress"),
        ("in_progress", "resolved"),
        ("resolved", "in_progress"),
        ("in_progress", "resolved"),
        ("resolved", "closed"),
    ]
    kinds = [e["kind"] for e in history]
    assert kinds[0] == "created" and "assigned" in kinds and "comment" in kinds
    # the teacher was asked to approve, by email too
    with db.transaction(tenant=desk.tenant.id) as session:
        subjects = session.scalars(
            select(OutboxEmail.subject).where(OutboxEmail.to_address == desk.requester.email)
        ).all()
    assert any("resolved" in s for s in subjects), subjects


def test_assignment_and_technician_self_claim(client: httpx.Client, desk: Desk) -> None:
    ticket = new_ticket(client, desk.agent)
    url = f"/api/tickets/{ticket['id']}"
    # a technician cannot hand work to someone else, but can take it
    assert_error(
        client.patch(
            f"{url}/assign", json={"assigneeId": str(desk.other_tech.id)}, headers=desk.tech.headers
        ),
        404,  # and cannot see an unassigned ticket of the queue at all
    )
    _ok(
        client.patch(
            f"{url}/assign", json={"assigneeId": str(desk.tech.id)}, headers=desk.agent.headers
        )
    )
    assert_error(
        client.patch(
            f"{url}/assign", json={"assigneeId": str(desk.other_tech.id)}, headers=desk.tech.headers
        ),
        403,
    )
    unassigned = _ok(
        client.patch(f"{url}/assign", json={"assigneeId": None}, headers=desk.agent.headers)
    )
    assert unassigned["status"] == "open" and unassigned["assigneeId"] is None
    assert_error(client.patch(f"{url}/assign", json={}, headers=desk.agent.headers), 422)


def test_requester_edits_only_their_words(client: httpx.Client, desk: Desk) -> None:
    ticket = new_ticket(client, desk.requester)
    url = f"/api/tickets/{ticket['id']}"
    edited = _ok(
        client.patch(
            url, json={"description": "No picture, fan runs"}, headers=desk.requester.headers
        )
    )
    assert edited["description"] == "No picture, fan runs"
    assert_error(
        client.patch(url, json={"priority": "critical"}, headers=desk.requester.headers), 403
    )
    assert_error(
        client.patch(url, json={"satisfactionRating": 4}, headers=desk.requester.headers), 422
    )


# --- comments, mentions, history ------------------------------------------------------


def test_mentions_notify_the_mentioned(client: httpx.Client, desk: Desk) -> None:
    ticket = new_ticket(client, desk.requester)
    _ok(
        client.post(
            f"/api/tickets/{ticket['id']}/internal-notes",
            json={"body": "@tech@maple.example can you look at the bulb? @teacher2@maple.example"},
            headers=desk.agent.headers,
        ),
        201,
    )
    notes = _ok(client.get("/api/notifications", headers=desk.tech.headers))
    assert any(n["event"] == "mentioned" and n["ticketId"] == ticket["id"] for n in notes), notes
    # a requester is never pulled into a staff-only note
    assert _ok(client.get("/api/notifications", headers=desk.neighbour.headers)) == []


def test_field_changes_appear_in_the_history(client: httpx.Client, desk: Desk) -> None:
    ticket = new_ticket(client, desk.requester)
    url = f"/api/tickets/{ticket['id']}"
    _ok(
        client.patch(
            url, json={"priority": "high", "tags": ["AV", "av", "lamp"]}, headers=desk.agent.headers
        )
    )
    history = _ok(client.get(f"{url}/history", headers=desk.agent.headers))
    changed = [e for e in history if e["kind"] == "fields_changed"][-1]
    assert changed["data"]["changes"]["priority"] == {"from": "medium", "to": "high"}
    assert changed["data"]["changes"]["tags"]["to"] == ["av", "lamp"]
    assert changed["actorId"] == str(desk.agent.id)


# --- blockers, children and merging -------------------------------------------------


def test_open_blockers_prevent_resolving(client: httpx.Client, desk: Desk) -> None:
    network = new_ticket(client, desk.agent, title="Switch down in closet B")
    projector = new_ticket(client, desk.agent)
    url = f"/api/tickets/{projector['id']}"
    linked = _ok(
        client.post(
            f"{url}/blockers", json={"blockerId": network["id"]}, headers=desk.agent.headers
        ),
        201,
    )
    assert linked["openBlockerCount"] == 1
    assert [b["id"] for b in linked["blockedBy"]] == [network["id"]]
    _ok(client.post(f"{url}/start-work", json={}, headers=desk.agent.headers))
    assert_error(
        client.post(f"{url}/resolve", json={}, headers=desk.agent.headers),
        422,
        "BUSINESS_RULE_VIOLATION",
    )
    # a cycle is refused
    assert_error(
        client.post(
            f"/api/tickets/{network['id']}/blockers",
            json={"blockerId": projector["id"]},
            headers=desk.agent.headers,
        ),
        409,
    )
    _ok(
        client.post(f"/api/tickets/{network['id']}/start-work", json={}, headers=desk.agent.headers)
    )
    _ok(client.post(f"/api/tickets/{network['id']}/resolve", json={}, headers=desk.agent.headers))
    assert _ok(client.get(url, headers=desk.agent.headers))["openBlockerCount"] == 0
    _ok(client.post(f"{url}/resolve", json={}, headers=desk.agent.headers))
    # reopening the blocker counts it again
    _ok(client.patch(f"/api/tickets/{network['id']}/reopen", json={}, headers=desk.agent.headers))
    assert _ok(client.get(url, headers=desk.agent.headers))["openBlockerCount"] == 1


def test_a_requester_reads_no_cost_part_time_or_internal_work_on_any_path(
    client: httpx.Client, db: Database, desk: Desk
) -> None:
    """Staff record parts, time and internal notes on a teacher's ticket, and the SLA
    breaches; every path a ticket reaches its requester by shows none of it, while
    staff see all of it."""
    ticket = new_ticket(client, desk.requester, title="Smartboard dead in 12")
    url = f"/api/tickets/{ticket['id']}"
    admin = desk.admin.headers
    van = _ok(client.post("/api/inventory/locations", json={"name": "Van 3", "kind": "van"},
                          headers=admin), 201)  # fmt: skip
    part = _ok(
        client.post(
            "/api/inventory/parts",
            json={"name": "Pen tray sensorXQ", "unitCost": 89.0, "currentStock": 2,
                  "locationId": van["id"]},
            headers=admin,
        ),
        201,
    )  # fmt: skip
    _ok(client.post(f"{url}/parts", json={"partId": part["id"], "locationId": van["id"],
                                          "quantity": 1}, headers=admin), 201)  # fmt: skip
    _ok(client.post(f"{url}/internal-notes", json={"body": "Vendor quote noteQZ",
                                                   "minutesWorked": 40}, headers=admin), 201)  # fmt: skip
    _ok(client.post(f"{url}/comments", json={"body": "Replaced the tray", "minutesWorked": 25},
                    headers=admin), 201)  # fmt: skip
    with db.transaction(tenant=desk.tenant.id) as session:
        row = session.get_one(Ticket, uuid.UUID(ticket["id"]))
        timeline_record(session, row, "sla_breached", target="resolution", dueAt="2026-01-01")

    staff = _ok(client.get(url, headers=admin))
    assert staff["minutesWorked"] == 65 and staff["partsCostCents"] == 8900
    assert staff["cost"]["totalCents"] >= 8900
    staff_kinds = {e["kind"] for e in _ok(client.get(f"{url}/history", headers=admin))}
    assert {"part_used", "internal_note", "sla_breached"} <= staff_kinds

    who = desk.requester.headers
    reads = {
        "read": client.get(url, headers=who),
        "history": client.get(f"{url}/history", headers=who),
        "comments": client.get(f"{url}/comments", headers=who),
        "attachments": client.get(f"{url}/attachments", headers=who),
        "list": client.get("/api/tickets", headers=who),
        "search": client.get("/api/tickets", params={"q": "smartboard"}, headers=who),
        "structured search": client.post("/api/tickets/search", json={}, headers=who),
        "notifications": client.get("/api/notifications", headers=who),
    }
    problems = []
    for path, response in reads.items():
        if response.status_code != 200:
            problems.append(f"{path}: {response.status_code} {response.text[:200]}")
            continue
        text = response.text
        for secret in ("sensorXQ", "noteQZ", "Van 3", "part_used", "sla_breached", "8900"):
            if secret in text:
                problems.append(f"{path}: shows {secret!r}")
        body = response.json()["data"]
        for item in body if isinstance(body, list) else [body]:
            if "number" not in item:
                continue
            for field in ("minutesWorked", "partsCostCents", "cost", "escalationLevel",
                          "internalNoteCount", "slaRuleId"):  # fmt: skip
                if item.get(field) is not None:
                    problems.append(f"{path}: {field}={item[field]}")
    history = reads["history"].json()["data"]
    for entry in history:
        if "minutesWorked" in entry["data"]:
            problems.append(f"history: {entry['kind']} carries minutesWorked")
    assert any(e["kind"] == "comment" for e in history), "the conversation is still there"
    assert not problems, "\n".join(problems)


def test_the_timeline_names_people_and_teams(
    client: httpx.Client, world: World, desk: Desk
) -> None:
    """Each line says who acted and to whom or which team a ticket went, by name,
    beside the ids: a timeline reads without looking anyone up (offline, too)."""
    dana = world.user(desk.tenant.id, Role.TECHNICIAN, first_name="Dana", last_name="Reyes")
    team = _ok(
        client.post(
            "/api/teams",
            json={"name": "North Field Team", "memberIds": [str(dana.id)]},
            headers=desk.admin.headers,
        ),
        201,
    )
    ticket = new_ticket(client, desk.requester)
    url = f"/api/tickets/{ticket['id']}"
    body = {"teamId": team["id"], "assigneeId": str(dana.id)}
    _ok(client.patch(f"{url}/assign", json=body, headers=desk.agent.headers))
    _ok(client.post(f"{url}/comments", json={"body": "On my way"}, headers=dana.headers), 201)
    for viewer in (desk.agent, desk.requester):
        history = _ok(client.get(f"{url}/history", headers=viewer.headers))
        assigned = next(e for e in history if e["kind"] == "assigned")
        assert assigned["actorName"] == desk.agent.email  # no name on file: the email
        assert assigned["data"]["assignee"]["to"] == str(dana.id)
        assert assigned["data"]["assignee"]["toName"] == "Dana Reyes"
        assert assigned["data"]["assignee"]["fromName"] is None
        assert assigned["data"]["team"]["toName"] == "North Field Team"
        comment = next(e for e in history if e["kind"] == "comment")
        assert (comment["actorId"], comment["actorName"]) == (str(dana.id), "Dana Reyes")
        created = next(e for e in history if e["kind"] == "created")
        assert created["actorName"] == desk.requester.email


def test_a_requester_learns_their_ticket_waits_not_on_what(
    client: httpx.Client, desk: Desk
) -> None:
    """A teacher's ticket blocked by the desk's network ticket shows an open blocker,
    but neither the ticket read nor the timeline names the hidden ticket."""
    network = new_ticket(client, desk.agent, title="Core switch replacement, budget codes")
    projector = new_ticket(client, desk.requester)
    url = f"/api/tickets/{projector['id']}"
    _ok(
        client.post(
            f"{url}/blockers", json={"blockerId": network["id"]}, headers=desk.agent.headers
        ),
        201,
    )
    for path in ("", "/history"):
        response = client.get(url + path, headers=desk.requester.headers)
        assert response.status_code == 200, response.text
        for secret in (network["id"], network["number"], "Core switch"):
            assert secret not in response.text, (path, secret)
    seen = _ok(client.get(url, headers=desk.requester.headers))
    assert seen["openBlockerCount"] == 1 and seen["blockedBy"] == []
    linked = next(
        e
        for e in _ok(client.get(f"{url}/history", headers=desk.requester.headers))
        if e["kind"] == "linked"
    )
    assert linked["data"]["relation"] == "blocked_by" and linked["data"]["otherHidden"]
    # the desk sees what it waits on
    desk_view = _ok(client.get(url, headers=desk.agent.headers))
    assert [b["number"] for b in desk_view["blockedBy"]] == [network["number"]]


def test_merging_a_duplicate_keeps_its_conversation(client: httpx.Client, desk: Desk) -> None:
    original = new_ticket(client, desk.requester)
    duplicate = new_ticket(client, desk.neighbour, title="Room 204 projector broken")
    _ok(
        client.post(
            f"/api/tickets/{duplicate['id']}/comments",
            json={"body": "It smells burnt"},
            headers=desk.neighbour.headers,
        ),
        201,
    )
    merged = _ok(
        client.post(
            f"/api/tickets/{duplicate['id']}/merge",
            json={"intoId": original["id"]},
            headers=desk.agent.headers,
        )
    )
    assert merged["id"] == original["id"] and merged["commentCount"] == 1
    assert str(desk.neighbour.id) in merged["watcherIds"]
    old = _ok(client.get(f"/api/tickets/{duplicate['id']}", headers=desk.agent.headers))
    assert old["status"] == "cancelled" and old["mergedIntoId"] == original["id"]
    history = _ok(client.get(f"/api/tickets/{original['id']}/history", headers=desk.agent.headers))
    comment = next(e for e in history if e["kind"] == "comment")
    assert comment["body"] == "It smells burnt"
    assert comment["data"]["fromTicketId"] == duplicate["id"]
    assert any(e["kind"] == "merged" for e in history)
    # the duplicate's own history came along too
    assert any(e["kind"] == "created" and e["data"].get("fromTicketId") for e in history)


# --- lists, search, ETags -----------------------------------------------------------


def test_list_filters_and_sort(client: httpx.Client, desk: Desk) -> None:
    a = new_ticket(client, desk.agent, priority="low", tags=["av"])
    b = new_ticket(client, desk.agent, priority="critical", ticketType="problem")
    c = new_ticket(client, desk.requester, priority=None)
    _ok(
        client.patch(
            f"/api/tickets/{b['id']}/assign",
            json={"assigneeId": str(desk.agent.id)},
            headers=desk.agent.headers,
        )
    )

    def ids(**params: Any) -> list[str]:
        return [
            t["id"]
            for t in _ok(client.get("/api/tickets", params=params, headers=desk.agent.headers))
        ]

    assert ids() == [c["id"], b["id"], a["id"]]  # newest first
    assert ids(sort="-priority") == [b["id"], c["id"], a["id"]]
    assert ids(priority=["low", "critical"], sort="createdAt") == [a["id"], b["id"]]
    assert ids(type="problem") == [b["id"]]
    assert ids(assignedToMe="true") == [b["id"]]
    assert ids(status="assigned") == [b["id"]]
    assert ids(statusCategory="open", requesterId=str(desk.requester.id)) == [c["id"]]
    assert ids(tag="AV") == [a["id"]]
    assert set(ids(unassigned="true")) == {a["id"], c["id"]}
    assert ids(q=b["number"]) == [b["id"]]
    assert ids(q="proj") and ids(q="nothing-like-this") == []
    assert_error(
        client.get("/api/tickets", params={"sort": "secret"}, headers=desk.agent.headers), 422
    )
    assert_error(
        client.get("/api/tickets", params={"status": "bogus"}, headers=desk.agent.headers), 422
    )


def test_the_desk_queues_by_team_and_technician(client: httpx.Client, desk: Desk) -> None:
    """A team's queue of tickets waiting for a technician, tickets in no team at all,
    and "no technician yet" wherever they are."""
    team = _ok(
        client.post(
            "/api/teams",
            json={"name": "Field", "memberIds": [str(desk.tech.id)]},
            headers=desk.admin.headers,
        ),
        201,
    )
    waiting = new_ticket(client, desk.requester, title="Waiting in the team")
    taken = new_ticket(client, desk.requester, title="Taken by the technician")
    loose = new_ticket(client, desk.requester, title="In no queue")
    for ticket, body in (
        (waiting, {"teamId": team["id"]}),
        (taken, {"teamId": team["id"], "assigneeId": str(desk.tech.id)}),
    ):
        _ok(
            client.patch(
                f"/api/tickets/{ticket['id']}/assign", json=body, headers=desk.agent.headers
            )
        )

    def ids(**params: Any) -> set[str]:
        found = _ok(client.get("/api/tickets", params=params, headers=desk.agent.headers))
        return {t["id"] for t in found}

    assert ids(teamId=team["id"], assigneeId="none") == {waiting["id"]}
    assert ids(teamId=team["id"], unassigned="true") == {waiting["id"]}
    assert ids(unassigned="true") == ids(assigneeId="none") == {waiting["id"], loose["id"]}
    assert ids(teamId="none") == {loose["id"]}
    assert ids(teamId=["none", team["id"]]) == {waiting["id"], taken["id"], loose["id"]}
    assert ids(assigneeId=["none", str(desk.tech.id)]) == {waiting["id"], taken["id"], loose["id"]}
    assert ids(teamId=team["id"]) == {waiting["id"], taken["id"]}
    for bad in ("nobody", "None "):
        refused = client.get("/api/tickets", params={"teamId": bad}, headers=desk.agent.headers)
        assert_error(refused, 422, "VALIDATION_ERROR")


def test_etag_and_if_none_match(client: httpx.Client, desk: Desk) -> None:
    ticket = new_ticket(client, desk.requester)
    url = f"/api/tickets/{ticket['id']}"
    first = client.get(url, headers=desk.agent.headers)
    etag = first.headers["etag"]
    again = client.get(url, headers={**desk.agent.headers, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    # a requester's view is a different representation
    assert client.get(url, headers=desk.requester.headers).headers["etag"] != etag
    _ok(client.patch(url, json={"priority": "high"}, headers=desk.agent.headers))
    changed = client.get(url, headers={**desk.agent.headers, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    # If-Match protects against overwriting someone else's change
    assert_error(
        client.patch(
            url, json={"priority": "low"}, headers={**desk.agent.headers, "If-Match": etag}
        ),
        412,
        "PRECONDITION_FAILED",
    )
    assert _ok(client.get(url, headers=desk.agent.headers))["priority"] == "high"


@pytest.mark.postgres_only
def test_two_agents_editing_at_once_lose_neither_change(
    client: httpx.Client, world: World, desk: Desk
) -> None:
    import concurrent.futures

    second_agent = world.user(desk.tenant.id, Role.AGENT)
    tickets = [new_ticket(client, desk.requester) for _ in range(5)]

    def edit(args: tuple[str, Account, dict[str, Any]]) -> int:
        ticket_id, who, body = args
        return client.patch(f"/api/tickets/{ticket_id}", json=body, headers=who.headers).status_code

    jobs = []
    for t in tickets:
        jobs.append((t["id"], desk.agent, {"priority": "high", "tags": ["av"]}))
        jobs.append(
            (t["id"], second_agent, {"category": "Projectors", "watcherIds": [str(desk.tech.id)]})
        )
        jobs.append((t["id"], desk.agent, {"description": "Lamp and fan"}))
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        assert set(pool.map(edit, jobs)) == {200}
    for t in tickets:
        after = _ok(client.get(f"/api/tickets/{t['id']}", headers=desk.agent.headers))
        assert after["priority"] == "high" and after["tags"] == ["av"]
        assert after["category"] == "Projectors" and after["watcherIds"] == [str(desk.tech.id)]
        assert after["description"] == "Lamp and fan"
        history = _ok(client.get(f"/api/tickets/{t['id']}/history", headers=desk.agent.headers))
        assert len([e for e in history if e["kind"] == "fields_changed"]) == 3


# --- waiting on the requester ---------------------------------------------------------


def test_ticket_settings_are_validated(client: httpx.Client, desk: Desk) -> None:
    current = _ok(client.get("/api/ticket-settings", headers=desk.requester.headers))
    assert current["waitingReminderDays"] == 3 and current["waitingAutoCloseDays"] == 7
    assert any(c["name"] == "Audio/Visual" for c in current["categories"])
    assert_error(
        client.patch(
            "/api/ticket-settings", json={"waitingReminderDays": 9}, headers=desk.admin.headers
        ),
        422,
    )
    assert_error(
        client.patch(
            "/api/ticket-settings", json={"waitingReminderDays": 2}, headers=desk.agent.headers
        ),
        403,
    )
    changed = _ok(
        client.patch(
            "/api/ticket-settings",
            json={"waitingReminderDays": 2, "waitingAutoCloseDays": 5},
            headers=desk.admin.headers,
        )
    )
    assert (changed["waitingReminderDays"], changed["waitingAutoCloseDays"]) == (2, 5)


def test_a_silent_requester_is_reminded_then_the_ticket_closes(
    client: httpx.Client, db: Database, desk: Desk
) -> None:
    from datetime import timedelta

    from server.core.db import utcnow

    ticket = new_ticket(client, desk.requester)
    url = f"/api/tickets/{ticket['id']}"
    _ok(client.post(f"{url}/start-work", json={}, headers=desk.agent.headers))
    _ok(
        client.patch(
            f"{url}/status", json={"status": "waiting_on_requester"}, headers=desk.agent.headers
        )
    )

    def waited(days: float) -> None:
        with db.transaction(tenant=desk.tenant.id) as session:
            session.execute(
                update(Ticket)
                .where(Ticket.id == uuid.UUID(ticket["id"]))
                .values(status_changed_at=utcnow() - timedelta(days=days))
            )

    def run() -> dict[str, int]:
        return _ok(client.post("/api/automation/waiting-reminders", headers=desk.agent.headers))

    waited(1)
    assert run() == {"reminded": 0, "closed": 0}
    waited(4)
    assert run() == {"reminded": 1, "closed": 0}
    assert run() == {"reminded": 0, "closed": 0}  # once per wait
    reminders = [
        n
        for n in _ok(client.get("/api/notifications", headers=desk.requester.headers))
        if n["event"] == "waiting_reminder"
    ]
    assert len(reminders) == 1 and reminders[0]["ticketId"] == ticket["id"]
    waited(8)
    assert run() == {"reminded": 0, "closed": 1}
    closed = _ok(client.get(url, headers=desk.agent.headers))
    assert closed["status"] == "closed"
    history = _ok(client.get(f"{url}/history", headers=desk.agent.headers))
    last = [e for e in history if e["kind"] == "status_changed"][-1]
    assert last["data"]["transition"] == "auto_close" and last["actorId"] is None
    assert_error(
        client.post("/api/automation/waiting-reminders", headers=desk.requester.headers), 403
    )


def test_list_read_and_history_cost_the_same_at_3_and_30_tickets(
    client: httpx.Client, db: Database, desk: Desk
) -> None:
    from tests.test_query_counts import count_statements

    def grow(n: int) -> str:
        last = ""
        for i in range(n):
            ticket = new_ticket(client, desk.requester, tags=[f"t{i}"])
            client.post(f"/api/tickets/{ticket['id']}/comments", json={"body": "more"},
                        headers=desk.agent.headers)  # fmt: skip
            last = ticket["id"]
        return last

    def measure(path: str) -> int:
        client.get(path, headers=desk.agent.headers)
        with count_statements(db) as statements:
            response = client.get(path, headers=desk.agent.headers)
        assert response.status_code == 200, response.text
        return len(statements)

    last = grow(3)
    paths = ["/api/tickets?perPage=100", "/api/tickets?q=projector&perPage=100", f"/api/tickets/{last}",
             f"/api/tickets/{last}/history"]  # fmt: skip
    few = [measure(p) for p in paths]
    last = grow(27)
    paths[2:] = [f"/api/tickets/{last}", f"/api/tickets/{last}/history"]
    many = [measure(p) for p in paths]
    assert few == many, (few, many)
    assert max(few) <= 8, few


def test_a_filter_value_the_model_refuses_is_a_422(client: httpx.Client, desk: Desk) -> None:
    assert_error(
        client.get("/api/tickets", params={"tag": "two words,comma"}, headers=desk.agent.headers),
        422,
        "VALIDATION_ERROR",
    )


# --- attachments ----------------------------------------------------------------------


def _upload(client: httpx.Client, who: Account, name: str, content: bytes, mime: str) -> str:
    intent = _ok(
        client.post(
            "/api/uploads/presign",
            json={"fileName": name, "mimeType": mime, "sizeBytes": len(content),
                  "purpose": "TICKET_ATTACHMENT"},
            headers=who.headers,
        ),
        201,
    )  # fmt: skip
    _ok(client.put(intent["uploadUrl"], content=content, headers={"Content-Type": mime}))
    return str(intent["storageKey"])


def test_attachments_are_private_to_who_may_see_the_ticket(
    client: httpx.Client, desk: Desk
) -> None:
    import hashlib

    ticket = new_ticket(client, desk.requester)
    url = f"/api/tickets/{ticket['id']}"
    photo = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    key = _upload(client, desk.requester, "../../etc/projector.png", photo, "image/png")
    public = _ok(client.post(f"{url}/attachments", json={"storageKey": key},
                             headers=desk.requester.headers), 201)  # fmt: skip
    assert public["fileName"] == "projector.png"
    assert public["sha256"] == hashlib.sha256(photo).hexdigest()
    # the same upload cannot be attached twice
    assert client.post(f"{url}/attachments", json={"storageKey": key},
                       headers=desk.requester.headers).status_code in (409, 422)  # fmt: skip
    log = b"port 12 flapping\n"
    note_key = _upload(client, desk.agent, "switch.log", log, "text/plain")
    internal = _ok(
        client.post(f"{url}/attachments", json={"storageKey": note_key, "isInternal": True},
                    headers=desk.agent.headers),
        201,
    )  # fmt: skip

    download = client.get(
        f"{url}/attachments/{public['id']}/download", headers=desk.requester.headers
    )
    assert download.status_code == 200 and download.content == photo
    assert "attachment" in download.headers["content-disposition"]
    assert _ok(client.get(url, headers=desk.requester.headers))["attachmentCount"] == 2
    seen = _ok(client.get(f"{url}/attachments", headers=desk.requester.headers))
    assert [a["id"] for a in seen] == [public["id"]]
    assert_error(
        client.get(f"{url}/attachments/{internal['id']}/download", headers=desk.requester.headers),
        404,
    )
    staff = client.get(f"{url}/attachments/{internal['id']}/download", headers=desk.agent.headers)
    assert staff.status_code == 200 and staff.content == log
    # someone who may not see the ticket gets nothing
    assert_error(
        client.get(f"{url}/attachments/{public['id']}/download", headers=desk.neighbour.headers),
        404,
    )
    # a requester cannot add an internal attachment
    other_key = _upload(client, desk.requester, "more.png", photo, "image/png")
    assert_error(
        client.post(f"{url}/attachments", json={"storageKey": other_key, "isInternal": True},
                    headers=desk.requester.headers),
        403,
    )  # fmt: skip


def test_the_cost_rolls_up_parts_and_time(client: httpx.Client, db: Database, desk: Desk) -> None:
    ticket = new_ticket(client, desk.requester)
    url = f"/api/tickets/{ticket['id']}"
    _ok(client.patch("/api/ticket-settings", json={"laborRateCentsPerHour": 6000},
                     headers=desk.admin.headers))  # fmt: skip
    _ok(client.post(f"{url}/comments", json={"body": "Swapped the lamp", "minutesWorked": 45},
                    headers=desk.agent.headers), 201)  # fmt: skip
    with db.transaction(tenant=desk.tenant.id) as session:
        session.execute(
            update(Ticket).where(Ticket.id == uuid.UUID(ticket["id"])).values(parts_cost_cents=8999)
        )
    cost = _ok(client.get(url, headers=desk.agent.headers))["cost"]
    assert cost == {
        "partsCents": 8999,
        "minutesWorked": 45,
        "laborRateCentsPerHour": 6000,
        "laborCents": 4500,
        "totalCents": 13499,
    }
    # a requester's comment cannot claim time worked
    assert_error(
        client.post(f"{url}/comments", json={"body": "me too", "minutesWorked": 5},
                    headers=desk.requester.headers),
        403,
    )  # fmt: skip


def _ticket_rows_read(plan: dict[str, Any]) -> int:
    """Rows of ``tickets`` a PostgreSQL plan (EXPLAIN ANALYZE, JSON) read, kept or not."""
    own = 0
    if plan.get("Relation Name") == "tickets":
        rows = plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)
        own = rows * plan.get("Actual Loops", 1)
    return own + sum(_ticket_rows_read(child) for child in plan.get("Plans", []))


@pytest.mark.skipif(POSTGRES_URL is None, reason="reads PostgreSQL's executed plans")
def test_a_read_and_first_pages_read_a_bounded_number_of_tickets(
    client: httpx.Client, db: Database, desk: Desk
) -> None:
    """With 3,000 tickets, each statement of a ticket read and of the first pages
    (plain and filtered) reads a small share of them, and the count stops at its
    cap: the work does not grow with the district. (The read's relations once
    scanned all 3,000; the open page once sorted all 870 open tickets.)"""
    import random

    from sqlalchemy import event, text

    from server.tickets import demo
    from server.tickets.routes import COUNT_LIMIT

    with db.transaction(tenant=desk.tenant.id) as session:
        demo.generate(session, desk.tenant.id, 3_000, random.Random(4))
        session.execute(text("ANALYZE tickets"))
    projector = new_ticket(client, desk.agent)
    new_ticket(client, desk.agent, parentId=projector["id"], title="Replace the lamp")
    paths = [
        f"/api/tickets/{projector['id']}",
        "/api/tickets?perPage=50",
        "/api/tickets?perPage=50&statusCategory=open",
        "/api/tickets?perPage=50&status=in_progress",
        f"/api/tickets?perPage=50&assigneeId={desk.tech.id}",
        f"/api/tickets?perPage=50&requesterId={desk.requester.id}",
        "/api/tickets?perPage=50&unassigned=true",
        "/api/tickets?perPage=50&teamId=none",
    ]
    seen: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        for path in paths:
            _ok(client.get(path, headers=desk.agent.headers))
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    reads = [(s, p) for s, p in seen if s.lstrip().startswith("SELECT") and "tickets" in s]
    assert len(reads) >= len(paths)
    with db.engine.connect() as conn:
        # A table this small is cheaper to scan than to search, so PostgreSQL would;
        # without that choice the plan shows whether an index bounds the work.
        conn.exec_driver_sql("SET enable_seqscan = off")
        for statement, parameters in reads:
            if statement.startswith("SELECT count("):
                # Bounded by construction: it stops after COUNT_LIMIT matches.
                assert parameters["param_1"] == COUNT_LIMIT + 1, statement
                continue
            explained = conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters
            ).scalar_one()
            read = _ticket_rows_read(explained[0]["Plan"])
            # A page may walk the default order's index past tickets that do not match
            # (PostgreSQL prefers that when the filter matches a large share, as one of
            # four assignees does here), but never scan or sort every match.
            assert read <= 500, (read, statement[statement.index("WHERE") :])
