"""The demo district reads like a district: a teacher has a laptop, not seventeen; a
classroom has a display and sometimes a cart of Chromebooks; a closet has switches;
spares and loaners are in storage; tickets about a device name that device and
its room. Seeded once for the module, in its own database."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from server import seed
from server.assets.demo import kind_of_room
from server.assets.models import Asset, AssetStatusLabel, AssetType, Person, TicketAsset
from server.core.engine import Database
from server.core.tenancy import ALL_TENANTS
from server.migrations import upgrade
from server.sites import service as sites
from server.sites.models import Room
from server.tickets.models import Ticket
from server.users.models import User
from tests.conftest import scratch_database

STORAGE = {"storage"}


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Database, uuid.UUID]]:
    directory: Path = tmp_path_factory.mktemp("demo-district")
    with scratch_database(directory) as url:
        upgrade(url)
        db = Database(url)
        try:
            with db.transaction(tenant=ALL_TENANTS) as session:
                org, _logins, created = seed.seed_demo(session)
                assert created
                org_id = org.id
            seed.populate_demo(db, org_id, demo_tickets=80)
            yield db, org_id
        finally:
            db.dispose()


@pytest.fixture(scope="module")
def inventory(district: tuple[Database, uuid.UUID]) -> dict[str, object]:
    """Every asset with its type, label, room kind and holder; every room by kind."""
    db, org_id = district
    with db.transaction(tenant=org_id) as session:
        rooms = {room.id: room for room in session.scalars(select(Room))}
        rows = session.execute(
            select(
                Asset.id,
                Asset.room_id,
                Asset.assigned_person_id,
                Asset.custom_fields,
                AssetType.name.label("type_name"),
                AssetStatusLabel.key.label("key"),
            )
            .join(AssetType, AssetType.id == Asset.asset_type_id)
            .join(AssetStatusLabel, AssetStatusLabel.id == Asset.status_label_id)
        ).all()
        people = {p.id: p for p in session.scalars(select(Person))}
        users = {u.id: u for u in session.scalars(select(User))}
        kinds = {room_id: kind_of_room(room) for room_id, room in rooms.items()}
        session.expunge_all()
    return {"rooms": rooms, "rows": rows, "people": people, "users": users, "kinds": kinds}


def test_the_volume_stays_what_performance_demos_expect(inventory: dict) -> None:
    assert len(inventory["rows"]) == 3000
    assert len(inventory["rooms"]) >= 100


def test_no_one_holds_a_pile_of_devices(inventory: dict) -> None:
    held = Counter(row.assigned_person_id for row in inventory["rows"] if row.assigned_person_id)
    people = inventory["people"]
    assert max(held.values()) <= 2, "nobody has more than a laptop and a phone"
    assert len(held) >= 60, "the teachers and staff each have their own device"
    assert all(people[person].kind == "staff" for person in held)
    types = defaultdict(list)
    for row in inventory["rows"]:
        if row.assigned_person_id:
            types[row.assigned_person_id].append(row.type_name)
    assert all(sorted(t) in (["Laptop"], ["Laptop", "Phone"]) for t in types.values())
    # the demo logins: the teacher has her laptop, the principal a laptop and a phone
    by_user = {people[p].user_id: sorted(t) for p, t in types.items() if people[p].user_id}
    login = {u.email.split("@")[0]: u.id for u in inventory["users"].values()}
    assert by_user[login["teacher"]] == ["Laptop"]
    assert by_user[login["principal"]] == ["Laptop", "Phone"]
    # student devices live in carts, checked out to no one
    for row in inventory["rows"]:
        if row.type_name == "Chromebook":
            assert row.assigned_person_id is None


def test_rooms_hold_what_such_rooms_hold(inventory: dict) -> None:
    kinds = inventory["kinds"]
    in_room: dict[uuid.UUID, list] = defaultdict(list)
    for row in inventory["rows"]:
        in_room[row.room_id].append(row)
    for room_id, room in inventory["rooms"].items():
        kind = kinds[room_id]
        held = Counter(row.type_name for row in in_room[room_id])
        where = f"{room.number} ({kind}): {dict(held)}"
        if kind not in STORAGE:
            assert sum(held.values()) <= 40, where
        if kind == "classroom":
            assert held["Projector"] + held["Interactive panel"] >= 1, where
            assert held["Laptop"] + held["Desktop"] == 1, f"one teacher's computer: {where}"
            assert held["Network gear"] == 0 and held["HVAC unit"] == 0, where
        elif kind == "lab":
            assert held["Desktop"] >= 20, where
        elif kind in ("closet", "server_room"):
            assert held["Network gear"] >= 3, where
            assert held["Chromebook"] == held["Laptop"] == held["Projector"] == 0, where
        elif kind == "library":
            assert held["Desktop"] >= 4, where
        elif kind == "storage":
            assert sum(held.values()) > 0, where
    # the remaining stock is in the depot: the one room of a hundred or more
    big = [room_id for room_id, rows in in_room.items() if len(rows) >= 100]
    assert [kinds[room_id] for room_id in big] == ["storage"]


def test_some_classrooms_have_a_cart_of_student_devices(inventory: dict) -> None:
    kinds = inventory["kinds"]
    carts: dict[str, list] = defaultdict(list)
    for row in inventory["rows"]:
        if "cart" in row.custom_fields:
            carts[row.custom_fields["cart"]].append(row)
    classrooms = [r for r, kind in kinds.items() if kind == "classroom"]
    with_cart = {
        rows[0].room_id for rows in carts.values() if kinds[rows[0].room_id] == "classroom"
    }
    assert 0.25 * len(classrooms) <= len(with_cart) <= 0.75 * len(classrooms)
    for name, rows in carts.items():
        assert 20 <= len(rows) <= 30, name
        assert len({row.room_id for row in rows}) == 1, f"{name} is in one room"
        assert {row.type_name for row in rows} <= {"Chromebook", "Tablet"}
        assert sorted(row.custom_fields["cartSlot"] for row in rows) == list(
            range(1, len(rows) + 1)
        )


def test_spares_and_loaners_are_in_storage(inventory: dict) -> None:
    kinds = inventory["kinds"]
    for row in inventory["rows"]:
        if row.key in ("spare", "retired") or row.custom_fields.get("pool") == "loaner":
            assert kinds[row.room_id] in STORAGE, row


def test_tickets_about_a_device_name_it_and_its_room(district: tuple[Database, uuid.UUID]) -> None:
    db, org_id = district
    with db.transaction(tenant=org_id) as session:
        linked = session.execute(
            select(Ticket.subcategory, Ticket.room_id, Asset.room_id, AssetType.name)
            .join(TicketAsset, TicketAsset.ticket_id == Ticket.id)
            .join(Asset, Asset.id == TicketAsset.asset_id)
            .join(AssetType, AssetType.id == Asset.asset_type_id)
        ).all()
        assert len(linked) >= 10
        for subcategory, ticket_room, asset_room, type_name in linked:
            assert ticket_room == asset_room, "the ticket is where the device is"
            if subcategory in ("Projector", "Interactive panel", "Chromebook"):
                assert type_name == subcategory
        rooms = {room.id: kind_of_room(room) for room in session.scalars(select(Room))}
        for subcategory, room_id in session.execute(select(Ticket.subcategory, Ticket.room_id)):
            if room_id is None:
                continue
            if subcategory == "Install":
                assert rooms[room_id] == "lab", "lab software is installed in a lab"
            if subcategory == "Switching":
                assert rooms[room_id] == "server_room"


def test_a_room_found_by_school_and_number_names_both(district: tuple[Database, uuid.UUID]) -> None:
    db, org_id = district
    with db.transaction(tenant=org_id) as session:
        everywhere = [sites.room_out(r) for r in session.execute(sites.query_rooms(q="104"))]
        lincoln = [sites.room_out(r) for r in session.execute(sites.query_rooms(q="Lincoln 104"))]
    schools = {room.site_name for room in everywhere if room.number == "104"}
    assert schools == {"Maplewood High School", "Lincoln Middle School"}
    assert [(r.site_name, r.building_name, r.number) for r in lincoln] == [
        ("Lincoln Middle School", "Main Building", "104")
    ]
