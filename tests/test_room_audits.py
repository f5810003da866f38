"""Room audits: a technician scans the tags in a room and learns what is there, what is
missing, what belongs elsewhere and what the system does not know; confirming the
audit records the moves and status changes like any other asset change."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from common.enums import Role
from server.core.engine import Database
from tests.conftest import World, assert_error
from tests.test_assets import Campus, build_campus, make_asset, make_person, ok, timeline
from tests.test_query_counts import count_statements


@pytest.fixture
def campus(client: httpx.Client, world: World) -> Campus:
    return build_campus(client, world)


@pytest.fixture
def tech(world: World, campus: Campus) -> dict[str, str]:
    return world.user(campus.tenant.id, Role.TECHNICIAN).headers


def _room(campus: Campus, number: str) -> str:
    return str(campus.rooms[number]["id"])


def stock_room_101(client: httpx.Client, campus: Campus) -> dict[str, dict[str, Any]]:
    """Room 101 holds a cart of Chromebooks, a projector, a student's checked-out
    device and a retired one; room 102 holds a panel that will turn up in 101."""
    r101, r102 = _room(campus, "101"), _room(campus, "102")
    student = make_person(client, campus, "Ava Lopez")
    made = {
        "present": make_asset(client, campus, "MPS-1", roomId=r101),
        "present2": make_asset(client, campus, "PRJ-1", type="Projector", roomId=r101),
        "missing": make_asset(client, campus, "MPS-2", roomId=r101),
        "checked_out": make_asset(
            client, campus, "MPS-3", roomId=r101, assignedPersonId=student["id"]
        ),
        "retired": make_asset(
            client, campus, "MPS-4", roomId=r101, statusLabelId=campus.labels["Retired"]
        ),
        "misplaced": make_asset(client, campus, "PNL-9", type="Interactive panel", roomId=r102),
    }
    return made


def test_an_audit_answers_present_missing_misplaced_and_unknown(
    client: httpx.Client, campus: Campus, tech: dict[str, str]
) -> None:
    made = stock_room_101(client, campus)
    r101 = _room(campus, "101")
    audit = ok(
        client.post(
            f"/api/rooms/{r101}/audits",
            json={
                # scanners repeat themselves and shout; a tag nobody knows turns up
                "scannedTags": ["mps-1", "PRJ-1", "PRJ-1 ", "pnl-9", "ZZZ-404"],
                "notes": "after spring break",
            },
            headers=tech,
        ),
        201,
    )
    assert audit["status"] == "open"
    assert audit["notes"] == "after spring break"
    assert audit["createdAt"] and audit["auditorId"]
    assert audit["counts"] == {
        "present": 2,
        "missing": 1,
        "misplaced": 1,
        "unknown": 1,
        "checkedOut": 1,
    }
    assert [line["tag"] for line in audit["present"]] == ["MPS-1", "PRJ-1"]
    assert [line["assetId"] for line in audit["missing"]] == [made["missing"]["id"]]
    assert audit["missing"][0]["assetTypeName"] == "Chromebook"
    assert [line["tag"] for line in audit["unknown"]] == ["ZZZ-404"]
    assert audit["unknown"][0]["assetId"] is None
    misplaced = audit["misplaced"][0]
    assert misplaced["tag"] == "PNL-9"
    assert misplaced["belongsIn"]["roomNumber"] == "102"
    assert misplaced["belongsIn"]["buildingName"] == "Main"
    assert misplaced["belongsIn"]["siteName"] == campus.site["name"]
    assert audit["checkedOut"][0]["assignedPersonName"] == "Ava Lopez"
    # the retired device is not expected anywhere
    every = [ln["tag"] for k in ("present", "missing", "misplaced", "unknown", "checkedOut")
             for ln in audit[k]]  # fmt: skip
    assert "MPS-4" not in every

    # recording changes nothing yet
    panel = ok(client.get(f"/api/assets/{made['misplaced']['id']}", headers=tech))
    assert panel["roomNumber"] == "102"
    assert ok(client.get(f"/api/assets/{made['missing']['id']}", headers=tech))["statusName"] == (
        "In Service"
    )
    again = ok(client.get(f"/api/room-audits/{audit['id']}", headers=tech))
    assert again == audit
    listed = ok(client.get(f"/api/rooms/{r101}/audits", headers=tech))
    assert [(a["id"], a["counts"]["missing"]) for a in listed] == [(audit["id"], 1)]


def test_confirming_moves_misplaced_and_marks_missing_once(
    client: httpx.Client, campus: Campus, tech: dict[str, str]
) -> None:
    made = stock_room_101(client, campus)
    r101 = _room(campus, "101")
    audit = ok(
        client.post(
            f"/api/rooms/{r101}/audits",
            json={"scannedTags": ["MPS-1", "PRJ-1", "PNL-9"]},
            headers=tech,
        ),
        201,
    )
    confirmed = ok(
        client.post(
            f"/api/room-audits/{audit['id']}/confirm",
            json={"moveMisplaced": True, "markMissing": True},
            headers=tech,
        )
    )
    assert confirmed["status"] == "confirmed" and confirmed["confirmedAt"]
    assert confirmed["applied"]["moved"] == [made["misplaced"]["id"]]
    assert confirmed["applied"]["markedMissing"] == [made["missing"]["id"]]
    assert sorted(confirmed["applied"]["seen"]) == sorted(
        [made["present"]["id"], made["present2"]["id"], made["misplaced"]["id"]]
    )

    panel = ok(client.get(f"/api/assets/{made['misplaced']['id']}", headers=tech))
    assert panel["roomNumber"] == "101" and panel["lastAuditedAt"]
    missing = ok(client.get(f"/api/assets/{made['missing']['id']}", headers=tech))
    assert missing["statusName"] == "Missing" and missing["statusType"] == "undeployable"
    # the checked-out device is with its student, not missing
    assert (
        ok(client.get(f"/api/assets/{made['checked_out']['id']}", headers=tech))["statusName"]
        == "In Service"
    )

    # ordinary history and audit log entries
    moves = [e for e in timeline(client, campus, made["misplaced"]["id"]) if e["kind"] == "moved"]
    assert moves[0]["data"]["from"]["roomNumber"] == "102"
    assert moves[0]["data"]["note"] == "Room audit of 101"
    kinds = [e["kind"] for e in timeline(client, campus, made["missing"]["id"])]
    assert kinds[0] == "status_changed"
    assert "audited" in [e["kind"] for e in timeline(client, campus, made["present"]["id"])]
    logs = ok(
        client.get(
            "/api/audit-logs",
            params={"entityId": made["misplaced"]["id"], "action": "asset.moved"},
            headers=campus.admin,
        )
    )
    assert len(logs) == 1
    logs = ok(
        client.get("/api/audit-logs", params={"action": "room_audit.confirmed"},
                   headers=campus.admin)
    )  # fmt: skip
    assert [e["entityId"] for e in logs] == [audit["id"]]

    # only once
    twice = client.post(f"/api/room-audits/{audit['id']}/confirm", json={}, headers=tech)
    assert_error(twice, 409, "RESOURCE_CONFLICT")
    assert len([e for e in timeline(client, campus, made["misplaced"]["id"])
                if e["kind"] == "moved"]) == 1  # fmt: skip


def test_confirm_can_leave_places_and_statuses_alone(
    client: httpx.Client, campus: Campus, tech: dict[str, str]
) -> None:
    made = stock_room_101(client, campus)
    audit = ok(
        client.post(
            f"/api/rooms/{_room(campus, '101')}/audits",
            json={"scannedTags": ["PNL-9"]},
            headers=tech,
        ),
        201,
    )
    confirmed = ok(
        client.post(
            f"/api/room-audits/{audit['id']}/confirm",
            json={"moveMisplaced": False, "markMissing": False},
            headers=tech,
        )
    )
    assert confirmed["applied"]["moved"] == [] and confirmed["applied"]["markedMissing"] == []
    assert (
        ok(client.get(f"/api/assets/{made['misplaced']['id']}", headers=tech))["roomNumber"]
        == "102"
    )
    assert (
        ok(client.get(f"/api/assets/{made['present']['id']}", headers=tech))["statusName"]
        == "In Service"
    )


def test_a_missing_device_that_turns_up_is_back_in_service(
    client: httpx.Client, campus: Campus, tech: dict[str, str]
) -> None:
    r101 = _room(campus, "101")
    lost = make_asset(client, campus, "MPS-8", roomId=r101,
                      statusLabelId=campus.labels["Missing"])  # fmt: skip
    audit = ok(
        client.post(f"/api/rooms/{r101}/audits", json={"scannedTags": ["MPS-8"]}, headers=tech),
        201,
    )
    assert [line["tag"] for line in audit["present"]] == ["MPS-8"]
    confirmed = ok(client.post(f"/api/room-audits/{audit['id']}/confirm", json={}, headers=tech))
    assert confirmed["applied"]["restored"] == [lost["id"]]
    found = ok(client.get(f"/api/assets/{lost['id']}", headers=tech))
    assert found["statusName"] == "In Service"


def test_the_missing_status_must_fit(
    client: httpx.Client, campus: Campus, tech: dict[str, str]
) -> None:
    made = stock_room_101(client, campus)
    audit = ok(
        client.post(f"/api/rooms/{_room(campus, '101')}/audits", json={"scannedTags": []},
                    headers=tech),
        201,
    )  # fmt: skip
    assert audit["counts"]["missing"] == 3  # an empty room: everything expected is missing
    for label, code in (
        ("Stolen", "BUSINESS_RULE_VIOLATION"),
        ("Spare", "BUSINESS_RULE_VIOLATION"),
    ):
        refused = client.post(
            f"/api/room-audits/{audit['id']}/confirm",
            json={"missingStatusLabelId": campus.labels[label]},
            headers=tech,
        )
        assert assert_error(refused, 422, code)["details"] == {"field": "missingStatusLabelId"}
    # a district's own label works, and the refusals changed nothing
    assert ok(client.get(f"/api/room-audits/{audit['id']}", headers=tech))["status"] == "open"
    lost = ok(client.post("/api/asset-statuses", json={"name": "Lost - audit",
                                                       "statusType": "undeployable"},
                          headers=campus.admin), 201)  # fmt: skip
    ok(
        client.post(
            f"/api/room-audits/{audit['id']}/confirm",
            json={"missingStatusLabelId": lost["id"]},
            headers=tech,
        )
    )
    assert (
        ok(client.get(f"/api/assets/{made['missing']['id']}", headers=tech))["statusName"]
        == "Lost - audit"
    )


def test_another_districts_tags_are_unknown_and_requesters_cannot_audit(
    client: httpx.Client, world: World, campus: Campus, tech: dict[str, str]
) -> None:
    other = build_campus(client, world, "oak")
    make_asset(client, other, "OAK-1", roomId=str(other.rooms["101"]["id"]))
    make_asset(client, campus, "MPS-1", roomId=_room(campus, "101"))
    audit = ok(
        client.post(
            f"/api/rooms/{_room(campus, '101')}/audits",
            json={"scannedTags": ["OAK-1", "MPS-1"]},
            headers=tech,
        ),
        201,
    )
    assert [line["tag"] for line in audit["unknown"]] == ["OAK-1"]
    assert [line["tag"] for line in audit["present"]] == ["MPS-1"]
    # the other district cannot read or confirm it, nor audit our rooms
    assert_error(client.get(f"/api/room-audits/{audit['id']}", headers=other.admin), 404)
    assert_error(
        client.post(f"/api/room-audits/{audit['id']}/confirm", json={}, headers=other.admin), 404
    )
    assert_error(
        client.post(f"/api/rooms/{_room(campus, '101')}/audits", json={"scannedTags": []},
                    headers=other.admin),
        404,
    )  # fmt: skip
    teacher = world.user(campus.tenant.id, Role.REQUESTER)
    assert_error(
        client.post(f"/api/rooms/{_room(campus, '101')}/audits", json={"scannedTags": []},
                    headers=teacher.headers),
        403,
    )  # fmt: skip
    assert_error(client.get(f"/api/room-audits/{audit['id']}", headers=teacher.headers), 403)


def test_reading_an_audit_costs_the_same_for_any_size(
    client: httpx.Client, db: Database, campus: Campus, tech: dict[str, str]
) -> None:
    r101, r102 = _room(campus, "101"), _room(campus, "102")

    def audit_of(n: int) -> str:
        tags = []
        for i in range(n):
            make_asset(client, campus, f"N{n}-{i}", roomId=r101 if i % 3 else r102)
            if i % 2:
                tags.append(f"N{n}-{i}")
        tags.append(f"GHOST-{n}")
        return str(ok(client.post(f"/api/rooms/{r101}/audits", json={"scannedTags": tags},
                                  headers=tech), 201)["id"])  # fmt: skip

    def measure(path: str) -> int:
        client.get(path, headers=tech)
        with count_statements(db) as statements:
            assert client.get(path, headers=tech).status_code == 200
        return len(statements)

    small, large = audit_of(3), audit_of(30)
    assert measure(f"/api/room-audits/{small}") == measure(f"/api/room-audits/{large}")
    assert measure(f"/api/rooms/{r101}/audits") <= 8


def test_concurrent_confirms_apply_the_audit_once(
    client: httpx.Client, server_url: str, campus: Campus, tech: dict[str, str]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    made = stock_room_101(client, campus)
    audit = ok(
        client.post(
            f"/api/rooms/{_room(campus, '101')}/audits",
            json={"scannedTags": ["MPS-1", "PNL-9"]},
            headers=tech,
        ),
        201,
    )

    def confirm(_: int) -> int:
        with httpx.Client(base_url=server_url, timeout=60) as own:
            url = f"/api/room-audits/{audit['id']}/confirm"
            return own.post(url, json={}, headers=tech).status_code

    with ThreadPoolExecutor(4) as pool:
        codes = sorted(pool.map(confirm, range(4)))
    assert codes == [200, 409, 409, 409]
    moves = [e for e in timeline(client, campus, made["misplaced"]["id"]) if e["kind"] == "moved"]
    assert len(moves) == 1
    changes = [e for e in timeline(client, campus, made["missing"]["id"])
               if e["kind"] == "status_changed"]  # fmt: skip
    assert len(changes) == 1
