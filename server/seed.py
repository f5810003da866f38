"""The demo district: sites, buildings, rooms, departments and a user of every role."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.enums import Role
from server.auth.service import set_password
from server.core.engine import Database
from server.organizations.models import Department, Organization, OrganizationDomain
from server.sites.models import Building, Room, Site
from server.users.models import User

DEMO_SLUG = "maplewood"
DEMO_PASSWORD = "Resolve-demo-2026"


@dataclass(frozen=True)
class DemoLogin:
    role: str
    email: str
    password: str


DEPARTMENTS = [
    ("Technology", "TECH"),
    ("Facilities", "FAC"),
    ("Transportation", "TRANS"),
    ("Food Services", "FOOD"),
    ("Curriculum & Instruction", "CI"),
    ("Human Resources", "HR"),
]

#: a room: (number, room type, name)
RoomSpec = tuple[str, str, str | None]


def _classrooms(*numbers: str) -> list[RoomSpec]:
    return [(number, "classroom", None) for number in numbers]


def _run(first: int, last: int, prefix: str = "") -> list[str]:
    return [f"{prefix}{n}" for n in range(first, last + 1)]


# (site name, code, type, [(building, code, floors, [rooms])]): four campuses of a
# small district, each with classrooms, a lab, a library, a gym, an office, network
# closets, a mechanical room and a technology storage room; the district office has
# the server room and, in the warehouse, the device depot.
SITES: list[tuple[str, str, str, list[tuple[str, str, int, list[RoomSpec]]]]] = [
    (
        "Maplewood High School",
        "MHS",
        "high_school",
        [
            (
                "Main Building",
                "MAIN",
                3,
                [
                    *_classrooms(*_run(101, 112), *_run(201, 212), *_run(301, 310)),
                    ("115", "lab", "Computer Lab A"),
                    ("215", "lab", "Business Lab"),
                    ("Library", "library", "Library"),
                    ("Gym", "gym", "Gymnasium"),
                    ("Main Office", "office", "Main office"),
                    ("MDF", "server_room", "Main distribution frame"),
                    ("IDF-2", "closet", "Network closet, 2nd floor"),
                    ("IDF-3", "closet", "Network closet, 3rd floor"),
                    ("Mechanical", "other", "Mechanical room"),
                    ("Tech Storage", "storage", "Technology storage"),
                ],
            ),
            (
                "Science Wing",
                "SCI",
                2,
                [
                    *_classrooms(*_run(101, 106, "S"), *_run(201, 206, "S")),
                    ("S-IDF", "closet", "Science Wing network closet"),
                ],
            ),
        ],
    ),
    (
        "Lincoln Middle School",
        "LMS",
        "middle_school",
        [
            (
                "Main Building",
                "MAIN",
                2,
                [
                    *_classrooms(*_run(101, 114), *_run(201, 214)),
                    ("130", "lab", "Computer Lab"),
                    ("Media Center", "library", "Media Center"),
                    ("Gym", "gym", "Gymnasium"),
                    ("Main Office", "office", "Main office"),
                    ("MDF", "server_room", "Main distribution frame"),
                    ("IDF-2", "closet", "Network closet, 2nd floor"),
                    ("Mechanical", "other", "Mechanical room"),
                    ("Tech Storage", "storage", "Technology storage"),
                ],
            ),
        ],
    ),
    (
        "Oak Street Elementary",
        "OSE",
        "elementary_school",
        [
            (
                "Main Building",
                "MAIN",
                1,
                [
                    *_classrooms("K1", "K2", "K3", "1A", "1B", "1C", "2A", "2B", "2C"),
                    *_classrooms("3A", "3B", "4A", "4B", "5A", "5B"),
                    ("Computer Lab", "lab", "Computer Lab"),
                    ("Library", "library", "Library"),
                    ("Multipurpose Room", "gym", "Multipurpose room"),
                    ("Office", "office", "Front office"),
                    ("MDF", "server_room", "Main distribution frame"),
                    ("Mechanical", "other", "Mechanical room"),
                    ("Tech Storage", "storage", "Technology storage"),
                ],
            ),
            ("Portable Classrooms", "PORT", 1, _classrooms("P1", "P2", "P3")),
        ],
    ),
    (
        "District Office",
        "DO",
        "office",
        [
            (
                "Administration",
                "ADMIN",
                2,
                [
                    ("Board Room", "other", "Board room"),
                    ("IT Office", "office", "Technology department"),
                    ("Business Office", "office", "Business office"),
                    ("HR Office", "office", "Human resources"),
                    ("Superintendent", "office", "Superintendent's office"),
                    ("Server Room", "server_room", "District data center"),
                ],
            ),
            (
                "Warehouse",
                "WH",
                1,
                [
                    ("Receiving", "storage", "Receiving dock"),
                    ("Parts Cage", "storage", "Parts cage"),
                    ("Device Depot", "storage", "Device depot: spares, repairs, retired"),
                ],
            ),
        ],
    ),
]
CAPACITY = {"classroom": 30, "lab": 32, "library": 60, "gym": 300, "office": 8}


def _floor(number: str, floors: int) -> str | None:
    """The floor a room number names (``S201`` and ``201`` are on floor 2)."""
    digits = number.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    if len(digits) == 3 and digits.isdigit():
        return digits[0]
    return "1" if floors == 1 else None


USERS = [
    (Role.ORG_ADMIN, "admin", "Dana", "Whitfield", "Technology", "Director of Technology"),
    (Role.AGENT, "agent", "Marcus", "Lee", "Technology", "Help Desk Lead"),
    (Role.TECHNICIAN, "tech", "Priya", "Raman", "Technology", "Field Technician"),
    (Role.TECHNICIAN, "tech2", "Jorge", "Alvarez", "Facilities", "Facilities Technician"),
    (Role.REQUESTER, "teacher", "Emily", "Carter", "Curriculum & Instruction", "Science Teacher"),
    (Role.REQUESTER, "principal", "Robert", "Nguyen", "Curriculum & Instruction", "Principal"),
]


def seed_demo(session: Session) -> tuple[Organization, list[DemoLogin], bool]:
    """Create the demo district when it is missing (the session must be bound to all
    tenants); says whether it was made now, so its data is added only once."""
    org = session.scalar(select(Organization).where(Organization.slug == DEMO_SLUG))
    domain = "maplewood.k12.example"
    created = org is None
    if org is None:
        org = Organization(
            name="Maplewood Unified School District",
            slug=DEMO_SLUG,
            contact_email=f"it@{domain}",
            phone="+1 555 0100",
            address="100 District Way, Maplewood",
            timezone="America/Chicago",
            website="https://maplewood.k12.example",
            branding={"primaryColor": "#1F5C99", "accentColor": "#F2A900"},
            settings={},
            domain_rows=[OrganizationDomain(domain=domain)],
        )
        session.add(org)
        session.flush()
        departments = {}
        for name, code in DEPARTMENTS:
            dept = Department(organization_id=org.id, name=name, code=code)
            session.add(dept)
            departments[name] = dept
        sites = []
        for site_name, code, kind, buildings in SITES:
            site = Site(organization_id=org.id, name=site_name, code=code, site_type=kind)
            session.add(site)
            session.flush()
            sites.append(site)
            for b_name, b_code, floors, rooms in buildings:
                building = Building(
                    organization_id=org.id, site_id=site.id, name=b_name, code=b_code, floors=floors
                )
                session.add(building)
                session.flush()
                for number, room_type, room_name in rooms:
                    session.add(
                        Room(
                            organization_id=org.id,
                            building_id=building.id,
                            number=number,
                            name=room_name,
                            floor=_floor(number, floors),
                            room_type=room_type,
                            capacity=CAPACITY.get(room_type),
                        )
                    )
        session.flush()
        # one hash for the shared demo password: argon2 is slow on purpose
        template = User(email="template@example.invalid", role=Role.REQUESTER)
        set_password(template, DEMO_PASSWORD)
        for role, local, first, last, dept_name, title in USERS:
            user = User(
                organization_id=org.id,
                email=f"{local}@{domain}",
                first_name=first,
                last_name=last,
                role=role,
                department_id=departments[dept_name].id,
                site_id=sites[0].id,
                job_title=title,
            )
            user.password_hash = template.password_hash
            user.password_changed_at = template.password_changed_at
            session.add(user)
        session.flush()
    logins = [
        DemoLogin(role.value, f"{local}@{domain}", DEMO_PASSWORD) for role, local, *_ in USERS
    ]
    return org, logins, created


def ensure_super_admin(session: Session, email: str, password: str) -> User:
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(
            organization_id=None,
            email=email,
            first_name="Platform",
            last_name="Operator",
            role=Role.SUPER_ADMIN,
        )
        set_password(user, password)
        session.add(user)
        session.flush()
    return user


def populate_demo(db: Database, organization_id: uuid.UUID, *, demo_tickets: int = 300,
                  rng_seed: int = 2026) -> dict[str, int]:  # fmt: skip
    """Fill a freshly made demo district, one domain per transaction, each bound to
    the organization as a request would be: teams and routing, the school calendar
    and SLA rules, assets, inventory, vendors and orders, then tickets (which the
    routing and SLA rules shape)."""
    from server.assets import demo as assets_demo
    from server.inventory import demo as inventory_demo
    from server.inventory import procurement_demo
    from server.routing import demo as routing_demo
    from server.sla import demo as sla_demo
    from server.tickets import demo as tickets_demo

    rng = random.Random(rng_seed)
    made: dict[str, int] = {}

    def org(session: Session) -> Organization:
        found = session.get(Organization, organization_id)
        assert found is not None
        return found

    def users(session: Session) -> list[User]:
        return list(session.scalars(select(User).where(User.deleted_at.is_(None))))

    with db.transaction(tenant=organization_id) as session:
        made["teams"] = len(routing_demo.seed_demo(session, org(session)))
        sla_demo.seed_demo(session, org(session))
    with db.transaction(tenant=organization_id) as session:
        rooms = list(session.scalars(select(Room)))
        made["assets"] = assets_demo.seed_demo(session, org(session), rooms, users(session), rng)
    with db.transaction(tenant=organization_id) as session:
        people = users(session)
        technicians = [u for u in people if u.role is Role.TECHNICIAN]
        owner = next((u for u in people if u.role is Role.AGENT), None)
        inventory = inventory_demo.seed_demo(
            session,
            organization=org(session),
            buildings=list(session.scalars(select(Building).order_by(Building.name))),
            sites=list(session.scalars(select(Site))),
            technicians=technicians,
            rng=rng,
            departments={d.name: d for d in session.scalars(select(Department))},
            owner=owner,
        )
        made["parts"] = len(inventory.parts)
        locations = [
            loc for loc in [inventory.warehouse, *inventory.closets, *inventory.vans] if loc
        ]
        procurement_demo.seed_demo(session, org(session), inventory.parts, locations, people, rng)
    with db.transaction(tenant=organization_id) as session:
        made["tickets"] = tickets_demo.seed_demo(session, organization_id, rng, count=demo_tickets)
    return made


def generate_load(db: Database, organization_id: uuid.UUID, *, tickets: int = 0, assets: int = 0,
                  rng_seed: int = 7) -> None:  # fmt: skip
    """Bulk-add ``tickets`` and ``assets`` for load tests, in batches of their own
    transactions so a million rows do not sit in one. The assets are stock in the
    storage rooms (the rooms are furnished once, by ``populate_demo``)."""
    from server.assets import demo as assets_demo
    from server.tickets import demo as tickets_demo

    rng = random.Random(rng_seed)
    batch = 50_000
    done = 0
    while done < tickets:
        with db.transaction(tenant=organization_id) as session:
            done += tickets_demo.generate(session, organization_id, min(batch, tickets - done), rng)
    if assets:
        with db.transaction(tenant=organization_id) as session:
            found = session.get(Organization, organization_id)
            assert found is not None
            rooms = list(session.scalars(select(Room)))
            users = list(session.scalars(select(User).where(User.deleted_at.is_(None))))
            assets_demo.seed_demo(
                session, found, rooms, users, rng, assets, with_history=False, furnish=False
            )
