"""Assets as a district's technicians and admins use them: find a device by tag or
serial, see where it is and who has it, move it, check it out and back in, mark it
broken or stolen, link it to tickets; and who may see what."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from common.enums import Role
from server.core.db import utcnow
from server.core.engine import Database
from tests.conftest import POSTGRES_URL, Tenant, World, assert_error
from tests.test_query_counts import count_statements

# ------------------------------------------------------------------------ helpers


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()["data"] if response.content else None


@dataclass
class Campus:
    tenant: Tenant
    site: dict[str, Any]
    main: dict[str, Any]
    annex: dict[str, Any]
    rooms: dict[str, dict[str, Any]]  # number -> room
    types: dict[str, str]  # name -> id
    labels: dict[str, str]  # name -> id

    @property
    def admin(self) -> dict[str, str]:
        return self.tenant.admin.headers


def build_campus(client: httpx.Client, world: World, slug: str = "maple") -> Campus:
    tenant = world.org(slug)
    admin = tenant.admin.headers
    site = ok(client.post("/api/sites", json={"name": f"{slug} High"}, headers=admin), 201)
    main = ok(
        client.post(f"/api/sites/{site['id']}/buildings", json={"name": "Main"}, headers=admin),
        201,
    )
    annex = ok(
        client.post(f"/api/sites/{site['id']}/buildings", json={"name": "Annex"}, headers=admin),
        201,
    )
    rooms = {}
    for building, number in ((main, "101"), (main, "102"), (main, "IT"), (annex, "A1")):
        rooms[number] = ok(
            client.post(
                f"/api/buildings/{building['id']}/rooms", json={"number": number}, headers=admin
            ),
            201,
        )
    types = {
        t["name"]: t["id"]
        for t in ok(client.get("/api/asset-types", params={"perPage": 100}, headers=admin))
    }
    labels = {
        s["name"]: s["id"]
        for s in ok(client.get("/api/asset-statuses", params={"perPage": 100}, headers=admin))
    }
    return Campus(tenant, site, main, annex, rooms, types, labels)


def make_asset(
    client: httpx.Client, campus: Campus, tag: str, headers: dict[str, str] | None = None, **kw: Any
) -> dict[str, Any]:
    body = {"assetTag": tag, "assetTypeId": campus.types[kw.pop("type", "Chromebook")], **kw}
    return ok(client.post("/api/assets", json=body, headers=headers or campus.admin), 201)


def make_person(client: httpx.Client, campus: Campus, name: str, **kw: Any) -> dict[str, Any]:
    body = {"kind": "student", "name": name, **kw}
    return ok(client.post("/api/people", json=body, headers=campus.admin), 201)


def timeline(client: httpx.Client, campus: Campus, asset_id: str) -> list[dict[str, Any]]:
    return ok(
        client.get(
            f"/api/assets/{asset_id}/timeline", params={"perPage": 100}, headers=campus.admin
        )
    )


def make_ticket(db: Database, org_id: uuid.UUID, requester_id: uuid.UUID, title: str) -> str:
    """A ticket straight through the model (the tickets API belongs to another domain)."""
    from server.tickets.models import Ticket

    with db.transaction(tenant=org_id) as session:
        count = len(session.scalars(select(Ticket.id)).all())
        ticket = Ticket(
            number=f"INC-{count + 1:06d}",
            ticket_type="incident",
            title=title,
            status="new",
            status_category="open",
            status_changed_at=utcnow(),
            priority="medium",
            requester_id=requester_id,
        )
        session.add(ticket)
        session.flush()
        return str(ticket.id)


@pytest.fixture
def campus(client: httpx.Client, world: World) -> Campus:
    return build_campus(client, world)


# --------------------------------------------------------------------------- tests


def test_organization_starts_with_the_default_types_and_statuses(
    client: httpx.Client, campus: Campus
) -> None:
    assert list(campus.types) == [
        "Chromebook",
        "Laptop",
        "Desktop",
        "Tablet",
        "Projector",
        "Interactive panel",
        "Printer",
        "Network gear",
        "HVAC unit",
        "Other",
    ]
    statuses = ok(client.get("/api/asset-statuses", headers=campus.admin))
    by_name = {s["name"]: s for s in statuses}
    assert {n: s["statusType"] for n, s in by_name.items()} == {
        "In Service": "deployable",
        "Spare": "deployable",
        "Broken": "in_repair",
        "Needs Tech Attention": "in_repair",
        "Missing": "undeployable",
        "Stolen": "undeployable",
        "Retired": "archived",
    }
    assert by_name["Stolen"]["requiresPoliceReport"] is True
    assert [n for n, s in by_name.items() if s["isDefault"]] == ["In Service"]


def test_create_then_find_by_exact_tag_or_serial(client: httpx.Client, campus: Campus) -> None:
    room = campus.rooms["101"]
    created = make_asset(
        client,
        campus,
        " mps-000123 ",
        serialNumber="5cd1234xyz",
        manufacturer="HP",
        model="Chromebook 11 G9",
        roomId=room["id"],
        purchaseDate="2023-08-01",
        purchaseCostCents=24900,
        fundingSource="ESSER III",
        warrantyEnd="2026-07-31",
        customFields={"cartSlot": 14, "engraved": True},
    )
    assert created["assetTag"] == "MPS-000123"
    assert created["serialNumber"] == "5CD1234XYZ"
    assert created["name"] == "HP Chromebook 11 G9"
    assert created["statusName"] == "In Service" and created["statusType"] == "deployable"
    assert created["roomNumber"] == "101"
    assert created["buildingId"] == campus.main["id"] and created["buildingName"] == "Main"
    assert created["siteId"] == campus.site["id"]
    assert created["assetTypeName"] == "Chromebook"
    make_asset(client, campus, "MPS-000124", serialNumber="OTHER1")

    for params in ({"tag": "MPS-000123"}, {"tag": "mps-000123"}, {"serial": "5CD1234XYZ"}):
        found = ok(client.get("/api/assets", params=params, headers=campus.admin))
        assert [a["id"] for a in found] == [created["id"]], params
    assert ok(client.get("/api/assets", params={"tag": "MPS-00012"}, headers=campus.admin)) == []
    one = ok(client.get(f"/api/assets/{created['id']}", headers=campus.admin))
    assert one["customFields"] == {"cartSlot": 14, "engraved": True}
    assert one["purchaseCostCents"] == 24900

    history = timeline(client, campus, created["id"])
    assert [e["kind"] for e in history] == ["created"]
    assert history[0]["data"]["place"]["roomNumber"] == "101"
    logs = ok(
        client.get("/api/audit-logs", params={"entityId": created["id"]}, headers=campus.admin)
    )
    assert [e["action"] for e in logs] == ["asset.created"]


@pytest.mark.skipif(POSTGRES_URL is not None, reason="reads SQLite's query plan")
def test_tag_and_serial_lookups_are_index_probes(db: Database, campus: Campus) -> None:
    """SQLite's plan for the exact lookups, as the request runs them (tenant and
    tombstone criteria included), probes the partial unique indexes."""
    from sqlalchemy import event

    from server.assets import service
    from server.core.tenancy import Caller

    caller = Caller(
        user_id=campus.tenant.admin.id,
        organization_id=campus.tenant.id,
        role=Role.ORG_ADMIN,
        email="x",
    )
    seen: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append((statement, parameters))

    for kwargs, index in (
        ({"tag": "MPS-1"}, "uq_assets_org_tag"),
        ({"serial": "S-1"}, "uq_assets_org_serial"),
    ):
        seen.clear()
        with db.transaction(tenant=campus.tenant.id) as session:
            event.listen(db.engine, "before_cursor_execute", capture)
            try:
                session.execute(service.query_assets(caller, **kwargs).limit(25)).all()
            finally:
                event.remove(db.engine, "before_cursor_execute", capture)
            statement, parameters = next((s, p) for s, p in seen if "FROM assets" in s)
            assert "deleted_at IS NULL" in statement
            plan = (
                session.connection()
                .exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
                .all()
            )
        assets_plan = [row[3] for row in plan if " assets " in f" {row[3]} "]
        assert assets_plan and f"USING INDEX {index}" in assets_plan[0], plan


def test_tag_and_serial_are_unique_per_organization(
    client: httpx.Client, world: World, campus: Campus
) -> None:
    first = make_asset(client, campus, "MPS-1", serialNumber="SER-1")
    dup = client.post(
        "/api/assets",
        json={"assetTag": "mps-1", "assetTypeId": campus.types["Laptop"]},
        headers=campus.admin,
    )
    assert assert_error(dup, 409, "DUPLICATE_RESOURCE")["details"] == {"field": "assetTag"}
    dup = client.post(
        "/api/assets",
        json={"assetTag": "MPS-2", "serialNumber": "ser-1", "assetTypeId": campus.types["Laptop"]},
        headers=campus.admin,
    )
    assert assert_error(dup, 409, "DUPLICATE_RESOURCE")["details"] == {"field": "serialNumber"}
    # assets without a serial number do not clash with each other
    make_asset(client, campus, "MPS-3")
    make_asset(client, campus, "MPS-4")
    clash = client.patch(
        f"/api/assets/{first['id']}", json={"assetTag": "MPS-3"}, headers=campus.admin
    )
    assert_error(clash, 409, "DUPLICATE_RESOURCE")

    other = build_campus(client, world, "oak")
    theirs = make_asset(client, other, "MPS-1", serialNumber="SER-1")
    assert theirs["id"] != first["id"]
    for c, mine in ((campus, first), (other, theirs)):
        found = ok(client.get("/api/assets", params={"tag": "MPS-1"}, headers=c.admin))
        assert [a["id"] for a in found] == [mine["id"]]
        found = ok(client.get("/api/assets", params={"serial": "SER-1"}, headers=c.admin))
        assert [a["id"] for a in found] == [mine["id"]]
    assert_error(client.get(f"/api/assets/{theirs['id']}", headers=campus.admin), 404)


def test_moves_are_kept_in_history(client: httpx.Client, campus: Campus) -> None:
    asset = make_asset(client, campus, "MPS-10", roomId=campus.rooms["101"]["id"])
    moved = ok(
        client.patch(
            f"/api/assets/{asset['id']}",
            json={"roomId": campus.rooms["A1"]["id"], "note": "teacher moved classrooms"},
            headers=campus.admin,
        )
    )
    assert moved["roomNumber"] == "A1" and moved["buildingName"] == "Annex"
    # a building named alone drops the old room (it is not in that building)
    moved = ok(
        client.patch(
            f"/api/assets/{asset['id']}",
            json={"buildingId": campus.main["id"]},
            headers=campus.admin,
        )
    )
    assert moved["roomId"] is None and moved["buildingId"] == campus.main["id"]
    # a building that contradicts the room is refused, and nothing changes
    bad = client.patch(
        f"/api/assets/{asset['id']}",
        json={"roomId": campus.rooms["A1"]["id"], "buildingId": campus.main["id"]},
        headers=campus.admin,
    )
    assert assert_error(bad, 422, "VALIDATION_ERROR")["details"] == {"field": "buildingId"}
    bad = client.patch(
        f"/api/assets/{asset['id']}", json={"roomId": str(uuid.uuid4())}, headers=campus.admin
    )
    assert assert_error(bad, 422)["details"] == {"field": "roomId"}

    history = timeline(client, campus, asset["id"])
    moves = [e for e in history if e["kind"] == "moved"]
    assert [(m["data"]["from"]["roomNumber"], m["data"]["to"]["roomNumber"]) for m in moves] == [
        ("A1", None),
        ("101", "A1"),
    ]
    assert moves[1]["data"]["note"] == "teacher moved classrooms"
    assert moves[1]["data"]["to"]["buildingName"] == "Annex"
    assert moves[1]["actorId"] == str(campus.tenant.admin.id)
    logs = ok(
        client.get(
            "/api/audit-logs",
            params={"entityId": asset["id"], "action": "asset.moved"},
            headers=campus.admin,
        )
    )
    assert len(logs) == 2


def test_edits_record_what_changed(client: httpx.Client, campus: Campus) -> None:
    asset = make_asset(client, campus, "MPS-11", fundingSource="Title I")
    ok(
        client.patch(
            f"/api/assets/{asset['id']}",
            json={"fundingSource": "E-Rate", "warrantyEnd": "2027-01-31", "name": "Cart 3 #1"},
            headers=campus.admin,
        )
    )
    updated = [e for e in timeline(client, campus, asset["id"]) if e["kind"] == "updated"]
    assert updated[0]["data"]["changes"] == {
        "fundingSource": {"from": "Title I", "to": "E-Rate"},
        "warrantyEnd": {"from": None, "to": "2027-01-31"},
        "name": {"from": "Chromebook", "to": "Cart 3 #1"},
    }
    for field, value in (("assetTag", None), ("assetTypeId", None), ("statusLabelId", None)):
        bad = client.patch(f"/api/assets/{asset['id']}", json={field: value}, headers=campus.admin)
        assert assert_error(bad, 422)["details"] == {"field": field}


def test_check_out_and_check_in_with_history(client: httpx.Client, campus: Campus) -> None:
    asset = make_asset(client, campus, "MPS-20", roomId=campus.rooms["101"]["id"])
    student = make_person(client, campus, "Ava Lopez", externalId="S100234", grade="7")
    due = (date.today() + timedelta(days=180)).isoformat()
    out = ok(
        client.post(
            f"/api/assets/{asset['id']}/checkout",
            json={"personId": student["id"], "dueBack": due, "note": "1:1 program"},
            headers=campus.admin,
        )
    )
    assert out["assignedPersonId"] == student["id"]
    assert out["assignedPersonName"] == "Ava Lopez"
    assert out["dueBack"] == due and out["checkedOutAt"]
    # a second check-out is refused until it comes back
    other = make_person(client, campus, "Ben Ito")
    again = client.post(
        f"/api/assets/{asset['id']}/checkout",
        json={"personId": other["id"]},
        headers=campus.admin,
    )
    assert_error(again, 409, "RESOURCE_CONFLICT")
    mine = ok(
        client.get("/api/assets", params={"assignedPersonId": student["id"]}, headers=campus.admin)
    )
    assert [a["id"] for a in mine] == [asset["id"]]

    back = ok(
        client.post(
            f"/api/assets/{asset['id']}/checkin",
            json={
                "condition": "damaged",
                "note": "cracked screen",
                "statusLabelId": campus.labels["Broken"],
                "roomId": campus.rooms["IT"]["id"],
            },
            headers=campus.admin,
        )
    )
    assert back["assignedPersonId"] is None and back["checkedOutAt"] is None
    assert back["statusName"] == "Broken" and back["roomNumber"] == "IT"
    assert_error(
        client.post(f"/api/assets/{asset['id']}/checkin", json={}, headers=campus.admin), 409
    )
    # a broken device is not handed out
    refused = client.post(
        f"/api/assets/{asset['id']}/checkout",
        json={"personId": other["id"]},
        headers=campus.admin,
    )
    assert_error(refused, 422, "BUSINESS_RULE_VIOLATION")

    history = timeline(client, campus, asset["id"])
    assert [e["kind"] for e in history] == [
        "moved",
        "status_changed",
        "checked_in",
        "checked_out",
        "created",
    ]
    checked_out = history[3]["data"]
    assert checked_out["personName"] == "Ava Lopez" and checked_out["dueBack"] == due
    assert history[2]["data"]["condition"] == "damaged"
    assert history[1]["data"]["to"]["name"] == "Broken"
    assert history[1]["data"]["from"]["name"] == "In Service"
    person_history = ok(
        client.get("/api/assets", params={"assignedPersonId": student["id"]}, headers=campus.admin)
    )
    assert person_history == []


def test_inactive_people_and_past_due_dates_are_refused(
    client: httpx.Client, campus: Campus
) -> None:
    asset = make_asset(client, campus, "MPS-21")
    gone = make_person(client, campus, "Left District", isActive=False)
    refused = client.post(
        f"/api/assets/{asset['id']}/checkout", json={"personId": gone["id"]}, headers=campus.admin
    )
    assert assert_error(refused, 422, "BUSINESS_RULE_VIOLATION")["details"] == {"field": "personId"}
    here = make_person(client, campus, "Present Student")
    late = client.post(
        f"/api/assets/{asset['id']}/checkout",
        json={"personId": here["id"], "dueBack": "2001-01-01"},
        headers=campus.admin,
    )
    assert assert_error(late, 422)["details"] == {"field": "dueBack"}
    assert (
        ok(client.get(f"/api/assets/{asset['id']}", headers=campus.admin))["assignedPersonId"]
        is None
    )


def test_stolen_needs_a_police_report_number(client: httpx.Client, campus: Campus) -> None:
    asset = make_asset(client, campus, "MPS-30")
    refused = client.patch(
        f"/api/assets/{asset['id']}",
        json={"statusLabelId": campus.labels["Stolen"]},
        headers=campus.admin,
    )
    error = assert_error(refused, 422, "VALIDATION_ERROR")
    assert error["details"] == {"field": "policeReportNumber"}
    assert ok(client.get(f"/api/assets/{asset['id']}", headers=campus.admin))["statusName"] == (
        "In Service"
    )
    stolen = ok(
        client.patch(
            f"/api/assets/{asset['id']}",
            json={"statusLabelId": campus.labels["Stolen"], "policeReportNumber": "MPD-24-0117"},
            headers=campus.admin,
        )
    )
    assert stolen["statusName"] == "Stolen" and stolen["statusType"] == "undeployable"
    assert stolen["policeReportNumber"] == "MPD-24-0117"
    change = [e for e in timeline(client, campus, asset["id"]) if e["kind"] == "status_changed"]
    assert change[0]["data"]["policeReportNumber"] == "MPD-24-0117"
    # created as stolen needs it too
    refused = client.post(
        "/api/assets",
        json={
            "assetTag": "MPS-31",
            "assetTypeId": campus.types["Tablet"],
            "statusLabelId": campus.labels["Stolen"],
        },
        headers=campus.admin,
    )
    assert assert_error(refused, 422)["details"] == {"field": "policeReportNumber"}
    by_type = ok(
        client.get("/api/assets", params={"statusType": "undeployable"}, headers=campus.admin)
    )
    assert [a["assetTag"] for a in by_type] == ["MPS-30"]


def test_list_filters_search_and_sort(client: httpx.Client, campus: Campus) -> None:
    r101, a1 = campus.rooms["101"]["id"], campus.rooms["A1"]["id"]
    make_asset(client, campus, "MPS-1", roomId=r101, warrantyEnd="2025-06-30",
               purchaseDate="2021-08-01", model="Chromebook 3100")  # fmt: skip
    make_asset(client, campus, "MPS-2", roomId=a1, warrantyEnd="2028-06-30",
               purchaseDate="2024-08-01", model="Chromebook 3110")  # fmt: skip
    make_asset(client, campus, "PRJ-1", type="Projector", roomId=r101, model="Epson 685Wi",
               statusLabelId=campus.labels["Needs Tech Attention"])  # fmt: skip
    get = lambda **p: [
        a["assetTag"] for a in ok(client.get("/api/assets", params=p, headers=campus.admin))
    ]
    assert get() == ["MPS-1", "MPS-2", "PRJ-1"]
    assert get(roomId=r101) == ["MPS-1", "PRJ-1"]
    assert get(buildingId=campus.annex["id"]) == ["MPS-2"]
    assert get(siteId=campus.site["id"]) == ["MPS-1", "MPS-2", "PRJ-1"]
    assert get(assetTypeId=campus.types["Projector"]) == ["PRJ-1"]
    assert get(statusType="in_repair") == ["PRJ-1"]
    assert get(statusLabelId=campus.labels["In Service"]) == ["MPS-1", "MPS-2"]
    assert get(warrantyBefore="2026-01-01") == ["MPS-1"]
    assert get(q="epson") == ["PRJ-1"]
    assert get(q="3110") == ["MPS-2"]
    assert get(sort="-purchaseDate", assetTypeId=campus.types["Chromebook"]) == ["MPS-2", "MPS-1"]
    assert get(sort="-assetTag") == ["PRJ-1", "MPS-2", "MPS-1"]
    assert get(checkedOut="false") == ["MPS-1", "MPS-2", "PRJ-1"]
    assert_error(client.get("/api/assets", params={"sort": "cost"}, headers=campus.admin), 422)
    page = client.get("/api/assets", params={"perPage": 2, "page": 2}, headers=campus.admin)
    assert page.json()["pagination"]["total"] == 3
    assert [a["assetTag"] for a in page.json()["data"]] == ["PRJ-1"]


def test_rooms_show_their_assets_and_counts(client: httpx.Client, campus: Campus) -> None:
    r101 = campus.rooms["101"]["id"]
    for n in range(3):
        make_asset(client, campus, f"MPS-{n}", roomId=r101)
    make_asset(client, campus, "PNL-1", type="Interactive panel", roomId=r101)
    make_asset(client, campus, "PRJ-1", type="Projector", roomId=r101,
               statusLabelId=campus.labels["Broken"])  # fmt: skip
    make_asset(client, campus, "SW-1", type="Network gear", roomId=campus.rooms["IT"]["id"])
    listed = ok(client.get(f"/api/rooms/{r101}/assets", headers=campus.admin))
    assert [a["assetTag"] for a in listed] == ["MPS-0", "MPS-1", "MPS-2", "PNL-1", "PRJ-1"]
    summary = ok(client.get(f"/api/rooms/{r101}/asset-summary", headers=campus.admin))
    assert summary["total"] == 5
    assert [(t["name"], t["count"]) for t in summary["byType"]] == [
        ("Chromebook", 3),
        ("Interactive panel", 1),
        ("Projector", 1),
    ]
    assert summary["byStatusType"] == [
        {"statusType": "deployable", "count": 4},
        {"statusType": "in_repair", "count": 1},
        {"statusType": "undeployable", "count": 0},
        {"statusType": "archived", "count": 0},
    ]
    assert_error(client.get(f"/api/rooms/{uuid.uuid4()}/assets", headers=campus.admin), 404)


def test_status_labels_and_types_are_the_districts_own(
    client: httpx.Client, world: World, campus: Campus
) -> None:
    admin = campus.admin
    loaner = ok(
        client.post(
            "/api/asset-statuses",
            json={"name": "Loaner Pool", "statusType": "deployable", "isDefault": True,
                  "color": "#00897B"},
            headers=admin,
        ),
        201,
    )  # fmt: skip
    statuses = ok(client.get("/api/asset-statuses", headers=admin))
    assert [s["name"] for s in statuses if s["isDefault"]] == ["Loaner Pool"]
    assert make_asset(client, campus, "LN-1")["statusName"] == "Loaner Pool"
    assert_error(
        client.patch(f"/api/asset-statuses/{loaner['id']}", json={"isDefault": False},
                     headers=admin),
        422,
        "BUSINESS_RULE_VIOLATION",
    )  # fmt: skip
    assert_error(
        client.patch(
            f"/api/asset-statuses/{loaner['id']}", json={"statusType": "archived"}, headers=admin
        ),
        422,
        "BUSINESS_RULE_VIOLATION",
    )
    renamed = ok(
        client.patch(f"/api/asset-statuses/{campus.labels['Missing']}", json={"name": "Lost"},
                     headers=admin)
    )  # fmt: skip
    assert renamed["key"] == "missing"
    dup = client.post(
        "/api/asset-statuses", json={"name": "Lost", "statusType": "undeployable"}, headers=admin
    )
    assert_error(dup, 409, "DUPLICATE_RESOURCE")

    drone = ok(client.post("/api/asset-types", json={"name": "Drone"}, headers=admin), 201)
    ok(client.patch(f"/api/asset-types/{drone['id']}", json={"isActive": False}, headers=admin))
    active = ok(client.get("/api/asset-types", params={"isActive": "true", "perPage": 100},
                           headers=admin))  # fmt: skip
    assert "Drone" not in {t["name"] for t in active}
    assert_error(
        client.post("/api/asset-types", json={"name": "Printer"}, headers=admin),
        409,
        "DUPLICATE_RESOURCE",
    )
    # only admins configure; technicians use
    tech = world.user(campus.tenant.id, Role.TECHNICIAN)
    assert_error(client.post("/api/asset-types", json={"name": "Kiln"}, headers=tech.headers), 403)
    assert_error(
        client.patch(f"/api/asset-statuses/{loaner['id']}", json={"name": "X"},
                     headers=tech.headers),
        403,
    )  # fmt: skip
    assert ok(client.get("/api/asset-types", headers=tech.headers))


def test_people_are_minimal_records_only_staff_see(
    client: httpx.Client, world: World, campus: Campus
) -> None:
    student = make_person(client, campus, "Ava Lopez", externalId="S100234", grade="7",
                          siteId=campus.site["id"])  # fmt: skip
    dup = client.post(
        "/api/people",
        json={"kind": "student", "name": "Someone Else", "externalId": "S100234"},
        headers=campus.admin,
    )
    assert assert_error(dup, 409, "DUPLICATE_RESOURCE")["details"] == {"field": "externalId"}
    teacher_user = world.user(campus.tenant.id, Role.REQUESTER)
    linked = client.post(
        "/api/people",
        json={"kind": "student", "name": "Not Staff", "userId": str(teacher_user.id)},
        headers=campus.admin,
    )
    assert assert_error(linked, 422)["details"] == {"field": "userId"}
    staff = make_person(client, campus, "Ms. Carter", kind="staff", userId=str(teacher_user.id),
                        email="carter@maple.example")  # fmt: skip
    assert staff["userId"] == str(teacher_user.id)
    names = lambda **p: [
        x["name"] for x in ok(client.get("/api/people", params=p, headers=campus.admin))
    ]
    assert names() == ["Ava Lopez", "Ms. Carter"]
    assert names(kind="student") == ["Ava Lopez"]
    assert names(externalId="S100234") == ["Ava Lopez"]
    assert names(q="carter") == ["Ms. Carter"]
    ok(client.patch(f"/api/people/{student['id']}", json={"grade": "8"}, headers=campus.admin))
    assert ok(client.get(f"/api/people/{student['id']}", headers=campus.admin))["grade"] == "8"
    # students' records are not for requesters
    assert_error(client.get("/api/people", headers=teacher_user.headers), 403)
    assert_error(client.get(f"/api/people/{student['id']}", headers=teacher_user.headers), 403)
    tech = world.user(campus.tenant.id, Role.TECHNICIAN)
    assert names() == names()  # the technician sees the same list
    assert len(ok(client.get("/api/people", headers=tech.headers))) == 2


def test_requesters_see_only_the_devices_assigned_to_them(
    client: httpx.Client, world: World, campus: Campus
) -> None:
    teacher = world.user(campus.tenant.id, Role.REQUESTER)
    other_teacher = world.user(campus.tenant.id, Role.REQUESTER)
    me = make_person(client, campus, "Ms. Carter", kind="staff", userId=str(teacher.id))
    laptop = make_asset(client, campus, "LT-1", type="Laptop", assignedPersonId=me["id"],
                        purchaseCostCents=89900, notes="admin password in the safe")  # fmt: skip
    cart = make_asset(client, campus, "MPS-1")
    visible = ok(client.get("/api/assets", headers=teacher.headers))
    assert [a["id"] for a in visible] == [laptop["id"]]
    seen = ok(client.get(f"/api/assets/{laptop['id']}", headers=teacher.headers))
    assert seen["assetTag"] == "LT-1" and seen["assignedPersonName"] == "Ms. Carter"
    assert seen["purchaseCostCents"] is None and seen["notes"] is None
    assert_error(client.get(f"/api/assets/{cart['id']}", headers=teacher.headers), 404)
    assert ok(client.get("/api/assets", params={"tag": "MPS-1"}, headers=teacher.headers)) == []
    assert ok(client.get("/api/assets", headers=other_teacher.headers)) == []
    assert_error(client.get(f"/api/assets/{laptop['id']}", headers=other_teacher.headers), 404)
    # no history, no writes, no rooms' contents
    assert_error(client.get(f"/api/assets/{laptop['id']}/timeline", headers=teacher.headers), 403)
    assert_error(
        client.patch(f"/api/assets/{laptop['id']}", json={"name": "x"}, headers=teacher.headers),
        403,
    )
    assert_error(
        client.post("/api/assets", json={"assetTag": "X", "assetTypeId": campus.types["Other"]},
                    headers=teacher.headers),
        403,
    )  # fmt: skip
    room = campus.rooms["101"]["id"]
    assert_error(client.get(f"/api/rooms/{room}/assets", headers=teacher.headers), 403)
    # staff read and write
    tech = world.user(campus.tenant.id, Role.TECHNICIAN)
    agent = world.user(campus.tenant.id, Role.AGENT)
    assert len(ok(client.get("/api/assets", headers=agent.headers))) == 2
    made = make_asset(client, campus, "MPS-2", headers=tech.headers)
    ok(client.patch(f"/api/assets/{made['id']}", json={"roomId": room}, headers=tech.headers))


def test_api_tokens_need_the_assets_scope(client: httpx.Client, campus: Campus) -> None:
    token = ok(
        client.post("/api/api-tokens", json={"name": "inventory sync", "scopes": ["assets:read"]},
                    headers=campus.admin),
        201,
    )["token"]  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}
    assert ok(client.get("/api/assets", headers=headers)) == []
    refused = client.post(
        "/api/assets", json={"assetTag": "T-1", "assetTypeId": campus.types["Other"]},
        headers=headers,
    )  # fmt: skip
    assert_error(refused, 403, "INSUFFICIENT_SCOPE")


def test_tickets_link_to_assets_with_history_on_both_sides(
    client: httpx.Client, world: World, db: Database, campus: Campus
) -> None:
    teacher = world.user(campus.tenant.id, Role.REQUESTER)
    me = make_person(client, campus, "Ms. Carter", kind="staff", userId=str(teacher.id))
    asset = make_asset(client, campus, "PRJ-7", type="Projector", assignedPersonId=me["id"])
    mine = make_ticket(db, campus.tenant.id, teacher.id, "Projector shows no picture")
    theirs = make_ticket(db, campus.tenant.id, campus.tenant.admin.id, "Check all projectors")
    for ticket_id in (mine, theirs):
        linked = ok(
            client.post(
                f"/api/assets/{asset['id']}/tickets",
                json={"ticketId": ticket_id},
                headers=campus.admin,
            ),
            201,
        )
        assert linked["id"] == ticket_id
    # linking twice keeps one link
    ok(
        client.post(
            f"/api/assets/{asset['id']}/tickets", json={"ticketId": mine}, headers=campus.admin
        ),
        201,
    )
    staff_view = ok(client.get(f"/api/assets/{asset['id']}/tickets", headers=campus.admin))
    assert [t["title"] for t in staff_view] == [
        "Check all projectors",
        "Projector shows no picture",
    ]
    # the requester sees the asset's tickets they may see
    their_view = ok(client.get(f"/api/assets/{asset['id']}/tickets", headers=teacher.headers))
    assert [t["id"] for t in their_view] == [mine]

    kinds = [e["kind"] for e in timeline(client, campus, asset["id"])]
    assert kinds.count("ticket_linked") == 2
    from server.tickets.models import TicketEvent

    with db.transaction(tenant=campus.tenant.id) as session:
        events = session.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id == uuid.UUID(mine))
        ).all()
        assert [(e.kind, e.data["assetTag"]) for e in events] == [("asset_linked", "PRJ-7")]

    gone = client.delete(f"/api/assets/{asset['id']}/tickets/{mine}", headers=campus.admin)
    assert gone.status_code == 204, gone.text
    assert_error(
        client.delete(f"/api/assets/{asset['id']}/tickets/{mine}", headers=campus.admin), 404
    )
    left = ok(client.get(f"/api/assets/{asset['id']}/tickets", headers=campus.admin))
    assert [t["id"] for t in left] == [theirs]
    assert "ticket_unlinked" in [e["kind"] for e in timeline(client, campus, asset["id"])]
    missing = client.post(
        f"/api/assets/{asset['id']}/tickets",
        json={"ticketId": str(uuid.uuid4())},
        headers=campus.admin,
    )
    assert_error(missing, 404)


def test_link_service_refuses_another_organizations_asset(
    client: httpx.Client, world: World, db: Database, campus: Campus
) -> None:
    from server.assets import service
    from server.core.errors import ValidationFailed
    from server.tickets.models import Ticket

    other = build_campus(client, world, "oak")
    foreign = make_asset(client, other, "OAK-1")
    local = make_asset(client, campus, "MPS-1")
    ticket_id = make_ticket(db, campus.tenant.id, campus.tenant.admin.id, "Broken")
    from server.core.tenancy import ALL_TENANTS

    with db.transaction(tenant=ALL_TENANTS) as session:  # even where both are readable
        ticket = session.get(Ticket, uuid.UUID(ticket_id))
        assert ticket is not None
        with pytest.raises(ValidationFailed) as refused:
            service.link_ticket_assets(
                session, ticket, [uuid.UUID(local["id"]), uuid.UUID(foreign["id"])], None
            )
        assert refused.value.details["missing"] == [foreign["id"]]
        session.rollback()


def test_other_domains_write_into_the_history(
    client: httpx.Client, db: Database, campus: Campus
) -> None:
    """The inventory records parts used on an asset through ``record_event``."""
    from server.assets import service
    from server.assets.models import Asset

    asset = make_asset(client, campus, "MPS-77")
    part_id = uuid.uuid4()
    with db.transaction(tenant=campus.tenant.id) as session:
        row = session.get(Asset, uuid.UUID(asset["id"]))
        assert row is not None
        service.record_event(
            session, row, "part_used", campus.tenant.admin.id,
            partId=part_id, partName="Chromebook 11 G9 screen", quantity=1,
        )  # fmt: skip
        with pytest.raises(ValueError):
            service.record_event(session, row, "exploded", None)
    part = [e for e in timeline(client, campus, asset["id"]) if e["kind"] == "part_used"]
    assert part[0]["data"] == {
        "partId": str(part_id),
        "partName": "Chromebook 11 G9 screen",
        "quantity": 1,
    }
    only = ok(
        client.get(
            f"/api/assets/{asset['id']}/timeline", params={"kind": "part_used"},
            headers=campus.admin,
        )
    )  # fmt: skip
    assert len(only) == 1


def test_bulk_demo_data_gets_change_positions(db: Database, campus: Campus) -> None:
    """``seed_demo`` inserts in bulk; every row still gets its own change position,
    above what the organization had, so a replica's "changes since N" sees them."""
    import random
    from collections import Counter

    from server.assets import demo
    from server.assets.models import Asset, Person
    from server.core.tenancy import current_change_position
    from server.organizations.models import Organization
    from server.sites.models import Room
    from server.users.models import User

    with db.transaction(tenant=campus.tenant.id) as session:
        before = current_change_position(session, campus.tenant.id)
        org = session.get(Organization, campus.tenant.id)
        rooms = list(session.scalars(select(Room)))
        users = list(session.scalars(select(User)))
        made = demo.seed_demo(session, org, rooms, users, random.Random(7), count=400)
        assert made == 400
    with db.transaction(tenant=campus.tenant.id) as session:
        assets = session.scalars(select(Asset)).all()
        positions = [a.change_position for a in assets]
        assert len(assets) == 400
        assert len(set(positions)) == 400 and min(positions) > before
        assert max(positions) <= current_change_position(session, campus.tenant.id)
        people = session.scalars(select(Person)).all()
        assert all(p.change_position > before for p in people)
        tags = {a.asset_tag for a in assets}
        assert len(tags) == 400
        # the staff have their devices (the teachers a laptop), one or two each
        held = Counter(a.assigned_person_id for a in assets if a.assigned_person_id)
        assert held and max(held.values()) <= 2
        assert set(held) <= {p.id for p in people}


# ----------------------------------------------------------------------- query counts


def _grow(client: httpx.Client, db: Database, campus: Campus, start: int, n: int) -> None:
    room = campus.rooms["101"]["id"]
    for i in range(start, start + n):
        person = make_person(client, campus, f"Student {i}")
        asset = make_asset(
            client, campus, f"MPS-{i:04d}", roomId=room, type=["Chromebook", "Projector"][i % 2],
            assignedPersonId=person["id"], departmentId=None,
        )  # fmt: skip
        ok(client.patch(f"/api/assets/{asset['id']}", json={"notes": f"n{i}"},
                        headers=campus.admin))  # fmt: skip
        ticket = make_ticket(db, campus.tenant.id, campus.tenant.admin.id, f"T{i}")
        ok(client.post(f"/api/assets/{asset['id']}/tickets", json={"ticketId": ticket},
                       headers=campus.admin), 201)  # fmt: skip


def test_statement_counts_do_not_grow_with_rows(
    client: httpx.Client, db: Database, campus: Campus
) -> None:
    first = make_asset(client, campus, "AAA-1", roomId=campus.rooms["101"]["id"])
    room = campus.rooms["101"]["id"]
    paths = [
        "/api/assets",
        "/api/assets?tag=AAA-1",
        "/api/assets?statusType=deployable",
        f"/api/assets/{first['id']}",
        f"/api/assets/{first['id']}/timeline",
        f"/api/assets/{first['id']}/tickets",
        "/api/asset-types",
        "/api/asset-statuses",
        "/api/people",
        f"/api/rooms/{room}/assets",
        f"/api/rooms/{room}/asset-summary",
    ]

    def measure() -> dict[str, int]:
        counts = {}
        for path in paths:
            client.get(path, headers=campus.admin)
            with count_statements(db) as statements:
                response = client.get(path, headers=campus.admin, params={"perPage": 100})
            assert response.status_code == 200, response.text
            counts[path] = len(statements)
        return counts

    _grow(client, db, campus, 0, 2)
    for n in range(3):  # some history on the measured asset
        ok(client.patch(f"/api/assets/{first['id']}", json={"notes": f"x{n}"},
                        headers=campus.admin))  # fmt: skip
    few = measure()
    _grow(client, db, campus, 2, 12)
    for n in range(12):
        ok(client.patch(f"/api/assets/{first['id']}", json={"notes": f"y{n}"},
                        headers=campus.admin))  # fmt: skip
        ticket = make_ticket(db, campus.tenant.id, campus.tenant.admin.id, f"U{n}")
        ok(client.post(f"/api/assets/{first['id']}/tickets", json={"ticketId": ticket},
                       headers=campus.admin), 201)  # fmt: skip
    many = measure()
    assert many == few
    assert max(few.values()) <= 8, few


def test_a_platform_administrator_cannot_mix_organizations(
    client: httpx.Client, world: World, campus: Campus
) -> None:
    """Acting platform-wide (no organizationId), a super admin reads every district,
    but an asset only ever refers to rows of its own organization."""
    other = build_campus(client, world, "oak")
    their_student = make_person(client, other, "Oak Student")
    make_asset(client, other, "OAK-1")
    asset = make_asset(client, campus, "MPS-1")
    root = world.super_admin().headers
    url = f"/api/assets/{asset['id']}"
    refused = client.post(f"{url}/checkout", json={"personId": their_student["id"]}, headers=root)
    assert assert_error(refused, 422)["details"] == {"field": "personId"}
    refused = client.patch(url, json={"roomId": other.rooms["101"]["id"]}, headers=root)
    assert assert_error(refused, 422)["details"] == {"field": "roomId"}
    refused = client.patch(url, json={"statusLabelId": other.labels["Spare"]}, headers=root)
    assert assert_error(refused, 422)["details"] == {"field": "statusLabelId"}
    # the other district's tag is no clash for this one
    renamed = ok(client.patch(url, json={"assetTag": "OAK-1"}, headers=root))
    assert renamed["assetTag"] == "OAK-1" and renamed["organizationId"] == str(campus.tenant.id)
