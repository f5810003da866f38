"""Demo and load-test tickets.

``seed_demo`` makes a few hundred realistic tickets through the ticket services, so
each has the history, notifications, SLA deadlines and routing a real one would,
then moves its clock back so the queue looks like a term's worth of work.
``generate`` bulk-inserts any number of plain tickets for load testing.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from common.enums import Role
from common.ids import uuid7
from common.tickets import Priority, TicketType
from common.workflow import TicketStatus, category
from server.core.db import utcnow
from server.core.tenancy import Caller, allocate_change_positions
from server.sites.models import Building, Room
from server.tickets import service
from server.tickets.models import Ticket, TicketComment, TicketEvent, TicketSequence
from server.tickets.schemas import TicketCreate
from server.users.models import User

# (title, description, type, category, subcategory, needs a room)
PROBLEMS: list[tuple[str, str, TicketType, str, str, bool]] = [
    ("Projector shows no picture in room {room}", "The lamp light is on but the screen stays blue.",
     TicketType.INCIDENT, "Audio/Visual", "Projector", True),
    ("Interactive panel touch not working in {room}", "Pens and fingers do nothing since Monday.",
     TicketType.INCIDENT, "Audio/Visual", "Interactive panel", True),
    ("Chromebook will not charge", "Student device, charging light never comes on.",
     TicketType.INCIDENT, "Devices", "Chromebook", False),
    ("Cracked Chromebook screen", "Dropped in the hallway; the display is cracked.",
     TicketType.INCIDENT, "Devices", "Chromebook", False),
    ("Wi-Fi keeps dropping in {room}", "Students lose the connection every few minutes.",
     TicketType.INCIDENT, "Network", "Wireless", True),
    ("Printer jammed in {room}", "Paper jam error that will not clear.",
     TicketType.INCIDENT, "Printing", "Copier", True),
    ("Heater blowing cold air in {room}", "It is 61°F in the classroom this morning.",
     TicketType.INCIDENT, "Facilities", "HVAC", True),
    ("Ceiling tile leaking in {room}", "Water dripping near the windows after the rain.",
     TicketType.INCIDENT, "Facilities", "Building", True),
    ("Door badge reader offline at {building}", "Staff cannot badge in at the east entrance.",
     TicketType.INCIDENT, "Security", "Access control", False),
    ("Document camera not detected", "The laptop does not see the document camera.",
     TicketType.INCIDENT, "Audio/Visual", "Document camera", True),
    ("Substitute teacher needs an account", "Long-term sub starting next week.",
     TicketType.SERVICE_REQUEST, "Accounts", "New account", False),
    ("Install Google Earth on the lab computers", "For the geography unit in room {room}.",
     TicketType.SERVICE_REQUEST, "Software", "Install", True),
    ("Password reset for the gradebook", "Locked out after the password change.",
     TicketType.SERVICE_REQUEST, "Accounts", "Password", False),
    ("New classroom phone extension", "Room {room} needs a phone for the new teacher.",
     TicketType.SERVICE_REQUEST, "Telephony", "Phone", True),
    ("Recurring Wi-Fi outages at {building}", "Several incidents this month; find the cause.",
     TicketType.PROBLEM, "Network", "Wireless", False),
    ("Replace core switch in the server room", "Planned change over the weekend.",
     TicketType.CHANGE, "Network", "Switching", False),
    ("Bus radio not working", "Driver reports static on route 12.",
     TicketType.GENERAL, "Transportation", "Radio", False),
]  # fmt: skip

#: where each subcategory's problem happens: the kinds of room it fits (see
#: ``server.assets.demo.kind_of_room``; empty: any room), and the type (and a word of
#: the name) of the device in that room the ticket is about, linked to it
WHERE: dict[str, tuple[tuple[str, ...], str | None, str]] = {
    "Projector": (("classroom", "lab", "library", "gym"), "Projector", ""),
    "Interactive panel": (("classroom", "lab", "library", "other"), "Interactive panel", ""),
    "Chromebook": (("classroom", "library"), "Chromebook", ""),
    "Wireless": (("classroom", "lab", "library", "gym"), None, ""),
    "Copier": (("classroom", "lab", "library", "office"), "Printer", ""),
    "HVAC": (("classroom", "lab", "library", "gym", "office"), None, ""),
    "Building": (("classroom", "lab", "library", "gym", "office"), None, ""),
    "Document camera": (("classroom", "library", "other"), "Document camera", ""),
    "Install": (("lab",), None, ""),
    "Phone": (("classroom",), None, ""),
    "Switching": (("server_room",), "Network gear", "core"),
    "New account": (("classroom", "office"), None, ""),
    "Password": (("classroom", "office"), None, ""),
}

COMMENTS = [
    "I will stop by during my planning period.",
    "Can you tell me which input the projector is set to?",
    "Ordered a replacement part; it should arrive Thursday.",
    "Tried a different cable, same result.",
    "Thanks, it works now!",
    "Still happening this morning.",
]
NOTES = [
    "Same model failed in two other rooms this month - check the warranty.",
    "Vendor RMA opened.",
    "Needs a lift; facilities has one on Tuesdays.",
    "Spare in the closet, swapped it temporarily.",
]

#: the path a ticket takes through the workflow to end in each status
PATHS: dict[TicketStatus, list[TicketStatus]] = {
    TicketStatus.NEW: [],
    TicketStatus.OPEN: [TicketStatus.OPEN],
    TicketStatus.ASSIGNED: [],
    TicketStatus.IN_PROGRESS: [TicketStatus.IN_PROGRESS],
    TicketStatus.ON_HOLD: [TicketStatus.IN_PROGRESS, TicketStatus.ON_HOLD],
    TicketStatus.WAITING_ON_REQUESTER: [
        TicketStatus.IN_PROGRESS,
        TicketStatus.WAITING_ON_REQUESTER,
    ],
    TicketStatus.RESOLVED: [TicketStatus.IN_PROGRESS, TicketStatus.RESOLVED],
    TicketStatus.CLOSED: [TicketStatus.IN_PROGRESS, TicketStatus.RESOLVED, TicketStatus.CLOSED],
    TicketStatus.CANCELLED: [TicketStatus.CANCELLED],
}
WEIGHTS = {
    TicketStatus.NEW: 6,
    TicketStatus.OPEN: 4,
    TicketStatus.ASSIGNED: 8,
    TicketStatus.IN_PROGRESS: 10,
    TicketStatus.ON_HOLD: 4,
    TicketStatus.WAITING_ON_REQUESTER: 4,
    TicketStatus.RESOLVED: 8,
    TicketStatus.CLOSED: 50,
    TicketStatus.CANCELLED: 6,
}


def caller_for(user: User) -> Caller:
    assert user.organization_id is not None
    return Caller(
        user_id=user.id,
        organization_id=user.organization_id,
        role=Role(user.role),
        email=user.email,
        scopes=frozenset({"*"}),
    )


@dataclass
class _Cast:
    requesters: list[User]
    technicians: list[User]
    desk: list[User]


def _cast(session: Session) -> _Cast:
    users = session.scalars(select(User).where(User.deleted_at.is_(None), User.is_active)).all()
    by_role: dict[Role, list[User]] = {}
    for user in users:
        by_role.setdefault(Role(user.role), []).append(user)
    return _Cast(
        requesters=by_role.get(Role.REQUESTER, []),
        technicians=by_role.get(Role.TECHNICIAN, []),
        desk=by_role.get(Role.AGENT, []) + by_role.get(Role.ORG_ADMIN, []),
    )


def seed_demo(
    session: Session, organization_id: uuid.UUID, rng: random.Random, *, count: int = 300
) -> int:
    """Tickets in every status with comments, notes and history; returns how many."""
    cast = _cast(session)
    if not cast.requesters or not cast.desk or not cast.technicians:
        return 0
    rooms = _Rooms.load(session)
    statuses = list(WEIGHTS)
    made = 0
    for index in range(count):
        # the first pass gives every status at least a few tickets
        goal = (
            statuses[index % len(statuses)]
            if index < 3 * len(statuses)
            else rng.choices(statuses, weights=list(WEIGHTS.values()))[0]
        )
        _one(session, organization_id, rng, cast, rooms, goal)
        made += 1
    return made


@dataclass
class _Rooms:
    """The district's rooms by kind, and the devices in use in each, by type."""

    by_kind: dict[str, list[tuple[Room, Building]]]
    devices: dict[tuple[uuid.UUID, str], list[tuple[uuid.UUID, str]]]

    @classmethod
    def load(cls, session: Session) -> _Rooms:
        from server.assets.demo import kind_of_room
        from server.assets.models import Asset, AssetStatusLabel, AssetType

        by_kind: dict[str, list[tuple[Room, Building]]] = {}
        for room, building in session.execute(
            select(Room, Building)
            .join(Building, Room.building_id == Building.id)
            .order_by(Building.site_id, Building.name, Room.number)
        ).all():
            by_kind.setdefault(kind_of_room(room), []).append((room, building))
        devices: dict[tuple[uuid.UUID, str], list[tuple[uuid.UUID, str]]] = {}
        in_use = session.execute(
            select(Asset.id, Asset.room_id, AssetType.name, Asset.name)
            .join(AssetType, AssetType.id == Asset.asset_type_id)
            .join(AssetStatusLabel, AssetStatusLabel.id == Asset.status_label_id)
            .where(
                Asset.room_id.is_not(None),
                AssetStatusLabel.status_type.in_(("deployable", "in_repair")),
                AssetStatusLabel.key.is_distinct_from("spare"),
            )
            .order_by(Asset.asset_tag)
        )
        for asset_id, room_id, type_name, name in in_use:
            assert room_id is not None
            devices.setdefault((room_id, type_name), []).append((asset_id, name))
        return cls(by_kind, devices)

    def pick(
        self, rng: random.Random, subcategory: str
    ) -> tuple[Room | None, Building | None, uuid.UUID | None]:
        """A room where the problem fits and, when it is about a device, that device."""
        kinds, type_name, word = WHERE.get(subcategory, ((), None, ""))
        places = [p for kind in kinds or self.by_kind for p in self.by_kind.get(kind, [])]
        if type_name is not None:
            places = [p for p in places if (p[0].id, type_name) in self.devices]
        if not places:
            return None, None, None
        room, building = rng.choice(places)
        if type_name is None:
            return room, building, None
        devices = self.devices[(room.id, type_name)]
        named = [d for d in devices if word.lower() in d[1].lower()]
        return room, building, rng.choice(named or devices)[0]


def _one(
    session: Session,
    organization_id: uuid.UUID,
    rng: random.Random,
    cast: _Cast,
    rooms: _Rooms,
    goal: TicketStatus,
) -> None:
    title, description, ticket_type, cat, subcat, needs_room = rng.choice(PROBLEMS)
    room, building, asset_id = rooms.pick(rng, subcat)
    requester = rng.choice(cast.requesters)
    agent = rng.choice(cast.desk)
    tech = rng.choice(cast.technicians)
    filer = requester if rng.random() < 0.7 else agent
    incident = ticket_type is TicketType.INCIDENT
    where = {
        "room": room.number if room is not None else "101",
        "building": building.name if building is not None else "Main Building",
    }
    data = TicketCreate(
        title=title.format(**where),
        description=description.format(**where),
        ticket_type=ticket_type,
        category=cat,
        subcategory=subcat,
        room_id=room.id
        if room is not None and (needs_room or asset_id or rng.random() < 0.5)
        else None,
        asset_ids=[asset_id] if asset_id is not None else [],
        requester_id=requester.id if filer is agent else None,
        impact=rng.choice(["low", "medium", "medium", "high"]) if incident else None,
        urgency=rng.choice(["low", "medium", "high"]) if incident else None,
        source="phone" if filer is agent else "web",
    )
    ticket = service.create(session, caller_for(filer), organization_id=organization_id, data=data)
    desk, worker, asker = caller_for(agent), caller_for(tech), caller_for(requester)
    if goal is not TicketStatus.NEW and goal is not TicketStatus.CANCELLED:
        if goal is TicketStatus.OPEN:
            if ticket.status == TicketStatus.NEW.value:  # routing may have assigned it
                service.transition(session, ticket, TicketStatus.OPEN, caller=desk)
        else:
            service.assign(session, desk, ticket, fields={"assignee_id"}, assignee_id=tech.id,
                           team_id=ticket.team_id, note=None)  # fmt: skip
    for step in PATHS[goal]:
        if step is TicketStatus.OPEN:
            continue
        if step is TicketStatus.IN_PROGRESS and rng.random() < 0.6:
            minutes = rng.choice([0, 10, 15, 30])
            body = rng.choice(COMMENTS[:4])
            service.add_comment(
                session, worker, ticket, body=body, internal=False, minutes_worked=minutes
            )
        if step is TicketStatus.RESOLVED and rng.random() < 0.5:
            service.add_comment(session, worker, ticket, body=rng.choice(NOTES), internal=True)
        actor = asker if step in (TicketStatus.CLOSED, TicketStatus.CANCELLED) else worker
        if step is TicketStatus.CLOSED and rng.random() < 0.3:
            actor = desk
        service.transition(
            session, ticket, step, caller=actor,
            resolution_notes="Replaced the faulty part and tested it with the teacher."
            if step is TicketStatus.RESOLVED else None,
        )  # fmt: skip
    if goal is TicketStatus.CLOSED and rng.random() < 0.6:
        ticket.satisfaction_rating = rng.choice([3, 4, 5, 5, 5])
    session.flush()
    _age(session, ticket, rng)


def _age(session: Session, ticket: Ticket, rng: random.Random) -> None:
    """Move a freshly made ticket's clock back by up to a term, keeping its shape."""
    open_now = category(TicketStatus(ticket.status)).value in ("open", "paused")
    days = rng.uniform(0, 6) if open_now else rng.uniform(1, 90)
    delta = timedelta(days=days, minutes=rng.randint(0, 600))
    fields = [
        "created_at", "updated_at", "status_changed_at", "first_response_at", "started_at",
        "resolved_at", "closed_at", "response_due_at", "resolution_due_at", "sla_paused_at",
        "response_breached_at", "resolution_breached_at",
    ]  # fmt: skip
    for name in fields:
        value = getattr(ticket, name)
        if isinstance(value, datetime):
            setattr(ticket, name, value - delta)
    for event in session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)):
        event.created_at -= delta
    for note in session.scalars(select(TicketComment).where(TicketComment.ticket_id == ticket.id)):
        note.created_at -= delta


def generate(
    session: Session,
    organization_id: uuid.UUID,
    count: int,
    rng: random.Random,
    *,
    batch: int = 5_000,
) -> int:
    """Bulk-insert ``count`` plain tickets (no comments or history) for load testing.

    Numbers and change positions are reserved in blocks through the same counters
    the services use, so later tickets continue the sequences.
    """
    cast = _cast(session)
    requesters = [u.id for u in cast.requesters] or [u.id for u in cast.desk]
    assignees = [u.id for u in cast.technicians + cast.desk]
    if not requesters:
        raise ValueError("the organization has no users to file tickets")
    places = session.execute(
        select(Room.id, Room.building_id, Building.site_id).join(Building)
    ).all()
    prefix = TicketType.INCIDENT.prefix
    first_number = _reserve_numbers(session, organization_id, prefix, count)
    statuses = list(WEIGHTS)
    weights = list(WEIGHTS.values())
    now = utcnow()
    made = 0
    while made < count:
        size = min(batch, count - made)
        last_position = allocate_change_positions(session, organization_id, size)
        rows = []
        for offset in range(size):
            status = rng.choices(statuses, weights=weights)[0]
            created = now - timedelta(minutes=(count - made - offset) * 3)
            title, description, _type, cat, subcat, _room = rng.choice(PROBLEMS)
            place = rng.choice(places) if places else (None, None, None)
            done = category(status).value in ("resolved", "closed")
            priority = rng.choice(list(Priority)).value
            rows.append(
                {
                    "id": uuid7(),
                    "organization_id": organization_id,
                    "change_position": last_position - size + 1 + offset,
                    "number": f"{prefix}-{first_number + made + offset:06d}",
                    "ticket_type": TicketType.INCIDENT.value,
                    "title": title.format(room="101", building="Main Building"),
                    "description": description,
                    "status": status.value,
                    "status_category": category(status).value,
                    "status_changed_at": created,
                    "priority": priority,
                    "category": cat,
                    "subcategory": subcat,
                    "source": "web",
                    "room_id": place[0],
                    "building_id": place[1],
                    "site_id": place[2],
                    "requester_id": rng.choice(requesters),
                    "assignee_id": rng.choice(assignees)
                    if status not in (TicketStatus.NEW, TicketStatus.OPEN)
                    else None,
                    "watcher_ids": [],
                    "tags": [],
                    "custom_fields": {},
                    "resolution_due_at": created + timedelta(days=3),
                    "response_due_at": created + timedelta(hours=8),
                    "resolved_at": created + timedelta(days=1) if done else None,
                    "closed_at": created + timedelta(days=2)
                    if status in (TicketStatus.CLOSED, TicketStatus.CANCELLED)
                    else None,
                    "created_at": created,
                    "updated_at": created,
                }
            )
        session.execute(insert(Ticket), rows)
        made += size
    return made


def _reserve_numbers(session: Session, organization_id: uuid.UUID, prefix: str, count: int) -> int:
    """Take ``count`` numbers of one sequence at once; returns the first."""
    row = session.get(TicketSequence, (organization_id, prefix), with_for_update=True)
    if row is None:
        row = TicketSequence(organization_id=organization_id, prefix=prefix, last_value=0)
        session.add(row)
        session.flush()
    first = row.last_value + 1
    row.last_value += count
    session.flush()
    return first
