"""Demo assets: a district's devices spread over its rooms, inserted in bulk.

``seed_demo`` makes ``count`` assets (mostly Chromebooks, most of them checked out to
students; projectors and interactive panels in classrooms, desktops in labs and
offices, printers, network gear in closets and server rooms), the students and staff
they are assigned to, and a ``created`` (and ``checked_out``) history entry each.

It is a bulk path: rows go in with ``session.execute(Model.__table__.insert(), rows)``
in batches of 5,000, which skips the ORM unit of work and therefore the ``before_flush`` hook
that stamps tenants and hands out change positions. So the rows carry their
``organization_id`` and this module reserves a block of change positions per table
from the same per-organization counter the hook uses
(``server.core.tenancy.allocate_change_positions``), numbering rows inside the block.
Replicas therefore see the rows in "changes since N" like any other change, and the
counter row's lock serialises the seed against concurrent writers of the
organization, as every other write does. 100,000 assets take a few seconds on SQLite.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from common.enums import Role
from common.ids import uuid7
from server.assets import service
from server.assets.models import Asset, AssetEvent, AssetStatusLabel, AssetType, Person
from server.core.db import utcnow
from server.core.tenancy import allocate_change_positions
from server.organizations.models import Organization
from server.sites.models import Building, Room, Site
from server.users.models import User

BATCH = 5000

FIRST = [
    "Ava",
    "Liam",
    "Noah",
    "Emma",
    "Olivia",
    "Mateo",
    "Sofia",
    "Lucas",
    "Mia",
    "Elijah",
    "Amelia",
    "Aiden",
    "Harper",
    "Ethan",
    "Zoe",
    "Jayden",
    "Chloe",
    "Daniel",
    "Aaliyah",
    "Diego",
    "Layla",
    "Caleb",
    "Nora",
    "Isaiah",
    "Riley",
    "Jamal",
    "Priya",
    "Wei",
    "Hana",
    "Omar",
    "Fatima",
    "Carlos",
    "Grace",
    "Leo",
    "Ivy",
    "Kai",
    "Maya",
    "Ezra",
    "Luna",
    "Josiah",
]
LAST = [
    "Smith",
    "Johnson",
    "Garcia",
    "Nguyen",
    "Brown",
    "Martinez",
    "Davis",
    "Lopez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Baker",
    "Patel",
    "Kim",
]

# type name -> (weight, [(manufacturer, model, unit cost $, warranty years, serial style)])
CATALOGUE: dict[str, tuple[float, list[tuple[str, str, int, int, str]]]] = {
    "Chromebook": (
        0.74,
        [
            ("HP", "Chromebook 11 G9 EE", 249, 3, "hp"),
            ("Dell", "Chromebook 3110", 279, 3, "dell"),
            ("Lenovo", "100e Chromebook Gen 4", 259, 3, "lenovo"),
            ("Acer", "Chromebook Spin 511", 299, 3, "acer"),
        ],
    ),
    "Laptop": (
        0.05,
        [
            ("Dell", "Latitude 3440", 849, 4, "dell"),
            ("Lenovo", "ThinkPad E14", 899, 4, "lenovo"),
            ("Apple", "MacBook Air 13", 999, 3, "apple"),
        ],
    ),
    "Desktop": (0.04, [("Dell", "OptiPlex 7010", 789, 5, "dell")]),
    "Tablet": (0.03, [("Apple", "iPad 10th gen", 349, 2, "apple")]),
    "Projector": (0.04, [("Epson", "BrightLink 685Wi", 1099, 3, "epson")]),
    "Interactive panel": (
        0.04,
        [
            ("Promethean", "ActivPanel 9 75in", 3499, 5, "prom"),
            ("Clear Touch", "6000K+ 65in", 2999, 5, "prom"),
        ],
    ),
    "Printer": (
        0.02,
        [("HP", "LaserJet Pro M404dn", 329, 1, "hp"), ("Xerox", "VersaLink C405", 899, 3, "xerox")],
    ),
    "Network gear": (
        0.03,
        [
            ("Cisco", "Catalyst 9200 48P", 4200, 5, "cisco"),
            ("Meraki", "MR46 access point", 899, 5, "cisco"),
        ],
    ),
    "HVAC unit": (0.01, [("Carrier", "WeatherMaker 48FC", 11500, 10, "carrier")]),
}

FUNDING = ("General Fund", "ESSER III", "Title I", "E-Rate", "2022 Technology Bond", "Title IV-A")
# label key -> share of assets (the rest are In Service)
STATUS_SHARE = (
    ("broken", 0.03),
    ("needs_tech_attention", 0.03),
    ("spare", 0.04),
    ("missing", 0.015),
    ("stolen", 0.003),
    ("retired", 0.01),
)
ALNUM = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
_TO_ALNUM = bytes(ord(ALNUM[b % len(ALNUM)]) for b in range(256))


def _serial(rng: random.Random, style: str) -> str:
    def pick(n: int) -> str:
        return rng.randbytes(n).translate(_TO_ALNUM).decode()

    return {
        "hp": "5CD" + pick(7),
        "dell": pick(7),
        "lenovo": "PF" + pick(6),
        "acer": "NXA" + pick(9),
        "apple": "C02" + pick(9),
        "epson": "X4" + pick(8),
        "prom": "AP9" + pick(9),
        "xerox": "3TB" + pick(6),
        "cisco": "FOC" + pick(8),
        "carrier": "2419" + pick(6),
    }.get(style, pick(10))


def _places(session: Session, rooms: Sequence[Room]) -> dict[uuid.UUID, tuple[uuid.UUID, Site]]:
    """room id -> (building id, site) for the given rooms."""
    building_ids = {r.building_id for r in rooms}
    buildings = {
        b.id: b for b in session.scalars(select(Building).where(Building.id.in_(building_ids)))
    }
    site_ids = {b.site_id for b in buildings.values()}
    sites = {s.id: s for s in session.scalars(select(Site).where(Site.id.in_(site_ids)))}
    return {r.id: (r.building_id, sites[buildings[r.building_id].site_id]) for r in rooms}


def _kind_of_room(room: Room) -> str:
    text = f"{room.number} {room.name or ''}".lower()
    if room.room_type in ("closet", "server_room") or "server" in text or text.startswith("it "):
        return "closet"
    if room.room_type in ("office",) or "office" in text or "board" in text:
        return "office"
    if room.room_type in ("library",) or "library" in text or "media" in text:
        return "library"
    if room.room_type in ("lab",) or "receiving" in text or "cage" in text:
        return "lab" if room.room_type == "lab" else "storage"
    if room.room_type == "classroom" or any(ch.isdigit() for ch in room.number):
        return "classroom"
    return "other"


# where each type of device lives, by kind of room (first choice wins when present)
HOMES = {
    "Chromebook": ("classroom", "library"),
    "Laptop": ("office", "classroom"),
    "Desktop": ("lab", "library", "office"),
    "Tablet": ("classroom",),
    "Projector": ("classroom",),
    "Interactive panel": ("classroom",),
    "Printer": ("office", "library"),
    "Network gear": ("closet", "storage", "office"),
    "HVAC unit": ("storage", "closet", "other"),
}


def _grade(site: Site, rng: random.Random) -> str:
    if site.site_type == "elementary_school":
        return rng.choice(["K", "1", "2", "3", "4", "5"])
    if site.site_type == "middle_school":
        return rng.choice(["6", "7", "8"])
    return rng.choice(["9", "10", "11", "12"])


def _positions(session: Session, org_id: uuid.UUID, count: int) -> Iterator[int]:
    """A block of ``count`` change positions from the organization's counter."""
    if count <= 0:
        return iter(())
    last = allocate_change_positions(session, org_id, count)
    return iter(range(last - count + 1, last + 1))


def _insert(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    """Core executemany on the table: every row has every column, so each batch is one
    statement (the ORM's bulk insert splits a batch wherever the set of None-valued
    columns changes from one row to the next, which here is almost every row)."""
    table = model.__table__
    for start in range(0, len(rows), BATCH):
        session.execute(table.insert(), rows[start : start + BATCH])


def seed_demo(
    session: Session,
    organization: Organization,
    rooms: Sequence[Room],
    users: Sequence[User],
    rng: random.Random,
    count: int = 3000,
    *,
    tag_prefix: str = "MPS",
    with_history: bool = True,
) -> int:
    """Add ``count`` demo assets (and the people they are assigned to) to
    ``organization``; returns how many assets were made. May be called again to add
    more: tags continue after the highest one with ``tag_prefix``. The session may be
    bound to the organization or to all tenants."""
    if count <= 0 or not rooms:
        return 0
    org_id = organization.id
    service.ensure_defaults(session, org_id)
    session.flush()
    types = {
        t.name: t.id
        for t in session.scalars(select(AssetType).where(AssetType.organization_id == org_id))
    }
    labels = {
        label.key: label
        for label in session.scalars(
            select(AssetStatusLabel).where(AssetStatusLabel.organization_id == org_id)
        )
        if label.key
    }
    default = service.default_label(session, org_id)
    places = _places(session, rooms)
    by_kind: dict[str, list[Room]] = {}
    for each in rooms:
        by_kind.setdefault(_kind_of_room(each), []).append(each)
    highest = session.scalar(
        select(func.max(Asset.asset_tag)).where(
            Asset.organization_id == org_id, Asset.asset_tag.like(f"{tag_prefix}-%")
        )
    )
    suffix = highest.rsplit("-", 1)[1] if highest else ""
    first_number = int(suffix) + 1 if suffix.isdigit() else 1
    now = utcnow()
    today = now.date()

    # ------------------------------------------------------------ people
    staff_people: list[dict[str, Any]] = []
    existing_staff = set(
        session.scalars(
            select(Person.user_id).where(
                Person.organization_id == org_id, Person.user_id.is_not(None)
            )
        )
    )
    for user in users:
        if (
            user.organization_id != org_id
            or user.id in existing_staff
            or user.role is Role.SUPER_ADMIN
        ):
            continue
        staff_people.append(
            dict(
                id=uuid7(),
                organization_id=org_id,
                kind="staff",
                name=user.full_name,
                external_id=None,
                email=user.email,
                site_id=user.site_id,
                grade=None,
                user_id=user.id,
                is_active=True,
                created_at=now,
                updated_at=now,
            )
        )

    type_names = [name for name in CATALOGUE if name in types]
    weights = [CATALOGUE[name][0] for name in type_names]
    chosen_types = rng.choices(type_names, weights=weights, k=count)
    chromebooks = sum(1 for t in chosen_types if t == "Chromebook")
    students: list[dict[str, Any]] = []
    student_rooms: list[Room] = []
    homerooms = by_kind.get("classroom") or list(rooms)
    existing_students = (
        session.scalar(
            select(func.count())
            .select_from(Person)
            .where(Person.organization_id == org_id, Person.kind == "student")
        )
        or 0
    )
    for n in range(int(chromebooks * 0.8)):
        homeroom = rng.choice(homerooms)
        site = places[homeroom.id][1]
        students.append(
            dict(
                id=uuid7(),
                organization_id=org_id,
                kind="student",
                name=f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                external_id=f"S{existing_students + n + 100001:07d}",
                email=None,
                site_id=site.id,
                grade=_grade(site, rng),
                user_id=None,
                is_active=True,
                created_at=now,
                updated_at=now,
            )
        )
        student_rooms.append(homeroom)
    people = staff_people + students
    for row, position in zip(people, _positions(session, org_id, len(people)), strict=True):
        row["change_position"] = position
        row["deleted_at"] = None
    _insert(session, Person, people)

    # ------------------------------------------------------------ assets
    status_for: list[AssetStatusLabel] = []
    for _ in range(count):
        roll, label = rng.random(), default
        for key, share in STATUS_SHARE:
            if roll < share and key in labels:
                label = labels[key]
                break
            roll -= share
        status_for.append(label)

    names = {row["id"]: row["name"] for row in people}
    assets: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    student_index = 0
    for i, type_name in enumerate(chosen_types):
        maker, model, cost, warranty_years, style = rng.choice(CATALOGUE[type_name][1])
        label = status_for[i]
        person_id = None
        room: Room | None = None
        handed_out = label.status_type == "deployable" and label.key != "spare"
        if type_name == "Chromebook" and handed_out and student_index < len(students):
            person_id = students[student_index]["id"]
            room = student_rooms[student_index]
            student_index += 1
        elif type_name == "Laptop" and handed_out and staff_people:
            person_id = rng.choice(staff_people)["id"]
        if room is None:
            homes = [k for k in HOMES.get(type_name, ("other",)) if by_kind.get(k)]
            room = rng.choice(by_kind[homes[0]] if homes else list(rooms))
        building_id, site = places[room.id]
        year = rng.randint(2018, max(2019, today.year - 1))
        purchased = date(year, rng.randint(1, 12), rng.randint(1, 28))
        warranty_end = purchased.replace(year=purchased.year + warranty_years)
        checked_out_at = None
        due_back = None
        if person_id is not None:
            start = max(purchased, today - timedelta(days=700))
            handed = start + timedelta(days=rng.randint(0, 60))
            checked_out_at = min(datetime.combine(handed, datetime.min.time(), UTC), now)
            due_back = date(today.year + (1 if today.month >= 6 else 0), 6, 15)
        tag = f"{tag_prefix}-{first_number + i:06d}"
        asset_id = uuid7()
        created = datetime.combine(purchased, datetime.min.time(), UTC)
        created += timedelta(hours=rng.randint(8, 16))
        police = None
        if label.requires_police_report:
            police = f"PD-{purchased.year % 100:02d}-{rng.randint(1000, 9999)}"
        assets.append(
            dict(
                id=asset_id,
                organization_id=org_id,
                asset_tag=tag,
                serial_number=_serial(rng, style),
                name=f"{maker} {model}",
                asset_type_id=types[type_name],
                manufacturer=maker,
                model=model,
                site_id=site.id,
                building_id=building_id,
                room_id=room.id,
                department_id=None,
                assigned_person_id=person_id,
                checked_out_at=checked_out_at,
                due_back=due_back,
                status_label_id=label.id,
                police_report_number=police,
                purchase_date=purchased,
                purchase_cost_cents=cost * 100 + rng.choice((0, 0, 50, 99)),
                funding_source=rng.choice(FUNDING),
                warranty_end=warranty_end,
                vendor_id=None,
                notes=None,
                custom_fields={},
                last_audited_at=None,
                created_at=created,
                updated_at=created,
            )
        )
        if with_history:
            events.append(
                dict(
                    id=uuid7(),
                    organization_id=org_id,
                    asset_id=asset_id,
                    actor_id=None,
                    kind="created",
                    ticket_id=None,
                    created_at=created,
                    data={
                        "assetTag": tag,
                        "source": "demo",
                        "status": {
                            "id": str(label.id),
                            "name": label.name,
                            "statusType": label.status_type,
                        },
                    },
                )
            )
            if person_id is not None and checked_out_at is not None:
                events.append(
                    dict(
                        id=uuid7(),
                        organization_id=org_id,
                        asset_id=asset_id,
                        actor_id=None,
                        kind="checked_out",
                        ticket_id=None,
                        created_at=checked_out_at,
                        data={
                            "personId": str(person_id),
                            "personName": names[person_id],
                            "dueBack": due_back.isoformat() if due_back else None,
                        },
                    )
                )
    for rows in (assets, events):
        for row, position in zip(rows, _positions(session, org_id, len(rows)), strict=True):
            row["change_position"] = position
            row.setdefault("deleted_at", None)
    _insert(session, Asset, assets)
    _insert(session, AssetEvent, events)
    return len(assets)
