"""Parts inventory over HTTP: the catalogue, locations, movements, the review queue,
parts used on tickets, who may do what, department isolation, and statement counts."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from common.enums import Role
from server.core.engine import Database
from tests.conftest import Tenant, World, assert_error
from tests.test_query_counts import count_statements


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.request.url}: {response.text}"
    return response.json()["data"]


class Inventory:
    """Short calls for one organization's inventory."""

    def __init__(self, client: httpx.Client, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    def as_(self, headers: dict[str, str]) -> Inventory:
        return Inventory(self.client, headers)

    def get(self, url: str, **params: Any) -> httpx.Response:
        return self.client.get(url, headers=self.headers, params=params)

    def post(self, url: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.client.post(url, headers=self.headers, json=body)

    def patch(self, url: str, body: dict[str, Any]) -> httpx.Response:
        return self.client.patch(url, headers=self.headers, json=body)

    def location(self, name: str, kind: str = "warehouse", **fields: Any) -> dict[str, Any]:
        return _ok(
            self.post("/api/inventory/locations", {"name": name, "kind": kind, **fields}), 201
        )

    def part(self, name: str, **fields: Any) -> dict[str, Any]:
        return _ok(self.post("/api/inventory/parts", {"name": name, **fields}), 201)

    def move(
        self, kind: str, part: dict, location: dict, quantity: int, **fields: Any
    ) -> httpx.Response:
        body = {
            "kind": kind,
            "partId": part["id"],
            "locationId": location["id"],
            "quantity": quantity,
        }
        return self.post("/api/inventory/movements", {**body, **fields})

    def stock(self, part: dict) -> dict[str, int]:
        rows = _ok(self.get(f"/api/inventory/parts/{part['id']}/stock"))
        return {r["locationName"]: r["quantity"] for r in rows}

    def on_hand(self, part: dict) -> int:
        return _ok(self.get(f"/api/inventory/parts/{part['id']}"))["currentStock"]


@pytest.fixture
def tenant(world: World) -> Tenant:
    return world.org("parts")


@pytest.fixture
def inv(client: httpx.Client, tenant: Tenant) -> Inventory:
    return Inventory(client, tenant.admin.headers)


# ----------------------------------------------------------------------- catalogue


def test_a_part_is_created_with_the_spec_fields_and_its_opening_stock(
    inv: Inventory, tenant: Tenant
) -> None:
    part = inv.part(
        "Chromebook 3100 LCD panel",
        partNumber="DELL-3100-LCD",
        manufacturer="Dell",
        category="Screens",
        unitCost=42.5,
        currentStock=12,
        reorderPoint=4,
        reorderQuantity=10,
        locationName="Central Warehouse",
        compatibleModels=["Chromebook 3100", "Chromebook 3100 2-in-1"],
        description="11.6in HD panel, 30-pin eDP",
    )
    assert part["unitCost"] == 42.5 and part["unitCostCents"] == 4250
    assert (part["currentStock"], part["status"], part["lowStock"]) == (12, "active", False)
    assert part["compatibleModels"] == ["Chromebook 3100", "Chromebook 3100 2-in-1"]
    # the location named was made, and the opening stock is a receive movement on it
    [warehouse] = _ok(inv.get("/api/inventory/locations"))
    assert (warehouse["name"], warehouse["kind"]) == ("Central Warehouse", "warehouse")
    assert inv.stock(part) == {"Central Warehouse": 12}
    [opening] = _ok(inv.get(f"/api/inventory/parts/{part['id']}/movements"))
    assert (opening["kind"], opening["quantity"], opening["reason"]) == (
        "receive",
        12,
        "Opening stock",
    )
    assert opening["actorId"] == str(tenant.admin.id) and opening["unitCostCents"] == 4250
    # a second part at the same location by name uses it (names are case-insensitive)
    keyboard = inv.part("Keyboard", currentStock=3, locationName="central warehouse")
    assert inv.stock(keyboard) == {"Central Warehouse": 3}
    assert len(_ok(inv.get("/api/inventory/locations"))) == 1

    # part numbers are unique in the organization; a part without one is fine twice
    assert_error(
        inv.post("/api/inventory/parts", {"name": "Dup", "partNumber": "DELL-3100-LCD"}),
        409,
        "DUPLICATE_RESOURCE",
    )
    inv.part("Loose screw")
    inv.part("Loose screw")
    # opening stock needs a place; the two quantities must agree; cents only
    error = assert_error(
        inv.post("/api/inventory/parts", {"name": "Nowhere", "currentStock": 5}), 422
    )
    assert error["details"]["field"] == "locationName"
    assert_error(
        inv.post(
            "/api/inventory/parts",
            {
                "name": "Odd",
                "currentStock": 5,
                "locationQuantity": 4,
                "locationName": "Central Warehouse",
            },
        ),
        422,
    )
    assert_error(inv.post("/api/inventory/parts", {"name": "Fraction", "unitCost": 1.005}), 422)
    assert_error(inv.post("/api/inventory/parts", {"name": "Negative", "unitCost": -1}), 422)
    assert_error(
        inv.post("/api/inventory/parts", {"name": "Owner", "ownerUserId": str(uuid.uuid4())}), 422
    )
    # the same part number in another organization is fine
    assert len(_ok(inv.get("/api/inventory/parts", perPage=100))) == 4


def test_patch_edits_the_catalogue_but_never_the_quantities(inv: Inventory, tenant: Tenant) -> None:
    part = inv.part(
        "Epson ELPLP88 lamp", unitCost=89, currentStock=6, reorderPoint=2, locationName="Warehouse"
    )
    for body in ({"currentStock": 100}, {"onHand": 100}, {"locationQuantity": 3}, {"quantity": 3}):
        assert_error(inv.patch(f"/api/inventory/parts/{part['id']}", body), 422, "VALIDATION_ERROR")
    assert inv.on_hand(part) == 6
    changed = _ok(
        inv.patch(
            f"/api/inventory/parts/{part['id']}", {"unitCost": 92.25, "category": "Projector lamps"}
        )
    )
    assert (changed["unitCostCents"], changed["category"], changed["currentStock"]) == (
        9225,
        "Projector lamps",
        6,
    )
    assert_error(inv.patch(f"/api/inventory/parts/{part['id']}", {"name": None}), 422)
    # raising the reorder point above what is on hand makes it low (and back)
    assert (
        _ok(inv.patch(f"/api/inventory/parts/{part['id']}", {"reorderPoint": 6}))["status"]
        == "low_stock"
    )
    assert (
        _ok(inv.patch(f"/api/inventory/parts/{part['id']}", {"reorderPoint": 1}))["status"]
        == "active"
    )
    # people set backordered and discontinued; active/low_stock follow the stock
    assert (
        _ok(inv.patch(f"/api/inventory/parts/{part['id']}", {"status": "discontinued"}))["status"]
        == "discontinued"
    )
    assert (
        _ok(inv.patch(f"/api/inventory/parts/{part['id']}", {"status": "low_stock"}))["status"]
        == "active"
    )
    audit = _ok(inv.get("/api/audit-logs", entityId=part["id"], perPage=100))
    assert {"part.created", "part.updated"} <= {e["action"] for e in audit}
    cost_change = next(
        e
        for e in audit
        if e["action"] == "part.updated" and "unitCostCents" in e["details"]["changes"]
    )
    assert cost_change["details"]["changes"]["unitCostCents"] == {"from": 8900, "to": 9225}


def test_parts_list_filters(inv: Inventory, world: World, tenant: Tenant) -> None:
    tech_dept = _ok(inv.post("/api/departments", {"name": "Technology"}), 201)
    closet = inv.location("Lincoln closet", "closet")
    warehouse = inv.location("Warehouse")
    toner = inv.part(
        "HP 58A toner",
        category="Toner",
        partNumber="CF258A",
        currentStock=2,
        reorderPoint=3,
        locationId=warehouse["id"],
    )
    cable = inv.part(
        "Cat6 patch cord 3ft",
        category="Network",
        currentStock=40,
        reorderPoint=10,
        locationId=closet["id"],
        departmentId=tech_dept["id"],
    )
    filt = inv.part("HVAC filter 20x25x1", category="HVAC", status="backordered")
    inv.part("Old VGA cable", category="Network", status="discontinued")

    def names(**params: Any) -> list[str]:
        return [p["name"] for p in _ok(inv.get("/api/inventory/parts", **params))]

    assert names(q="toner") == ["HP 58A toner"]
    assert names(q="cf258") == ["HP 58A toner"], "search covers the part number"
    assert names(category="network") == ["Cat6 patch cord 3ft", "Old VGA cable"]
    assert names(status="backordered") == ["HVAC filter 20x25x1"]
    assert names(lowStock="true") == ["HP 58A toner", "HVAC filter 20x25x1"]
    assert set(names(lowStock="false")) == {"Cat6 patch cord 3ft", "Old VGA cable"}
    assert names(departmentId=tech_dept["id"]) == ["Cat6 patch cord 3ft"]
    in_closet = _ok(inv.get("/api/inventory/parts", locationId=closet["id"]))
    assert [(p["name"], p["locationQuantity"], p["currentStock"]) for p in in_closet] == [
        ("Cat6 patch cord 3ft", 40, 40)
    ]
    assert names(sort="-currentStock")[:2] == ["Cat6 patch cord 3ft", "HP 58A toner"]
    assert_error(inv.get("/api/inventory/parts", sort="secret"), 422)
    assert_error(inv.get("/api/inventory/parts", status="lost"), 422)
    assert (
        toner["status"] == "low_stock"
        and filt["status"] == "backordered"
        and cable["lowStock"] is False
    )


# ------------------------------------------------------------------------ movements


def test_movements_over_the_api(inv: Inventory, world: World, tenant: Tenant) -> None:
    warehouse = inv.location("Warehouse")
    van = inv.location("Van 2", "van")
    part = inv.part("Chromebook charger 45W", unitCost=19.99, reorderPoint=0)
    [received] = _ok(
        inv.move("receive", part, warehouse, 20, reason="PO from CDW", unitCost=18.5), 201
    )
    assert (
        received["kind"],
        received["quantity"],
        received["unitCostCents"],
        received["balanceAfter"],
    ) == ("receive", 20, 1850, 20)
    out, into = _ok(inv.move("transfer", part, warehouse, 5, toLocationId=van["id"]), 201)
    assert (out["kind"], out["locationName"], out["quantity"]) == ("transfer_out", "Warehouse", -5)
    assert (into["kind"], into["locationName"], into["quantity"]) == ("transfer_in", "Van 2", 5)
    assert out["transferId"] == into["transferId"]
    _ok(inv.move("consume", part, van, 2), 201)
    _ok(inv.move("return", part, van, 1), 201)
    [fixed] = _ok(inv.move("adjust", part, warehouse, -3, reason="cycle count"), 201)
    assert fixed["balanceAfter"] == 12
    assert inv.stock(part) == {"Van 2": 4, "Warehouse": 12}
    assert inv.on_hand(part) == 16

    ledger = _ok(
        inv.get("/api/inventory/movements", partId=part["id"], sort="occurredAt", perPage=100)
    )
    assert [m["kind"] for m in ledger] == [
        "receive",
        "transfer_out",
        "transfer_in",
        "consume",
        "return",
        "adjust",
    ]
    assert sum(m["quantity"] for m in ledger) == 16
    assert [m["kind"] for m in _ok(inv.get("/api/inventory/movements", locationId=van["id"]))] == [
        "return",
        "consume",
        "transfer_in",
    ]
    assert len(_ok(inv.get("/api/inventory/movements", kind="adjust"))) == 1
    assert len(_ok(inv.get("/api/inventory/movements", q="cycle"))) == 1
    adjusted = _ok(inv.get("/api/audit-logs", action="stock.adjusted"))
    assert adjusted and adjusted[0]["details"]["reason"] == "cycle count"

    before = inv.stock(part)
    refusals = [
        (inv.move("adjust", part, warehouse, -1), 422, "reason"),
        (inv.move("adjust", part, warehouse, 0, reason="x"), 422, "quantity"),
        (inv.move("receive", part, warehouse, 0), 422, "quantity"),
        (inv.move("consume", part, warehouse, -4), 422, "quantity"),
        (inv.move("transfer", part, warehouse, 1), 422, "toLocationId"),
        (
            inv.move("transfer", part, warehouse, 1, toLocationId=warehouse["id"]),
            422,
            "toLocationId",
        ),
        (inv.move("consume", part, warehouse, 1, toLocationId=van["id"]), 422, "toLocationId"),
        (inv.move("consume", part, warehouse, 1, unitCost=3), 422, "unitCost"),
        (inv.move("consume", part, warehouse, 1, assetId=str(uuid.uuid4())), 422, "assetId"),
        (
            inv.move("receive", part, warehouse, 1, occurredAt="2999-01-01T00:00:00Z"),
            422,
            "occurredAt",
        ),
        (inv.move("receive", part, {"id": str(uuid.uuid4())}, 1), 404, None),
        (inv.move("receive", {"id": str(uuid.uuid4())}, warehouse, 1), 404, None),
    ]
    for response, status, field in refusals:
        error = assert_error(response, status)
        if field:
            assert field in str(error["details"]), (field, error)
    assert inv.stock(part) == before


def test_an_inactive_location_takes_no_stock_and_is_emptied_before_deactivation(
    inv: Inventory,
) -> None:
    closet = inv.location("Oak St closet", "closet")
    warehouse = inv.location("Warehouse")
    part = inv.part("Projector remote", currentStock=2, locationId=closet["id"])
    error = assert_error(
        inv.patch(f"/api/inventory/locations/{closet['id']}", {"active": False}),
        409,
        "RESOURCE_CONFLICT",
    )
    assert "transfer" in error["message"]
    _ok(inv.move("transfer", part, closet, 2, toLocationId=warehouse["id"]), 201)
    assert (
        _ok(inv.patch(f"/api/inventory/locations/{closet['id']}", {"active": False}))["active"]
        is False
    )
    assert_error(inv.move("receive", part, closet, 1), 422, "BUSINESS_RULE_VIOLATION")
    assert_error(
        inv.move("transfer", part, warehouse, 1, toLocationId=closet["id"]),
        422,
        "BUSINESS_RULE_VIOLATION",
    )
    assert [loc["name"] for loc in _ok(inv.get("/api/inventory/locations", active="true"))] == [
        "Warehouse"
    ]


def test_locations_know_their_place_and_holder(
    inv: Inventory, world: World, tenant: Tenant
) -> None:
    site = _ok(inv.post("/api/sites", {"name": "Lincoln Middle"}), 201)
    building = _ok(inv.post(f"/api/sites/{site['id']}/buildings", {"name": "Main"}), 201)
    room = _ok(
        inv.post(
            f"/api/buildings/{building['id']}/rooms", {"number": "IT-1", "roomType": "closet"}
        ),
        201,
    )
    other_site = _ok(inv.post("/api/sites", {"name": "Oak Street"}), 201)
    closet = inv.location("Lincoln IT closet", "closet", roomId=room["id"])
    assert (closet["buildingId"], closet["siteId"]) == (building["id"], site["id"]), (
        "a room gives its building and site"
    )
    assert_error(
        inv.post(
            "/api/inventory/locations",
            {"name": "Bad", "kind": "closet", "roomId": room["id"], "siteId": other_site["id"]},
        ),
        422,
    )
    assert_error(
        inv.post(
            "/api/inventory/locations",
            {"name": "Gone", "kind": "closet", "buildingId": str(uuid.uuid4())},
        ),
        422,
    )
    requester = world.user(tenant.id, Role.REQUESTER, login=False)
    tech = world.user(tenant.id, Role.TECHNICIAN, login=False)
    error = assert_error(
        inv.post(
            "/api/inventory/locations",
            {"name": "Van", "kind": "van", "holderUserId": str(requester.id)},
        ),
        422,
    )
    assert error["details"]["field"] == "holderUserId"
    van = inv.location("Priya's van", "van", holderUserId=str(tech.id))
    assert [
        v["name"] for v in _ok(inv.get("/api/inventory/locations", holderUserId=str(tech.id)))
    ] == ["Priya's van"]
    assert [
        v["name"] for v in _ok(inv.get("/api/inventory/locations", buildingId=building["id"]))
    ] == ["Lincoln IT closet"]
    assert_error(
        inv.post("/api/inventory/locations", {"name": "Priya's van", "kind": "bag"}),
        409,
        "DUPLICATE_RESOURCE",
    )
    moved = _ok(
        inv.patch(
            f"/api/inventory/locations/{van['id']}", {"name": "Van 7", "siteId": other_site["id"]}
        )
    )
    assert (moved["name"], moved["siteId"]) == ("Van 7", other_site["id"])
    assert _ok(inv.get(f"/api/inventory/locations/{van['id']}"))["name"] == "Van 7"
    assert {"stock_location.created", "stock_location.updated"} <= {
        e["action"] for e in _ok(inv.get("/api/audit-logs", entityId=van["id"]))
    }


# --------------------------------------------------------------------------- review


def test_negative_stock_is_queued_for_review(inv: Inventory, world: World, tenant: Tenant) -> None:
    van = inv.location("Van 1", "van")
    part = inv.part("Dell 65W charger", currentStock=1, locationId=van["id"])
    [fine] = _ok(inv.move("consume", part, van, 1), 201)
    [short] = _ok(inv.move("consume", part, van, 2, reason="used on 2 carts"), 201)
    assert (fine["flaggedNegative"], short["flaggedNegative"], short["reviewStatus"]) == (
        False,
        True,
        "open",
    )
    assert inv.stock(part) == {"Van 1": -2}, "recorded, not refused"
    queue = _ok(inv.get("/api/inventory/review"))
    assert [m["id"] for m in queue] == [short["id"]]
    assert queue[0]["balanceAfter"] == -2
    assert [m["id"] for m in _ok(inv.get("/api/inventory/movements", flagged="true"))] == [
        short["id"]
    ]
    resolved = _ok(
        inv.post(
            f"/api/inventory/review/{short['id']}/resolve", {"note": "found 2 in the cart closet"}
        )
    )
    assert (resolved["reviewStatus"], resolved["reviewNote"], resolved["reviewedById"]) == (
        "resolved", "found 2 in the cart closet", str(tenant.admin.id),
    )  # fmt: skip
    assert _ok(inv.get("/api/inventory/review")) == []
    assert [m["id"] for m in _ok(inv.get("/api/inventory/review", status="resolved"))] == [
        short["id"]
    ]
    assert_error(inv.post(f"/api/inventory/review/{short['id']}/resolve"), 409)
    assert_error(inv.post(f"/api/inventory/review/{fine['id']}/resolve"), 404)
    assert_error(inv.get("/api/inventory/review", status="whatever"), 422)
    assert inv.stock(part) == {"Van 1": -2}, "resolving a flag does not rewrite the ledger"


# ------------------------------------------------------------------ roles and departments


def test_who_may_do_what(
    inv: Inventory, client: httpx.Client, world: World, tenant: Tenant
) -> None:
    tech = world.user(tenant.id, Role.TECHNICIAN)
    other_tech = world.user(tenant.id, Role.TECHNICIAN)
    agent = world.user(tenant.id, Role.AGENT)
    teacher = world.user(tenant.id, Role.REQUESTER)
    warehouse = inv.location("Warehouse")
    my_van = inv.location("My van", "van", holderUserId=str(tech.id))
    their_van = inv.location("Their van", "van", holderUserId=str(other_tech.id))
    part = inv.part("USB-C cable", currentStock=30, locationId=warehouse["id"])
    _ok(inv.move("transfer", part, warehouse, 5, toLocationId=their_van["id"]), 201)

    t = inv.as_(tech.headers)
    assert [p["name"] for p in _ok(t.get("/api/inventory/parts"))] == ["USB-C cable"]
    _ok(t.get(f"/api/inventory/parts/{part['id']}/stock"))
    _ok(t.get("/api/inventory/locations"))
    _ok(t.move("transfer", part, warehouse, 4, toLocationId=my_van["id"]), 201)
    _ok(t.move("consume", part, my_van, 1), 201)
    _ok(t.move("return", part, warehouse, 1), 201)
    (
        _ok(t.move("transfer", part, my_van, 1, toLocationId=their_van["id"]), 201),
        "giving stock is fine",
    )
    assert_error(t.move("consume", part, their_van, 1), 403, "PERMISSION_DENIED")
    assert_error(t.move("transfer", part, their_van, 1, toLocationId=my_van["id"]), 403)
    assert_error(t.move("receive", part, warehouse, 1), 403)
    assert_error(t.move("adjust", part, warehouse, 1, reason="found"), 403)
    assert_error(t.post("/api/inventory/parts", {"name": "Mine"}), 403)
    assert_error(t.patch(f"/api/inventory/parts/{part['id']}", {"name": "Mine"}), 403)
    assert_error(t.post("/api/inventory/locations", {"name": "Mine", "kind": "bag"}), 403)
    assert_error(t.get("/api/inventory/review"), 403)

    a = inv.as_(agent.headers)
    _ok(a.move("adjust", part, their_van, -1, reason="lost"), 201)
    _ok(a.move("consume", part, their_van, 1), 201), "agents may take from any van"
    _ok(a.patch(f"/api/inventory/parts/{part['id']}", {"reorderPoint": 3}))
    _ok(a.get("/api/inventory/review"))

    r = inv.as_(teacher.headers)
    for response in (
        r.get("/api/inventory/parts"),
        r.get(f"/api/inventory/parts/{part['id']}"),
        r.get("/api/inventory/locations"),
        r.get("/api/inventory/movements"),
        r.move("consume", part, warehouse, 1),
        r.post("/api/inventory/parts", {"name": "Mine"}),
    ):
        assert_error(response, 403, "PERMISSION_DENIED")
    assert inv.stock(part) == {"My van": 2, "Their van": 4, "Warehouse": 22}

    # an API token needs the inventory scopes
    token = _ok(
        client.post(
            "/api/api-tokens",
            headers=tenant.admin.headers,
            json={"name": "ro", "scopes": ["inventory:read"]},
        ),
        201,
    )
    ro = inv.as_({"Authorization": f"Bearer {token['token']}"})
    _ok(ro.get("/api/inventory/parts"))
    assert_error(ro.move("receive", part, warehouse, 1), 403, "INSUFFICIENT_SCOPE")


def test_department_isolation(inv: Inventory, world: World, tenant: Tenant) -> None:
    tech_dept = _ok(inv.post("/api/departments", {"name": "Technology"}), 201)
    fac_dept = _ok(inv.post("/api/departments", {"name": "Facilities"}), 201)
    it_tech = world.user(tenant.id, Role.TECHNICIAN, department_id=uuid.UUID(tech_dept["id"]))
    fac_tech = world.user(tenant.id, Role.TECHNICIAN, department_id=uuid.UUID(fac_dept["id"]))
    it_agent = world.user(tenant.id, Role.AGENT, department_id=uuid.UUID(tech_dept["id"]))
    loner = world.user(tenant.id, Role.AGENT)
    warehouse = inv.location("Warehouse")
    screen = inv.part(
        "Chromebook screen",
        departmentId=tech_dept["id"],
        currentStock=5,
        locationId=warehouse["id"],
    )
    filt = inv.part(
        "HVAC filter", departmentId=fac_dept["id"], currentStock=8, locationId=warehouse["id"]
    )
    inv.part("AA batteries", currentStock=50, locationId=warehouse["id"])

    def visible(headers: dict[str, str]) -> list[str]:
        return [p["name"] for p in _ok(inv.as_(headers).get("/api/inventory/parts"))]

    assert visible(inv.headers) == ["AA batteries", "Chromebook screen", "HVAC filter"], (
        "admins see all"
    )
    assert visible(it_tech.headers) == ["AA batteries", "Chromebook screen"]
    assert visible(fac_tech.headers) == ["AA batteries", "HVAC filter"]
    assert visible(loner.headers) == ["AA batteries"], "no department: district-wide parts only"

    fac = inv.as_(fac_tech.headers)
    for url in (f"/api/inventory/parts/{screen['id']}", f"/api/inventory/parts/{screen['id']}/stock",
                f"/api/inventory/parts/{screen['id']}/movements"):  # fmt: skip
        assert_error(fac.get(url), 404, "RESOURCE_NOT_FOUND")
    assert_error(fac.move("consume", screen, warehouse, 1), 404)
    assert {m["partName"] for m in _ok(fac.get("/api/inventory/movements", perPage=100))} == {
        "AA batteries",
        "HVAC filter",
    }
    assert {
        r["partName"] for r in _ok(fac.get(f"/api/inventory/locations/{warehouse['id']}/stock"))
    } == {"AA batteries", "HVAC filter"}
    _ok(fac.move("consume", filt, warehouse, 1), 201)

    it_desk = inv.as_(it_agent.headers)
    assert_error(
        it_desk.post("/api/inventory/parts", {"name": "Mop head", "departmentId": fac_dept["id"]}),
        403,
    )
    assert_error(it_desk.patch(f"/api/inventory/parts/{filt['id']}", {"name": "x"}), 404)
    moved = it_desk.patch(f"/api/inventory/parts/{screen['id']}", {"departmentId": fac_dept["id"]})
    assert_error(moved, 403)
    _ok(
        it_desk.post("/api/inventory/parts", {"name": "Dock", "departmentId": tech_dept["id"]}), 201
    )
    _ok(it_desk.post("/api/inventory/parts", {"name": "Mouse"}), 201)
    assert_error(
        inv.post("/api/inventory/parts", {"name": "x", "departmentId": str(uuid.uuid4())}), 422
    )


# -------------------------------------------------------------------- parts on tickets


def _asset(inv: Inventory, tag: str) -> dict[str, Any]:
    kind = _ok(inv.post("/api/asset-types", {"name": f"Chromebook {tag}"}), 201)
    return _ok(inv.post("/api/assets", {"assetTag": tag, "assetTypeId": kind["id"]}), 201)


def test_parts_used_on_a_ticket(inv: Inventory, world: World, tenant: Tenant) -> None:
    tech = world.user(tenant.id, Role.TECHNICIAN)
    van = inv.location("Tech van", "van", holderUserId=str(tech.id))
    screen = inv.part("Chromebook 3100 screen", unitCost=42.5, currentStock=3, locationId=van["id"])
    ticket = _ok(
        inv.post("/api/tickets", {"title": "Cracked screen, cart B", "assigneeId": str(tech.id)}),
        201,
    )
    asset = _asset(inv, "MHS-00042")
    t = inv.as_(tech.headers)

    used = _ok(t.post(f"/api/tickets/{ticket['id']}/parts", {
        "partId": screen["id"], "locationId": van["id"], "quantity": 2, "assetId": asset["id"],
        "note": "both hinges side",
    }), 201)  # fmt: skip
    assert used["ticketPartsCostCents"] == 8500
    assert (used["part"]["quantity"], used["part"]["costCents"], used["part"]["assetId"]) == (
        2,
        8500,
        asset["id"],
    )
    assert (used["movement"]["kind"], used["movement"]["ticketId"]) == ("consume", ticket["id"])
    assert inv.stock(screen) == {"Tech van": 1}
    assert _ok(inv.get(f"/api/tickets/{ticket['id']}"))["partsCostCents"] == 8500

    history = _ok(inv.get(f"/api/tickets/{ticket['id']}/history"))
    [entry] = [e for e in history if e["kind"] == "part_used"]
    assert entry["data"]["partName"] == "Chromebook 3100 screen" and entry["data"]["quantity"] == 2
    timeline = _ok(inv.get(f"/api/assets/{asset['id']}/timeline"))
    assert "part_used" in [e["kind"] for e in timeline]

    back = _ok(
        t.post(f"/api/tickets/{ticket['id']}/parts/{used['part']['id']}/return", {"quantity": 1}),
        201,
    )
    assert back["ticketPartsCostCents"] == 4250
    assert (
        back["part"]["returnedQuantity"],
        back["part"]["netQuantity"],
        back["part"]["costCents"],
    ) == (1, 1, 4250)
    assert (back["movement"]["kind"], back["movement"]["relatedMovementId"]) == (
        "return",
        used["part"]["id"],
    )
    assert inv.stock(screen) == {"Tech van": 2}
    error = assert_error(
        t.post(f"/api/tickets/{ticket['id']}/parts/{used['part']['id']}/return", {"quantity": 2}),
        422,
    )
    assert error["details"]["returnable"] == 1
    assert "part_returned" in [
        e["kind"] for e in _ok(inv.get(f"/api/tickets/{ticket['id']}/history"))
    ]
    assert "part_returned" in [
        e["kind"] for e in _ok(inv.get(f"/api/assets/{asset['id']}/timeline"))
    ]
    [listed] = _ok(t.get(f"/api/tickets/{ticket['id']}/parts"))
    assert (listed["quantity"], listed["returnedQuantity"], listed["costCents"]) == (2, 1, 4250)
    assert (
        _ok(inv.get("/api/inventory/movements", ticketId=ticket["id"], perPage=100)).__len__() == 2
    )

    # the return cannot name a movement of another ticket, or a made-up one
    other = _ok(inv.post("/api/tickets", {"title": "Other"}), 201)
    assert_error(
        inv.post(f"/api/tickets/{other['id']}/parts/{used['part']['id']}/return", {"quantity": 1}),
        404,
    )
    assert_error(
        inv.post(f"/api/tickets/{ticket['id']}/parts/{uuid.uuid4()}/return", {"quantity": 1}), 404
    )

    # a closed ticket takes no new parts, but unused ones may still come back
    _ok(inv.post(f"/api/tickets/{ticket['id']}/cancel", {"note": "duplicate"}))
    assert_error(
        inv.post(f"/api/tickets/{ticket['id']}/parts", {"partId": screen["id"], "locationId": van["id"], "quantity": 1}),
        409, "TICKET_ALREADY_CLOSED",
    )  # fmt: skip
    _ok(
        inv.post(f"/api/tickets/{ticket['id']}/parts/{used['part']['id']}/return", {"quantity": 1}),
        201,
    )
    assert _ok(inv.get(f"/api/tickets/{ticket['id']}"))["partsCostCents"] == 0
    assert inv.stock(screen) == {"Tech van": 3}


def test_ticket_parts_follow_ticket_visibility_and_roles(
    inv: Inventory, world: World, tenant: Tenant
) -> None:
    tech = world.user(tenant.id, Role.TECHNICIAN)
    teacher = world.user(tenant.id, Role.REQUESTER)
    warehouse = inv.location("Warehouse")
    part = inv.part("Toner", currentStock=5, locationId=warehouse["id"])
    not_mine = _ok(inv.post("/api/tickets", {"title": "Printer jam"}), 201)
    body = {"partId": part["id"], "locationId": warehouse["id"], "quantity": 1}
    assert_error(inv.as_(tech.headers).post(f"/api/tickets/{not_mine['id']}/parts", body), 404)
    assert_error(inv.as_(tech.headers).get(f"/api/tickets/{not_mine['id']}/parts"), 404)
    own = _ok(inv.as_(teacher.headers).post("/api/tickets", {"title": "My printer"}), 201)
    assert_error(inv.as_(teacher.headers).post(f"/api/tickets/{own['id']}/parts", body), 403)
    assert_error(inv.as_(teacher.headers).get(f"/api/tickets/{own['id']}/parts"), 403)
    assert_error(inv.post(f"/api/tickets/{uuid.uuid4()}/parts", body), 404)
    assert_error(
        inv.post(f"/api/tickets/{own['id']}/parts", {**body, "assetId": str(uuid.uuid4())}), 422
    )
    assert inv.stock(part) == {"Warehouse": 5}
    _ok(inv.post(f"/api/tickets/{own['id']}/parts", {**body, "quantity": 2}), 201)
    assert _ok(inv.get(f"/api/tickets/{own['id']}"))["partsCostCents"] == 0, (
        "no catalogue price, no cost"
    )


# --------------------------------------------------------------------------- N+1


def test_list_and_read_statement_counts_do_not_grow_with_rows(
    inv: Inventory, world: World, tenant: Tenant, db: Database
) -> None:
    tech = world.user(tenant.id, Role.TECHNICIAN)
    warehouse = inv.location("Warehouse")
    van = inv.location("Van", "van", holderUserId=str(tech.id))
    ticket = _ok(inv.post("/api/tickets", {"title": "Cart B", "assigneeId": str(tech.id)}), 201)
    first = inv.part("Part 0", unitCost=1, currentStock=50, locationId=warehouse["id"])
    state = {"n": 0}

    def grow(n: int) -> None:
        for _ in range(n):
            state["n"] += 1
            part = inv.part(
                f"Part {state['n']}", unitCost=1, currentStock=2, locationId=warehouse["id"]
            )
            _ok(inv.move("transfer", part, warehouse, 1, toLocationId=van["id"]), 201)
            _ok(inv.move("consume", first, van, 1), 201)
            used = _ok(
                inv.post(
                    f"/api/tickets/{ticket['id']}/parts",
                    {"partId": part["id"], "locationId": warehouse["id"], "quantity": 1},
                ),
                201,
            )
            _ok(
                inv.post(
                    f"/api/tickets/{ticket['id']}/parts/{used['part']['id']}/return",
                    {"quantity": 1},
                ),
                201,
            )

    paths = [
        "/api/inventory/parts",
        f"/api/inventory/parts?locationId={van['id']}",
        f"/api/inventory/parts/{first['id']}",
        f"/api/inventory/parts/{first['id']}/stock",
        f"/api/inventory/parts/{first['id']}/movements",
        "/api/inventory/locations",
        f"/api/inventory/locations/{van['id']}",
        f"/api/inventory/locations/{warehouse['id']}/stock",
        "/api/inventory/movements",
        "/api/inventory/review",
        f"/api/tickets/{ticket['id']}/parts",
    ]

    def measure(headers: dict[str, str]) -> dict[str, int]:
        counts = {}
        for path in paths:
            if path.endswith("/review") and headers is tech.headers:
                continue
            sep = "&" if "?" in path else "?"
            url = f"{path}{sep}perPage=100"
            inv.client.get(url, headers=headers)
            with count_statements(db) as statements:
                response = inv.client.get(url, headers=headers)
            assert response.status_code == 200, (path, response.text)
            counts[path] = len(statements)
        return counts

    grow(2)
    few = {"admin": measure(inv.headers), "tech": measure(tech.headers)}
    grow(10)
    many = {"admin": measure(inv.headers), "tech": measure(tech.headers)}
    assert many == few
    assert max(few["tech"].values()) <= 8, few
