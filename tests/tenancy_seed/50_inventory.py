"""Parts, stock locations, stock levels and movements of every kind (a transfer, an
adjustment, a flagged negative consumption and its review, parts used on a ticket
and returned), all through the inventory API.

``domain.made["inventory"]`` holds the part, the locations and the ticket movement.
"""

from __future__ import annotations

from tests.tenancy_seed import DomainSeed


def seed(domain: DomainSeed) -> None:
    client, admin, marker = domain.client, domain.admin, domain.marker
    tech = domain.callers["technician"]
    post = lambda url, body: client.post(url, headers=admin, json=body)
    warehouse = domain.ok(
        post("/api/inventory/locations", {"name": f"{marker} warehouse", "kind": "warehouse",
                                          "notes": f"{marker} main stock"}),
        201,
    )  # fmt: skip
    van = domain.ok(
        post(
            "/api/inventory/locations",
            {"name": f"{marker} van", "kind": "van",
             "holderUserId": domain.users["technician"]["id"]},
        ),
        201,
    )  # fmt: skip
    part = domain.ok(
        post(
            "/api/inventory/parts",
            {
                "name": f"{marker} Chromebook screen",
                "partNumber": f"{marker[:8]}-SCR",
                "manufacturer": f"{marker} Displays",
                "category": "Screens",
                "unitCost": 42.5,
                "reorderPoint": 2,
                "reorderQuantity": 10,
                "departmentId": domain.department["id"],
                "ownerUserId": domain.users["agent"]["id"],
                "compatibleModels": [f"{marker} 3100"],
                "currentStock": 8,
                "locationId": warehouse["id"],
            },
        ),
        201,
    )
    domain.ok(
        post("/api/inventory/parts", {"name": f"{marker} toner", "currentStock": 1,
                                      "locationName": f"{marker} closet"}),
        201,
    )  # fmt: skip
    move = lambda body, headers=admin: client.post(
        "/api/inventory/movements", headers=headers, json={"partId": part["id"], **body}
    )
    domain.ok(
        move({"kind": "transfer", "locationId": warehouse["id"], "toLocationId": van["id"],
              "quantity": 2, "reason": f"{marker} van restock"}),
        201,
    )  # fmt: skip
    domain.ok(
        move({"kind": "adjust", "locationId": warehouse["id"], "quantity": -1,
              "reason": f"{marker} cracked in box"}),
        201,
    )  # fmt: skip
    [short] = domain.ok(
        move({"kind": "consume", "locationId": van["id"], "quantity": 3,
              "reason": f"{marker} more than the van had"}, tech),
        201,
    )  # fmt: skip
    domain.ok(post(f"/api/inventory/review/{short['id']}/resolve", {"note": f"{marker} ok"}))
    tickets = domain.made.get("tickets") or []
    used = None
    if tickets:
        ticket_id = tickets[0]["id"]
        used = domain.ok(
            post(f"/api/tickets/{ticket_id}/parts",
                 {"partId": part["id"], "locationId": warehouse["id"], "quantity": 2,
                  "note": f"{marker} replaced"}),
            201,
        )  # fmt: skip
        domain.ok(
            post(f"/api/tickets/{ticket_id}/parts/{used['part']['id']}/return",
                 {"quantity": 1, "note": f"{marker} spare"}),
            201,
        )  # fmt: skip
    domain.made["inventory"] = {
        "part": part,
        "locations": [warehouse, van],
        "ticket_part": used["part"] if used else None,
    }
