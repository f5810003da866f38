"""The sync protocol's wire format, version 1 (``docs/sync-protocol.md``): constants and
small parsed values, shared by the replica store and the sync engine.

Everything on the wire is camelCase JSON; rows stay plain dicts (the table's wire
projection, kept faithfully), only the envelope around them is parsed here. Parsing
checks the shape and raises ``WireError`` before anything is written, so a malformed
answer never half-applies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

PROTOCOL_VERSION = 1

#: mutations per push, ticket ids per hydrate
MAX_PUSH = 100
MAX_HYDRATE = 100

#: rows of a ticket that follow it into and out of the replica (each has ``ticketId``)
TICKET_CHILD_TABLES: tuple[str, ...] = (
    "ticket_comments",
    "ticket_events",
    "ticket_attachments",
    "ticket_links",
    "ticket_assets",
)

#: every table this client version stores in its own SQLite table; rows of any other
#: table a newer server sends are kept generically (``unknown_rows``)
KNOWN_TABLES: tuple[str, ...] = (
    "tickets",
    *TICKET_CHILD_TABLES,
    "assets",
    "users",
    "teams",
    "team_members",
    "departments",
    "sites",
    "buildings",
    "rooms",
    "asset_types",
    "asset_status_labels",
    "business_calendars",
    "calendar_holidays",
    "sla_rules",
    "parts",
    "stock_locations",
    "stock_levels",
    "stock_movements",
    "sync_conflicts",
)

#: the fields a ``ticket.update`` may carry (wire names)
UPDATABLE_TICKET_FIELDS = frozenset(
    {
        "title",
        "description",
        "priority",
        "urgency",
        "category",
        "subcategory",
        "siteId",
        "buildingId",
        "roomId",
        "assigneeId",
        "teamId",
        "tags",
    }
)


class MutationKind(StrEnum):
    TICKET_CREATE = "ticket.create"
    TICKET_UPDATE = "ticket.update"
    TICKET_TRANSITION = "ticket.transition"
    TICKET_COMMENT = "ticket.comment"
    TICKET_ATTACH = "ticket.attach"
    PART_USE = "part.use"
    PART_RETURN = "part.return"
    ASSET_LINK = "asset.link"
    ASSET_UNLINK = "asset.unlink"
    CONFLICT_RESOLVE = "conflict.resolve"


class Verdict(StrEnum):
    APPLIED = "applied"  # every field applied as sent on an unchanged row
    MERGED = "merged"  # applied or already equal; other fields had changed
    CONFLICT = "conflict"  # at least one field kept the server's value
    REJECTED = "rejected"  # refused as a whole (``code``, ``message``)


class Keep(StrEnum):
    """How a conflict is resolved (``conflict.resolve``)."""

    MINE = "mine"
    SERVER = "server"
    VALUE = "value"


class WireError(ValueError):
    """An answer that does not have the shape of protocol version 1."""


Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class TableRows:
    table: str
    rows: tuple[Row, ...]


@dataclass(frozen=True, slots=True)
class Removal:
    table: str
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PullPage:
    """One answer of ``POST /api/sync/pull`` (its ``data`` member)."""

    cursor: str | None
    has_more: bool
    changes: tuple[TableRows, ...]
    removals: tuple[Removal, ...] = ()
    #: the full list of ticket ids now in scope, when the user's scope changed
    scope_tickets: tuple[str, ...] | None = None
    wipe: bool = False
    server_time: str | None = None
    #: the page's tickets carry all their children (a first download): no hydration
    complete: bool = False
    #: the last mutation sequence the server applied from this device
    last_sequence: int | None = None

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> PullPage:
        if not isinstance(data, Mapping):
            raise WireError("a pull answer is an object")
        cursor = data.get("cursor")
        if cursor is not None and not isinstance(cursor, str):
            raise WireError("cursor must be a string or null")
        scope = data.get("scope")
        scope_tickets: tuple[str, ...] | None = None
        if scope is not None:
            if not isinstance(scope, Mapping) or not isinstance(scope.get("tickets"), list):
                raise WireError('scope must be null or {"tickets": [ids]}')
            scope_tickets = tuple(_ids(scope["tickets"], "scope.tickets"))
        server_time = data.get("serverTime")
        last_sequence = data.get("lastSequence")
        if last_sequence is not None and (
            not isinstance(last_sequence, int) or isinstance(last_sequence, bool)
        ):
            raise WireError("lastSequence must be an integer or null")
        return cls(
            cursor=cursor,
            has_more=bool(data.get("hasMore", False)),
            changes=parse_changes(data.get("changes") or []),
            removals=tuple(
                Removal(table=_table(item), ids=tuple(_ids(item.get("ids"), "removals.ids")))
                for item in _list(data.get("removals") or [], "removals")
            ),
            scope_tickets=scope_tickets,
            wipe=bool(data.get("wipe", False)),
            server_time=str(server_time) if server_time is not None else None,
            complete=bool(data.get("complete", False)),
            last_sequence=last_sequence,
        )


def parse_changes(changes: Any) -> tuple[TableRows, ...]:
    """``[{"table": …, "rows": [{…}, …]}, …]`` as in pull, hydrate and push results."""
    parsed = []
    for item in _list(changes, "changes"):
        table = _table(item)
        rows = []
        for row in _list(item.get("rows"), f"changes[{table}].rows"):
            if not isinstance(row, Mapping) or not isinstance(row.get("id"), str):
                raise WireError(f"a row of {table} has no string id")
            position = row.get("changePosition")
            if position is not None and (
                isinstance(position, bool) or not isinstance(position, int)
            ):
                raise WireError(f"row {row['id']} of {table}: changePosition must be an integer")
            rows.append(dict(row))
        parsed.append(TableRows(table=table, rows=tuple(rows)))
    return tuple(parsed)


@dataclass(frozen=True, slots=True)
class PushResult:
    """One entry of a push answer's ``results``."""

    id: str
    seq: int | None
    verdict: Verdict
    conflicts: tuple[Mapping[str, Any], ...] = ()
    rows: tuple[TableRows, ...] = ()
    code: str | None = None
    message: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> PushResult:
        if not isinstance(data, Mapping) or not isinstance(data.get("id"), str):
            raise WireError("a push result needs the mutation's id")
        try:
            verdict = Verdict(str(data.get("verdict")))
        except ValueError as exc:
            raise WireError(f"unknown verdict {data.get('verdict')!r}") from exc
        seq = data.get("seq")
        conflicts = tuple(_list(data.get("conflicts") or [], "conflicts"))
        if not all(isinstance(c, Mapping) for c in conflicts):
            raise WireError("conflicts must be objects")
        return cls(
            id=data["id"],
            seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
            verdict=verdict,
            conflicts=conflicts,
            rows=parse_changes(data.get("rows") or []),
            code=str(data["code"]) if data.get("code") is not None else None,
            message=str(data["message"]) if data.get("message") is not None else None,
            raw=dict(data),
        )


def _list(value: Any, what: str) -> Sequence[Any]:
    if not isinstance(value, list):
        raise WireError(f"{what} must be a list")
    return value


def _table(item: Any) -> str:
    if not isinstance(item, Mapping) or not isinstance(item.get("table"), str) or not item["table"]:
        raise WireError("each entry needs a table name")
    return str(item["table"])


def _ids(value: Any, what: str) -> list[str]:
    ids = _list(value, what)
    if not all(isinstance(i, str) for i in ids):
        raise WireError(f"{what} must be a list of string ids")
    return list(ids)
