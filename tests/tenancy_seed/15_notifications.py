"""Notifications and a notification preference for the organization being built."""

from __future__ import annotations

import uuid
from typing import Any

from server.notifications import events, service
from server.tickets.models import Ticket
from tests.tenancy_seed import DomainSeed


def _ticket_id(domain: DomainSeed) -> uuid.UUID | None:
    """A ticket another seed module made, when one ran before this one."""
    made: Any = domain.made.get("tickets")
    if isinstance(made, list) and made and isinstance(made[0], dict) and made[0].get("id"):
        return uuid.UUID(str(made[0]["id"]))
    return None


def seed(domain: DomainSeed) -> None:
    marker = domain.marker
    agent = uuid.UUID(domain.users["agent"]["id"])
    technician = uuid.UUID(domain.users["technician"]["id"])
    requester = uuid.UUID(domain.users["requester"]["id"])
    ticket_id = _ticket_id(domain)
    with domain.db.transaction(tenant=domain.tenant_id) as session:
        ticket = session.get(Ticket, ticket_id) if ticket_id else None
        written = service.notify(
            session,
            recipients=[agent, technician],
            event=events.TICKET_ASSIGNED,
            title=f"{marker} ticket assigned to you",
            body=f"{marker} projector is dead",
            ticket=ticket,
            link=None if ticket else f"/{marker}/inbox",
            actor_id=requester,
        )
        assert written == 2
        service.notify(
            session,
            recipients=[agent],
            event=events.LOW_STOCK,
            title=f"{marker} HDMI cables are low",
            body=f"{marker} warehouse",
        )
    # one of them read, so read rows exist too
    listed = domain.ok(domain.client.get("/api/notifications", headers=domain.callers["agent"]))
    assert len(listed) == 2, listed
    domain.ok(
        domain.client.patch(
            f"/api/notifications/{listed[0]['id']}/read", headers=domain.callers["agent"]
        )
    )
    domain.ok(
        domain.client.put(
            "/api/notifications/preferences",
            json={"preferences": [{"event": "ticket_commented", "inApp": True, "email": True}]},
            headers=domain.callers["technician"],
        )
    )
    domain.made["notifications"] = [item["id"] for item in listed]
