"""Vendors (with a department), purchase orders with lines, the number sequence, and a
partial receipt that writes stock movements.

The receiving location and the catalogue part come from the inventory API.
``domain.made["vendor"]`` and ``domain.made["purchase_orders"]`` hold what it made.
"""

from __future__ import annotations

from typing import Any

from tests.tenancy_seed import DomainSeed


def _stock_place_and_part(domain: DomainSeed, vendor_id: str) -> tuple[str, str]:
    """A receiving location and a catalogue part the vendor supplies (inventory API)."""
    client, admin, marker = domain.client, domain.admin, domain.marker
    location = domain.ok(
        client.post(
            "/api/inventory/locations",
            headers=admin,
            json={"name": f"{marker} receiving dock", "kind": "warehouse"},
        ),
        201,
    )
    part = domain.ok(
        client.post(
            "/api/inventory/parts",
            headers=admin,
            json={
                "name": f"{marker} projector lamp",
                "partNumber": f"{marker[:6]}-LAMP",
                "unitCost": 89,
                "reorderPoint": 2,
                "reorderQuantity": 4,
                "vendorId": vendor_id,
            },
        ),
        201,
    )
    return location["id"], part["id"]


def seed(domain: DomainSeed) -> None:
    client, admin, marker = domain.client, domain.admin, domain.marker
    vendor = domain.ok(
        client.post(
            "/api/vendors",
            headers=admin,
            json={
                "name": f"{marker} Lamp Supply",
                "type": "supplier",
                "contactName": f"{marker} rep",
                "email": f"orders@{marker}.example",
                "accountNumber": f"{marker}-001",
                "departmentIds": [domain.department["id"]],
            },
        ),
        201,
    )
    location_id, part_id = _stock_place_and_part(domain, vendor["id"])
    tickets = domain.made.get("tickets") or []
    ticket_id: Any = tickets[0]["id"] if tickets and isinstance(tickets[0], dict) else None
    order = domain.ok(
        client.post(
            "/api/purchase-orders",
            headers=admin,
            json={
                "vendorId": vendor["id"],
                "departmentId": domain.department["id"],
                "ticketId": ticket_id,
                "shipToLocationId": location_id,
                "description": f"{marker} lamps for the high school",
                "fundingSource": f"{marker} Title IV",
                "lineItems": [
                    {
                        "partId": part_id,
                        "description": f"{marker} projector lamp",
                        "quantity": 4,
                        "unitCost": "89.00",
                    },
                    {"description": f"{marker} installation", "quantity": 1, "unitCost": 50},
                ],
            },
        ),
        201,
    )
    for action in ("submit", "approve", "send"):
        domain.ok(client.post(f"/api/purchase-orders/{order['id']}/{action}", headers=admin))
    lamp_line = order["lineItems"][0]
    domain.ok(
        client.post(
            f"/api/purchase-orders/{order['id']}/receive",
            headers=admin,
            json={"lines": [{"lineId": lamp_line["id"], "quantity": 2}], "note": marker},
        )
    )
    draft = domain.ok(
        client.post(
            "/api/purchase-orders",
            headers=domain.callers["technician"],
            json={
                "vendorId": vendor["id"],
                "lineItems": [{"description": f"{marker} toner", "quantity": 2, "unitCost": 60}],
            },
        ),
        201,
    )
    domain.made["vendor"] = vendor
    domain.made["purchase_orders"] = [order, draft]
