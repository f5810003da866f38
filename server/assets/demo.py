"""Demo assets: what a district's rooms hold, and who has a device, inserted in bulk.

``seed_demo`` furnishes every room for what it is (``kind_of_room``): a classroom
has a projector or an interactive panel, the teacher's laptop (checked out to the
teacher) or a desktop, often a document camera, now and then a printer, and in
some classrooms a cart of 20-30 student Chromebooks (iPads in the youngest
grades), which stay in the room, numbered by cart slot, checked out to no one;
labs have rows of desktops, libraries catalogue stations and a cart, offices the
office staff's devices and a copier, gyms a display and the PE teacher's laptop,
network closets and server rooms switches, access points and UPSes, mechanical
rooms the HVAC units, and storage rooms the loaners, spares and devices waiting
for repair. Staff are the people devices are checked out to, one or two each (a
laptop, and a phone for principals and technicians); students have none. What
``count`` asks for beyond what the rooms hold goes to the storage rooms (the
district depot first) as spare, broken and retired stock. With
``furnish=False`` (load tests) all ``count`` assets are such stock. Each asset gets a
``created`` (and ``checked_out``) history entry.

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
from dataclasses import dataclass, field
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
    # the two types the demo district adds to the defaults: planned, never bulk stock
    "Document camera": (
        0.0,
        [("IPEVO", "VZ-X document camera", 179, 2, "ipevo"), ("Elmo", "MX-P3", 649, 3, "elmo")],
    ),
    "Phone": (
        0.0,
        [
            ("Apple", "iPhone SE (3rd gen)", 429, 2, "apple"),
            ("Samsung", "Galaxy A35", 379, 2, "samsung"),
        ],
    ),
}
#: asset types the demo district adds to the defaults (as an admin would)
DEMO_TYPES = ("Document camera", "Phone")

Model = tuple[str, str, int, int, str]  # manufacturer, model, unit cost $, warranty years, serial
SWITCH: Model = ("Cisco", "Catalyst 9200 48P", 4200, 5, "cisco")
CORE_SWITCH: Model = ("Cisco", "Catalyst 9500 core switch", 14500, 5, "cisco")
ACCESS_POINT: Model = ("Meraki", "MR46 access point", 899, 5, "cisco")
UPS: Model = ("APC", "Smart-UPS 1500 rack", 749, 3, "apc")
FIREWALL: Model = ("Fortinet", "FortiGate 200F", 6900, 5, "forti")
SERVER: Model = ("Dell", "PowerEdge R650 server", 7800, 5, "dell")
MFP: Model = ("Xerox", "VersaLink C405", 899, 3, "xerox")

FUNDING = ("General Fund", "ESSER III", "Title I", "E-Rate", "2022 Technology Bond", "Title IV-A")
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
        "apc": "AS" + pick(10),
        "forti": "FG2HF" + pick(8),
        "ipevo": "VZX" + pick(7),
        "elmo": "MXP" + pick(7),
        "samsung": "R5C" + pick(8),
    }.get(style, pick(10))


def _places(session: Session, rooms: Sequence[Room]) -> dict[uuid.UUID, tuple[Building, Site]]:
    """room id -> (building, site) for the given rooms."""
    building_ids = {r.building_id for r in rooms}
    buildings = {
        b.id: b for b in session.scalars(select(Building).where(Building.id.in_(building_ids)))
    }
    site_ids = {b.site_id for b in buildings.values()}
    sites = {s.id: s for s in session.scalars(select(Site).where(Site.id.in_(site_ids)))}
    return {
        r.id: (buildings[r.building_id], sites[buildings[r.building_id].site_id]) for r in rooms
    }


#: room types that say what a room is (``classroom`` and ``other`` are also what a
#: room gets when nobody said, so for those the number and name decide)
_TYPED_KINDS = {
    "closet": "closet",
    "server_room": "server_room",
    "office": "office",
    "library": "library",
    "lab": "lab",
    "gym": "gym",
    "storage": "storage",
}
_NAMED_KINDS = (
    (("server", "data center"), "server_room"),
    (("closet", "idf", "mdf"), "closet"),
    (("storage", "depot", "receiving", "cage", "warehouse"), "storage"),
    (("mechanical", "boiler"), "mechanical"),
    (("office",), "office"),
    (("library", "media"), "library"),
    (("gym", "multipurpose"), "gym"),
    (("lab",), "lab"),
)


def kind_of_room(room: Room) -> str:
    """What a room is, for what it holds: classroom, lab, library, office, gym,
    closet, server_room, mechanical, storage or other."""
    if room.room_type in _TYPED_KINDS:
        return _TYPED_KINDS[room.room_type]
    text = f"{room.number} {room.name or ''}".lower()
    if text.startswith("it ") and room.room_type != "office":
        return "closet"  # a room numbered "IT" is the network closet
    for words, kind in _NAMED_KINDS:
        if any(word in text for word in words):
            return kind
    return "classroom" if room.room_type == "classroom" else "other"


#: label keys of a device in use somewhere (the rest is In Service)
IN_ROOM_STATUS = (("broken", 0.025), ("needs_tech_attention", 0.03))
#: ... and of one that can walk off
PORTABLE_STATUS = (*IN_ROOM_STATUS, ("missing", 0.012), ("stolen", 0.003))
#: label keys of stock in a storage room
STOCK_STATUS = (("spare", 0.45), ("retired", 0.30), ("broken", 0.15), ("needs_tech_attention", 0.1))
PORTABLE = {"Chromebook", "Laptop", "Tablet", "Document camera", "Phone"}
#: share of classrooms with a cart of student devices, by site type
CART_SHARE = {"elementary_school": 0.6, "middle_school": 0.55, "high_school": 0.4}
#: share of classrooms with an interactive panel (the rest have a projector)
PANEL_SHARE = {"elementary_school": 0.65, "middle_school": 0.55, "high_school": 0.45}


@dataclass
class _Item:
    type_name: str
    room: Room
    model: Model | None = None
    status: str | None = None  # a label key; None: the in-room mix
    person_id: uuid.UUID | None = None
    custom: dict[str, Any] = field(default_factory=dict)
    purchased: date | None = None


@dataclass
class _Plan:
    """What the rooms hold and who the staff are, before any row is written."""

    rng: random.Random
    org_id: uuid.UUID
    places: dict[uuid.UUID, tuple[Building, Site]]
    now: datetime
    items: list[_Item] = field(default_factory=list)
    people: list[dict[str, Any]] = field(default_factory=list)
    taken_names: set[str] = field(default_factory=set)

    def add(self, type_name: str, room: Room, n: int = 1, **kw: Any) -> None:
        for _ in range(n):
            self.items.append(_Item(type_name, room, **kw))

    def person(self, room: Room, user: User | None = None) -> uuid.UUID:
        """A staff member at the room's site (the user's own record when given)."""
        if user is not None:
            name = user.full_name
        else:
            for _ in range(20):  # distinct names while there are plenty left
                name = f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}"
                if name not in self.taken_names:
                    break
        self.taken_names.add(name)
        person_id = uuid7()
        row = dict(
            id=person_id,
            organization_id=self.org_id,
            kind="staff",
            name=name,
            external_id=None,
            email=user.email if user is not None else None,
            site_id=user.site_id if user is not None else self.places[room.id][1].id,
            grade=None,
            user_id=user.id if user is not None else None,
            is_active=True,
            created_at=self.now,
            updated_at=self.now,
        )
        self.people.append(row)
        return person_id

    def display(self, room: Room) -> None:
        site = self.places[room.id][1]
        panel = self.rng.random() < PANEL_SHARE.get(site.site_type, 0.5)
        self.add("Interactive panel" if panel else "Projector", room)

    def cart(self, room: Room, type_name: str = "Chromebook") -> None:
        """A cart of student devices bought together: one model, one date, slots."""
        site = self.places[room.id][1]
        model = self.rng.choice(CATALOGUE[type_name][1])
        bought = date(self.rng.randint(2019, self.now.year - 1), self.rng.choice((6, 7, 8)), 1)
        label = f"{site.code or site.name} {room.number} cart"
        for slot in range(1, self.rng.randint(20, 30) + 1):
            self.add(type_name, room, model=model, purchased=bought,
                     custom={"cart": label, "cartSlot": slot})  # fmt: skip

    def staff_device(self, room: Room, person_id: uuid.UUID, type_name: str) -> None:
        self.add(type_name, room, person_id=person_id, status="in_service")


def _plan_rooms(plan: _Plan, rooms: Sequence[Room], users: Sequence[User]) -> None:
    """Furnish every room for what it is; the users get their own devices."""
    rng = plan.rng
    by_kind: dict[str, list[Room]] = {}
    for room in rooms:
        by_kind.setdefault(kind_of_room(room), []).append(room)

    def site_of(room: Room) -> Site:
        return plan.places[room.id][1]

    # The users first: a teacher has a classroom, a principal the site's office,
    # the technology staff the IT office.
    teacher_of: dict[uuid.UUID, User] = {}
    principal_at: set[uuid.UUID] = set()
    offices = by_kind.get("office", [])
    it_office = next(
        (r for r in offices if f"{r.number} {r.name or ''}".lower().startswith("it ")),
        offices[0] if offices else None,
    )
    for user in users:
        if user.organization_id != plan.org_id or user.role is Role.SUPER_ADMIN:
            continue
        title = (user.job_title or "").lower()
        if "teacher" in title:
            free = [r for r in by_kind.get("classroom", []) if r.id not in teacher_of]
            here = [r for r in free if site_of(r).id == user.site_id] or free
            if here:
                teacher_of[here[0].id] = user
                continue
        home = None
        if "principal" in title:
            home = next((r for r in offices if site_of(r).id == user.site_id), None)
            if home is not None:
                principal_at.add(home.id)
        if home is None and user.role is not Role.REQUESTER:
            home = it_office
        if home is None:
            home = next((r for r in offices if site_of(r).id == user.site_id), None)
        home = home or rooms[0]
        person = plan.person(home, user)
        plan.staff_device(home, person, "Laptop")
        if "principal" in title or user.role in (Role.TECHNICIAN, Role.ORG_ADMIN):
            plan.staff_device(home, person, "Phone")

    for room in rooms:
        kind = kind_of_room(room)
        site = site_of(room)
        school = site.site_type.endswith("school")
        if kind == "classroom":
            plan.display(room)
            teacher = teacher_of.get(room.id)
            if teacher is not None or rng.random() < 0.8:
                plan.staff_device(room, plan.person(room, teacher), "Laptop")
            else:
                plan.add("Desktop", room)
            if rng.random() < (0.7 if site.site_type == "elementary_school" else 0.5):
                plan.add("Document camera", room)
            if rng.random() < 0.12:
                plan.add("Printer", room)
            if rng.random() < CART_SHARE.get(site.site_type, 0.5):
                young = site.site_type == "elementary_school" and room.number[:1] in ("K", "1")
                plan.cart(room, "Tablet" if young else "Chromebook")
        elif kind == "lab":
            plan.display(room)
            plan.add("Desktop", room, rng.randint(24, 30) + 1)  # the students' and the teacher's
            plan.add("Printer", room)
        elif kind == "library":
            plan.display(room)
            plan.staff_device(room, plan.person(room), "Laptop")
            plan.add("Desktop", room, rng.randint(4, 8))
            plan.add("Printer", room)
            plan.add("Document camera", room)
            if site.site_type != "elementary_school" or rng.random() < 0.5:
                plan.cart(room)
        elif kind == "gym":
            plan.add("Projector", room)
            plan.staff_device(room, plan.person(room), "Laptop")
            if rng.random() < 0.5:
                plan.add("Tablet", room)
        elif kind == "office":
            if school and room.id not in principal_at:
                principal = plan.person(room)
                plan.staff_device(room, principal, "Laptop")
                plan.staff_device(room, principal, "Phone")
            if school:
                plan.staff_device(room, plan.person(room), "Laptop")  # assistant principal
                plan.add("Desktop", room, 2)  # the front desk
            elif room is not it_office:
                for _ in range(rng.randint(2, 3)):
                    plan.staff_device(room, plan.person(room), "Laptop")
                plan.add("Desktop", room)
            else:
                plan.add("Desktop", room, 2)
            plan.add("Printer", room, model=MFP)
        elif kind == "closet":
            plan.add("Network gear", room, rng.randint(1, 3), model=SWITCH)
            plan.add("Network gear", room, rng.randint(2, 6), model=ACCESS_POINT)
            plan.add("Network gear", room, model=UPS)
        elif kind == "server_room":
            plan.add("Network gear", room, rng.randint(1, 2), model=CORE_SWITCH)
            plan.add("Network gear", room, rng.randint(2, 4), model=SWITCH)
            plan.add("Network gear", room, 2, model=UPS)
            if not school:
                plan.add("Network gear", room, model=FIREWALL)
                plan.add("Other", room, rng.randint(2, 4), model=SERVER)
        elif kind == "mechanical":
            plan.add("HVAC unit", room, rng.randint(2, 4))
        elif kind == "storage":
            if school:
                loaners = {"pool": "loaner"}
                plan.add("Chromebook", room, rng.randint(10, 20), status="spare", custom=loaners)
                plan.add("Laptop", room, rng.randint(2, 4), status="spare", custom=loaners)
                plan.add("Projector", room, rng.randint(1, 2), status="spare")
                for _ in range(rng.randint(4, 12)):
                    repair = rng.choice(("broken", "needs_tech_attention"))
                    plan.add("Chromebook", room, status=repair)
            elif "receiving" in f"{room.number} {room.name or ''}".lower():
                model = rng.choice(CATALOGUE["Chromebook"][1])
                plan.add("Chromebook", room, rng.randint(20, 40), model=model, status="spare",
                         custom={"pool": "new stock"})  # fmt: skip
            elif "depot" not in f"{room.number} {room.name or ''}".lower():
                for type_name in ("Projector", "Interactive panel", "Printer", "Phone"):
                    plan.add(type_name, room, rng.randint(1, 3), status="spare")
                plan.add("Network gear", room, rng.randint(2, 4), model=ACCESS_POINT,
                         status="spare")  # fmt: skip
        elif kind == "other":
            plan.add("Interactive panel", room)
            plan.add("Desktop", room)
            plan.add("Document camera", room)


def _plan_stock(plan: _Plan, rooms: Sequence[Room], type_names: Sequence[str], count: int) -> None:
    """``count`` more devices as stock: in the depot, else the storage rooms, else
    anywhere (a district without storage rooms)."""
    if count <= 0:
        return
    storage = [r for r in rooms if kind_of_room(r) == "storage"]
    depot = [r for r in storage if "depot" in f"{r.number} {r.name or ''}".lower()]
    where = depot or storage or list(rooms)
    weights = [CATALOGUE[name][0] for name in type_names]
    keys = [key for key, _ in STOCK_STATUS]
    shares = [share for _, share in STOCK_STATUS]
    for type_name in plan.rng.choices(type_names, weights=weights, k=count):
        room = where[plan.rng.randrange(len(where))]
        plan.add(type_name, room, status=plan.rng.choices(keys, weights=shares)[0])


def _status_key(rng: random.Random, item: _Item) -> str | None:
    if item.status is not None:
        return item.status
    roll = rng.random()
    for key, share in PORTABLE_STATUS if item.type_name in PORTABLE else IN_ROOM_STATUS:
        if roll < share:
            return key
        roll -= share
    return None


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


def _ensure_demo_types(session: Session, org_id: uuid.UUID) -> dict[str, uuid.UUID]:
    """The organization's types by name, with the demo's own added when missing."""
    types = {
        t.name: t
        for t in session.scalars(select(AssetType).where(AssetType.organization_id == org_id))
    }
    order = max((t.sort_order for t in types.values()), default=0)
    for name in DEMO_TYPES:
        if name not in types:
            order += 10
            types[name] = AssetType(organization_id=org_id, name=name, sort_order=order)
            session.add(types[name])
    session.flush()
    return {name: t.id for name, t in types.items()}


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
    furnish: bool = True,
) -> int:
    """Add ``count`` demo assets to ``organization``: with ``furnish`` (once per
    district), what its rooms hold and the staff they are checked out to, topped up
    (or cut) to ``count`` with stock in its storage rooms; without, ``count`` assets of
    stock (load tests). Returns how many assets were made. Tags continue after the
    highest one with ``tag_prefix``. The session may be bound to the organization
    or to all tenants."""
    if count <= 0 or not rooms:
        return 0
    org_id = organization.id
    service.ensure_defaults(session, org_id)
    session.flush()
    types = _ensure_demo_types(session, org_id)
    labels = {
        label.key: label
        for label in session.scalars(
            select(AssetStatusLabel).where(AssetStatusLabel.organization_id == org_id)
        )
        if label.key
    }
    default = service.default_label(session, org_id)
    places = _places(session, rooms)
    # one order whatever order the rooms came in, so a seed gives the same district
    rooms = sorted(
        rooms, key=lambda r: (places[r.id][1].name, places[r.id][0].name, r.number, str(r.id))
    )
    highest = session.scalar(
        select(func.max(Asset.asset_tag)).where(
            Asset.organization_id == org_id, Asset.asset_tag.like(f"{tag_prefix}-%")
        )
    )
    suffix = highest.rsplit("-", 1)[1] if highest else ""
    first_number = int(suffix) + 1 if suffix.isdigit() else 1
    now = utcnow()
    today = now.date()

    plan = _Plan(rng, org_id, places, now)
    if furnish:
        has_person = set(
            session.scalars(
                select(Person.user_id).where(
                    Person.organization_id == org_id, Person.user_id.is_not(None)
                )
            )
        )
        _plan_rooms(plan, rooms, [u for u in users if u.id not in has_person])
        del plan.items[count:]
        wanted = {item.person_id for item in plan.items}
        plan.people = [row for row in plan.people if row["id"] in wanted]
    stock_types = [name for name in CATALOGUE if name in types and CATALOGUE[name][0] > 0]
    _plan_stock(plan, rooms, stock_types, count - len(plan.items))

    people = plan.people
    for row, position in zip(people, _positions(session, org_id, len(people)), strict=True):
        row["change_position"] = position
        row["deleted_at"] = None
    _insert(session, Person, people)

    names = {row["id"]: row["name"] for row in people}
    assets: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for i, item in enumerate(plan.items):
        maker, model, cost, warranty_years, style = item.model or rng.choice(
            CATALOGUE[item.type_name][1]
        )
        key = _status_key(rng, item)
        label = labels.get(key, default) if key else default
        person_id = item.person_id if label.status_type == "deployable" else None
        room = item.room
        building, site = places[room.id]
        purchased = item.purchased
        if purchased is None:
            year = rng.randint(2018, max(2019, today.year - 1))
            purchased = date(year, rng.randint(1, 12), rng.randint(1, 28))
        warranty_end = purchased.replace(year=purchased.year + warranty_years)
        checked_out_at = None
        if person_id is not None:
            start = max(purchased, today - timedelta(days=700))
            handed = start + timedelta(days=rng.randint(0, 60))
            checked_out_at = min(datetime.combine(handed, datetime.min.time(), UTC), now)
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
                asset_type_id=types[item.type_name],
                manufacturer=maker,
                model=model,
                site_id=site.id,
                building_id=building.id,
                room_id=room.id,
                department_id=None,
                assigned_person_id=person_id,
                checked_out_at=checked_out_at,
                due_back=None,
                status_label_id=label.id,
                police_report_number=police,
                purchase_date=purchased,
                purchase_cost_cents=cost * 100 + rng.choice((0, 0, 50, 99)),
                funding_source=rng.choice(FUNDING),
                warranty_end=warranty_end,
                vendor_id=None,
                notes=None,
                custom_fields=item.custom,
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
                            "dueBack": None,
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
