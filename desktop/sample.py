"""A synthetic replica shaped like a district's: people, buildings, rooms, parts and as
many tickets as asked, written through the replica's own pull path (``apply_page``).

For the queue benchmark, the screenshots and the tests that need thousands of tickets
without a server. No Qt, no network.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sync.replica import Replica

SERVER = "https://help.lincoln-usd.example"
ME = "01900000-0000-7000-8000-00000000a001"

_PEOPLE = [
    (ME, "Dana", "Reyes", "technician"),
    ("01900000-0000-7000-8000-00000000a002", "Marcus", "Okafor", "agent"),
    ("01900000-0000-7000-8000-00000000a003", "Priya", "Shah", "requester"),
    ("01900000-0000-7000-8000-00000000a004", "Tom", "Lindqvist", "requester"),
    ("01900000-0000-7000-8000-00000000a005", "Alma", "Fuentes", "technician"),
    ("01900000-0000-7000-8000-00000000a006", "Grace", "Kim", "requester"),
]
_BUILDINGS = [
    ("Lincoln High", "LHS"),
    ("Jefferson Elementary", "JES"),
    ("Roosevelt Middle", "RMS"),
    ("District Office", "DO"),
    ("Washington Elementary", "WES"),
]
_PROBLEMS = [
    ("Projector flickers", "The lamp flickers during class and the picture turns green."),
    ("Chromebook cart not charging", "Half of the cart's slots show no charge light."),
    ("Smartboard pen not detected", "The board ignores the pen; touch still works."),
    ("Printer jams on every job", "Paper jams in tray 2 after a few pages."),
    ("Wi-Fi drops in the library", "Laptops lose the network every ten minutes."),
    ("Document camera has no picture", "The camera shows a black image over HDMI."),
    ("Classroom speakers hum", "A loud hum from the ceiling speakers when idle."),
    ("Teacher laptop will not boot", "Stuck on the logo after an update."),
    ("Badge reader offline", "The door's badge reader blinks red."),
    ("Phone has no dial tone", "The classroom phone is silent."),
]
_STATUSES = [
    ("assigned", "open", 4),
    ("in_progress", "open", 5),
    ("on_hold", "paused", 2),
    ("waiting_on_requester", "paused", 1),
    ("resolved", "resolved", 1),
]
_PRIORITIES = [("low", 3), ("medium", 5), ("high", 3), ("critical", 1)]


def building_id(n: int) -> str:
    return f"01900000-0000-7000-8000-0000000b{n:04d}"


def room_id(b: int, r: int) -> str:
    return f"01900000-0000-7000-8000-000000{b:02d}{r:04d}"


def ticket_id(n: int) -> str:
    return f"01900000-0000-7000-8000-{n:012d}"


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _weighted(rng: random.Random, choices: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    return rng.choices(choices, weights=[c[-1] for c in choices])[0]


def build(
    path: Path,
    tickets: int,
    *,
    now: datetime | None = None,
    seed: int = 7,
    comments: bool = True,
    page_size: int = 2000,
) -> Replica:
    """A replica at ``path`` holding ``tickets`` tickets assigned to ``ME``; returns it open."""
    rng = random.Random(seed)  # noqa: S311 - sample data
    now = now or datetime.now(UTC)
    replica = Replica.open(path, server_url=SERVER, user_id=ME)
    position = 1
    users = [
        {
            "id": uid,
            "firstName": first,
            "lastName": last,
            "email": f"{first.lower()}.{last.lower()}@lincoln-usd.example",
            "role": role,
            "changePosition": 1,
            "deletedAt": None,
        }
        for uid, first, last, role in _PEOPLE
    ]
    buildings = [
        {
            "id": building_id(b),
            "name": name,
            "code": code,
            "siteId": None,
            "changePosition": 1,
            "deletedAt": None,
        }
        for b, (name, code) in enumerate(_BUILDINGS)
    ]
    rooms = [
        {
            "id": room_id(b, r),
            "buildingId": building_id(b),
            "number": f"{100 + r * 3 + b}",
            "name": None,
            "changePosition": 1,
            "deletedAt": None,
        }
        for b in range(len(_BUILDINGS))
        for r in range(40)
    ]
    replica.apply_page(
        {
            "cursor": "p1",
            "hasMore": True,
            "complete": True,
            "changes": [
                {"table": "users", "rows": users},
                {"table": "buildings", "rows": buildings},
                {"table": "rooms", "rows": rooms},
            ],
        }
    )
    people = [p[0] for p in _PEOPLE if p[3] == "requester"]
    for start in range(0, tickets, page_size):
        rows = []
        children = []
        for n in range(start + 1, min(tickets, start + page_size) + 1):
            position += 1
            title, description = _PROBLEMS[n % len(_PROBLEMS)]
            status, category, _ = _weighted(rng, _STATUSES)
            priority = _weighted(rng, _PRIORITIES)[0]
            b = rng.randrange(len(_BUILDINGS))
            created = now - timedelta(minutes=rng.randrange(30, 60 * 24 * 20))
            updated = created + (now - created) * rng.random()
            due = now + timedelta(minutes=rng.randrange(-600, 60 * 24 * 4))
            breached = category == "open" and due < now
            rows.append(
                {
                    "id": ticket_id(n),
                    "changePosition": position,
                    "deletedAt": None,
                    "number": f"INC-{n:06d}",
                    "ticketType": "incident",
                    "title": f"{title} in room {100 + (n % 40) * 3 + b}",
                    "description": description,
                    "status": status,
                    "statusCategory": category,
                    "priority": priority,
                    "assigneeId": ME,
                    "teamId": None,
                    "requesterId": rng.choice(people),
                    "siteId": None,
                    "buildingId": building_id(b),
                    "roomId": room_id(b, n % 40),
                    "commentCount": 1 if comments else 0,
                    "internalNoteCount": 0,
                    "minutesWorked": 0,
                    "createdAt": _stamp(created),
                    "updatedAt": _stamp(updated),
                    "responseDueAt": _stamp(created + timedelta(hours=4)),
                    "resolutionDueAt": _stamp(due),
                    "resolutionBreachedAt": _stamp(due) if breached else None,
                    "responseBreachedAt": None,
                }
            )
            if comments:
                children.append(
                    {
                        "id": f"01900000-0000-7000-9000-{n:012d}",
                        "ticketId": ticket_id(n),
                        "authorId": rng.choice(people),
                        "body": "It started after the holidays; it is worse in the afternoon.",
                        "isInternal": False,
                        "minutesWorked": 0,
                        "createdAt": _stamp(created + timedelta(minutes=5)),
                        "changePosition": position,
                        "deletedAt": None,
                    }
                )
        changes = [{"table": "tickets", "rows": rows}]
        if children:
            changes.append({"table": "ticket_comments", "rows": children})
        replica.apply_page(
            {
                "cursor": f"p{position}",
                "hasMore": start + page_size < tickets,
                "complete": True,
                "changes": changes,
            }
        )
    return replica


PARTS = [
    # (name, part number, reorder point, in the van, at the school's closet)
    ("Projector lamp ELPLP96", "LAMP-96", 2, 2, 6),
    ("HDMI cable 3 m", "HDMI-3", 5, 14, 40),
    ("Chromebook charger 45 W", "CHG-45", 4, 3, 11),
    ("Smartboard pen", "PEN-SB", 3, 0, 4),
    ("Cat6 patch cable 2 m", "CAT6-2", 10, 25, 80),
    ("Wireless access point AP-22", "AP-22", 1, 1, 2),
]


def add_work(replica: Replica, *, now: datetime | None = None) -> None:
    """Parts at Dana's van and a school closet, two conflicts and a refused change:
    what the conflicts view and the parts picker show in screenshots."""
    now = now or datetime.now(UTC)
    van, closet = "01900000-0000-7000-8000-00000000c001", "01900000-0000-7000-8000-00000000c002"
    locations = [
        {"id": van, "name": "Dana's van", "kind": "van", "holderUserId": ME, "active": True},
        {
            "id": closet,
            "name": "Lincoln High IT closet",
            "kind": "closet",
            "holderUserId": None,
            "buildingId": building_id(0),
            "active": True,
        },
    ]
    parts, levels = [], []
    for n, (name, number, reorder, in_van, in_closet) in enumerate(PARTS):
        part_id = f"01900000-0000-7000-8000-0000000d{n:04d}"
        parts.append({"id": part_id, "name": name, "partNumber": number, "reorderPoint": reorder})
        for m, (location, quantity) in enumerate(((van, in_van), (closet, in_closet))):
            levels.append(
                {
                    "id": f"01900000-0000-7000-8000-0000000e{n:02d}{m:02d}",
                    "partId": part_id,
                    "locationId": location,
                    "quantity": quantity,
                }
            )
    first = replica.row("tickets", ticket_id(3))
    second = replica.row("tickets", ticket_id(8))
    if first is None or second is None:
        raise ValueError("add_work needs a replica of at least 8 tickets (sample.build)")
    conflicts = [
        {
            "id": "01900000-0000-7000-8000-0000000f0001",
            "ticketId": ticket_id(3),
            "field": "priority",
            "base": "medium",
            "mine": "critical" if first.data.get("priority") != "critical" else "high",
            "server": first.data.get("priority"),
            "userId": ME,
            "createdAt": _stamp(now - timedelta(minutes=12)),
            "resolvedAt": None,
        },
        {
            "id": "01900000-0000-7000-8000-0000000f0002",
            "ticketId": ticket_id(8),
            "field": "title",
            "base": str(second.data.get("title")).split(" in room")[0],
            "mine": str(second.data.get("title")).split(" in room")[0] + " at the north door",
            "server": second.data.get("title"),
            "userId": ME,
            "createdAt": _stamp(now - timedelta(minutes=9)),
            "resolvedAt": None,
        },
    ]
    rows = [
        ("stock_locations", locations),
        ("parts", parts),
        ("stock_levels", levels),
        ("sync_conflicts", conflicts),
    ]
    replica.apply_page(
        {
            "cursor": "work-1",
            "hasMore": False,
            "changes": [
                {
                    "table": table,
                    "rows": [{**r, "changePosition": 900_000, "deletedAt": None} for r in rs],
                }
                for table, rs in rows
            ],
        }
    )
    working = replica.tickets(status="in_progress", limit=1)
    if working:
        changes = replica.transition_ticket(
            working[0].id, "resolved", resolution_notes="Reseated the charging bricks"
        )
        number = working[0].display_number
        replica.record_results(
            [
                {
                    "id": changes.mutation_id,
                    "seq": changes.seq,
                    "verdict": "rejected",
                    "code": "TICKET_ALREADY_CLOSED",
                    "message": (
                        f"Ticket {number} was closed by Marcus Okafor this morning; "
                        "it can no longer be resolved"
                    ),
                }
            ]
        )
