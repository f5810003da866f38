"""SLA rules and business calendars over the API; the ticket's SLA clock (apply,
pause, resume, resolve, reopen, first response, recompute); the due-soon/overdue scan
with its notifications and escalations; and the job's lease."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from common.enums import Role
from common.workflow import StatusCategory, TicketStatus, category
from server.core.config import Settings
from server.core.db import JobLease
from server.core.engine import Database
from server.core.leases import HOLDER
from server.core.tenancy import ALL_TENANTS
from server.jobs import SLA_SCAN_LEASE, scan_sla
from server.notifications.models import Notification
from server.sla import service as sla
from server.sla.scan import ScanResult, scan
from server.teams.models import Team
from server.tickets.models import Ticket, TicketEvent
from tests.conftest import Tenant, World, assert_error
from tests.test_query_counts import count_statements

CHICAGO = ZoneInfo("America/Chicago")
SCHOOL_DAY = {d: [["07:30", "15:30"]] for d in ("mon", "tue", "wed", "thu", "fri")}
_numbers = itertools.count(1)


def chicago(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHICAGO).astimezone(UTC)


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()["data"] if response.content else None


@contextmanager
def bound(db: Database, org_id: uuid.UUID) -> Iterator[Session]:
    with db.transaction(tenant=org_id) as session:
        yield session


def make_calendar(client: httpx.Client, admin: dict[str, str], **body: Any) -> dict:
    payload = {
        "name": "School day",
        "timezone": "America/Chicago",
        "hours": SCHOOL_DAY,
        "isDefault": True,
        "holidays": [{"name": "Spring break", "startDate": "2027-03-15", "endDate": "2027-03-19"}],
        **body,
    }
    return ok(client.post("/api/business-calendars", json=payload, headers=admin), 201)


def make_rule(client: httpx.Client, admin: dict[str, str], **body: Any) -> dict:
    payload = {"name": f"Rule {next(_numbers)}", "responseMinutes": 60, "resolutionMinutes": 480}
    return ok(client.post("/api/sla-rules", json={**payload, **body}, headers=admin), 201)


def insert_ticket(
    db: Database,
    org_id: uuid.UUID,
    requester_id: uuid.UUID,
    *,
    created: datetime,
    priority: str = "medium",
    status: TicketStatus = TicketStatus.OPEN,
    apply: bool = True,
    **fields: Any,
) -> uuid.UUID:
    with bound(db, org_id) as session:
        ticket = Ticket(
            number=f"INC-{next(_numbers):06d}",
            ticket_type=fields.pop("ticket_type", "incident"),
            title="Projector in room 204 shows no picture",
            status=status.value,
            status_category=category(status).value,
            status_changed_at=created,
            priority=priority,
            requester_id=requester_id,
            created_at=created,
            updated_at=created,
            **fields,
        )
        session.add(ticket)
        session.flush()
        if apply:
            sla.apply_on_create(session, ticket, created)
        return ticket.id


def load(db: Database, org_id: uuid.UUID, ticket_id: uuid.UUID) -> Ticket:
    with bound(db, org_id) as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        session.expunge(ticket)
        return ticket


def events(db: Database, org_id: uuid.UUID, ticket_id: uuid.UUID) -> list[TicketEvent]:
    with bound(db, org_id) as session:
        rows = session.scalars(
            select(TicketEvent)
            .where(TicketEvent.ticket_id == ticket_id)
            .order_by(TicketEvent.created_at, TicketEvent.id)
        ).all()
        session.expunge_all()
        return list(rows)


def kinds(db: Database, org_id: uuid.UUID, ticket_id: uuid.UUID) -> list[str]:
    return [e.kind for e in events(db, org_id, ticket_id)]


def notes(db: Database, org_id: uuid.UUID) -> list[tuple[uuid.UUID, str, str]]:
    with bound(db, org_id) as session:
        rows = session.scalars(select(Notification).order_by(Notification.created_at)).all()
        return [(n.user_id, n.event, n.title) for n in rows]


def run_scan(db: Database, org_id: uuid.UUID, now: datetime) -> ScanResult:
    with bound(db, org_id) as session:
        return scan(session, org_id, now)


def change(
    db: Database, org_id: uuid.UUID, ticket_id: uuid.UUID, status: TicketStatus, now: datetime
) -> Ticket:
    """What the ticket service does on a status change, as far as the SLA sees it."""
    with bound(db, org_id) as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        old = StatusCategory(ticket.status_category)
        ticket.status, ticket.status_category = status.value, category(status).value
        if category(status) is StatusCategory.RESOLVED:
            ticket.resolved_at = now
        sla.on_category_change(session, ticket, old, category(status), now)
        session.flush()
        session.expunge(ticket)
        return ticket


@pytest.fixture
def tenant(world: World) -> Tenant:
    return world.org("alpha", timezone="America/Chicago")


# ------------------------------------------------------------------------------- API


def test_admin_sets_up_a_school_calendar_and_rules_that_staff_can_read(
    world: World, client: httpx.Client, tenant: Tenant
) -> None:
    admin = tenant.admin.headers
    cal = make_calendar(client, admin)
    assert cal["timezone"] == "America/Chicago"
    assert cal["hours"]["mon"] == [["07:30", "15:30"]]
    assert cal["hours"]["sat"] == [] and cal["isDefault"] is True
    assert [(h["name"], h["startDate"], h["endDate"]) for h in cal["holidays"]] == [
        ("Spring break", "2027-03-15", "2027-03-19")
    ]
    winter = ok(
        client.post(
            f"/api/business-calendars/{cal['id']}/holidays",
            json={"name": "Winter break", "startDate": "2026-12-21", "endDate": "2027-01-01"},
            headers=admin,
        ),
        201,
    )
    labor = ok(
        client.post(
            f"/api/business-calendars/{cal['id']}/holidays",
            json={"name": "Labor Day", "start_date": "2026-09-07"},  # snake_case, one day
            headers=admin,
        ),
        201,
    )
    assert labor["endDate"] == "2026-09-07"
    shown = ok(client.get(f"/api/business-calendars/{cal['id']}", headers=admin))
    assert [h["name"] for h in shown["holidays"]] == ["Labor Day", "Winter break", "Spring break"]
    ok(
        client.delete(
            f"/api/business-calendars/{cal['id']}/holidays/{winter['id']}", headers=admin
        ),
        204,
    )
    shown = ok(client.get(f"/api/business-calendars/{cal['id']}", headers=admin))
    assert [h["name"] for h in shown["holidays"]] == ["Labor Day", "Spring break"]
    assert_error(
        client.delete(
            f"/api/business-calendars/{cal['id']}/holidays/{winter['id']}", headers=admin
        ),
        404,
        "RESOURCE_NOT_FOUND",
    )

    high = make_rule(
        client,
        admin,
        name="High priority",
        priority="high",
        responseMinutes=120,
        resolutionMinutes=480,
        dueSoonMinutes=30,
        position=1,
        calendarId=cal["id"],
        escalation={"raisePriority": True, "notifyRoles": ["org_admin"]},
    )
    assert high["escalation"] == {
        "enabled": True,
        "raisePriority": True,
        "notifyUserIds": [],
        "notifyRoles": ["org_admin"],
    }
    catch_all = make_rule(client, admin, name="Everything else", position=9)
    assert (catch_all["priority"], catch_all["isActive"], catch_all["dueSoonMinutes"]) == (
        None,
        True,
        60,
    )
    patched = ok(
        client.patch(
            f"/api/sla-rules/{catch_all['id']}",
            json={"resolutionMinutes": 2400, "isActive": False, "description": "fallback"},
            headers=admin,
        )
    )
    assert (patched["resolutionMinutes"], patched["isActive"]) == (2400, False)

    agent = world.user(tenant.id, Role.AGENT)
    tech = world.user(tenant.id, Role.TECHNICIAN)
    for reader in (agent, tech):
        listed = ok(client.get("/api/sla-rules", headers=reader.headers))
        assert [r["name"] for r in listed] == ["High priority", "Everything else"]
        assert (
            ok(client.get("/api/business-calendars", headers=reader.headers))[0]["id"] == cal["id"]
        )
    assert [r["name"] for r in ok(client.get("/api/sla-rules?priority=high", headers=admin))] == [
        "High priority"
    ]
    assert [r["name"] for r in ok(client.get("/api/sla-rules?isActive=false", headers=admin))] == [
        "Everything else"
    ]
    assert [r["name"] for r in ok(client.get("/api/sla-rules?sort=-name", headers=admin))] == [
        "High priority",
        "Everything else",
    ]
    # staff read; only admins write; requesters see nothing of it
    teacher = world.user(tenant.id, Role.REQUESTER)
    assert_error(client.get("/api/sla-rules", headers=teacher.headers), 403, "PERMISSION_DENIED")
    assert_error(client.get("/api/business-calendars", headers=teacher.headers), 403)
    assert_error(
        client.post(
            "/api/sla-rules",
            json={"name": "x", "responseMinutes": 1, "resolutionMinutes": 1},
            headers=agent.headers,
        ),
        403,
    )
    assert_error(
        client.patch(
            f"/api/business-calendars/{cal['id']}", json={"name": "x"}, headers=agent.headers
        ),
        403,
    )

    ok(client.delete(f"/api/sla-rules/{catch_all['id']}", headers=admin), 204)
    assert_error(client.get(f"/api/sla-rules/{catch_all['id']}", headers=admin), 404)
    # every change is in the audit log
    actions = {
        e["action"]
        for e in ok(client.get("/api/audit-logs", params={"perPage": 100}, headers=admin))
    }
    assert {
        "business_calendar.created",
        "business_calendar.holiday_added",
        "business_calendar.holiday_removed",
        "sla_rule.created",
        "sla_rule.updated",
        "sla_rule.deleted",
    } <= actions


def test_bad_settings_are_refused_with_the_field_named_and_nothing_changes(
    world: World, client: httpx.Client, tenant: Tenant
) -> None:
    admin = tenant.admin.headers
    cal = make_calendar(client, admin)
    rule = make_rule(client, admin, name="Base", responseMinutes=60, resolutionMinutes=120)

    def refused(method: str, url: str, body: dict, field: str, status: int = 422) -> None:
        error = assert_error(client.request(method, url, json=body, headers=admin), status)
        details = error["details"]
        named = (
            [d.get("field") for d in details]
            if isinstance(details, list)
            else [details.get("field")]
        )
        assert any(n and n.startswith(field) for n in named), error

    base = {"name": "Other", "timezone": "America/Chicago"}
    refused(
        "POST",
        "/api/business-calendars",
        {**base, "hours": {"mon": [["15:30", "07:30"]]}},
        "hours.mon",
    )
    refused(
        "POST",
        "/api/business-calendars",
        {**base, "hours": {"mon": [["07:30", "12:00"], ["11:00", "15:00"]]}},
        "hours.mon",
    )
    refused(
        "POST",
        "/api/business-calendars",
        {**base, "hours": {"mon": [["7:30am", "15:00"]]}},
        "hours.mon",
    )
    refused("POST", "/api/business-calendars", {**base, "hours": {"sat": []}}, "hours")
    refused("POST", "/api/business-calendars", {**base, "hours": {"someday": []}}, "hours.someday")
    refused("POST", "/api/business-calendars", {**base, "timezone": "Central Time"}, "timezone")
    refused(
        "POST",
        "/api/business-calendars",
        {
            **base,
            "holidays": [{"name": "Backwards", "startDate": "2027-03-19", "endDate": "2027-03-15"}],
        },
        "holidays.0.endDate",
    )
    refused(
        "POST",
        f"/api/business-calendars/{cal['id']}/holidays",
        {"name": "Backwards", "startDate": "2027-03-19", "endDate": "2027-03-15"},
        "endDate",
    )
    refused(
        "POST",
        "/api/sla-rules",
        {"name": "Zero", "responseMinutes": 0, "resolutionMinutes": 60},
        "responseMinutes",
    )
    refused(
        "POST",
        "/api/sla-rules",
        {"name": "Upside", "responseMinutes": 600, "resolutionMinutes": 60},
        "resolutionMinutes",
    )
    refused("PATCH", f"/api/sla-rules/{rule['id']}", {"responseMinutes": 500}, "responseMinutes")
    refused("PATCH", f"/api/sla-rules/{rule['id']}", {"resolutionMinutes": 30}, "resolutionMinutes")
    refused("PATCH", f"/api/sla-rules/{rule['id']}", {"responseMinutes": None}, "responseMinutes")
    refused(
        "POST",
        "/api/sla-rules",
        {
            "name": "Dept",
            "responseMinutes": 1,
            "resolutionMinutes": 2,
            "departmentId": str(uuid.uuid4()),
        },
        "departmentId",
    )
    refused(
        "POST",
        "/api/sla-rules",
        {
            "name": "Cal",
            "responseMinutes": 1,
            "resolutionMinutes": 2,
            "calendarId": str(uuid.uuid4()),
        },
        "calendarId",
    )
    teacher = world.user(tenant.id, Role.REQUESTER, login=False)
    refused(
        "POST",
        "/api/sla-rules",
        {
            "name": "Who",
            "responseMinutes": 1,
            "resolutionMinutes": 2,
            "escalation": {"notifyUserIds": [str(teacher.id)]},
        },
        "escalation.notifyUserIds",
    )
    refused(
        "POST",
        "/api/sla-rules",
        {"name": "Base", "responseMinutes": 1, "resolutionMinutes": 2},
        "name",
        409,
    )
    refused("POST", "/api/business-calendars", {"name": "School day"}, "name", 409)
    # the rule is as it was
    assert ok(client.get(f"/api/sla-rules/{rule['id']}", headers=admin))["responseMinutes"] == 60
    # a calendar an SLA rule counts in cannot go
    used = make_rule(client, admin, name="Uses it", calendarId=cal["id"])
    error = assert_error(client.delete(f"/api/business-calendars/{cal['id']}", headers=admin), 409)
    assert "Uses it" in error["message"]
    ok(client.patch(f"/api/sla-rules/{used['id']}", json={"calendarId": None}, headers=admin))
    ok(client.delete(f"/api/business-calendars/{cal['id']}", headers=admin), 204)


def test_one_default_calendar_and_one_calendar_per_site(
    world: World, client: httpx.Client, tenant: Tenant
) -> None:
    admin = tenant.admin.headers
    first = make_calendar(client, admin, name="Office")
    second = make_calendar(client, admin, name="Summer", holidays=[])
    assert (
        ok(client.get(f"/api/business-calendars/{first['id']}", headers=admin))["isDefault"]
        is False
    )
    assert second["isDefault"] is True
    ok(
        client.patch(
            f"/api/business-calendars/{first['id']}", json={"isDefault": True}, headers=admin
        )
    )
    defaults = [
        c["name"]
        for c in ok(client.get("/api/business-calendars", headers=admin))
        if c["isDefault"]
    ]
    assert defaults == ["Office"]

    site = ok(
        client.post(
            "/api/sites",
            json={"name": "Lincoln Middle", "timezone": "America/Denver"},
            headers=admin,
        ),
        201,
    )
    lincoln = make_calendar(
        client, admin, name="Lincoln", siteId=site["id"], isDefault=False, timezone=None
    )
    assert lincoln["timezone"] == "America/Denver", "a site calendar reads the site's zone"
    assert [
        c["name"]
        for c in ok(client.get(f"/api/business-calendars?siteId={site['id']}", headers=admin))
    ] == ["Lincoln"]
    error = assert_error(
        client.post(
            "/api/business-calendars",
            json={"name": "Lincoln 2", "siteId": site["id"]},
            headers=admin,
        ),
        409,
    )
    assert error["details"]["field"] == "siteId"
    error = assert_error(
        client.patch(
            f"/api/business-calendars/{lincoln['id']}", json={"isDefault": True}, headers=admin
        ),
        422,
    )
    assert error["details"]["field"] == "isDefault"
    plain = make_calendar(
        client, admin, name="No zone given", isDefault=False, timezone=None, holidays=[]
    )
    assert plain["timezone"] == "America/Chicago", "the organization's zone"
    assert plain["hours"]["fri"] == [["07:30", "15:30"]]
    defaulted = ok(
        client.post("/api/business-calendars", json={"name": "Hours left out"}, headers=admin), 201
    )
    assert defaulted["hours"]["mon"] == [["08:00", "16:00"]] and defaulted["hours"]["sun"] == []


def test_list_and_read_statement_counts_do_not_grow(
    client: httpx.Client, db: Database, tenant: Tenant
) -> None:
    admin = tenant.admin.headers

    def grow(n: int, offset: int) -> str:
        cal_id = ""
        for i in range(n):
            cal = make_calendar(client, admin, name=f"Calendar {offset + i}", isDefault=False)
            ok(
                client.post(
                    f"/api/business-calendars/{cal['id']}/holidays",
                    json={"name": "Day", "startDate": "2027-01-18"},
                    headers=admin,
                ),
                201,
            )
            make_rule(client, admin, name=f"Rule {offset + i}", calendarId=cal["id"])
            cal_id = cal["id"]
        return cal_id

    def measure(url: str) -> int:
        client.get(url, headers=admin)
        with count_statements(db) as statements:
            response = client.get(
                url, headers=admin, params={"perPage": 100} if "?" not in url else None
            )
        assert response.status_code == 200, response.text
        return len(statements)

    cal_id = grow(1, 0)
    few = {
        url: measure(url)
        for url in (
            "/api/business-calendars",
            "/api/sla-rules",
            f"/api/business-calendars/{cal_id}",
        )
    }
    grow(8, 1)
    many = {url: measure(url) for url in few}
    assert many == few
    assert len(ok(client.get("/api/business-calendars", headers=admin))) == 9


# ---------------------------------------------------------------- which rule, which clock


def test_the_most_specific_active_rule_wins_ties_by_position(
    world: World, client: httpx.Client, db: Database, tenant: Tenant
) -> None:
    admin = tenant.admin.headers
    site = ok(client.post("/api/sites", json={"name": "North High"}, headers=admin), 201)
    any_rule = make_rule(client, admin, name="Anything", position=0)
    high = make_rule(client, admin, name="High", priority="high", position=5)
    high_north = make_rule(
        client, admin, name="High at North", priority="high", siteId=site["id"], position=9
    )
    make_rule(client, admin, name="High, paused", priority="high", position=1, isActive=False)
    incidents = make_rule(client, admin, name="Incidents", ticketType="incident", position=2)

    def pick(**facts: Any) -> str | None:
        with bound(db, tenant.id) as session:
            found = sla.match_rule(
                session,
                priority=facts.get("priority"),
                ticket_type=facts.get("ticket_type"),
                department_id=None,
                site_id=uuid.UUID(facts["site"]) if facts.get("site") else None,
            )
            return found.name if found else None

    assert pick(priority="high", ticket_type="incident", site=site["id"]) == high_north["name"]
    # one criterion each: "Incidents" (position 2) before "High" (5); the inactive one is ignored
    assert pick(priority="high", ticket_type="incident") == incidents["name"]
    assert pick(priority="high", ticket_type="service_request") == high["name"]
    assert pick(priority="low", ticket_type="service_request") == any_rule["name"]
    ok(client.delete(f"/api/sla-rules/{any_rule['id']}", headers=admin), 204)
    assert pick(priority="low", ticket_type="service_request") is None


def test_deadlines_count_school_time_across_dst_and_spring_break(
    world: World, client: httpx.Client, db: Database, tenant: Tenant
) -> None:
    admin = tenant.admin.headers
    make_calendar(client, admin)
    rule = make_rule(
        client, admin, name="High", priority="high", responseMinutes=120, resolutionMinutes=480
    )
    requester = world.user(tenant.id, Role.REQUESTER, login=False)
    # Friday before spring break, 14:30 CST; DST starts on the Sunday.
    ticket_id = insert_ticket(
        db, tenant.id, requester.id, created=chicago(2027, 3, 12, 14, 30), priority="high"
    )
    ticket = load(db, tenant.id, ticket_id)
    assert ticket.sla_rule_id == uuid.UUID(rule["id"])
    assert ticket.response_due_at == chicago(2027, 3, 22, 8, 30)  # Monday after the break, CDT
    assert ticket.resolution_due_at == chicago(2027, 3, 22, 14, 30)
    applied = events(db, tenant.id, ticket_id)[-1]
    assert applied.kind == "sla_applied"
    assert applied.data["ruleId"] == rule["id"] and applied.data["calendar"] == "School day"
    assert applied.data["responseDueAt"] == ticket.response_due_at.isoformat()
    # no rule for the priority: no deadlines, nothing recorded
    other = insert_ticket(
        db, tenant.id, requester.id, created=chicago(2027, 3, 12, 14, 30), priority="low"
    )
    low = load(db, tenant.id, other)
    assert (low.sla_rule_id, low.response_due_at, low.resolution_due_at) == (None, None, None)
    assert kinds(db, tenant.id, other) == []


def test_calendar_precedence_rule_then_site_then_default_then_24x7(
    world: World, client: httpx.Client, db: Database, tenant: Tenant
) -> None:
    admin = tenant.admin.headers
    requester = world.user(tenant.id, Role.REQUESTER, login=False)
    created = chicago(2026, 9, 11, 15, 0)  # Friday 15:00 CDT
    rule = make_rule(client, admin, name="Any", responseMinutes=60, resolutionMinutes=120)

    def due(**fields: Any) -> datetime | None:
        return load(
            db, tenant.id, insert_ticket(db, tenant.id, requester.id, created=created, **fields)
        ).response_due_at

    assert due() == created + timedelta(minutes=60), "no calendar: 24x7"
    make_calendar(client, admin)
    assert due() == chicago(2026, 9, 14, 8, 0), "the default school day"
    site = ok(client.post("/api/sites", json={"name": "Night school"}, headers=admin), 201)
    make_calendar(client, admin, name="Evenings", isDefault=False, siteId=site["id"], holidays=[],
                  hours={d: [["14:00", "22:00"]] for d in ("mon", "tue", "wed", "thu", "fri")})  # fmt: skip
    assert due(site_id=uuid.UUID(site["id"])) == chicago(2026, 9, 11, 16, 0), "the site's own"
    always = make_calendar(client, admin, name="24x7", isDefault=False, holidays=[],
                           hours={d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})  # fmt: skip
    ok(
        client.patch(
            f"/api/sla-rules/{rule['id']}", json={"calendarId": always["id"]}, headers=admin
        )
    )
    assert due(site_id=uuid.UUID(site["id"])) == created + timedelta(minutes=60), "the rule's own"


# ---------------------------------------------------------------------- the clock


def test_pause_resume_resolve_reopen_move_the_deadlines_by_school_time(
    world: World, client: httpx.Client, db: Database, tenant: Tenant
) -> None:
    admin = tenant.admin.headers
    make_calendar(client, admin)
    make_rule(client, admin, name="Standard", responseMinutes=480, resolutionMinutes=2400)
    requester = world.user(tenant.id, Role.REQUESTER, login=False)
    ticket_id = insert_ticket(db, tenant.id, requester.id, created=chicago(2026, 9, 9, 8, 0))  # Wed
    t = load(db, tenant.id, ticket_id)
    assert t.response_due_at == chicago(2026, 9, 10, 8, 0)
    assert t.resolution_due_at == chicago(2026, 9, 16, 8, 0)

    # On hold from Wednesday 10:00 to Thursday 09:00: 330 + 90 school minutes.
    t = change(db, tenant.id, ticket_id, TicketStatus.ON_HOLD, chicago(2026, 9, 9, 10, 0))
    assert t.sla_paused_at == chicago(2026, 9, 9, 10, 0)
    assert t.response_due_at == chicago(2026, 9, 10, 8, 0), "nothing moves while paused"
    t = change(db, tenant.id, ticket_id, TicketStatus.IN_PROGRESS, chicago(2026, 9, 10, 9, 0))
    assert (t.sla_paused_at, t.sla_paused_minutes) == (None, 420)
    assert t.response_due_at == chicago(2026, 9, 10, 15, 0)
    assert t.resolution_due_at == chicago(2026, 9, 16, 15, 0)

    # Recounting from the start with the paused minutes gives the same deadlines.
    with bound(db, tenant.id) as session:
        ticket = session.get(Ticket, ticket_id)
        sla.recompute(session, ticket, chicago(2026, 9, 10, 9, 30), reason="same facts")
    assert kinds(db, tenant.id, ticket_id).count("sla_applied") == 1, "nothing changed, no entry"

    with bound(db, tenant.id) as session:
        ticket = session.get(Ticket, ticket_id)
        sla.on_first_response(session, ticket, chicago(2026, 9, 10, 10, 0))
    t = load(db, tenant.id, ticket_id)
    assert (t.first_response_at, t.response_breached_at) == (chicago(2026, 9, 10, 10, 0), None)

    # Resolved on Friday 10:00, reopened Monday 10:00: 330 + 150 minutes spent resolved.
    t = change(db, tenant.id, ticket_id, TicketStatus.RESOLVED, chicago(2026, 9, 11, 10, 0))
    assert t.resolution_breached_at is None and t.sla_paused_at == chicago(2026, 9, 11, 10, 0)
    t = change(db, tenant.id, ticket_id, TicketStatus.OPEN, chicago(2026, 9, 14, 10, 0))
    assert t.sla_paused_minutes == 420 + 480
    assert t.resolution_due_at == chicago(2026, 9, 17, 15, 0)
    assert t.response_due_at == chicago(2026, 9, 10, 15, 0), "the response was given: it stays"

    # Resolved late the second time: the breach is recorded against the deadline.
    t = change(db, tenant.id, ticket_id, TicketStatus.RESOLVED, chicago(2026, 9, 18, 10, 0))
    assert t.resolution_breached_at == chicago(2026, 9, 17, 15, 0)
    breach = events(db, tenant.id, ticket_id)[-1]
    assert (breach.kind, breach.data["target"]) == ("sla_breached", "resolution")
    # closing the resolved ticket leaves the clock as it is
    t = change(db, tenant.id, ticket_id, TicketStatus.CLOSED, chicago(2026, 9, 21, 10, 0))
    assert t.resolution_due_at == chicago(2026, 9, 17, 15, 0)
    assert t.sla_paused_at == chicago(2026, 9, 18, 10, 0)


def test_late_first_response_and_late_cancel(
    world: World, client: httpx.Client, db: Database, tenant: Tenant
) -> None:
    admin = tenant.admin.headers
    make_rule(client, admin, name="Quick", responseMinutes=30, resolutionMinutes=60)
    requester = world.user(tenant.id, Role.REQUESTER, login=False)
    created = datetime(2026, 9, 9, 12, 0, tzinfo=UTC)
    late = insert_ticket(db, tenant.id, requester.id, created=created)
    with bound(db, tenant.id) as session:
        sla.on_first_response(session, session.get(Ticket, late), created + timedelta(minutes=45))
    t = load(db, tenant.id, late)
    assert t.response_breached_at == created + timedelta(minutes=30)
    assert events(db, tenant.id, late)[-1].data == {
        "target": "response",
        "dueAt": (created + timedelta(minutes=30)).isoformat(),
        "respondedAt": (created + timedelta(minutes=45)).isoformat(),
    }
    cancelled = insert_ticket(db, tenant.id, requester.id, created=created)
    t = change(db, tenant.id, cancelled, TicketStatus.CANCELLED, created + timedelta(hours=3))
    assert t.resolution_breached_at is None, "a withdrawn ticket breaches nothing"


def test_recompute_after_a_priority_change_counts_from_creation_with_pauses(
    world: World, client: httpx.Client, db: Database, tenant: Tenant
) -> None:
    admin = tenant.admin.headers
    make_rule(
        client, admin, name="Medium", priority="medium", responseMinutes=480, resolutionMinutes=1440
    )
    critical = make_rule(
        client,
        admin,
        name="Critical",
        priority="critical",
        responseMinutes=30,
        resolutionMinutes=240,
    )
    requester = world.user(tenant.id, Role.REQUESTER, login=False)
    created = datetime(2026, 9, 9, 12, 0, tzinfo=UTC)  # 24x7: no calendar
    ticket_id = insert_ticket(db, tenant.id, requester.id, created=created)
    change(db, tenant.id, ticket_id, TicketStatus.ON_HOLD, created + timedelta(minutes=10))
    change(db, tenant.id, ticket_id, TicketStatus.IN_PROGRESS, created + timedelta(minutes=25))
    with bound(db, tenant.id) as session:
        ticket = session.get(Ticket, ticket_id)
        ticket.priority = "critical"
        sla.recompute(session, ticket, created + timedelta(minutes=35), reason="priority changed")
    t = load(db, tenant.id, ticket_id)
    assert t.sla_rule_id == uuid.UUID(critical["id"])
    assert t.response_due_at == created + timedelta(minutes=30 + 15)
    assert t.resolution_due_at == created + timedelta(minutes=240 + 15)
    entry = events(db, tenant.id, ticket_id)[-1]
    assert (entry.kind, entry.data["reason"], entry.data["ruleId"]) == (
        "sla_applied",
        "priority changed",
        critical["id"],
    )
    # to a priority without a rule: the deadlines go
    with bound(db, tenant.id) as session:
        ticket = session.get(Ticket, ticket_id)
        ticket.priority = "low"
        sla.recompute(session, ticket, created + timedelta(minutes=40), reason="priority changed")
    t = load(db, tenant.id, ticket_id)
    assert (t.sla_rule_id, t.response_due_at, t.resolution_due_at) == (None, None, None)


# ------------------------------------------------------------------------- the scan


@pytest.fixture
def desk(world: World, client: httpx.Client, tenant: Tenant) -> dict[str, Any]:
    """A school calendar, a high-priority rule that escalates, an agent and a teacher."""
    admin = tenant.admin.headers
    make_calendar(client, admin)
    rule = make_rule(
        client,
        admin,
        name="High",
        priority="high",
        responseMinutes=120,
        resolutionMinutes=480,
        dueSoonMinutes=60,
        escalation={"raisePriority": True, "notifyRoles": ["org_admin"]},
    )
    return {
        "rule": rule,
        "agent": world.user(tenant.id, Role.AGENT, login=False),
        "teacher": world.user(tenant.id, Role.REQUESTER, login=False),
    }


def test_scan_warns_then_breaches_and_escalates_once_each(
    db: Database, tenant: Tenant, desk: dict[str, Any]
) -> None:
    agent, org = desk["agent"], tenant.id
    ticket_id = insert_ticket(db, org, desk["teacher"].id, created=chicago(2027, 3, 12, 14, 30),
                              priority="high", assignee_id=agent.id)  # fmt: skip
    # Monday after spring break: the response is due 08:30 CDT.
    assert run_scan(db, org, chicago(2027, 3, 22, 7, 0)) == ScanResult(1, 0, 0)  # 60 school min
    t = load(db, org, ticket_id)
    assert t.sla_warned_at == chicago(2027, 3, 22, 7, 0)
    assert events(db, org, ticket_id)[-1].data == {
        "target": "response",
        "dueAt": t.response_due_at.isoformat(),
    }
    assert notes(db, org) == [
        (agent.id, "sla_due_soon", f"{t.number}: response due Mon 22 Mar 08:30 CDT")
    ]
    assert run_scan(db, org, chicago(2027, 3, 22, 7, 5)) == ScanResult(0, 0, 0), "warned once"

    assert run_scan(db, org, chicago(2027, 3, 22, 8, 31)) == ScanResult(0, 1, 1)
    t = load(db, org, ticket_id)
    assert t.response_breached_at == chicago(2027, 3, 22, 8, 30)
    assert (t.priority, t.escalation_level) == ("critical", 1)
    breach, escalation = events(db, org, ticket_id)[-2:]
    assert (breach.kind, breach.data["target"]) == ("sla_breached", "response")
    assert escalation.kind == "escalated"
    assert escalation.data["priority"] == {"from": "high", "to": "critical"}
    assert escalation.data["level"] == 1 and escalation.data["notified"] == [str(tenant.admin.id)]
    told = notes(db, org)[1:]
    assert (agent.id, "sla_breached", f"{t.number}: response deadline missed") in told
    assert (tenant.admin.id, "sla_breached", f"{t.number} escalated (level 1)") in told
    assert run_scan(db, org, chicago(2027, 3, 22, 8, 40)) == ScanResult(0, 0, 0), "idempotent"

    # The resolution (14:30) warns at 13:30 and breaches after; critical stays critical.
    assert run_scan(db, org, chicago(2027, 3, 22, 13, 29)) == ScanResult(0, 0, 0)
    assert run_scan(db, org, chicago(2027, 3, 22, 13, 30)) == ScanResult(1, 0, 0)
    assert run_scan(db, org, chicago(2027, 3, 22, 14, 31)) == ScanResult(0, 1, 1)
    t = load(db, org, ticket_id)
    assert (t.priority, t.escalation_level) == ("critical", 2)
    assert t.resolution_breached_at == chicago(2027, 3, 22, 14, 30)
    assert run_scan(db, org, chicago(2027, 3, 23, 9, 0)) == ScanResult(0, 0, 0)
    assert kinds(db, org, ticket_id) == [
        "sla_applied", "sla_warning", "sla_breached", "escalated",
        "sla_warning", "sla_breached", "escalated",
    ]  # fmt: skip


def test_the_warning_window_counts_school_minutes_not_wall_minutes(
    db: Database, tenant: Tenant, desk: dict[str, Any]
) -> None:
    org = tenant.id
    # created Thursday 14:30: response due Friday 08:30; one school hour before is
    # Thursday 15:30 (the close) then Friday 07:30.
    ticket_id = insert_ticket(db, org, desk["teacher"].id, created=chicago(2026, 9, 10, 14, 30),
                              priority="high", assignee_id=desk["agent"].id)  # fmt: skip
    assert load(db, org, ticket_id).response_due_at == chicago(2026, 9, 11, 8, 30)
    assert run_scan(db, org, chicago(2026, 9, 10, 15, 0)).warned == 0  # 90 school minutes left
    assert run_scan(db, org, chicago(2026, 9, 10, 20, 0)).warned == 1  # 60 left, overnight


def test_paused_tickets_are_not_warned_and_breach_only_if_late_before_the_pause(
    db: Database, tenant: Tenant, desk: dict[str, Any]
) -> None:
    org, teacher = tenant.id, desk["teacher"].id
    created = chicago(2026, 9, 9, 8, 0)  # response due 10:00, resolution 15:30 (Wed)
    waiting = insert_ticket(db, org, teacher, created=created, priority="high")
    change(db, org, waiting, TicketStatus.WAITING_ON_REQUESTER, chicago(2026, 9, 9, 9, 0))
    late = insert_ticket(db, org, teacher, created=created, priority="high")
    change(db, org, late, TicketStatus.ON_HOLD, chicago(2026, 9, 9, 10, 30))  # after 10:00
    result = run_scan(db, org, chicago(2026, 9, 10, 12, 0))
    assert result == ScanResult(0, 1, 1)
    assert load(db, org, late).response_breached_at == chicago(2026, 9, 9, 10, 0)
    assert load(db, org, late).resolution_breached_at is None, "15:30 was after the pause"
    w = load(db, org, waiting)
    assert (w.sla_warned_at, w.response_breached_at, w.resolution_breached_at) == (None, None, None)
    # resolved and closed tickets are not scanned at all
    done = insert_ticket(db, org, teacher, created=created, priority="high")
    change(db, org, done, TicketStatus.RESOLVED, chicago(2026, 9, 9, 9, 0))
    assert run_scan(db, org, chicago(2026, 9, 21, 12, 0)) == ScanResult(0, 0, 0)
    assert load(db, org, done).response_breached_at is None


def test_unassigned_tickets_tell_the_team_lead_or_else_the_agents(
    world: World, db: Database, tenant: Tenant, desk: dict[str, Any]
) -> None:
    org, teacher = tenant.id, desk["teacher"].id
    lead = world.user(org, Role.TECHNICIAN, login=False)
    with bound(db, org) as session:
        team = Team(name="Field techs", lead_id=lead.id)
        session.add(team)
        session.flush()
        team_id = team.id
    created = chicago(2026, 9, 9, 8, 0)
    with_team = insert_ticket(db, org, teacher, created=created, priority="high", team_id=team_id)
    nobody = insert_ticket(db, org, teacher, created=created, priority="high")
    assert run_scan(db, org, chicago(2026, 9, 9, 9, 30)).warned == 2
    told = {(user, title.split(":")[0]) for user, event, title in notes(db, org)}
    numbers = {load(db, org, i).number: i for i in (with_team, nobody)}
    by_ticket = {numbers[n]: u for u, n in told}
    assert by_ticket == {with_team: lead.id, nobody: desk["agent"].id}


def test_scan_endpoint_runs_for_the_callers_organization(
    world: World, client: httpx.Client, db: Database, tenant: Tenant, desk: dict[str, Any]
) -> None:
    created = datetime.now(UTC) - timedelta(days=30)
    ticket_id = insert_ticket(db, tenant.id, desk["teacher"].id, created=created, priority="high")
    other = world.org("bravo")
    agent = world.user(tenant.id, Role.AGENT)
    result = ok(client.post("/api/automation/sla-scan", headers=agent.headers))
    assert (result["breached"], result["escalated"]) == (2, 1)
    assert set(result) == {"warned", "breached", "escalated", "scannedAt"}
    assert (
        ok(client.post("/api/automation/sla-scan", headers=tenant.admin.headers))["breached"] == 0
    )
    assert load(db, tenant.id, ticket_id).escalation_level == 1
    tech = world.user(tenant.id, Role.TECHNICIAN)
    assert_error(
        client.post("/api/automation/sla-scan", headers=tech.headers), 403, "PERMISSION_DENIED"
    )
    assert_error(
        client.post(
            "/api/automation/sla-scan",
            params={"organizationId": str(other.id)},
            headers=agent.headers,
        ),
        403,
    )
    root = world.super_admin()
    assert_error(client.post("/api/automation/sla-scan", headers=root.headers), 422)
    assert (
        ok(
            client.post(
                "/api/automation/sla-scan",
                params={"organizationId": str(other.id)},
                headers=root.headers,
            )
        )["breached"]
        == 0
    )


@pytest.mark.postgres_only
def test_a_ticket_being_edited_is_left_for_the_next_scan(
    db: Database, tenant: Tenant, desk: dict[str, Any]
) -> None:
    """FOR UPDATE SKIP LOCKED: the scan neither waits on nor overwrites a ticket that a
    request is changing; the next run picks it up."""
    created = chicago(2026, 9, 9, 8, 0)
    ticket_id = insert_ticket(db, tenant.id, desk["teacher"].id, created=created, priority="high")
    later = chicago(2026, 9, 10, 12, 0)
    with db.transaction(tenant=tenant.id) as editing:
        editing.execute(select(Ticket).where(Ticket.id == ticket_id).with_for_update()).all()
        assert run_scan(db, tenant.id, later) == ScanResult(0, 0, 0)
    assert run_scan(db, tenant.id, later) == ScanResult(0, 2, 1)


# -------------------------------------------------------------------------- the job


def _month_old_ticket(db: Database, tenant: Tenant, desk: dict[str, Any]) -> uuid.UUID:
    """A high-priority ticket filed thirty days ago: every deadline of it is missed."""
    return insert_ticket(
        db,
        tenant.id,
        desk["teacher"].id,
        created=datetime.now(UTC) - timedelta(days=30),
        priority="high",
    )


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_a_starting_server_scans_at_once(
    settings: Settings, db: Database, tenant: Tenant, desk: dict[str, Any]
) -> None:
    """Deadlines missed while the server was down show as breaches as soon as it
    starts, not after the first minute of the schedule."""
    from fastapi.testclient import TestClient

    from server.app import create_app

    ticket_id = _month_old_ticket(db, tenant, desk)
    with_jobs = settings.model_copy(update={"background_jobs": True})
    with TestClient(create_app(with_jobs, database=db)):
        deadline = time.monotonic() + 20
        while load(db, tenant.id, ticket_id).resolution_breached_at is None:
            assert time.monotonic() < deadline, "no scan within 20 s of the start"
            time.sleep(0.05)


def test_the_job_scans_every_organization_unless_another_process_holds_the_lease(
    world: World, db: Database, tenant: Tenant, desk: dict[str, Any]
) -> None:
    ticket_id = _month_old_ticket(db, tenant, desk)
    with db.transaction(tenant=ALL_TENANTS) as session:
        session.add(
            JobLease(
                name=SLA_SCAN_LEASE,
                holder="web-2:4242",
                expires_at=datetime.now(UTC) + timedelta(seconds=50),
            )
        )
    assert scan_sla(db) is None, "the other process runs this minute's scan"
    assert load(db, tenant.id, ticket_id).resolution_breached_at is None

    with db.transaction(tenant=ALL_TENANTS) as session:
        lease = session.get(JobLease, SLA_SCAN_LEASE)
        lease.expires_at = datetime.now(UTC) - timedelta(seconds=1)  # it died
    results = scan_sla(db)
    assert results is not None and results[tenant.id] == ScanResult(0, 2, 1)
    assert load(db, tenant.id, ticket_id).resolution_breached_at is not None
    with db.transaction(tenant=ALL_TENANTS) as session:
        assert session.get(JobLease, SLA_SCAN_LEASE).holder == HOLDER
    # a second process now finds the lease taken; this one renews it and finds nothing new
    assert scan_sla(db, holder="web-2:4242") is None
    assert scan_sla(db)[tenant.id] == ScanResult(0, 0, 0)


# ----------------------------------------------------------- through the ticket API


def test_tickets_filed_through_the_api_get_their_clock_and_the_scan_escalates_them(
    world: World, client: httpx.Client, db: Database, tenant: Tenant
) -> None:
    admin = tenant.admin.headers
    high = make_rule(client, admin, name="High", priority="high", responseMinutes=60,
                     resolutionMinutes=240, escalation={"raisePriority": True})  # fmt: skip
    low = make_rule(client, admin, name="Low", priority="low", responseMinutes=480,
                    resolutionMinutes=2400, escalation={"raisePriority": True})  # fmt: skip
    agent = world.user(tenant.id, Role.AGENT)
    ticket = ok(
        client.post(
            "/api/tickets",
            json={
                "title": "Gym scoreboard dark",
                "ticketType": "service_request",
                "priority": "high",
            },
            headers=agent.headers,
        ),
        201,
    )
    created = datetime.fromisoformat(ticket["createdAt"])
    assert ticket["slaRuleId"] == high["id"]
    assert datetime.fromisoformat(ticket["responseDueAt"]) == created + timedelta(minutes=60)
    assert datetime.fromisoformat(ticket["resolutionDueAt"]) == created + timedelta(minutes=240)

    url = f"/api/tickets/{ticket['id']}"
    ok(client.patch(f"{url}/status", json={"status": "open"}, headers=agent.headers))
    held = ok(client.patch(f"{url}/status", json={"status": "on_hold"}, headers=agent.headers))
    assert held["slaPausedAt"] is not None
    resumed = ok(
        client.patch(f"{url}/status", json={"status": "in_progress"}, headers=agent.headers)
    )
    assert resumed["slaPausedAt"] is None
    lowered = ok(client.patch(url, json={"priority": "low"}, headers=agent.headers))
    assert lowered["slaRuleId"] == low["id"]
    assert datetime.fromisoformat(lowered["resolutionDueAt"]) >= created + timedelta(minutes=2400)
    history = ok(client.get(f"{url}/history", headers=agent.headers))
    applied = [h for h in history if h["kind"] == "sla_applied"]
    assert len(applied) == 2 and applied[-1]["data"]["reason"]

    # An hour past its deadline (as if the clock had run): the scan escalates it.
    with bound(db, tenant.id) as session:
        row = session.get(Ticket, uuid.UUID(ticket["id"]))
        row.resolution_due_at = datetime.now(UTC) - timedelta(hours=1)
    result = ok(client.post("/api/automation/sla-scan", headers=agent.headers))
    assert (result["breached"], result["escalated"]) == (1, 1)
    shown = ok(client.get(url, headers=agent.headers))
    assert shown["resolutionBreachedAt"] is not None
    assert (shown["priority"], shown["escalationLevel"]) == ("medium", 1)
    assert ok(client.post("/api/automation/sla-scan", headers=agent.headers))["breached"] == 0
