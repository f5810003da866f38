"""Assets: types and status labels (defaults plus one of the district's own), people
(a student and a staff member linked to the requester), assets with history (moved,
checked out and in, status changed), a ticket link, and a confirmed room audit.

``domain.made["assets"]`` has the assets, ``domain.made["people"]`` the people.
"""

from __future__ import annotations

from typing import Any

from tests.tenancy_seed import DomainSeed


def seed(domain: DomainSeed) -> None:
    client, marker, admin = domain.client, domain.marker, domain.admin
    tech = domain.callers["technician"]
    types = {t["name"]: t["id"] for t in domain.ok(client.get("/api/asset-types", headers=admin))}
    labels = {
        s["name"]: s["id"] for s in domain.ok(client.get("/api/asset-statuses", headers=admin))
    }
    domain.ok(
        client.post(
            "/api/asset-types",
            json={"name": f"{marker} 3D printer", "description": f"{marker} maker space"},
            headers=admin,
        ),
        201,
    )
    loaner = domain.ok(
        client.post(
            "/api/asset-statuses",
            json={"name": f"{marker} loaner", "statusType": "deployable"},
            headers=admin,
        ),
        201,
    )
    student = domain.ok(
        client.post(
            "/api/people",
            json={
                "kind": "student",
                "name": f"{marker} student",
                "externalId": f"{marker}-s1",
                "grade": "7",
            },
            headers=admin,
        ),
        201,
    )
    staff = domain.ok(
        client.post(
            "/api/people",
            json={
                "kind": "staff",
                "name": f"{marker} teacher",
                "email": f"teacher@{marker}.example",
                "userId": domain.users["requester"]["id"],
            },
            headers=tech,
        ),
        201,
    )
    rooms = domain.ok(client.get("/api/rooms", headers=admin))
    room = rooms[0]["id"]
    tag = marker.upper()
    assets: list[dict[str, Any]] = []
    for n, (type_name, extra) in enumerate(
        (
            ("Chromebook", {"serialNumber": f"{tag}-SN1", "roomId": room}),
            ("Projector", {"roomId": room, "statusLabelId": loaner["id"]}),
            ("Laptop", {"assignedPersonId": staff["id"], "notes": f"{marker} notes"}),
        ),
        start=1,
    ):
        assets.append(
            domain.ok(
                client.post(
                    "/api/assets",
                    json={
                        "assetTag": f"{tag}-{n}",
                        "assetTypeId": types[type_name],
                        "name": f"{marker} {type_name}",
                        "customFields": {"marker": marker},
                        **extra,
                    },
                    headers=admin,
                ),
                201,
            )
        )
    chromebook, projector, _laptop = assets
    url = f"/api/assets/{chromebook['id']}"
    domain.ok(client.post(f"{url}/checkout", json={"personId": student["id"]}, headers=tech))
    domain.ok(
        client.post(
            f"{url}/checkin",
            json={"condition": "damaged", "statusLabelId": labels["Broken"]},
            headers=tech,
        )
    )
    domain.ok(client.patch(url, json={"fundingSource": f"{marker} grant"}, headers=tech))
    tickets = domain.made.get("tickets") or []
    if tickets:
        domain.ok(
            client.post(f"{url}/tickets", json={"ticketId": tickets[0]["id"]}, headers=admin), 201
        )
    audit = domain.ok(
        client.post(
            f"/api/rooms/{room}/audits",
            json={"scannedTags": [f"{tag}-1", f"{tag}-404"], "notes": f"{marker} audit"},
            headers=tech,
        ),
        201,
    )
    domain.ok(client.post(f"/api/room-audits/{audit['id']}/confirm", json={}, headers=tech))
    assert (
        domain.ok(client.get(f"/api/assets/{projector['id']}", headers=admin))["statusName"]
        == "Missing"
    )
    domain.made["assets"] = assets
    domain.made["people"] = [student, staff]
