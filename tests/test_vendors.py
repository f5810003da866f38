"""Vendors: the district's suppliers and repair depots, what each supplies, and who
sees them (visibility follows departments)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from common.enums import Role
from server.core.engine import Database
from tests.conftest import World, assert_error
from tests.test_purchase_orders import create_po, department, line, ok, part, vendor
from tests.test_query_counts import count_statements


def _asset(db: Database, org_id: uuid.UUID, vendor_id: str, tag: str, **fields: Any) -> None:
    from server.assets.models import Asset, AssetStatusLabel, AssetType

    with db.transaction(tenant=org_id) as session:
        kind = AssetType(name=f"Chromebook {tag}")
        label = AssetStatusLabel(name=f"In Service {tag}", status_type="deployable")
        session.add_all([kind, label])
        session.flush()
        session.add(
            Asset(
                asset_tag=tag,
                name=f"Chromebook {tag}",
                asset_type_id=kind.id,
                status_label_id=label.id,
                vendor_id=uuid.UUID(vendor_id),
                **fields,
            )
        )


def test_a_vendor_with_everything_a_district_keeps(world: World, client: httpx.Client) -> None:
    tenant = world.org("alpha")
    admin = tenant.admin.headers
    created = vendor(
        client,
        admin,
        "CDW Government",
        type="reseller",
        contactName="Pat Moreno",
        email="pat.moreno@cdwg.example",
        phone="+1 800 555 0100",
        website="https://www.cdwg.example",
        address="200 N Milwaukee Ave, Vernon Hills, IL",
        accountNumber="MUSD-44821",
        paymentTerms="Net 30",
        notes="State contract pricing",
        w9OnFile=True,
        insuranceOnFile=True,
        performanceRating=4,
        status="preferred",
    )
    assert created["type"] == "reseller" and created["status"] == "preferred"
    assert created["w9OnFile"] is True and created["performanceRating"] == 4
    assert created["departmentIds"] == []
    assert created["partCount"] == created["purchaseOrderCount"] == 0
    fetched = ok(client.get(f"/api/vendors/{created['id']}", headers=admin))
    assert fetched == created
    # snake_case input, as the other documents write it
    snake = ok(
        client.post(
            "/api/vendors",
            headers=admin,
            json={"name": "Depot", "contact_name": "Lee", "payment_terms": "Net 45"},
        ),
        201,
    )
    assert snake["contactName"] == "Lee" and snake["type"] == "supplier"
    # names are unique in the organization, case as typed
    error = assert_error(
        client.post("/api/vendors", headers=admin, json={"name": "CDW Government"}),
        409,
        "DUPLICATE_RESOURCE",
    )
    assert error["details"]["field"] == "name"
    for bad in (
        {"name": "x", "email": "not-an-email"},
        {"name": "x", "website": "javascript:alert(1)"},
        {"name": "x", "performanceRating": 6},
        {"name": "x", "status": "sketchy"},
        {"name": ""},
        {"name": "x", "departmentIds": [str(uuid.uuid4())]},
    ):
        assert_error(client.post("/api/vendors", headers=admin, json=bad), 422)
    changed = ok(
        client.patch(
            f"/api/vendors/{created['id']}",
            headers=admin,
            json={"status": "review", "paymentTerms": "Net 45", "phone": None},
        )
    )
    assert changed["status"] == "review" and changed["phone"] is None
    assert_error(
        client.patch(f"/api/vendors/{created['id']}", headers=admin, json={"name": None}), 422
    )
    assert_error(
        client.patch(f"/api/vendors/{created['id']}", headers=admin, json={"name": "Depot"}),
        409,
        "DUPLICATE_RESOURCE",
    )
    events = ok(
        client.get(
            "/api/audit-logs",
            headers=admin,
            params={"entityType": "vendor", "entityId": created["id"]},
        )
    )
    assert [e["action"] for e in events] == ["vendor.updated", "vendor.created"]
    assert events[0]["details"]["changes"]["status"] == {"from": "preferred", "to": "review"}
    assert events[0]["details"]["changes"]["phone"] == {"from": "+1 800 555 0100", "to": None}
    # list: search, status, type
    names = lambda **p: [v["name"] for v in ok(client.get("/api/vendors", headers=admin, params=p))]
    assert names() == ["CDW Government", "Depot"]
    assert names(q="moreno") == ["CDW Government"]
    assert names(status="review") == ["CDW Government"]
    assert names(type="supplier") == ["Depot"]
    assert names(sort="-name") == ["Depot", "CDW Government"]


def test_who_may_keep_vendors(world: World, client: httpx.Client, db: Database) -> None:
    tenant = world.org("alpha")
    tech = world.user(tenant.id, Role.TECHNICIAN)
    agent = world.user(tenant.id, Role.AGENT)
    requester = world.user(tenant.id, Role.REQUESTER)
    made = vendor(client, agent.headers, "Lamp World")
    assert ok(client.get("/api/vendors", headers=tech.headers))[0]["id"] == made["id"]
    assert_error(client.post("/api/vendors", headers=tech.headers, json={"name": "x"}), 403)
    assert_error(
        client.patch(f"/api/vendors/{made['id']}", headers=tech.headers, json={"notes": "x"}), 403
    )
    assert_error(client.get("/api/vendors", headers=requester.headers), 403, "PERMISSION_DENIED")
    assert_error(client.get(f"/api/vendors/{made['id']}", headers=requester.headers), 403)
    assert_error(client.delete(f"/api/vendors/{made['id']}", headers=agent.headers), 403)


def test_a_vendor_shows_what_it_supplies_and_keeps_its_history(
    world: World, client: httpx.Client, db: Database
) -> None:
    tenant = world.org("alpha")
    admin = tenant.admin.headers
    cdw = vendor(client, admin, "CDW-G")
    spare = vendor(client, admin, "Spare Vendor")
    screen = part(db, tenant.id, "Screen", vendor_id=uuid.UUID(cdw["id"]), part_number="SCR")
    part(db, tenant.id, "Keyboard", vendor_id=uuid.UUID(cdw["id"]))
    _asset(db, tenant.id, cdw["id"], "MUSD-0001")
    draft = create_po(client, admin, cdw["id"], line("Screen", 3, 40, partId=str(screen)))
    closed = create_po(client, admin, cdw["id"], line("x", 1, 1))
    ok(
        client.post(
            f"/api/purchase-orders/{closed['id']}/cancel", headers=admin, json={"reason": "dup"}
        )
    )

    got = ok(client.get(f"/api/vendors/{cdw['id']}", headers=admin))
    assert (got["partCount"], got["assetCount"]) == (2, 1)
    assert (got["purchaseOrderCount"], got["openPurchaseOrderCount"]) == (2, 1)
    listed = {v["name"]: v for v in ok(client.get("/api/vendors", headers=admin))}
    assert listed["CDW-G"]["partCount"] == 2 and listed["Spare Vendor"]["partCount"] == 0
    parts = ok(client.get(f"/api/vendors/{cdw['id']}/parts", headers=admin))
    assert [p["name"] for p in parts] == ["Keyboard", "Screen"]
    assert parts[1]["partNumber"] == "SCR" and parts[1]["onHand"] == 0
    orders = ok(client.get(f"/api/vendors/{cdw['id']}/purchase-orders", headers=admin))
    assert {o["id"] for o in orders} == {draft["id"], closed["id"]}

    # orders were placed: the vendor stays, inactive, and takes no new orders
    assert_error(
        client.delete(f"/api/vendors/{cdw['id']}", headers=admin), 409, "RESOURCE_CONFLICT"
    )
    ok(client.patch(f"/api/vendors/{cdw['id']}", headers=admin, json={"status": "inactive"}))
    assert_error(
        client.post(
            "/api/purchase-orders",
            headers=admin,
            json={"vendorId": cdw["id"], "lineItems": [line("x", 1, 1)]},
        ),
        422,
        "BUSINESS_RULE_VIOLATION",
    )
    assert_error(client.post(f"/api/purchase-orders/{draft['id']}/submit", headers=admin), 422)
    # a vendor nothing refers to is deleted, and its name can be used again
    assert client.delete(f"/api/vendors/{spare['id']}", headers=admin).status_code == 204
    assert_error(client.get(f"/api/vendors/{spare['id']}", headers=admin), 404)
    vendor(client, admin, "Spare Vendor")
    deleted = ok(client.get("/api/audit-logs", headers=admin, params={"action": "vendor.deleted"}))
    assert deleted[0]["entityId"] == spare["id"]


def test_vendor_visibility_follows_departments(
    world: World, client: httpx.Client, db: Database
) -> None:
    tenant = world.org("alpha")
    admin = tenant.admin.headers
    tech_dept = department(db, tenant.id, "Technology")
    fac_dept = department(db, tenant.id, "Facilities")
    food_dept = department(db, tenant.id, "Food Services")
    it_tech = world.user(tenant.id, Role.TECHNICIAN, department_id=tech_dept)
    fac_tech = world.user(tenant.id, Role.TECHNICIAN, department_id=fac_dept)
    it_agent = world.user(tenant.id, Role.AGENT, department_id=tech_dept)
    floater = world.user(tenant.id, Role.AGENT)

    everyone = vendor(client, admin, "Office Depot")
    hvac = vendor(client, admin, "Ferguson HVAC", departmentIds=[str(fac_dept)])
    both = vendor(client, admin, "Grainger", departmentIds=[str(fac_dept), str(tech_dept)])
    kitchen = vendor(client, admin, "Sysco", departmentIds=[str(food_dept)])
    part_vendor = vendor(client, admin, "Lamp World", departmentIds=[str(food_dept)])
    part(db, tenant.id, "Lamp", vendor_id=uuid.UUID(part_vendor["id"]), department_id=tech_dept)
    asset_vendor = vendor(client, admin, "Dell K-12", departmentIds=[str(food_dept)])
    _asset(db, tenant.id, asset_vendor["id"], "MUSD-0002", department_id=tech_dept)
    ordered = vendor(client, admin, "Epson Depot", departmentIds=[str(food_dept)])
    create_po(client, admin, ordered["id"], line("Lamp", 1, 1), departmentId=str(tech_dept))
    assert sorted(both["departmentIds"]) == sorted([str(fac_dept), str(tech_dept)])

    def seen(headers: dict[str, str]) -> set[str]:
        rows = ok(client.get("/api/vendors", headers=headers, params={"perPage": 100}))
        return {v["name"] for v in rows}

    all_names = {
        "Office Depot",
        "Ferguson HVAC",
        "Grainger",
        "Sysco",
        "Lamp World",
        "Dell K-12",
        "Epson Depot",
    }
    assert seen(admin) == all_names
    # Technology: the shared vendor, its own, and those connected to its parts, assets, orders
    assert seen(it_tech.headers) == {
        "Office Depot",
        "Grainger",
        "Lamp World",
        "Dell K-12",
        "Epson Depot",
    }
    assert seen(fac_tech.headers) == {"Office Depot", "Ferguson HVAC", "Grainger"}
    assert seen(floater.headers) == {"Office Depot"}
    assert_error(client.get(f"/api/vendors/{hvac['id']}", headers=it_tech.headers), 404)
    assert_error(client.get(f"/api/vendors/{kitchen['id']}/parts", headers=it_tech.headers), 404)
    assert (
        ok(client.get(f"/api/vendors/{hvac['id']}", headers=fac_tech.headers))["name"]
        == "Ferguson HVAC"
    )
    # filter: vendors serving a department
    only = ok(client.get("/api/vendors", headers=admin, params={"departmentId": str(fac_dept)}))
    assert {v["name"] for v in only} == {"Ferguson HVAC", "Grainger"}
    # staff cannot order from, or edit, a vendor they cannot see
    assert_error(
        client.post(
            "/api/purchase-orders",
            headers=it_tech.headers,
            json={"vendorId": hvac["id"], "lineItems": [line("x", 1, 1)]},
        ),
        422,
    )
    assert_error(
        client.patch(f"/api/vendors/{hvac['id']}", headers=it_agent.headers, json={"notes": "x"}),
        404,
    )
    # an agent assigns vendors to their own department only
    mine = vendor(client, it_agent.headers, "Tech Reseller", departmentIds=[str(tech_dept)])
    assert mine["departmentIds"] == [str(tech_dept)]
    assert_error(
        client.post(
            "/api/vendors",
            headers=it_agent.headers,
            json={"name": "Theirs", "departmentIds": [str(fac_dept)]},
        ),
        403,
    )
    moved = ok(
        client.patch(
            f"/api/vendors/{everyone['id']}", headers=admin, json={"departmentIds": [str(fac_dept)]}
        )
    )
    assert moved["departmentIds"] == [str(fac_dept)]
    assert "Office Depot" not in seen(it_tech.headers)
    change = ok(
        client.get(
            "/api/audit-logs",
            headers=admin,
            params={"entityId": everyone["id"], "action": "vendor.updated"},
        )
    )[0]
    assert change["details"]["changes"]["departmentIds"] == {"from": [], "to": [str(fac_dept)]}
    # counts show only what the caller may see
    counted = ok(client.get(f"/api/vendors/{ordered['id']}", headers=it_tech.headers))
    assert counted["purchaseOrderCount"] == 1


@pytest.mark.parametrize(
    "path", ["/api/vendors", "/api/vendors/{vendor}", "/api/vendors/{vendor}/parts"]
)
def test_statement_count_does_not_grow_with_vendors(
    world: World, client: httpx.Client, db: Database, path: str
) -> None:
    tenant = world.org("alpha")
    admin = tenant.admin.headers
    tech_dept = department(db, tenant.id, "Technology")
    staff = world.user(tenant.id, Role.TECHNICIAN, department_id=tech_dept)
    first = vendor(client, admin, "First", departmentIds=[str(tech_dept)])

    def grow(n: int) -> None:
        for _ in range(n):
            dept = department(db, tenant.id, f"Dept {uuid.uuid4().hex[:6]}")
            v = vendor(
                client,
                admin,
                f"Vendor {uuid.uuid4().hex[:6]}",
                departmentIds=[str(dept), str(tech_dept)],
            )
            part(db, tenant.id, f"Part {uuid.uuid4().hex[:6]}", vendor_id=uuid.UUID(v["id"]))
            part(db, tenant.id, f"Part {uuid.uuid4().hex[:6]}", vendor_id=uuid.UUID(first["id"]))
            create_po(client, admin, v["id"], line("x", 1, 1))

    url = path.format(vendor=first["id"])

    def measure(headers: dict[str, str]) -> int:
        client.get(url, headers=headers)
        with count_statements(db) as statements:
            response = client.get(
                url, headers=headers, params={"perPage": 100} if "{" not in path else None
            )
        assert response.status_code == 200, response.text
        return len(statements)

    grow(2)
    few = measure(admin), measure(staff.headers)
    grow(10)
    many = measure(admin), measure(staff.headers)
    assert many == few, f"{path}: {few} statements with few rows, {many} with many"
    assert max(few) <= 9, f"{path} runs {few} statements"
