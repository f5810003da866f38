"""Notifications: who is told of what, in the app and by email, and each user's inbox."""

from __future__ import annotations

import typing
import uuid
from collections.abc import Iterable
from typing import Any

import httpx
from sqlalchemy import select

from common.enums import Role
from server.core.config import Settings
from server.core.db import utcnow
from server.core.engine import Database
from server.core.tenancy import ALL_TENANTS
from server.mail.models import OutboxEmail
from server.notifications import events, service
from server.notifications.models import Notification
from server.notifications.schemas import EventName
from server.tickets.models import Ticket
from tests.conftest import Account, Tenant, World, assert_error
from tests.test_query_counts import count_statements

PUBLIC_URL = "https://help.maplewood.example"


def _ticket(db: Database, org_id: uuid.UUID, requester: uuid.UUID, number: str) -> uuid.UUID:
    with db.transaction(tenant=org_id) as session:
        ticket = Ticket(
            number=number,
            ticket_type="incident",
            title="Projector in room 204 is dead",
            status="new",
            status_category="open",
            status_changed_at=utcnow(),
            priority="medium",
            requester_id=requester,
        )
        session.add(ticket)
        session.flush()
        return ticket.id


def _notify(
    db: Database,
    settings: Settings,
    org_id: uuid.UUID,
    recipients: Iterable[Any],
    *,
    event: str = events.TICKET_ASSIGNED,
    ticket_id: uuid.UUID | None = None,
    actor: uuid.UUID | None = None,
    title: str = "INC-000001 was assigned to you",
    body: str = "Projector in room 204 is dead",
) -> int:
    with db.transaction(tenant=org_id) as session:
        ticket = session.get(Ticket, ticket_id) if ticket_id else None
        return service.notify(
            session,
            recipients=recipients,
            event=event,
            title=title,
            body=body,
            ticket=ticket,
            actor_id=actor,
            settings=settings.model_copy(update={"base_url": PUBLIC_URL + "/"}),
        )


def _outbox(db: Database) -> list[OutboxEmail]:
    with db.transaction(tenant=ALL_TENANTS) as session:
        return list(session.scalars(select(OutboxEmail).where(OutboxEmail.kind.like("notif%"))))


def _inbox(client: httpx.Client, who: Account, **params: Any) -> dict[str, Any]:
    response = client.get("/api/notifications", headers=who.headers, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _unread(client: httpx.Client, who: Account) -> int:
    response = client.get("/api/notifications/unread-count", headers=who.headers)
    assert response.status_code == 200, response.text
    return int(response.json()["data"]["unread"])


def _set_prefs(client: httpx.Client, who: Account, *items: dict[str, Any]) -> httpx.Response:
    return client.put(
        "/api/notifications/preferences", headers=who.headers, json={"preferences": list(items)}
    )


def test_event_vocabulary_is_one_list() -> None:
    assert set(typing.get_args(EventName)) == set(events.ALL_EVENTS)
    assert len(set(events.ALL_EVENTS)) == len(events.ALL_EVENTS) == 10
    assert set(events.LABELS) == set(events.ALL_EVENTS)
    assert set(events.ALL_EVENTS) >= events.DEFAULT_EMAIL


def test_notify_follows_preferences_and_skips_who_should_not_hear(
    world: World, client: httpx.Client, db: Database, settings: Settings
) -> None:
    tenant = world.org("alpha")
    other = world.org("bravo")
    tech = world.user(tenant.id, Role.TECHNICIAN, first_name="Tina", last_name="Tech")
    quiet = world.user(tenant.id, Role.AGENT)
    email_only = world.user(tenant.id, Role.AGENT)
    gone = world.user(tenant.id, Role.AGENT, is_active=False, login=False)
    deleted = world.user(tenant.id, Role.AGENT, login=False)
    stranger = world.user(other.id, Role.AGENT, login=False)
    root = world.super_admin()
    actor = tenant.admin
    assert client.delete(f"/api/users/{deleted.id}", headers=actor.headers).status_code == 204
    off = {"event": "ticket_assigned", "inApp": False, "email": False}
    assert _set_prefs(client, quiet, off).status_code == 200
    mail_not_app = {"event": "ticket_assigned", "inApp": False, "email": True}
    assert _set_prefs(client, email_only, mail_not_app).status_code == 200
    ticket_id = _ticket(db, tenant.id, actor.id, "INC-000001")

    written = _notify(
        db,
        settings,
        tenant.id,
        # duplicates (also as text, as ticket watcher lists hold them), the actor,
        # an inactive, a deleted, another district's user, a platform admin, nobody
        [tech.id, str(tech.id), tech.id, quiet.id, email_only.id, gone.id, deleted.id,
         stranger.id, root.id, actor.id, uuid.uuid4()],
        ticket_id=ticket_id,
        actor=actor.id,
    )  # fmt: skip

    assert written == 1
    listed = _inbox(client, tech)["data"]
    assert len(listed) == 1
    item = listed[0]
    assert item["event"] == "ticket_assigned"
    assert item["eventLabel"] == events.label("ticket_assigned")
    assert item["title"] == "INC-000001 was assigned to you"
    assert item["ticketId"] == str(ticket_id)
    assert item["ticketNumber"] == "INC-000001"
    assert item["link"] == f"/tickets/{ticket_id}"
    assert item["actorId"] == str(actor.id)
    assert item["isRead"] is False and item["readAt"] is None
    for nobody in (quiet, email_only, actor):
        assert _inbox(client, nobody)["data"] == []
    with db.transaction(tenant=ALL_TENANTS) as session:
        owners = set(session.scalars(select(Notification.user_id)))
    assert owners == {tech.id}

    mails = _outbox(db)
    assert sorted(m.to_address for m in mails) == sorted([tech.email, email_only.email])
    mine = next(m for m in mails if m.to_address == tech.email)
    assert mine.kind == "notification.ticket_assigned"
    assert mine.organization_id == tenant.id
    assert mine.subject == "INC-000001 was assigned to you"
    assert mine.body_text.startswith("Hello Tina Tech,")
    assert "Projector in room 204 is dead" in mine.body_text
    assert f"{PUBLIC_URL}/tickets/{ticket_id}" in mine.body_text


def test_chatty_events_stay_in_the_app_unless_asked_for_by_email(
    world: World, client: httpx.Client, db: Database, settings: Settings
) -> None:
    tenant = world.org("alpha")
    requester = world.user(tenant.id, Role.REQUESTER)
    wants_mail = world.user(tenant.id, Role.REQUESTER)
    on = {"event": "ticket_commented", "inApp": True, "email": True}
    assert _set_prefs(client, wants_mail, on).status_code == 200
    ticket_id = _ticket(db, tenant.id, requester.id, "INC-000007")

    written = _notify(
        db,
        settings,
        tenant.id,
        [requester.id, wants_mail.id],
        event=events.TICKET_COMMENTED,
        ticket_id=ticket_id,
        title="New comment on your ticket",
    )

    assert written == 2
    assert [m.to_address for m in _outbox(db)] == [wants_mail.email]
    # the ticket number leads the subject when the title does not carry it
    assert _outbox(db)[0].subject == "[INC-000007] New comment on your ticket"
    assert _unread(client, requester) == 1
    # nothing to notify: no statement, no row
    assert _notify(db, settings, tenant.id, [], event=events.LOW_STOCK) == 0


def test_nobody_reads_or_marks_someone_elses_notifications(
    world: World, client: httpx.Client, db: Database, settings: Settings
) -> None:
    tenant = world.org("alpha")
    mine = world.user(tenant.id, Role.TECHNICIAN)
    theirs = world.user(tenant.id, Role.TECHNICIAN)
    _notify(db, settings, tenant.id, [mine.id], title="For me")
    _notify(db, settings, tenant.id, [theirs.id], title="For them")
    their_id = _inbox(client, theirs)["data"][0]["id"]

    assert [n["title"] for n in _inbox(client, mine)["data"]] == ["For me"]
    # not even the organization's admin sees another person's inbox
    assert _inbox(client, tenant.admin)["data"] == []
    for snoop in (mine, tenant.admin):
        assert_error(
            client.patch(f"/api/notifications/{their_id}/read", headers=snoop.headers),
            404,
            "RESOURCE_NOT_FOUND",
        )
    missing = client.patch(f"/api/notifications/{uuid.uuid4()}/read", headers=mine.headers)
    assert_error(missing, 404, "RESOURCE_NOT_FOUND")
    assert _unread(client, theirs) == 1
    assert _inbox(client, theirs)["data"][0]["isRead"] is False
    # read-all marks only the caller's own
    response = client.post("/api/notifications/read-all", headers=mine.headers)
    assert response.json()["data"] == {"updated": 1, "unread": 0}
    assert _unread(client, theirs) == 1


def test_filters_mark_read_and_read_all(
    world: World, client: httpx.Client, db: Database, settings: Settings
) -> None:
    tenant = world.org("alpha")
    tech = world.user(tenant.id, Role.TECHNICIAN)
    first = _ticket(db, tenant.id, tenant.admin.id, "INC-000001")
    second = _ticket(db, tenant.id, tenant.admin.id, "INC-000002")
    _notify(db, settings, tenant.id, [tech.id], ticket_id=first, title="Assigned INC-000001")
    _notify(
        db, settings, tenant.id, [tech.id], event=events.SLA_BREACHED, ticket_id=first,
        title="INC-000001 breached its SLA",
    )  # fmt: skip
    _notify(db, settings, tenant.id, [tech.id], ticket_id=second, title="Assigned INC-000002")
    _notify(db, settings, tenant.id, [tech.id], event=events.LOW_STOCK, title="HDMI cables low")

    page = _inbox(client, tech)
    assert [n["title"] for n in page["data"]] == [
        "HDMI cables low",
        "Assigned INC-000002",
        "INC-000001 breached its SLA",
        "Assigned INC-000001",
    ], "newest first"
    assert page["pagination"]["total"] == 4
    assert _unread(client, tech) == 4
    titles = lambda **p: [n["title"] for n in _inbox(client, tech, **p)["data"]]
    assert titles(event="sla_breached") == ["INC-000001 breached its SLA"]
    assert titles(ticketId=str(first)) == ["INC-000001 breached its SLA", "Assigned INC-000001"]
    assert titles(q="hdmi") == ["HDMI cables low"]
    assert titles(q="INC-000002") == ["Assigned INC-000002"]
    assert titles(sort="createdAt")[0] == "Assigned INC-000001"
    assert [n["title"] for n in _inbox(client, tech, perPage=2, page=2)["data"]] == [
        "INC-000001 breached its SLA",
        "Assigned INC-000001",
    ]
    assert_error(
        client.get("/api/notifications", headers=tech.headers, params={"event": "nope"}), 422
    )
    assert_error(
        client.get("/api/notifications", headers=tech.headers, params={"sort": "title"}), 422
    )

    low_stock = page["data"][0]
    response = client.patch(f"/api/notifications/{low_stock['id']}/read", headers=tech.headers)
    assert response.status_code == 200, response.text
    read = response.json()["data"]
    assert read["isRead"] is True and read["readAt"]
    again = client.patch(f"/api/notifications/{low_stock['id']}/read", headers=tech.headers)
    assert again.json()["data"]["readAt"] == read["readAt"], "marking twice keeps the first time"
    assert _unread(client, tech) == 3
    assert titles(unread="true") == [
        "Assigned INC-000002",
        "INC-000001 breached its SLA",
        "Assigned INC-000001",
    ]
    assert titles(unread="false") == ["HDMI cables low"]
    ticket_read = client.patch(
        f"/api/notifications/{page['data'][1]['id']}/read", headers=tech.headers
    )
    assert ticket_read.json()["data"]["ticketNumber"] == "INC-000002"

    response = client.post("/api/notifications/read-all", headers=tech.headers)
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"updated": 2, "unread": 0}
    assert _unread(client, tech) == 0
    assert titles(unread="true") == []
    assert client.post("/api/notifications/read-all", headers=tech.headers).json()["data"] == {
        "updated": 0,
        "unread": 0,
    }


def test_preferences_round_trip_and_refuse_bad_input(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    agent = world.user(tenant.id, Role.AGENT)

    def prefs() -> dict[str, dict[str, Any]]:
        response = client.get("/api/notifications/preferences", headers=agent.headers)
        assert response.status_code == 200, response.text
        return {p["event"]: p for p in response.json()["data"]}

    defaults = prefs()
    assert list(defaults) == list(events.ALL_EVENTS)
    for event, pref in defaults.items():
        assert pref["inApp"] is True
        assert pref["isDefault"] is True
        assert pref["label"] == events.LABELS[event]
    assert {e for e, p in defaults.items() if p["email"]} == {
        "ticket_assigned", "mentioned", "approval_requested", "sla_breached",
        "waiting_reminder", "purchase_order_approval", "low_stock",
    }  # fmt: skip
    assert not any(defaults[e]["email"] for e in ("ticket_status_changed", "ticket_commented"))

    response = _set_prefs(
        client,
        agent,
        {"event": "ticket_commented", "inApp": True, "email": True},
        {"event": "sla_due_soon", "in_app": False, "email": False},  # snake_case accepted
    )
    assert response.status_code == 200, response.text
    assert {p["event"]: p for p in response.json()["data"]} == prefs()
    after = prefs()
    assert after["ticket_commented"] | {"isDefault": None} == {
        **defaults["ticket_commented"], "email": True, "isDefault": None,
    }  # fmt: skip
    assert after["ticket_commented"]["isDefault"] is False
    assert (after["sla_due_soon"]["inApp"], after["sla_due_soon"]["email"]) == (False, False)
    assert after["mentioned"] == defaults["mentioned"], "events not listed keep their values"
    # changing an existing choice updates it (no second row)
    change = {"event": "ticket_commented", "inApp": False, "email": True}
    assert _set_prefs(client, agent, change).status_code == 200
    assert prefs()["ticket_commented"]["inApp"] is False

    snapshot = prefs()
    good = {"event": "mentioned", "inApp": False, "email": False}
    for bad in (
        [good, {"event": "ticket_exploded", "inApp": True, "email": True}],
        [good, {"event": "mentioned", "inApp": True, "email": True}],  # listed twice
        [good, {"event": "low_stock", "inApp": True}],  # email missing
        [good, {"event": "low_stock", "inApp": "sometimes", "email": True}],
        [good, {"event": "low_stock", "inApp": True, "email": True, "sms": True}],
    ):
        assert_error(_set_prefs(client, agent, *bad), 422, "VALIDATION_ERROR")
    assert_error(_set_prefs(client, agent), 422, "VALIDATION_ERROR")  # nothing to set
    assert_error(
        client.put("/api/notifications/preferences", headers=agent.headers, json=[good]), 422
    )
    assert prefs() == snapshot, "a refused update changes nothing"


def test_preferences_are_per_user(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    one = world.user(tenant.id, Role.AGENT)
    two = world.user(tenant.id, Role.AGENT)
    off = {"event": "mentioned", "inApp": False, "email": False}
    assert _set_prefs(client, one, off).status_code == 200
    response = client.get("/api/notifications/preferences", headers=two.headers)
    mentioned = next(p for p in response.json()["data"] if p["event"] == "mentioned")
    assert (mentioned["inApp"], mentioned["email"], mentioned["isDefault"]) == (True, True, True)
    # a platform administrator gets no notifications, so has nothing to choose
    root = world.super_admin()
    assert_error(_set_prefs(client, root, off), 422, "BUSINESS_RULE_VIOLATION")


def test_api_tokens_need_the_tickets_scopes(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")

    def token(*scopes: str) -> dict[str, str]:
        response = client.post(
            "/api/api-tokens",
            headers=tenant.admin.headers,
            json={"name": f"t-{uuid.uuid4().hex[:6]}", "scopes": list(scopes)},
        )
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['data']['token']}"}

    users_only = token("users:read")
    assert_error(client.get("/api/notifications", headers=users_only), 403, "INSUFFICIENT_SCOPE")
    reader = token("tickets:read")
    assert client.get("/api/notifications", headers=reader).status_code == 200
    assert_error(
        client.post("/api/notifications/read-all", headers=reader), 403, "INSUFFICIENT_SCOPE"
    )


def test_list_statement_count_does_not_grow_with_rows(
    world: World, client: httpx.Client, db: Database, settings: Settings
) -> None:
    tenant: Tenant = world.org("alpha")
    tech = world.user(tenant.id, Role.TECHNICIAN)

    def grow(n: int) -> None:
        for i in range(n):
            ticket_id = _ticket(db, tenant.id, tenant.admin.id, f"INC-{uuid.uuid4().hex[:8]}")
            _notify(db, settings, tenant.id, [tech.id], ticket_id=ticket_id, title=f"n{i}")
            _notify(db, settings, tenant.id, [tech.id], event=events.LOW_STOCK, title=f"s{i}")

    def measure(path: str) -> int:
        client.get(path, headers=tech.headers)  # warm caches
        with count_statements(db) as statements:
            response = client.get(path, headers=tech.headers, params={"perPage": 100})
        assert response.status_code == 200, response.text
        return len(statements)

    paths = [
        "/api/notifications",
        "/api/notifications/unread-count",
        "/api/notifications/preferences",
    ]
    grow(2)
    few = {p: measure(p) for p in paths}
    grow(15)
    _set_prefs(client, tech, {"event": "mentioned", "inApp": True, "email": False})
    many = {p: measure(p) for p in paths}
    assert many == few
    assert all(n <= 8 for n in few.values()), few
    assert len(_inbox(client, tech, perPage=100)["data"]) == 34


def test_notify_with_many_recipients_is_a_fixed_number_of_statements(
    world: World, db: Database, settings: Settings
) -> None:
    tenant = world.org("alpha")
    people = [world.user(tenant.id, Role.AGENT, login=False).id for _ in range(12)]

    def measure(recipients: list[uuid.UUID]) -> int:
        with count_statements(db) as statements:
            assert _notify(db, settings, tenant.id, recipients) == len(recipients)
        return len(statements)

    measure(people[:1])  # warm caches
    assert measure(people[:2]) == measure(people)
