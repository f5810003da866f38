"""The demo district: sites, buildings, rooms, departments and a user of every role."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.enums import Role
from server.auth.service import set_password
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

# (site name, code, type, [(building, code, floors, [room numbers])])
SITES = [
    (
        "Maplewood High School",
        "MHS",
        "high_school",
        [
            (
                "Main Building",
                "MAIN",
                3,
                ["101", "102", "104", "201", "204", "206", "301", "Library", "Gym"],
            ),
            ("Science Wing", "SCI", 2, ["S101", "S102", "S201", "S202"]),
        ],
    ),
    (
        "Lincoln Middle School",
        "LMS",
        "middle_school",
        [
            ("Main Building", "MAIN", 2, ["100", "110", "120", "200", "210", "Media Center"]),
        ],
    ),
    (
        "Oak Street Elementary",
        "OSE",
        "elementary_school",
        [
            ("Main Building", "MAIN", 1, ["K1", "K2", "1A", "1B", "2A", "2B", "Office"]),
            ("Portable Classrooms", "PORT", 1, ["P1", "P2"]),
        ],
    ),
    (
        "District Office",
        "DO",
        "office",
        [
            ("Administration", "ADMIN", 2, ["Board Room", "IT Office", "Server Room"]),
            ("Warehouse", "WH", 1, ["Receiving", "Parts Cage"]),
        ],
    ),
]

USERS = [
    (Role.ORG_ADMIN, "admin", "Dana", "Whitfield", "Technology", "Director of Technology"),
    (Role.AGENT, "agent", "Marcus", "Lee", "Technology", "Help Desk Lead"),
    (Role.TECHNICIAN, "tech", "Priya", "Raman", "Technology", "Field Technician"),
    (Role.TECHNICIAN, "tech2", "Jorge", "Alvarez", "Facilities", "Facilities Technician"),
    (Role.REQUESTER, "teacher", "Emily", "Carter", "Curriculum & Instruction", "Science Teacher"),
    (Role.REQUESTER, "principal", "Robert", "Nguyen", "Curriculum & Instruction", "Principal"),
]


def seed_demo(session: Session) -> tuple[Organization, list[DemoLogin]]:
    """Create the demo district when it is missing; the session must be bound to all tenants."""
    org = session.scalar(select(Organization).where(Organization.slug == DEMO_SLUG))
    domain = "maplewood.k12.example"
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
                for number in rooms:
                    session.add(
                        Room(
                            organization_id=org.id,
                            building_id=building.id,
                            number=number,
                            floor=number[0] if number[:1].isdigit() else None,
                            room_type="classroom"
                            if any(ch.isdigit() for ch in number)
                            else "other",
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
    return org, logins


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
