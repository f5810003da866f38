"""What the views show, read from the replica: no Qt, no network.

Functions here run on the replica's reader thread (``ReplicaHost.read``) and return
plain frozen values the UI thread can keep: a page of the queue with names resolved,
a ticket with its timeline in words. Edits are in ``desktop.operations``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from common.workflow import Capacity, TicketStatus, Transition, available
from sync.replica import Replica, ReplicaReader, ReplicaRow, ReplicaStatus, TicketDetail
from sync.wire import Verdict

#: a connection the views read through (the reader thread's ``ReplicaReader``)
Reader = ReplicaReader | Replica

#: a ticket whose resolution is due within this long is "due soon"
DUE_SOON = timedelta(hours=4)
#: statuses a technician still works on (the queue's default filter)
ACTIVE_STATUSES: tuple[str, ...] = (
    TicketStatus.NEW.value,
    TicketStatus.OPEN.value,
    TicketStatus.ASSIGNED.value,
    TicketStatus.IN_PROGRESS.value,
    TicketStatus.ON_HOLD.value,
    TicketStatus.WAITING_ON_REQUESTER.value,
)
PRIORITIES: tuple[str, ...] = ("critical", "high", "medium", "low")


def status_label(status: str | None) -> str:
    return (status or "").replace("_", " ").capitalize()


def wire_time(moment: datetime) -> str:
    """A time as the wire writes it (sorts as text against the replica's columns)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def local_text(moment: datetime | None, now: datetime | None = None) -> str:
    """ "14:05" today, "Tue 14:05" this week, "12 Dec 14:05" otherwise (local time)."""
    if moment is None:
        return ""
    local = moment.astimezone()
    today = (now or datetime.now(UTC)).astimezone().date()
    if local.date() == today:
        return local.strftime("%H:%M")
    if abs((local.date() - today).days) < 6:
        return local.strftime("%a %H:%M")
    return local.strftime("%d %b %H:%M")


# --------------------------------------------------------------------------- names


class Names:
    """People, buildings, rooms and parts by id, loaded from the replica on the reader
    thread and kept until a change touches their table."""

    TABLES = ("users", "buildings", "rooms", "parts", "stock_locations")

    def __init__(self) -> None:
        self._tables: dict[str, dict[str, Mapping[str, Any]]] = {}

    def invalidate(self, tables: Iterable[str] | None = None) -> None:
        for table in self.TABLES if tables is None else tables:
            self._tables.pop(table, None)

    def table(self, reader: Reader, table: str) -> dict[str, Mapping[str, Any]]:
        rows = self._tables.get(table)
        if rows is None:
            rows = {r.id: r.data for r in reader.rows(table)}
            self._tables[table] = rows
        return rows

    def person(self, reader: Reader, user_id: Any) -> str:
        if not user_id:
            return ""
        row = self.table(reader, "users").get(str(user_id))
        if row is None:
            return "Someone"
        name = f"{row.get('firstName') or ''} {row.get('lastName') or ''}".strip()
        return name or str(row.get("email") or "Someone")

    def building(self, reader: Reader, building_id: Any) -> str:
        row = self.table(reader, "buildings").get(str(building_id)) if building_id else None
        return str(row.get("name") or "") if row else ""

    def room(self, reader: Reader, room_id: Any) -> str:
        row = self.table(reader, "rooms").get(str(room_id)) if room_id else None
        if not row:
            return ""
        number, name = row.get("number"), row.get("name")
        return f"Room {number}" + (f" ({name})" if name else "")

    def place(self, reader: Reader, data: Mapping[str, Any]) -> str:
        parts = [
            self.building(reader, data.get("buildingId")),
            self.room(reader, data.get("roomId")),
        ]
        return " · ".join(p for p in parts if p)

    def short_place(self, reader: Reader, data: Mapping[str, Any]) -> str:
        """The building's code (or name) and the room's number, for a narrow column."""
        building = self.table(reader, "buildings").get(str(data.get("buildingId") or ""))
        room = self.table(reader, "rooms").get(str(data.get("roomId") or ""))
        parts = []
        if building:
            parts.append(str(building.get("code") or building.get("name") or ""))
        if room:
            parts.append(f"Room {room.get('number')}")
        return " · ".join(p for p in parts if p)

    def part(self, reader: Reader, part_id: Any) -> str:
        row = self.table(reader, "parts").get(str(part_id)) if part_id else None
        return str(row.get("name") or "a part") if row else "a part"

    def buildings(self, reader: Reader) -> list[tuple[str, str]]:
        """(id, name) of every building, by name."""
        rows = self.table(reader, "buildings")
        return sorted(((i, str(r.get("name") or i)) for i, r in rows.items()), key=lambda x: x[1])


# --------------------------------------------------------------------------- the queue


@dataclass(frozen=True, slots=True)
class QueueQuery:
    """The queue's filters and sort, as the replica's ``tickets()`` takes them."""

    search: str = ""
    status: tuple[str, ...] = ACTIVE_STATUSES
    priority: str | None = None
    building_id: str | None = None
    due_soon: bool = False
    breached: bool = False
    sort: str = "-updatedAt"

    def filters(self, now: datetime | None = None) -> dict[str, Any]:
        """Keyword arguments for ``tickets()`` and ``count_tickets()``."""
        now = now or datetime.now(UTC)
        out: dict[str, Any] = {"sort": self.sort}
        if self.search.strip():
            out["search"] = self.search
        if self.status:
            out["status"] = list(self.status)
        if self.priority:
            out["priority"] = self.priority
        if self.building_id:
            out["building_id"] = self.building_id
        if self.breached:
            out["breached"] = True
        elif self.due_soon:
            out["breached"] = False
            out["due_before"] = wire_time(now + DUE_SOON)
            out["status_category"] = ["open"]
        return out

    @property
    def grouped(self) -> bool:
        return self.sort.lstrip("-") == "buildingId"


@dataclass(frozen=True, slots=True)
class QueueRow:
    id: str
    number: str
    synced: bool
    title: str
    status: str
    priority: str
    place: str
    #: building code and room number
    short_place: str
    building_id: str | None
    building: str
    assignee: str
    due_at: datetime | None
    #: "breached", "overdue" (past due, not yet marked by the server), "due_soon" or ""
    sla: str
    pending: bool


def queue_row(reader: Reader, names: Names, row: ReplicaRow, now: datetime) -> QueueRow:
    data = row.data
    due = parse_time(data.get("resolutionDueAt"))
    sla = ""
    running = data.get("statusCategory") == "open"
    if data.get("resolutionBreachedAt") or data.get("responseBreachedAt"):
        sla = "breached"
    elif running and due is not None and due < now:
        sla = "overdue"
    elif running and due is not None and due < now + DUE_SOON:
        sla = "due_soon"
    return QueueRow(
        id=row.id,
        number=row.display_number,
        synced=row.synced,
        title=str(data.get("title") or ""),
        status=str(data.get("status") or ""),
        priority=str(data.get("priority") or ""),
        place=names.place(reader, data),
        short_place=names.short_place(reader, data),
        building_id=data.get("buildingId"),
        building=names.building(reader, data.get("buildingId")) or "No building",
        assignee=names.person(reader, data.get("assigneeId")) or "Unassigned",
        due_at=due,
        sla=sla,
        pending=row.pending,
    )


@dataclass(frozen=True, slots=True)
class QueuePage:
    query: QueueQuery
    offset: int
    rows: tuple[QueueRow, ...]
    #: the number of tickets matching (read with the first page only)
    total: int | None = None
    #: (id, name) of the buildings, for the filter (with the first page only)
    buildings: tuple[tuple[str, str], ...] = ()
    #: seconds the queries took on the reader thread
    took: float = 0.0


def load_queue(
    reader: Reader,
    names: Names,
    query: QueueQuery,
    offset: int,
    limit: int,
    *,
    with_total: bool,
    now: datetime | None = None,
) -> QueuePage:
    import time

    started = time.perf_counter()
    now = now or datetime.now(UTC)
    filters = query.filters(now)
    rows = reader.tickets(limit=limit, offset=offset, **filters)
    total = None
    buildings: tuple[tuple[str, str], ...] = ()
    if with_total:
        total = reader.count_tickets(**filters)
        buildings = tuple(names.buildings(reader))
    return QueuePage(
        query=query,
        offset=offset,
        rows=tuple(queue_row(reader, names, r, now) for r in rows),
        total=total,
        buildings=buildings,
        took=time.perf_counter() - started,
    )


# --------------------------------------------------------------------------- a ticket


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a ticket's timeline, in words."""

    at: datetime | None
    kind: str  # comment, note, status, event, part, pending
    who: str
    text: str
    minutes: int = 0
    pending: bool = False


@dataclass(frozen=True, slots=True)
class TicketView:
    id: str
    number: str
    title: str
    description: str
    status: str
    priority: str
    requester: str
    assignee: str
    place: str
    due_at: datetime | None
    sla: str
    minutes_worked: int
    created_at: datetime | None
    updated_at: datetime | None
    resolution_notes: str
    timeline: tuple[Entry, ...]
    #: the moves the workflow offers from the status shown, for this user
    transitions: tuple[Transition, ...]
    capacities: frozenset[Capacity]
    pending: int
    synced: bool
    #: where the ticket is (for a new ticket made from this one's context)
    site_id: str | None = None
    building_id: str | None = None
    room_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


_FIELD_NAMES = {
    "priority": "priority",
    "title": "title",
    "description": "description",
    "assigneeId": "assignee",
    "roomId": "room",
    "buildingId": "building",
    "urgency": "urgency",
    "category": "category",
    "subcategory": "subcategory",
    "siteId": "site",
    "teamId": "team",
    "tags": "tags",
}


def _event_text(reader: Reader, names: Names, data: Mapping[str, Any]) -> tuple[str, str]:
    kind = str(data.get("kind") or "")
    info: Mapping[str, Any] = data.get("data") or {}
    if kind == "created":
        return "event", "Created the ticket"
    if kind == "status_changed":
        text = f"Status: {status_label(info.get('from'))} → {status_label(info.get('to'))}"
        if info.get("note"):
            text += f" — {info['note']}"
        return "status", text
    if kind == "assigned":
        to = (info.get("assignee") or {}).get("to")
        return "event", f"Assigned to {names.person(reader, to)}" if to else "Unassigned"
    if kind == "fields_changed":
        changes: Mapping[str, Any] = info.get("changes") or {}
        said = []
        for name, change in changes.items():
            label = _FIELD_NAMES.get(name, name)
            new = change.get("to") if isinstance(change, Mapping) else change
            if name == "assigneeId":
                new = names.person(reader, new)
            said.append(f"{label} to {new}")
        return "event", "Changed " + ", ".join(said) if said else "Changed the ticket"
    if kind in ("part_used", "part_returned"):
        verb = "Used" if kind == "part_used" else "Returned"
        part = info.get("partName") or names.part(reader, info.get("partId"))
        return "part", f"{verb} {info.get('quantity', 1)} x {part}"
    if kind == "sla_applied":
        return "event", "SLA targets set"
    if kind == "sla_breached":
        return "event", f"SLA {info.get('target', '')} target missed".replace("  ", " ")
    if kind == "sla_warning":
        return "event", f"SLA {info.get('target', '')} target due soon".replace("  ", " ")
    if kind == "attachment_added":
        return "event", f"Attached {info.get('fileName', 'a file')}"
    return "event", kind.replace("_", " ").capitalize()


def _pending_text(kind: str, wire: Mapping[str, Any], names: Names, reader: Reader) -> str | None:
    if kind == "ticket.transition":
        text = f"Status: {status_label(wire.get('from'))} → {status_label(wire.get('to'))}"
        if wire.get("resolutionNotes"):
            text += f" — {wire['resolutionNotes']}"
        elif wire.get("note"):
            text += f" — {wire['note']}"
        return text
    if kind == "ticket.update":
        changes: Mapping[str, Any] = wire.get("changes") or {}
        said = [f"{_FIELD_NAMES.get(k, k)} to {v}" for k, v in changes.items()]
        return "Changed " + ", ".join(said)
    if kind == "ticket.create":
        return "Created the ticket here"
    if kind == "part.use":
        return f"Used {wire.get('quantity', 1)} x {names.part(reader, wire.get('partId'))}"
    if kind == "part.return":
        return f"Returned {wire.get('quantity', 1)} x {names.part(reader, wire.get('partId'))}"
    return None  # comments show as comments


def capacities_of(
    data: Mapping[str, Any], user_id: str | None, role: str | None
) -> frozenset[Capacity]:
    held: set[Capacity] = set()
    if user_id and data.get("assigneeId") == user_id:
        held.add(Capacity.ASSIGNEE)
    if user_id and data.get("requesterId") == user_id:
        held.add(Capacity.REQUESTER)
    if role == "agent":
        held.add(Capacity.AGENT)
    if role in ("org_admin", "super_admin"):
        held.add(Capacity.ADMIN)
    return frozenset(held)


def ticket_view(
    reader: Reader,
    names: Names,
    detail: TicketDetail,
    *,
    user_id: str | None,
    role: str | None,
    now: datetime | None = None,
) -> TicketView:
    now = now or datetime.now(UTC)
    row = detail.ticket
    data = row.data
    entries: list[Entry] = []
    for item in detail.timeline:
        d = item.row.data
        at = parse_time(item.at)
        if item.kind == "comment":
            internal = bool(d.get("isInternal"))
            entries.append(
                Entry(
                    at=at,
                    kind="note" if internal else "comment",
                    who=names.person(reader, d.get("authorId")),
                    text=str(d.get("body") or ""),
                    minutes=int(d.get("minutesWorked") or 0),
                    pending=not item.row.synced,
                )
            )
        else:
            kind, text = _event_text(reader, names, d)
            if kind == "part":
                continue  # the stock movement below says it with the part's name
            entries.append(Entry(at, kind, names.person(reader, d.get("actorId")), text))
    for movement in detail.part_movements:
        d = movement.data
        quantity = -int(d.get("quantity") or 0)
        verb = "Used" if quantity >= 0 else "Returned"
        entries.append(
            Entry(
                at=parse_time(d.get("occurredAt")),
                kind="part",
                who=names.person(reader, d.get("actorId")),
                text=f"{verb} {abs(quantity)} x {names.part(reader, d.get('partId'))}",
                pending=not movement.synced,
            )
        )
    me = names.person(reader, user_id) if user_id else "You"
    for mutation in detail.pending:
        text = _pending_text(mutation.kind, mutation.wire, names, reader)
        if text is not None:
            entries.append(Entry(parse_time(mutation.at), "pending", me, text, pending=True))
    entries.sort(key=lambda e: (e.at or now, e.kind == "pending"))
    queue = queue_row(reader, names, row, now)
    held = capacities_of(data, user_id, role)
    try:
        moves = tuple(available(TicketStatus(str(data.get("status"))), held))
    except ValueError:
        moves = ()
    return TicketView(
        id=row.id,
        number=row.display_number,
        title=str(data.get("title") or ""),
        description=str(data.get("description") or ""),
        status=str(data.get("status") or ""),
        priority=str(data.get("priority") or ""),
        requester=names.person(reader, data.get("requesterId")),
        assignee=names.person(reader, data.get("assigneeId")) or "Unassigned",
        place=queue.place,
        due_at=queue.due_at,
        sla=queue.sla,
        minutes_worked=int(data.get("minutesWorked") or 0),
        created_at=parse_time(data.get("createdAt")),
        updated_at=parse_time(data.get("updatedAt")),
        resolution_notes=str(data.get("resolutionNotes") or ""),
        timeline=tuple(entries),
        transitions=moves,
        capacities=held,
        pending=len(detail.pending),
        synced=row.synced,
        site_id=_str_or_none(data.get("siteId")),
        building_id=_str_or_none(data.get("buildingId")),
        room_id=_str_or_none(data.get("roomId")),
    )


def _str_or_none(value: Any) -> str | None:
    return str(value) if value else None


def load_ticket(
    reader: Reader, names: Names, ticket_id: str, *, user_id: str | None, role: str | None
) -> TicketView | None:
    detail = reader.ticket(ticket_id)
    if detail is None:
        return None
    return ticket_view(reader, names, detail, user_id=user_id, role=role)


def load_status(reader: Reader) -> ReplicaStatus:
    return reader.status()


# --------------------------------------------------------------------------- conflicts


@dataclass(frozen=True, slots=True)
class ConflictItem:
    """A field both the technician (offline) and someone on the server changed."""

    id: str
    ticket_id: str
    number: str
    title: str
    #: the wire field name (``priority``) and its words (``Priority``)
    field: str
    label: str
    base: str
    mine: str
    server: str
    mine_value: Any
    server_value: Any
    created_at: datetime | None
    #: "mine", "server" or "value" once resolved here (sent at the next sync), else None
    resolution: str | None = None
    #: the value chosen with "Edit…", in words
    chosen: str = ""


@dataclass(frozen=True, slots=True)
class RejectedItem:
    """A change the server refused, with its reason."""

    mutation_id: str
    ticket_id: str | None
    number: str
    title: str
    #: what was sent, in words ("Status: In progress → Resolved — New lamp")
    what: str
    #: the server's sentence
    reason: str
    code: str | None
    judged_at: datetime | None


@dataclass(frozen=True, slots=True)
class ConflictList:
    conflicts: tuple[ConflictItem, ...]
    rejected: tuple[RejectedItem, ...]
    #: (id, name) of the people a field such as the assignee may take
    people: tuple[tuple[str, str], ...] = ()

    @property
    def open(self) -> int:
        return sum(1 for c in self.conflicts if c.resolution is None)


def field_label(name: str) -> str:
    return _FIELD_NAMES.get(name, name).capitalize()


def value_text(reader: Reader, names: Names, name: str, value: Any) -> str:
    """A field's value in words: names for ids, capitalised levels, "(empty)" for none."""
    if value is None or value == "" or value == []:
        return "(empty)"
    if name in ("assigneeId", "requesterId"):
        return names.person(reader, value)
    if name == "buildingId":
        return names.building(reader, value) or str(value)
    if name == "roomId":
        return names.room(reader, value) or str(value)
    if name in ("teamId", "siteId"):
        row = reader.row("teams" if name == "teamId" else "sites", str(value))
        return str(row.data.get("name") or value) if row else str(value)
    if name in ("priority", "urgency", "impact", "status"):
        return status_label(str(value))
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _mutation_text(reader: Reader, names: Names, kind: str, wire: Mapping[str, Any]) -> str:
    said = _pending_text(kind, wire, names, reader)
    if said is not None:
        return said
    if kind == "ticket.comment":
        word = "Internal note" if wire.get("internal") else "Comment"
        return f"{word}: {wire.get('body') or ''}"
    if kind == "ticket.create":
        return f"New ticket: {(wire.get('ticket') or {}).get('title') or ''}"
    if kind == "conflict.resolve":
        return "Resolved a conflict"
    return kind.replace(".", " ").replace("_", " ").capitalize()


def _ticket_words(reader: Reader, ticket_id: str | None) -> tuple[str, str]:
    row = reader.row("tickets", ticket_id) if ticket_id else None
    if row is None:
        return "", ""
    return row.display_number, str(row.data.get("title") or "")


def load_conflicts(reader: Reader, names: Names) -> ConflictList:
    """Open conflicts (and those resolved here, until the server has them) and the
    rejected changes not dismissed yet, in words."""
    conflicts = []
    for row in reader.conflicts():
        d = row.data
        name = str(d.get("field") or "")
        number, title = _ticket_words(reader, d.get("ticketId"))
        resolution = d.get("resolution") if d.get("resolvedAt") is not None else None
        chosen = ""
        if resolution == "value":
            ticket = reader.row("tickets", str(d.get("ticketId") or ""))
            chosen = value_text(reader, names, name, ticket.data.get(name)) if ticket else ""
        conflicts.append(
            ConflictItem(
                id=row.id,
                ticket_id=str(d.get("ticketId") or ""),
                number=number,
                title=title,
                field=name,
                label=field_label(name),
                base=value_text(reader, names, name, d.get("base")),
                mine=value_text(reader, names, name, d.get("mine")),
                server=value_text(reader, names, name, d.get("server")),
                mine_value=d.get("mine"),
                server_value=d.get("server"),
                created_at=parse_time(d.get("createdAt")),
                resolution=str(resolution) if resolution else None,
                chosen=chosen,
            )
        )
    rejected = []
    for verdict in reader.verdicts():
        if verdict.verdict is not Verdict.REJECTED:
            continue
        number, title = _ticket_words(reader, verdict.ticket_id)
        rejected.append(
            RejectedItem(
                mutation_id=verdict.mutation_id,
                ticket_id=verdict.ticket_id,
                number=number,
                title=title,
                what=_mutation_text(reader, names, verdict.kind, verdict.mutation),
                reason=verdict.message or "The server refused this change.",
                code=verdict.code,
                judged_at=parse_time(verdict.judged_at),
            )
        )
    people = sorted(
        ((uid, names.person(reader, uid)) for uid in names.table(reader, "users")),
        key=lambda p: p[1],
    )
    return ConflictList(tuple(conflicts), tuple(rejected), tuple(people))


# --------------------------------------------------------------------------- parts


@dataclass(frozen=True, slots=True)
class StockItem:
    """A part at one of the technician's stock locations, as the replica shows it."""

    part_id: str
    location_id: str
    part: str
    part_number: str
    location: str
    #: the location is the technician's own (their van, their bag)
    mine: bool
    quantity: int
    reorder_point: int

    @property
    def low(self) -> bool:
        """At or under the part's reorder point (or none left)."""
        return self.quantity <= 0 or (
            self.reorder_point > 0 and self.quantity <= self.reorder_point
        )


def load_stock(reader: Reader, names: Names, user_id: str | None) -> tuple[StockItem, ...]:
    """Every stock level the replica holds (the technician's locations and their home
    site's closets), their own locations first, then by location and part name."""
    parts = names.table(reader, "parts")
    locations = names.table(reader, "stock_locations")
    items = []
    for level in reader.rows("stock_levels"):
        d = level.data
        part = parts.get(str(d.get("partId")))
        location = locations.get(str(d.get("locationId")))
        if part is None or location is None or location.get("active") is False:
            continue
        if part.get("status") == "discontinued":
            continue
        mine = bool(user_id) and str(location.get("holderUserId") or "") == user_id
        items.append(
            StockItem(
                part_id=str(d.get("partId")),
                location_id=str(d.get("locationId")),
                part=str(part.get("name") or "A part"),
                part_number=str(part.get("partNumber") or ""),
                location=str(location.get("name") or "A location"),
                mine=mine,
                quantity=int(d.get("quantity") or 0),
                reorder_point=int(part.get("reorderPoint") or 0),
            )
        )
    items.sort(key=lambda i: (not i.mine, i.location.lower(), i.part.lower()))
    return tuple(items)


# --------------------------------------------------------------------------- places


@dataclass(frozen=True, slots=True)
class Places:
    """Buildings and their rooms, for choosing where a new ticket is."""

    #: (id, name), by name
    buildings: tuple[tuple[str, str], ...]
    #: building id -> (room id, "Room 204 (Library)"), by room number
    rooms: Mapping[str, tuple[tuple[str, str], ...]]


def load_places(reader: Reader, names: Names) -> Places:
    rooms: dict[str, list[tuple[str, str, str]]] = {}
    for room_id, data in names.table(reader, "rooms").items():
        number = str(data.get("number") or "")
        rooms.setdefault(str(data.get("buildingId") or ""), []).append(
            (number.zfill(8), room_id, names.room(reader, room_id))
        )
    return Places(
        buildings=tuple(names.buildings(reader)),
        rooms={b: tuple((i, label) for _, i, label in sorted(rs)) for b, rs in rooms.items()},
    )
