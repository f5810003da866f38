"""Tickets with every kind of row hanging off them: comments, internal notes, a
blocker link, a merge, history events, attachments and number sequences."""

from __future__ import annotations

from tests.tenancy_seed import DomainSeed


def seed(domain: DomainSeed) -> None:
    client, marker = domain.client, domain.marker
    requester = domain.callers["requester"]
    agent = domain.callers["agent"]
    first = domain.ok(
        client.post(
            "/api/tickets",
            json={
                "title": f"{marker} projector dead in room 101",
                "description": f"{marker} no picture",
                "tags": [marker[:20]],
                "departmentId": domain.department["id"],
            },
            headers=requester,
        ),
        201,
    )
    second = domain.ok(
        client.post(
            "/api/tickets",
            json={"title": f"{marker} network closet switch", "ticketType": "problem"},
            headers=agent,
        ),
        201,
    )
    duplicate = domain.ok(
        client.post("/api/tickets", json={"title": f"{marker} duplicate"}, headers=requester), 201
    )
    url = f"/api/tickets/{first['id']}"
    domain.ok(
        client.post(f"{url}/comments", json={"body": f"{marker} comment"}, headers=agent), 201
    )
    domain.ok(
        client.post(f"{url}/internal-notes", json={"body": f"{marker} note"}, headers=agent), 201
    )
    domain.ok(
        client.post(
            f"{url}/attachments",
            json={"storageKey": domain.made["uploads"][0]["storageKey"], "isInternal": True},
            headers=agent,
        ),
        201,
    )
    domain.ok(client.post(f"{url}/blockers", json={"blockerId": second["id"]}, headers=agent), 201)
    domain.ok(
        client.patch(
            f"{url}/assign",
            json={"assigneeId": domain.users["technician"]["id"]},
            headers=agent,
        )
    )
    domain.ok(
        client.post(
            f"/api/tickets/{duplicate['id']}/merge", json={"intoId": first["id"]}, headers=agent
        )
    )
    domain.made["tickets"] = [first, second]
