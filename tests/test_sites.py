"""Sites, buildings and rooms as a district admin sets them up and everyone browses them."""

from __future__ import annotations

import httpx

from common.enums import Role
from tests.conftest import World, assert_error


def _create(client: httpx.Client, headers: dict[str, str], url: str, body: dict) -> dict:
    response = client.post(url, headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()["data"]


def test_admin_builds_a_campus_and_everyone_can_find_a_room(
    world: World, client: httpx.Client
) -> None:
    tenant = world.org("alpha")
    admin = tenant.admin.headers
    site = _create(
        client,
        admin,
        "/api/sites",
        {
            "name": "Lincoln Middle",
            "code": "LMS",
            "siteType": "middle_school",
            "timezone": "America/Chicago",
        },
    )
    main = _create(
        client, admin, f"/api/sites/{site['id']}/buildings", {"name": "Main", "floors": 2}
    )
    annex = _create(client, admin, f"/api/sites/{site['id']}/buildings", {"name": "Annex"})
    _create(
        client,
        admin,
        f"/api/buildings/{main['id']}/rooms",
        {"number": "204", "roomType": "classroom", "capacity": 30},
    )
    _create(
        client,
        admin,
        f"/api/buildings/{main['id']}/rooms",
        {"number": "IT-1", "name": "Network closet", "roomType": "closet"},
    )
    _create(client, admin, f"/api/buildings/{annex['id']}/rooms", {"number": "A1"})
    other = _create(client, admin, "/api/sites", {"name": "District Office", "siteType": "office"})
    other_b = _create(client, admin, f"/api/sites/{other['id']}/buildings", {"name": "Admin"})
    _create(client, admin, f"/api/buildings/{other_b['id']}/rooms", {"number": "204"})

    teacher = world.user(tenant.id, Role.REQUESTER)
    get = lambda url, **p: client.get(url, headers=teacher.headers, params=p).json()
    assert [s["name"] for s in get("/api/sites")["data"]] == ["District Office", "Lincoln Middle"]
    assert [s["code"] for s in get("/api/sites", siteType="middle_school")["data"]] == ["LMS"]
    assert [b["name"] for b in get(f"/api/sites/{site['id']}/buildings")["data"]] == [
        "Annex",
        "Main",
    ]
    assert [r["number"] for r in get(f"/api/buildings/{main['id']}/rooms")["data"]] == [
        "204",
        "IT-1",
    ]
    at_lincoln = get("/api/rooms", siteId=site["id"])["data"]
    assert sorted(r["number"] for r in at_lincoln) == ["204", "A1", "IT-1"]
    assert [r["name"] for r in get("/api/rooms", q="closet")["data"]] == ["Network closet"]
    assert [r["number"] for r in get("/api/rooms", roomType="closet")["data"]] == ["IT-1"]
    assert len(get("/api/rooms", q="204")["data"]) == 2, "the same number in two buildings"
    # requesters read, but do not edit
    assert_error(
        client.post("/api/sites", headers=teacher.headers, json={"name": "Mine"}),
        403,
        "PERMISSION_DENIED",
    )
    assert_error(
        client.patch(
            f"/api/rooms/{at_lincoln[0]['id']}", headers=teacher.headers, json={"name": "x"}
        ),
        403,
    )


def test_names_are_unique_where_people_would_confuse_them(
    world: World, client: httpx.Client
) -> None:
    tenant = world.org("alpha")
    admin = tenant.admin.headers
    site = _create(client, admin, "/api/sites", {"name": "Oak Street"})
    assert_error(
        client.post("/api/sites", headers=admin, json={"name": "Oak Street"}),
        409,
        "DUPLICATE_RESOURCE",
    )
    building = _create(client, admin, f"/api/sites/{site['id']}/buildings", {"name": "Main"})
    assert_error(
        client.post(f"/api/sites/{site['id']}/buildings", headers=admin, json={"name": "Main"}), 409
    )
    _create(client, admin, f"/api/buildings/{building['id']}/rooms", {"number": "101"})
    error = assert_error(
        client.post(
            f"/api/buildings/{building['id']}/rooms", headers=admin, json={"number": "101"}
        ),
        409,
    )
    assert error["details"]["field"] == "number"
    # another organization may use the same names
    bravo = world.org("bravo")
    _create(client, bravo.admin.headers, "/api/sites", {"name": "Oak Street"})


def test_edits_and_deletes_are_audited_and_keep_the_hierarchy_whole(
    world: World, client: httpx.Client
) -> None:
    tenant = world.org("alpha")
    admin = tenant.admin.headers
    site = _create(client, admin, "/api/sites", {"name": "Oak Street"})
    building = _create(client, admin, f"/api/sites/{site['id']}/buildings", {"name": "Main"})
    room = _create(client, admin, f"/api/buildings/{building['id']}/rooms", {"number": "101"})
    renamed = client.patch(
        f"/api/rooms/{room['id']}", headers=admin, json={"number": "101A", "capacity": 24}
    )
    assert renamed.status_code == 200 and renamed.json()["data"]["number"] == "101A"
    assert_error(
        client.patch(f"/api/rooms/{room['id']}", headers=admin, json={"number": None}), 422
    )
    assert_error(client.delete(f"/api/sites/{site['id']}", headers=admin), 409, "RESOURCE_CONFLICT")
    assert_error(client.delete(f"/api/buildings/{building['id']}", headers=admin), 409)
    assert client.delete(f"/api/rooms/{room['id']}", headers=admin).status_code == 204
    assert client.delete(f"/api/buildings/{building['id']}", headers=admin).status_code == 204
    assert client.delete(f"/api/sites/{site['id']}", headers=admin).status_code == 204
    assert_error(client.get(f"/api/sites/{site['id']}", headers=admin), 404)
    events = client.get(
        "/api/audit-logs", headers=admin, params={"q": "Oak Street", "perPage": 100}
    ).json()["data"]
    assert {"site.created", "site.deleted"} <= {e["action"] for e in events}
    change = client.get("/api/audit-logs", headers=admin, params={"action": "room.updated"}).json()[
        "data"
    ][0]
    assert change["details"]["changes"]["number"] == {"from": "101", "to": "101A"}
    assert change["details"]["changes"]["capacity"] == {"from": None, "to": 24}


def test_another_organizations_places_are_not_found(world: World, client: httpx.Client) -> None:
    alpha, bravo = world.org("alpha"), world.org("bravo")
    site = _create(client, alpha.admin.headers, "/api/sites", {"name": "Alpha High"})
    assert_error(client.get(f"/api/sites/{site['id']}", headers=bravo.admin.headers), 404)
    assert_error(
        client.post(
            f"/api/sites/{site['id']}/buildings",
            headers=bravo.admin.headers,
            json={"name": "Sneaky"},
        ),
        404,
    )
    assert client.get("/api/sites", headers=bravo.admin.headers).json()["data"] == []


def test_a_room_in_a_list_or_search_says_which_building_and_school(
    world: World, client: httpx.Client
) -> None:
    """Two schools have a room 104: every room returned names its building and site,
    and a search may name the school (or building) as well as the number."""
    tenant = world.org("alpha")
    admin = tenant.admin.headers
    made = {}
    for school, building in (("Maplewood High", "Main Building"), ("Lincoln Middle", "East Wing")):
        site = _create(client, admin, "/api/sites", {"name": school, "code": school[0] + "S"})
        hall = _create(client, admin, f"/api/sites/{site['id']}/buildings", {"name": building})
        for number in ("104", "105"):
            room = _create(client, admin, f"/api/buildings/{hall['id']}/rooms", {"number": number})
            made[(school, number)] = room
        made[school] = (site, hall)
    created = made[("Lincoln Middle", "104")]
    lincoln, east = made["Lincoln Middle"]
    assert (created["buildingName"], created["siteName"], created["siteId"]) == (
        "East Wing",
        "Lincoln Middle",
        lincoln["id"],
    )

    teacher = world.user(tenant.id, Role.REQUESTER)

    def places(url: str, **params: str) -> list[tuple[str, str, str]]:
        response = client.get(url, headers=teacher.headers, params=params)
        assert response.status_code == 200, response.text
        return [(r["siteName"], r["buildingName"], r["number"]) for r in response.json()["data"]]

    assert sorted(places("/api/rooms", q="104")) == [
        ("Lincoln Middle", "East Wing", "104"),
        ("Maplewood High", "Main Building", "104"),
    ]
    assert places("/api/rooms", q="Lincoln 104") == [("Lincoln Middle", "East Wing", "104")]
    assert places("/api/rooms", q="104 east") == [("Lincoln Middle", "East Wing", "104")]
    assert places("/api/rooms", q="  lincoln  ", sort="number") == [
        ("Lincoln Middle", "East Wing", "104"),
        ("Lincoln Middle", "East Wing", "105"),
    ]
    assert places("/api/rooms", q="Lincoln 204") == []
    assert places("/api/rooms", sort="-siteName,number")[0] == (
        "Maplewood High",
        "Main Building",
        "104",
    )
    assert places(f"/api/buildings/{east['id']}/rooms", q="105") == [
        ("Lincoln Middle", "East Wing", "105")
    ]
    one = client.get(f"/api/rooms/{created['id']}", headers=teacher.headers).json()["data"]
    assert (one["buildingName"], one["siteName"]) == ("East Wing", "Lincoln Middle")
    renamed = client.patch(
        f"/api/rooms/{created['id']}", headers=admin, json={"name": "Art room"}
    ).json()["data"]
    assert (renamed["name"], renamed["buildingName"], renamed["siteName"]) == (
        "Art room",
        "East Wing",
        "Lincoln Middle",
    )
    assert places("/api/rooms", q="art lincoln") == [("Lincoln Middle", "East Wing", "104")]
