"""The offline replica: one SQLite file holding what a user may see, and the outbox of
edits made on it (``docs/sync-protocol.md``, "The client side"; API in ``docs/sync.md``).

No Qt, no HTTP: the sync engine hands this store the server's answers (pull pages,
hydrations, push results) and asks it for the mutations to send; the desktop and
``resolve-sync`` read it and make edits through it.

How rows are kept
-----------------
Every replicated table has the same shape: ``id`` (primary key), ``change_position``
(NULL for a row made here that the server has not sent back yet), ``deleted_at``,
``data`` (the wire row as shown, camelCase JSON, kept whole) and ``server_data``.
The columns the app filters and sorts on are virtual generated columns over ``data``
(``json_extract``), indexed.

``data`` is what the user sees: the server's copy with the still-pending local edits
replayed on top (guarantee 10). While a row has pending edits, ``server_data`` keeps
the copy they were made on: the server's row as last received (or, for a row made
here, the row as it was created). That copy is what ``ticket.update`` records as
``base``, so two edits of the same field offline both name the value the server sent,
never the first edit's value. With no pending edits ``server_data`` is NULL and
``data`` *is* the server's copy (no doubled storage for 50,000 tickets).

Each outbox entry lists its *effects* (``outbox_effects``): the rows it inserted, the
fields it set, the counters it moved. Writing a server row replays the pending effects
on that row; judging a mutation drops its effects and rebuilds the rows from their
kept copy (a rejected edit disappears, an applied one stays until the server's row
arrives).

Threads: one writer. ``Replica`` serialises its own methods with a lock, so calling it
from two threads is safe but pointless; the desktop and the CLI run every write on one
worker thread. Readers on other threads open ``Replica.reader()``: a read-only
connection of their own that sees committed data only.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import random
import re
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict, Unpack

from common.errors import ErrorCode
from common.ids import uuid7
from common.workflow import Capacity, TicketStatus, WorkflowError, check
from common.workflow import category as _category
from sync.wire import (
    KNOWN_TABLES,
    MAX_PUSH,
    PROTOCOL_VERSION,
    TICKET_CHILD_TABLES,
    UPDATABLE_TICKET_FIELDS,
    Keep,
    MutationKind,
    PullPage,
    PushResult,
    Row,
    TableRows,
    Verdict,
    WireError,
    parse_changes,
)

#: retry delays after transport failures: 1 s doubling to 5 min, each jittered by ±20 %
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 300.0
BACKOFF_JITTER = 0.2

#: what a caller may be on a ticket when no capacities are given: the local check then
#: only asks whether the move exists at all (the server checks who may take it)
_ANY_PERSON = frozenset({Capacity.REQUESTER, Capacity.ASSIGNEE, Capacity.AGENT, Capacity.ADMIN})

_CHUNK = 500  # ids per ``IN (…)`` list, well under SQLite's parameter limit
_FILE_CHUNK = 1 << 16  # bytes read or written at a time in the content store
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: the names some systems give types the server knows under another
_MIME_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}


class ReplicaError(Exception):
    """The replica file cannot be used as asked."""


class ReplicaVersionError(ReplicaError):
    """The file was written by a newer client: this one must not touch it."""


class EditRefused(ReplicaError):
    """A local edit that is refused before it reaches the outbox; nothing was written.

    ``code`` is an ``ErrorCode`` value (``RESOURCE_NOT_FOUND``, ``VALIDATION_ERROR``,
    ``INVALID_STATUS_TRANSITION``, ``TICKET_ALREADY_CLOSED``, ``PERMISSION_DENIED``).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --------------------------------------------------------------------------- values


@dataclass(slots=True)
class Changes:
    """What an operation changed, so each view can decide whether to refresh."""

    #: table -> ids written (inserted, updated or overlaid)
    written: dict[str, set[str]] = field(default_factory=dict)
    #: table -> ids deleted from the replica
    removed: dict[str, set[str]] = field(default_factory=dict)
    outbox: bool = False
    verdicts: bool = False
    state: bool = False
    #: the mutation a local edit queued
    mutation_id: str | None = None
    seq: int | None = None

    def wrote(self, table: str, row_id: str) -> None:
        self.written.setdefault(table, set()).add(row_id)

    def deleted(self, table: str, row_id: str) -> None:
        self.removed.setdefault(table, set()).add(row_id)
        ids = self.written.get(table)
        if ids is not None:
            ids.discard(row_id)

    def touches(self, table: str) -> bool:
        return bool(self.written.get(table) or self.removed.get(table))

    def __bool__(self) -> bool:
        return bool(
            any(self.written.values())
            or any(self.removed.values())
            or self.outbox
            or self.verdicts
            or self.state
        )


@dataclass(frozen=True, slots=True)
class PageApplied:
    changes: Changes
    cursor: str | None
    has_more: bool
    #: the administrator ordered a remote wipe: nothing was applied; call ``wipe()``
    wipe: bool
    #: tickets added to the hydrate queue by this page
    hydrate_queued: int


@dataclass(frozen=True, slots=True)
class ReplicaRow:
    table: str
    id: str
    #: the row as shown: the server's copy with pending local edits on top
    data: Mapping[str, Any]
    change_position: int | None
    #: edits of this row (for a ticket: of the ticket) wait in the outbox
    pending: bool = False

    @property
    def synced(self) -> bool:
        """The server has sent this row; False for a row made here and not yet sent back."""
        return self.change_position is not None

    @property
    def display_number(self) -> str:
        """A ticket's number, or "New (not yet synced)" for one created offline."""
        number = self.data.get("number")
        return str(number) if number else "New (not yet synced)"


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    kind: str  # "comment" or "event"
    at: str
    row: ReplicaRow


@dataclass(frozen=True, slots=True)
class PendingMutation:
    seq: int
    id: str
    kind: str
    ticket_id: str | None
    at: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    wire: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class TicketDetail:
    ticket: ReplicaRow
    #: comments and events, oldest first
    timeline: tuple[TimelineEntry, ...]
    attachments: tuple[ReplicaRow, ...]
    links: tuple[ReplicaRow, ...]
    assets: tuple[ReplicaRow, ...]
    part_movements: tuple[ReplicaRow, ...]
    open_conflicts: tuple[ReplicaRow, ...]
    pending: tuple[PendingMutation, ...]
    #: the ticket's ``ticket_assets`` rows as shown (a link made here has no position)
    asset_links: tuple[ReplicaRow, ...] = ()


@dataclass(frozen=True, slots=True)
class StoredVerdict:
    """A judged mutation the user should read: a rejection or a conflict."""

    mutation_id: str
    seq: int
    kind: str
    ticket_id: str | None
    verdict: Verdict
    code: str | None
    message: str | None
    conflicts: tuple[Mapping[str, Any], ...]
    #: the mutation as it was sent, so nothing typed offline is lost silently
    mutation: Mapping[str, Any]
    judged_at: str
    dismissed: bool


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    device_id: str
    user_id: str | None
    server_url: str | None
    cursor: str | None
    last_sync_at: str | None
    #: mutations in the outbox
    pending: int
    #: when the first pending mutation may be sent (epoch seconds; 0 = now, None = none)
    next_attempt_at: float | None
    last_error: str | None
    #: replicated ``sync_conflicts`` rows not resolved yet
    open_conflicts: int
    #: judged mutations not dismissed, by verdict
    rejections: int
    conflicts: int
    hydrate_queued: int
    pending_removals: int
    #: files attached here that wait to be uploaded (their ``ticket.attach`` waits too)
    uploads_waiting: int = 0
    #: when the next of them may be tried (epoch seconds; 0 = now), and its last error
    next_upload_at: float | None = None
    upload_error: str | None = None


@dataclass(frozen=True, slots=True)
class UploadJob:
    """A file attached here, waiting in the upload queue (``upload_queue``)."""

    attachment_id: str
    #: the ``ticket.attach`` mutation (its id) that names the file once it is uploaded
    mutation_id: str
    ticket_id: str
    sha256: str
    file_name: str
    mime_type: str
    size_bytes: int
    #: ``waiting``, ``uploaded`` (``storage_key`` known) or ``failed`` (refused for good)
    state: str
    storage_key: str | None
    attempts: int
    next_attempt_at: float
    last_error: str | None


# --------------------------------------------------------------------------- schema

#: extra virtual columns per table: (column, SQL expression over ``data``)
_TICKET_COLUMNS: tuple[tuple[str, str], ...] = (
    ("number", "json_extract(data, '$.number')"),
    ("title", "json_extract(data, '$.title')"),
    ("status", "json_extract(data, '$.status')"),
    ("status_category", "json_extract(data, '$.statusCategory')"),
    ("priority", "json_extract(data, '$.priority')"),
    (
        "priority_rank",
        "CASE json_extract(data, '$.priority') WHEN 'low' THEN 0 WHEN 'medium' THEN 1 "
        "WHEN 'high' THEN 2 WHEN 'critical' THEN 3 END",
    ),
    ("assignee_id", "json_extract(data, '$.assigneeId')"),
    ("team_id", "json_extract(data, '$.teamId')"),
    ("requester_id", "json_extract(data, '$.requesterId')"),
    ("site_id", "json_extract(data, '$.siteId')"),
    ("building_id", "json_extract(data, '$.buildingId')"),
    ("room_id", "json_extract(data, '$.roomId')"),
    ("created_at", "json_extract(data, '$.createdAt')"),
    ("updated_at", "json_extract(data, '$.updatedAt')"),
    ("response_due_at", "json_extract(data, '$.responseDueAt')"),
    ("resolution_due_at", "json_extract(data, '$.resolutionDueAt')"),
    ("response_breached", "json_extract(data, '$.responseBreachedAt') IS NOT NULL"),
    ("resolution_breached", "json_extract(data, '$.resolutionBreachedAt') IS NOT NULL"),
)
_CHILD_COLUMNS: tuple[tuple[str, str], ...] = (
    ("ticket_id", "json_extract(data, '$.ticketId')"),
    ("created_at", "json_extract(data, '$.createdAt')"),
)
_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "tickets": _TICKET_COLUMNS,
    **{table: _CHILD_COLUMNS for table in TICKET_CHILD_TABLES},
    "ticket_links": (*_CHILD_COLUMNS, ("blocker_id", "json_extract(data, '$.blockerId')")),
    "ticket_assets": (*_CHILD_COLUMNS, ("asset_id", "json_extract(data, '$.assetId')")),
    "assets": (
        ("asset_tag", "json_extract(data, '$.assetTag')"),
        ("serial_number", "json_extract(data, '$.serialNumber')"),
        ("room_id", "json_extract(data, '$.roomId')"),
    ),
    "stock_levels": (
        ("part_id", "json_extract(data, '$.partId')"),
        ("location_id", "json_extract(data, '$.locationId')"),
    ),
    "stock_movements": (
        ("ticket_id", "json_extract(data, '$.ticketId')"),
        ("part_id", "json_extract(data, '$.partId')"),
        ("occurred_at", "json_extract(data, '$.occurredAt')"),
    ),
    "sync_conflicts": (
        ("ticket_id", "json_extract(data, '$.ticketId')"),
        ("resolved_at", "json_extract(data, '$.resolvedAt')"),
    ),
    "team_members": (
        ("team_id", "json_extract(data, '$.teamId')"),
        ("user_id", "json_extract(data, '$.userId')"),
    ),
    "rooms": (("building_id", "json_extract(data, '$.buildingId')"),),
    "buildings": (("site_id", "json_extract(data, '$.siteId')"),),
}
_INDEXES: dict[str, tuple[tuple[str, ...], ...]] = {
    **{table: (("ticket_id", "created_at"),) for table in TICKET_CHILD_TABLES},
    "assets": (("asset_tag",), ("serial_number",), ("room_id",)),
    "stock_levels": (("part_id", "location_id"),),
    "stock_movements": (("ticket_id", "occurred_at"), ("part_id",)),
    "sync_conflicts": (("ticket_id",), ("resolved_at",)),
    "team_members": (("team_id",), ("user_id",)),
    "rooms": (("building_id",),),
    "buildings": (("site_id",),),
}
#: the ticket list's filters and sorts (added with ticket search, migration 2)
_TICKET_INDEXES: tuple[tuple[str, ...], ...] = (
    ("updated_at", "id"),
    ("created_at", "id"),
    ("status", "updated_at", "id"),
    ("status_category", "updated_at", "id"),
    ("priority_rank", "updated_at", "id"),
    ("assignee_id", "updated_at", "id"),
    ("team_id", "updated_at", "id"),
    ("requester_id", "updated_at", "id"),
    ("building_id", "updated_at", "id"),
    ("resolution_due_at", "id"),
    ("number", "id"),
)


def _m1_tables(conn: sqlite3.Connection) -> None:
    """The replica's tables: sync state, outbox, verdicts, queues, replicated rows."""
    statements = [
        """CREATE TABLE sync_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            device_id TEXT NOT NULL,
            cursor TEXT,
            next_seq INTEGER NOT NULL,
            user_id TEXT,
            server_url TEXT,
            protocol_version INTEGER NOT NULL,
            last_sync_at TEXT
        )""",
        """CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            device_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            ticket_id TEXT,
            at TEXT NOT NULL,
            payload TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL DEFAULT 0,
            last_error TEXT
        )""",
        "CREATE INDEX ix_outbox_ticket ON outbox (ticket_id)",
        """CREATE TABLE outbox_effects (
            seq INTEGER NOT NULL,
            tbl TEXT NOT NULL,
            row_id TEXT NOT NULL,
            op TEXT NOT NULL CHECK (op IN ('insert', 'set', 'add')),
            fields TEXT NOT NULL,
            PRIMARY KEY (tbl, row_id, seq, op)
        )""",
        "CREATE INDEX ix_outbox_effects_seq ON outbox_effects (seq)",
        """CREATE TABLE verdicts (
            mutation_id TEXT PRIMARY KEY,
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL,
            ticket_id TEXT,
            verdict TEXT NOT NULL,
            code TEXT,
            message TEXT,
            conflicts TEXT NOT NULL,
            mutation TEXT NOT NULL,
            judged_at TEXT NOT NULL,
            dismissed_at TEXT
        )""",
        "CREATE TABLE hydrate_queue (ticket_id TEXT PRIMARY KEY, queued_at TEXT NOT NULL)",
        "CREATE TABLE pending_removals (ticket_id TEXT PRIMARY KEY, recorded_at TEXT NOT NULL)",
        """CREATE TABLE unknown_rows (
            tbl TEXT NOT NULL,
            id TEXT NOT NULL,
            change_position INTEGER,
            deleted_at TEXT,
            data TEXT NOT NULL,
            PRIMARY KEY (tbl, id)
        )""",
    ]
    for table in KNOWN_TABLES:
        extra = "".join(
            f",\n    {name} GENERATED ALWAYS AS ({expr}) VIRTUAL"
            for name, expr in _COLUMNS.get(table, ())
        )
        statements.append(
            f"""CREATE TABLE {table} (
            id TEXT PRIMARY KEY,
            change_position INTEGER,
            deleted_at TEXT,
            data TEXT NOT NULL,
            server_data TEXT{extra}
        )"""
        )
        for columns in _INDEXES.get(table, ()):
            statements.append(
                f"CREATE INDEX ix_{table}_{'_'.join(columns)} ON {table} ({', '.join(columns)})"
            )
    for statement in statements:
        conn.execute(statement)


def _m2_ticket_search(conn: sqlite3.Connection) -> None:
    """Ticket search (FTS5 over number, title, description) and the ticket list's indexes.

    The FTS index is contentless and keyed by ``tickets.fts_id``, a stable integer (a
    rowid of a table with a text key may change on VACUUM); triggers keep it in step
    with every write of ``tickets``. Tickets already in the file are indexed here.
    """
    conn.execute("ALTER TABLE tickets ADD COLUMN fts_id INTEGER")
    conn.execute("UPDATE tickets SET fts_id = rowid")
    conn.execute("CREATE UNIQUE INDEX ix_tickets_fts_id ON tickets (fts_id)")
    conn.execute(
        "CREATE VIRTUAL TABLE tickets_fts USING fts5("
        "number, title, description, content='', tokenize='unicode61 remove_diacritics 2')"
    )
    values = "{0}.fts_id, {0}.number, {0}.title, json_extract({0}.data, '$.description')"
    conn.execute(
        "INSERT INTO tickets_fts (rowid, number, title, description) "  # noqa: S608
        f"SELECT {values.format('tickets')} FROM tickets"
    )
    insert = (
        "INSERT INTO tickets_fts (rowid, number, title, description) "  # noqa: S608
        f"VALUES ({values.format('new')});"
    )
    delete = (
        "INSERT INTO tickets_fts (tickets_fts, rowid, number, title, description) "  # noqa: S608
        f"VALUES ('delete', {values.format('old')});"
    )
    conn.execute(f"CREATE TRIGGER tickets_fts_ai AFTER INSERT ON tickets BEGIN {insert} END")
    conn.execute(f"CREATE TRIGGER tickets_fts_ad AFTER DELETE ON tickets BEGIN {delete} END")
    conn.execute(
        f"CREATE TRIGGER tickets_fts_au AFTER UPDATE OF data ON tickets BEGIN {delete} {insert} END"
    )
    for columns in _TICKET_INDEXES:
        conn.execute(
            f"CREATE INDEX ix_tickets_{'_'.join(columns)} ON tickets ({', '.join(columns)})"
        )


def _m3_upload_queue(conn: sqlite3.Connection) -> None:
    """The upload queue (guarantee 14): one row per file attached here, tied to the
    ``ticket.attach`` mutation that waits for its storage key by the mutation's id (a
    sequence number may be renumbered, after ``SEQUENCE_REUSED``; the id never is)."""
    conn.execute(
        """CREATE TABLE upload_queue (
            attachment_id TEXT PRIMARY KEY,
            mutation_id TEXT NOT NULL UNIQUE,
            ticket_id TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            file_name TEXT NOT NULL,
            mime_type TEXT NOT NULL,
            size_bytes INTEGER NOT NULL,
            state TEXT NOT NULL DEFAULT 'waiting'
                CHECK (state IN ('waiting', 'uploaded', 'failed')),
            storage_key TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL DEFAULT 0,
            last_error TEXT,
            queued_at TEXT NOT NULL,
            uploaded_at TEXT
        )"""
    )
    conn.execute("CREATE INDEX ix_upload_queue_state ON upload_queue (state, next_attempt_at)")


#: ordered schema steps; step n takes a file from ``user_version`` n-1 to n. Never edit
#: a released step: add one.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _m1_tables,
    _m2_ticket_search,
    _m3_upload_queue,
)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring the file forward to ``target``, one step per transaction; returns the version.

    Steps only add; the outbox, verdicts and queues are carried over untouched.
    """
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if current > SCHEMA_VERSION:
        raise ReplicaVersionError(
            f"This replica was written by a newer District Resolve (schema {current}; this "
            f"version knows up to {SCHEMA_VERSION}). Update the app to open it."
        )
    for version in range(current + 1, target + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[version - 1](conn)
            conn.execute(f"PRAGMA user_version = {version}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        current = version
    return current


def replica_path(data_dir: Path, server_url: str, user_id: str) -> Path:
    """Where the replica of one user on one server lives: one file per server and user."""
    server = re.sub(r"[^A-Za-z0-9.-]+", "_", server_url.split("://", 1)[-1]).strip("_")
    return Path(data_dir) / "replicas" / f"{server or 'server'}-{user_id}.sqlite3"


# --------------------------------------------------------------------------- helpers


def utc_now() -> str:
    """An instant in the form the replica stores and sends (``2026-12-06T09:00:00.000000Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _loads(text: str) -> Any:
    return json.loads(text)


def _table_name(table: str) -> str:
    if table not in KNOWN_TABLES:  # names are put into SQL: only the known ones
        raise ReplicaError(f"{table!r} is not a table of this replica")
    return table


def _overlay(base: Mapping[str, Any], effects: Iterable[tuple[str, Mapping[str, Any]]]) -> Row:
    """``base`` with pending effects replayed in sequence order."""
    out = dict(base)
    for op, fields in effects:
        if op == "set":
            out.update(fields)
        elif op == "add":
            for name, delta in fields.items():
                current = out.get(name)
                if isinstance(current, int) and not isinstance(current, bool):
                    out[name] = current + delta
    return out


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _fts_query(text: str) -> str | None:
    """Free text -> an FTS5 query: every word must match, each as a prefix."""
    words = [w.replace('"', "") for w in text.split()]
    terms = [f'"{w}"*' for w in words if w]
    return " ".join(terms) or None


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    if read_only:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
        )
    else:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = 10000")
    if not read_only:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            conn.close()
            raise ReplicaError(f"{path}: cannot switch the replica to WAL mode")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = OFF")
    return conn


# --------------------------------------------------------------------------- reads


class _Reads:
    """Queries shared by the store and its read-only readers."""

    path: Path
    _conn: sqlite3.Connection
    _lock: threading.RLock

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: every query inside sees the same committed state."""
        with self._lock:
            conn = self._conn
            if conn.in_transaction:  # a read inside a write of the same thread
                yield conn
                return
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    # ---------------------------------------------------------------- state

    def status(self) -> ReplicaStatus:
        with self._read() as conn:
            state = conn.execute("SELECT * FROM sync_state WHERE id = 1").fetchone()
            head = conn.execute(
                "SELECT o.next_attempt_at, o.last_error, u.state AS upload_state, "
                "u.next_attempt_at AS upload_at, u.last_error AS upload_error "
                "FROM outbox o LEFT JOIN upload_queue u ON u.mutation_id = o.id "
                "ORDER BY o.seq LIMIT 1"
            ).fetchone()
            # a file whose ticket was made here and not yet sent waits for the push of
            # that ticket (the outbox's time), not for a time of its own
            upload = conn.execute(
                "SELECT count(*) AS n, min(CASE WHEN t.id IS NULL OR t.change_position "
                "IS NOT NULL THEN u.next_attempt_at END) AS due FROM upload_queue u "
                "LEFT JOIN tickets t ON t.id = u.ticket_id WHERE u.state = 'waiting'"
            ).fetchone()
            upload_error = conn.execute(
                "SELECT last_error FROM upload_queue WHERE state = 'waiting' "
                "AND last_error IS NOT NULL ORDER BY next_attempt_at LIMIT 1"
            ).fetchone()
            next_attempt: float | None = None
            last_error: str | None = None
            if head is not None:
                next_attempt, last_error = head["next_attempt_at"], head["last_error"]
                if head["upload_state"] == "waiting":
                    # the first change waits for its file: it goes once the file is up
                    next_attempt = max(next_attempt, head["upload_at"])
                    last_error = head["upload_error"] or last_error
            counts = {
                row["verdict"]: row["n"]
                for row in conn.execute(
                    "SELECT verdict, count(*) AS n FROM verdicts WHERE dismissed_at IS NULL "
                    "GROUP BY verdict"
                )
            }

            def count(sql: str) -> int:
                return int(conn.execute(sql).fetchone()[0])

            return ReplicaStatus(
                device_id=state["device_id"],
                user_id=state["user_id"],
                server_url=state["server_url"],
                cursor=state["cursor"],
                last_sync_at=state["last_sync_at"],
                pending=count("SELECT count(*) FROM outbox"),
                next_attempt_at=next_attempt,
                last_error=last_error,
                open_conflicts=count(
                    "SELECT count(*) FROM sync_conflicts WHERE resolved_at IS NULL"
                ),
                rejections=counts.get(Verdict.REJECTED.value, 0),
                conflicts=counts.get(Verdict.CONFLICT.value, 0),
                hydrate_queued=count("SELECT count(*) FROM hydrate_queue"),
                pending_removals=count("SELECT count(*) FROM pending_removals"),
                uploads_waiting=int(upload["n"]),
                next_upload_at=upload["due"],
                upload_error=upload_error[0] if upload_error else None,
            )

    @property
    def device_id(self) -> str:
        with self._read() as conn:
            return str(conn.execute("SELECT device_id FROM sync_state").fetchone()[0])

    @property
    def cursor(self) -> str | None:
        with self._read() as conn:
            value = conn.execute("SELECT cursor FROM sync_state").fetchone()[0]
            return str(value) if value is not None else None

    def hydrate_queue(self, limit: int = 100) -> list[str]:
        """Ticket ids to hydrate, oldest first (at most ``limit``: one hydrate request)."""
        with self._read() as conn:
            return [
                r[0]
                for r in conn.execute(
                    "SELECT ticket_id FROM hydrate_queue ORDER BY queued_at, ticket_id LIMIT ?",
                    (limit,),
                )
            ]

    def pending_removals(self) -> list[str]:
        with self._read() as conn:
            return [r[0] for r in conn.execute("SELECT ticket_id FROM pending_removals")]

    def outbox(self) -> list[PendingMutation]:
        """Every mutation waiting for a verdict, in sequence order."""
        with self._read() as conn:
            return [_pending(r) for r in conn.execute("SELECT * FROM outbox ORDER BY seq")]

    def verdicts(self, *, include_dismissed: bool = False) -> list[StoredVerdict]:
        """Rejections and conflicts for the user to read, newest first."""
        sql = "SELECT * FROM verdicts"
        if not include_dismissed:
            sql += " WHERE dismissed_at IS NULL"
        with self._read() as conn:
            return [
                StoredVerdict(
                    mutation_id=r["mutation_id"],
                    seq=r["seq"],
                    kind=r["kind"],
                    ticket_id=r["ticket_id"],
                    verdict=Verdict(r["verdict"]),
                    code=r["code"],
                    message=r["message"],
                    conflicts=tuple(_loads(r["conflicts"])),
                    mutation=_loads(r["mutation"]),
                    judged_at=r["judged_at"],
                    dismissed=r["dismissed_at"] is not None,
                )
                for r in conn.execute(sql + " ORDER BY seq DESC")
            ]

    # ---------------------------------------------------------------- rows

    def row(self, table: str, row_id: str) -> ReplicaRow | None:
        """One row of any table, also of a table this version does not know."""
        with self._read() as conn:
            if table not in KNOWN_TABLES:
                r = conn.execute(
                    "SELECT id, change_position, data FROM unknown_rows WHERE tbl = ? AND id = ?",
                    (table, row_id),
                ).fetchone()
                return _row(table, r) if r else None
            r = conn.execute(
                f"SELECT id, change_position, data, {_pending_sql(table)} AS pending "  # noqa: S608
                f"FROM {table} WHERE id = ?",
                (row_id,),
            ).fetchone()
            return _row(table, r) if r else None

    def rows(self, table: str) -> list[ReplicaRow]:
        """Every row of a table, by id (for lookups: users, teams, sites, parts, …)."""
        with self._read() as conn:
            if table not in KNOWN_TABLES:
                found = conn.execute(
                    "SELECT id, change_position, data FROM unknown_rows WHERE tbl = ? ORDER BY id",
                    (table,),
                )
            else:
                found = conn.execute(
                    f"SELECT id, change_position, data, {_pending_sql(table)} AS pending "  # noqa: S608
                    f"FROM {table} ORDER BY id"
                )
            return [_row(table, r) for r in found]

    def ticket_query(self, **filters: Unpack[TicketFilters]) -> tuple[str, list[Any], str]:
        """The WHERE clause, its parameters and the ORDER BY of a ticket list (for
        ``tickets``, ``count_tickets`` and the query-plan test)."""
        status = filters.get("status")
        status_category = filters.get("status_category")
        priority = filters.get("priority")
        assignee_id = filters.get("assignee_id")
        team_id = filters.get("team_id")
        requester_id = filters.get("requester_id")
        building_id = filters.get("building_id")
        search = filters.get("search")
        breached = filters.get("breached")
        due_before = filters.get("due_before")
        sort = filters.get("sort") or "-updatedAt"
        where: list[str] = []
        params: list[Any] = []

        def one_of(column: str, value: str | Sequence[str] | None) -> None:
            if value is None:
                return
            values = [value] if isinstance(value, str) else list(value)
            where.append(f"{column} IN ({', '.join('?' * len(values))})")
            params.extend(values)

        one_of("status", status)
        one_of("status_category", status_category)
        one_of("priority", priority)
        for column, value in (
            ("assignee_id", assignee_id),
            ("team_id", team_id),
            ("requester_id", requester_id),
            ("building_id", building_id),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if breached is not None:
            where.append(
                "(response_breached OR resolution_breached)"
                if breached
                else "NOT (response_breached OR resolution_breached)"
            )
        if due_before is not None:
            where.append("resolution_due_at < ?")
            params.append(due_before)
        if search is not None and search.strip():
            query: str = _fts_query(search) or '""'
            where.append("fts_id IN (SELECT rowid FROM tickets_fts WHERE tickets_fts MATCH ?)")
            params.append(query)
        descending = sort.startswith("-")
        sort_column = _TICKET_SORTS.get(sort.lstrip("-"))
        if sort_column is None:
            raise ValueError(f"cannot sort tickets by {sort!r}; use one of {sorted(_TICKET_SORTS)}")
        direction = "DESC" if descending else "ASC"
        order = ", ".join(f"{column} {direction}" for column in (*sort_column, "id"))
        return (" AND ".join(where) or "1"), params, order

    def ticket_list_sql(
        self, *, limit: int = 50, offset: int = 0, **filters: Unpack[TicketFilters]
    ) -> tuple[str, list[Any]]:
        """The exact statement ``tickets`` runs (for the query-plan test and debugging)."""
        where, params, order = self.ticket_query(**filters)
        sql = (
            f"SELECT id, change_position, data, {_pending_sql('tickets')} AS pending "  # noqa: S608
            f"FROM tickets WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?"
        )
        return sql, [*params, limit, offset]

    def tickets(
        self, *, limit: int = 50, offset: int = 0, **filters: Unpack[TicketFilters]
    ) -> list[ReplicaRow]:
        """A page of the ticket list. ``sort``: ``updatedAt``, ``createdAt``, ``priority``,
        ``resolutionDueAt``, ``number``, ``status`` or ``buildingId``, ``-`` first for
        descending. Filters take one value or a list; ``search`` matches words of number,
        title, description (each as a prefix); ``breached`` keeps tickets whose response
        or resolution target was (or was not) missed; ``due_before`` those whose
        resolution is due before that time (a wire timestamp)."""
        sql, params = self.ticket_list_sql(limit=limit, offset=offset, **filters)
        with self._read() as conn:
            return [_row("tickets", r) for r in conn.execute(sql, params)]

    def count_tickets(self, **filters: Unpack[TicketFilters]) -> int:
        where, params, _ = self.ticket_query(**filters)
        with self._read() as conn:
            return int(
                conn.execute(f"SELECT count(*) FROM tickets WHERE {where}", params).fetchone()[0]  # noqa: S608
            )

    def ticket(self, ticket_id: str) -> TicketDetail | None:
        """One ticket with its timeline, attachments, links, assets, parts used, open
        conflicts and pending mutations, read in one snapshot."""
        with self._read() as conn:
            found = conn.execute(
                f"SELECT id, change_position, data, {_pending_sql('tickets')} AS pending "  # noqa: S608
                "FROM tickets WHERE id = ?",
                (ticket_id,),
            ).fetchone()
            if found is None:
                return None

            def children(table: str, order: str = "created_at, id") -> list[ReplicaRow]:
                # a row a pending edit removed (an asset unlinked here) carries
                # ``deletedAt`` until the server's tombstone deletes it: not shown
                return [
                    _row(table, r)
                    for r in conn.execute(
                        f"SELECT id, change_position, data, {_pending_sql(table)} AS pending "  # noqa: S608
                        f"FROM {table} WHERE ticket_id = ? "
                        f"AND json_extract(data, '$.deletedAt') IS NULL ORDER BY {order}",
                        (ticket_id,),
                    )
                ]

            timeline = [
                TimelineEntry("comment", str(r.data.get("createdAt") or ""), r)
                for r in children("ticket_comments")
            ] + [
                TimelineEntry("event", str(r.data.get("createdAt") or ""), r)
                for r in children("ticket_events")
            ]
            timeline.sort(key=lambda e: (e.at, e.row.id))
            links = children("ticket_assets")
            asset_ids = [str(r.data.get("assetId")) for r in links]
            assets = [
                _row("assets", r)
                for chunk in _chunks(asset_ids)
                for r in conn.execute(
                    "SELECT id, change_position, data, 0 AS pending FROM assets "  # noqa: S608
                    f"WHERE id IN ({', '.join('?' * len(chunk))}) ORDER BY id",
                    chunk,
                )
            ]
            return TicketDetail(
                ticket=_row("tickets", found),
                timeline=tuple(timeline),
                attachments=tuple(children("ticket_attachments")),
                links=tuple(children("ticket_links")),
                assets=tuple(assets),
                part_movements=tuple(children("stock_movements", "occurred_at, id")),
                open_conflicts=tuple(
                    r for r in children("sync_conflicts", "id") if r.data.get("resolvedAt") is None
                ),
                pending=tuple(
                    _pending(r)
                    for r in conn.execute(
                        "SELECT * FROM outbox WHERE ticket_id = ? ORDER BY seq", (ticket_id,)
                    )
                ),
                asset_links=tuple(links),
            )

    def conflicts(self) -> list[ReplicaRow]:
        """The ``sync_conflicts`` rows still to show: those open on the server, and those
        resolved here whose ``conflict.resolve`` waits in the outbox (``pending``), oldest
        first."""
        with self._read() as conn:
            return [
                _row("sync_conflicts", r)
                for r in conn.execute(
                    "SELECT id, change_position, data, "  # noqa: S608
                    f"{_pending_sql('sync_conflicts')} AS pending FROM sync_conflicts "
                    "WHERE resolved_at IS NULL OR id IN "
                    "(SELECT row_id FROM outbox_effects WHERE tbl = 'sync_conflicts') "
                    "ORDER BY json_extract(data, '$.createdAt'), id"
                )
            ]

    def stock_level(self, part_id: str, location_id: str) -> ReplicaRow | None:
        with self._read() as conn:
            r = conn.execute(
                f"SELECT id, change_position, data, {_pending_sql('stock_levels')} AS pending "  # noqa: S608
                "FROM stock_levels WHERE part_id = ? AND location_id = ?",
                (part_id, location_id),
            ).fetchone()
            return _row("stock_levels", r) if r else None

    # ---------------------------------------------------------------- files

    @property
    def files_dir(self) -> Path:
        """The content store: files by SHA-256, next to the replica file (folder 0700,
        files 0600), e.g. ``replicas/<server>-<user>.files/<sha256>``."""
        return self.path.with_name(f"{self.path.stem}.files")

    def content_path(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):
            raise ReplicaError(f"{sha256!r} is not a SHA-256")
        return self.files_dir / sha256

    def attachment_path(self, attachment_id: str) -> Path | None:
        """The attachment's file in the content store, or None while it is not on this
        computer (``SyncEngine.fetch_attachment`` downloads it)."""
        found = self.row("ticket_attachments", attachment_id)
        if found is None:
            raise ReplicaError("That attachment is not in the replica")
        sha256 = str(found.data.get("sha256") or "")
        if not _SHA256.fullmatch(sha256):
            return None
        path = self.content_path(sha256)
        return path if path.is_file() else None

    def uploads(self) -> list[UploadJob]:
        """Every file of the upload queue, in the order its mutations were queued."""
        with self._read() as conn:
            return [
                _upload(r)
                for r in conn.execute(
                    "SELECT u.* FROM upload_queue u LEFT JOIN outbox o ON o.id = u.mutation_id "
                    "ORDER BY o.seq, u.queued_at"
                )
            ]

    def due_uploads(self, *, now: float | None = None) -> list[UploadJob]:
        """Files waiting to be uploaded whose retry delay has passed, oldest first."""
        moment = time.time() if now is None else now
        with self._read() as conn:
            return [
                _upload(r)
                for r in conn.execute(
                    "SELECT u.* FROM upload_queue u LEFT JOIN outbox o ON o.id = u.mutation_id "
                    "WHERE u.state = 'waiting' AND u.next_attempt_at <= ? "
                    "ORDER BY o.seq, u.queued_at",
                    (moment,),
                )
            ]

    def verify_digest(self, table: str) -> tuple[int, str]:
        """Row count and SHA-256 over the sorted ``id:changePosition`` lines of the rows
        the server sent (rows made here and not yet sent back are left out), to compare
        with ``POST /api/sync/verify``."""
        with self._read() as conn:
            if table in KNOWN_TABLES:
                found = conn.execute(
                    f"SELECT id, change_position FROM {table} "  # noqa: S608
                    "WHERE change_position IS NOT NULL ORDER BY id"
                )
            else:
                found = conn.execute(
                    "SELECT id, change_position FROM unknown_rows "
                    "WHERE tbl = ? AND change_position IS NOT NULL ORDER BY id",
                    (table,),
                )
            digest = hashlib.sha256()
            count = 0
            for r in found:
                digest.update(f"{r[0]}:{r[1]}\n".encode())
                count += 1
            return count, digest.hexdigest()


class TicketFilters(TypedDict, total=False):
    """What a ticket list may be narrowed and ordered by (``tickets``,
    ``count_tickets``, ``ticket_query``): each filter takes one value or a list."""

    status: str | Sequence[str] | None
    status_category: str | Sequence[str] | None
    priority: str | Sequence[str] | None
    assignee_id: str | None
    team_id: str | None
    requester_id: str | None
    building_id: str | None
    search: str | None
    breached: bool | None
    due_before: str | None
    sort: str


#: sort name -> columns (each with an index that ends with them, then ``id``)
_TICKET_SORTS: dict[str, tuple[str, ...]] = {
    "updatedAt": ("updated_at",),
    "createdAt": ("created_at",),
    "priority": ("priority_rank", "updated_at"),
    "resolutionDueAt": ("resolution_due_at",),
    "number": ("number",),
    "status": ("status", "updated_at"),
    "buildingId": ("building_id", "updated_at"),
}


def _pending_sql(table: str) -> str:
    if table == "tickets":
        return "EXISTS (SELECT 1 FROM outbox o WHERE o.ticket_id = tickets.id)"
    return (
        f"EXISTS (SELECT 1 FROM outbox_effects e WHERE e.tbl = '{table}' AND e.row_id = {table}.id)"  # noqa: S608
    )


def _row(table: str, r: sqlite3.Row) -> ReplicaRow:
    keys = r.keys()
    return ReplicaRow(
        table=table,
        id=r["id"],
        data=_loads(r["data"]),
        change_position=r["change_position"],
        pending=bool(r["pending"]) if "pending" in keys else False,
    )


def _upload(r: sqlite3.Row) -> UploadJob:
    return UploadJob(
        attachment_id=r["attachment_id"],
        mutation_id=r["mutation_id"],
        ticket_id=r["ticket_id"],
        sha256=r["sha256"],
        file_name=r["file_name"],
        mime_type=r["mime_type"],
        size_bytes=r["size_bytes"],
        state=r["state"],
        storage_key=r["storage_key"],
        attempts=r["attempts"],
        next_attempt_at=r["next_attempt_at"],
        last_error=r["last_error"],
    )


def _pending(r: sqlite3.Row) -> PendingMutation:
    wire = {"id": r["id"], "seq": r["seq"], "kind": r["kind"], "at": r["at"]}
    wire.update(_loads(r["payload"]))
    return PendingMutation(
        seq=r["seq"],
        id=r["id"],
        kind=r["kind"],
        ticket_id=r["ticket_id"],
        at=r["at"],
        attempts=r["attempts"],
        next_attempt_at=r["next_attempt_at"],
        last_error=r["last_error"],
        wire=wire,
    )


class ReplicaReader(_Reads):
    """A read-only connection for one reader thread (a view model, the CLI's listing)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._conn = _connect(self.path, read_only=True)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ReplicaReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- content store


class ContentWriter:
    """One file entering the content store: written to a private temporary file, hashed
    on the way, and moved to its SHA-256 name by ``commit``."""

    def __init__(self, folder: Path, expect_sha256: str | None = None) -> None:
        if not folder.exists():
            folder.mkdir(mode=0o700, parents=True)
            os.chmod(folder, 0o700)
        self.folder = folder
        self.expect_sha256 = expect_sha256
        self.size = 0
        self._digest = hashlib.sha256()
        fd, temp = tempfile.mkstemp(dir=folder, prefix=".part-")  # mode 0600
        self._temp = Path(temp)
        self._out = os.fdopen(fd, "wb")
        self._done = False

    def write(self, chunk: bytes) -> None:
        self._digest.update(chunk)
        self.size += len(chunk)
        self._out.write(chunk)

    def commit(self) -> tuple[str, int]:
        """Move the file to its name; returns its SHA-256 and size."""
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        sha256 = self._digest.hexdigest()
        if self.expect_sha256 and sha256 != self.expect_sha256:
            self.abort()
            raise ReplicaError(
                f"The file received is not the one expected (SHA-256 {sha256}, "
                f"expected {self.expect_sha256}); nothing was kept"
            )
        target = self.folder / sha256
        if target.exists():
            self._temp.unlink(missing_ok=True)
        else:
            os.replace(self._temp, target)
        self._done = True
        return sha256, self.size

    def abort(self) -> None:
        if not self._out.closed:
            self._out.close()
        self._temp.unlink(missing_ok=True)
        self._done = True

    def __enter__(self) -> ContentWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._done:
            self.abort()


# --------------------------------------------------------------------------- the store


class Replica(_Reads):
    """The replica file and its one writer. Open with ``Replica.open(path)``."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn
        self._lock = threading.RLock()
        #: jitter of retry delays (replace with a seeded ``random.Random`` in tests)
        self.rng: random.Random = random.Random()  # noqa: S311 - jitter, not secrecy

    # ---------------------------------------------------------------- lifecycle

    @classmethod
    def open(
        cls, path: Path | str, *, server_url: str | None = None, user_id: str | None = None
    ) -> Replica:
        """Open the replica at ``path``, creating it (file 0600, new folder 0700) and
        migrating it forward as needed. A device id is made on first open.

        ``server_url`` and ``user_id`` are recorded on first use; a file that belongs to
        another user or server is refused (one file per server and user).
        """
        path = Path(path)
        folder = path.parent
        if not folder.exists():
            folder.mkdir(mode=0o700, parents=True)
            os.chmod(folder, 0o700)
        if not path.exists():
            fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
            os.close(fd)
        os.chmod(path, 0o600)  # SQLite gives the -wal and -shm files the same mode
        conn = _connect(path, read_only=False)
        try:
            migrate(conn)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT OR IGNORE INTO sync_state (id, device_id, next_seq, protocol_version) "
                "VALUES (1, ?, 1, ?)",
                (str(uuid7()), PROTOCOL_VERSION),
            )
            state = conn.execute("SELECT user_id, server_url FROM sync_state").fetchone()
            for column, given in (("user_id", user_id), ("server_url", server_url)):
                if given is None:
                    continue
                if state[column] is None:
                    conn.execute(f"UPDATE sync_state SET {column} = ?", (given,))  # noqa: S608
                elif state[column] != given:
                    raise ReplicaError(
                        f"{path} is the replica of {column.replace('_', ' ')} {state[column]}, "
                        f"not {given}"
                    )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()
            raise
        return cls(path, conn)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Replica:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reader(self) -> ReplicaReader:
        """A read-only connection for another thread; close it when done."""
        return ReplicaReader(self.path)

    def wipe(self) -> None:
        """Carry out a remote wipe: close and delete the replica file (and its WAL) and
        the attachments' content store."""
        self.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        shutil.rmtree(self.files_dir, ignore_errors=True)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it commits, or none of it."""
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # ---------------------------------------------------------------- pull side

    def apply_page(
        self, page: Mapping[str, Any] | PullPage, *, synced_at: str | None = None
    ) -> PageApplied:
        """Apply one pull answer (its ``data``) and its cursor in one transaction.

        Rows are upserted by id (a row older than the one held is skipped), tombstones
        delete, removals delete the row (a ticket with its children, or later if edits
        of it are pending), ``scope`` replaces the set of tickets held, tickets the
        replica did not hold are queued for hydration. Applying a page twice changes
        nothing. A ``wipe`` page applies nothing: the caller wipes.
        """
        parsed = page if isinstance(page, PullPage) else PullPage.from_wire(page)
        changes = Changes()
        if parsed.wipe:
            return PageApplied(changes, self.cursor, False, True, 0)
        with self._write() as conn:
            cursor_before = conn.execute("SELECT cursor FROM sync_state").fetchone()[0]
            incoming = [
                str(row["id"])
                for tr in parsed.changes
                if tr.table == "tickets"
                for row in tr.rows
                if not row.get("deletedAt")
            ]
            held_before = self._existing(conn, "tickets", incoming)
            if parsed.last_sequence:
                next_seq = int(conn.execute("SELECT next_seq FROM sync_state").fetchone()[0])
                if parsed.last_sequence >= next_seq:
                    # The server judged numbers this replica has not handed out: it was
                    # restored from a backup. Number what is pending after the server's.
                    self._renumber(conn, parsed.last_sequence, changes)
                else:
                    self._settle_applied(conn, parsed.last_sequence, changes)
            self._write_changes(conn, parsed.changes, changes)
            queued = 0
            # A ticket the replica did not hold arrived without the children that
            # changed below the cursor: fetch them all. (A page of a first download,
            # marked complete, or pulled from no cursor carries everything.)
            if cursor_before is not None and not parsed.complete:
                for ticket_id in incoming:
                    if ticket_id not in held_before:
                        queued += self._queue_hydration(conn, ticket_id)
            if incoming:
                self._unmark_removals(conn, incoming)
            for removal in parsed.removals:
                for row_id in removal.ids:
                    self._remove(conn, removal.table, row_id, changes)
            if parsed.scope_tickets is not None:
                queued += self._apply_scope(conn, parsed.scope_tickets, changes)
            conn.execute(
                "UPDATE sync_state SET cursor = ?, last_sync_at = ?",
                (parsed.cursor, synced_at or utc_now()),
            )
            changes.state = True
        return PageApplied(changes, parsed.cursor, parsed.has_more, False, queued)

    def reset_cursor(self) -> Changes:
        """Forget the cursor (after 410 ``RESYNC_REQUIRED``): the next pull downloads the
        whole scope again. Rows, the outbox, verdicts and queues are kept."""
        with self._write() as conn:
            conn.execute("UPDATE sync_state SET cursor = NULL")
        return Changes(state=True)

    def retain_only(self, received: Mapping[str, Iterable[str]]) -> Changes:
        """End a complete download from no cursor (a resync, a verify repair): ``received``
        holds, per table, the ids it brought, which is everything the scope holds, so a
        row the server sent earlier (it has a change position) and did not send again has
        left the scope or was deleted while its tombstone was purged: it goes. Rows made
        here and not sent back, and rows that pending edits touch, stay; a ticket with
        pending mutations is removed after their verdicts, as for removals."""
        wanted = {table: set(ids) for table, ids in received.items()}
        changes = Changes()
        with self._write() as conn:
            touched = {(r[0], r[1]) for r in conn.execute("SELECT tbl, row_id FROM outbox_effects")}
            for table in KNOWN_TABLES:
                keep = wanted.get(table, set())
                stale = [
                    r[0]
                    for r in conn.execute(
                        f"SELECT id FROM {table} WHERE change_position IS NOT NULL"  # noqa: S608
                    )
                    # a ticket with pending edits is only marked (``_remove``)
                    if r[0] not in keep and (table == "tickets" or (table, r[0]) not in touched)
                ]
                for row_id in stale:
                    self._remove(conn, table, row_id, changes)
            for table, row_id in conn.execute(
                "SELECT tbl, id FROM unknown_rows WHERE change_position IS NOT NULL"
            ).fetchall():
                if row_id not in wanted.get(table, set()):
                    self._remove(conn, table, row_id, changes)
        return changes

    def apply_hydration(
        self, changes: Sequence[Mapping[str, Any]] | Mapping[str, Any], ticket_ids: Iterable[str]
    ) -> Changes:
        """Write a hydrate answer (its ``changes``, or the whole ``data``) and clear the
        requested ids from the hydrate queue, in one transaction. Ids the server left out
        (the caller may no longer see them) are cleared too: a removal follows in a pull."""
        if isinstance(changes, Mapping):
            changes = changes.get("changes") or []
        parsed = parse_changes(list(changes))
        result = Changes()
        requested = list(ticket_ids)
        with self._write() as conn:
            self._write_changes(conn, parsed, result)
            for chunk in _chunks(requested):
                conn.execute(
                    f"DELETE FROM hydrate_queue WHERE ticket_id IN ({', '.join('?' * len(chunk))})",  # noqa: S608
                    chunk,
                )
            result.state = True
        return result

    # ---------------------------------------------------------------- push side

    def pending_mutations(
        self, limit: int = MAX_PUSH, *, now: float | None = None
    ) -> list[dict[str, Any]]:
        """The mutations to push now, as wire dicts, in sequence order.

        Only a due *prefix* of the outbox is returned: a mutation never goes before an
        earlier one (the server takes ``seq <= lastSequence`` as a replay), so a
        mutation waiting out its retry delay holds back the ones after it.
        """
        moment = time.time() if now is None else now
        result: list[dict[str, Any]] = []
        with self._read() as conn:
            for r in conn.execute(
                "SELECT o.*, u.state AS upload_state FROM outbox o "
                "LEFT JOIN upload_queue u ON u.mutation_id = o.id ORDER BY o.seq LIMIT ?",
                (limit,),
            ):
                if r["next_attempt_at"] > moment or r["upload_state"] == "waiting":
                    # a ``ticket.attach`` whose file is not uploaded yet holds back the
                    # mutations after it (never a later sequence before an earlier one)
                    break
                result.append(dict(_pending(r).wire))
        return result

    def push_request(
        self, limit: int = MAX_PUSH, *, now: float | None = None
    ) -> dict[str, Any] | None:
        """The body of ``POST /api/sync/push`` for the due mutations, or None."""
        mutations = self.pending_mutations(limit, now=now)
        if not mutations:
            return None
        sent = datetime.fromtimestamp(time.time() if now is None else now, UTC)
        return {
            "protocolVersion": PROTOCOL_VERSION,
            "deviceId": self.device_id,
            "sentAt": sent.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "mutations": mutations,
        }

    def record_failure(
        self,
        seqs: Iterable[int],
        error: str,
        *,
        now: float | None = None,
        retry_after: float | None = None,
    ) -> float | None:
        """A push of these mutations got no verdict (no answer, 5xx, 429): schedule the
        retry with exponential backoff (``retry_after`` seconds at least, from a 429's
        ``Retry-After``). Returns when the first of them is due again (epoch seconds)."""
        moment = time.time() if now is None else now
        wanted = list(seqs)
        with self._write() as conn:
            found = [
                conn.execute("SELECT attempts FROM outbox WHERE seq = ?", (seq,)).fetchone()
                for seq in wanted
            ]
            attempts = [int(r[0]) + 1 for r in found if r is not None]
            if not attempts:
                return None
            # one push failed: its mutations wait together, as long as the most-tried says
            delay = backoff_delay(max(attempts), self.rng)
            if retry_after is not None:
                delay = max(delay, retry_after)
            for seq in wanted:
                conn.execute(
                    "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, "
                    "last_error = ? WHERE seq = ?",
                    (moment + delay, error, seq),
                )
        return moment + delay

    def record_results(self, results: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> Changes:
        """Apply a push answer (its ``results``, or the whole ``data``) in one transaction.

        Judged mutations leave the outbox; rejections and conflicts are kept for the user
        (``verdicts``); an applied edit stays shown, a rejected one is taken back (rows it
        created here are deleted); the rows the server returned are written with the
        still-pending edits on top; then tickets whose removal waited for these verdicts
        are removed. A result for a mutation no longer in the outbox is ignored.
        """
        if isinstance(results, Mapping):
            results = results.get("results") or []
        if not isinstance(results, list | tuple):
            raise WireError("results must be a list")
        parsed = [PushResult.from_wire(r) for r in results]
        changes = Changes()
        with self._write() as conn:
            touched: dict[tuple[str, str], None] = {}
            doomed: list[tuple[str, str]] = []
            for result in parsed:
                entry = conn.execute("SELECT * FROM outbox WHERE id = ?", (result.id,)).fetchone()
                if entry is None or result.code == ErrorCode.SEQUENCE_REUSED:
                    continue  # not judged: renumbered (``renumber_after``) and sent again
                seq = entry["seq"]
                effects = conn.execute(
                    "SELECT tbl, row_id, op, fields FROM outbox_effects WHERE seq = ?", (seq,)
                ).fetchall()
                if result.verdict is Verdict.REJECTED:
                    doomed.extend((e["tbl"], e["row_id"]) for e in effects if e["op"] == "insert")
                else:
                    kept = {str(c.get("field")) for c in result.conflicts}
                    self._bake(conn, effects, kept)
                    # a row the server keeps under its own id (an asset link): the
                    # server's copy comes with the answer's rows or the next pull
                    doomed.extend(
                        (e["tbl"], e["row_id"])
                        for e in effects
                        if e["op"] == "insert" and _loads(e["fields"]).get("replaced")
                    )
                upload = conn.execute(
                    "SELECT file_name, state, last_error FROM upload_queue WHERE mutation_id = ?",
                    (entry["id"],),
                ).fetchone()
                message = result.message
                if upload is not None and upload["state"] == "failed":
                    message = _upload_refusal(upload["file_name"], upload["last_error"])
                if result.verdict in (Verdict.REJECTED, Verdict.CONFLICT):
                    mutation = _pending(entry).wire
                    conn.execute(
                        "INSERT OR REPLACE INTO verdicts (mutation_id, seq, kind, ticket_id, "
                        "verdict, code, message, conflicts, mutation, judged_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            entry["id"],
                            seq,
                            entry["kind"],
                            entry["ticket_id"],
                            result.verdict.value,
                            result.code,
                            message,
                            _dumps(list(result.conflicts)),
                            _dumps(mutation),
                            utc_now(),
                        ),
                    )
                    changes.verdicts = True
                conn.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
                conn.execute("DELETE FROM outbox_effects WHERE seq = ?", (seq,))
                conn.execute("DELETE FROM upload_queue WHERE mutation_id = ?", (entry["id"],))
                changes.outbox = True
                for e in effects:
                    touched[(e["tbl"], e["row_id"])] = None
            for table, row_id in doomed:
                found = conn.execute(
                    f"SELECT change_position FROM {_table_name(table)} WHERE id = ?",  # noqa: S608
                    (row_id,),
                ).fetchone()
                if found is not None and found[0] is None:  # never reached the server
                    self._delete_row(conn, table, row_id, changes)
                    touched.pop((table, row_id), None)
            for table, row_id in touched:
                self._rebuild(conn, table, row_id, changes)
            for result in parsed:
                self._write_changes(conn, result.rows, changes)
            for (ticket_id,) in conn.execute("SELECT ticket_id FROM pending_removals").fetchall():
                self._remove(conn, "tickets", ticket_id, changes)
        return changes

    def dismiss_verdict(self, mutation_id: str) -> Changes:
        """The user has read a rejection or conflict: hide it from ``verdicts()``."""
        with self._write() as conn:
            conn.execute(
                "UPDATE verdicts SET dismissed_at = ? "
                "WHERE mutation_id = ? AND dismissed_at IS NULL",
                (utc_now(), mutation_id),
            )
        return Changes(verdicts=True)

    # ---------------------------------------------------------------- local edits

    def update_ticket(self, ticket_id: str, changes: Mapping[str, Any]) -> Changes:
        """Change ticket fields (wire names: ``priority``, ``assigneeId``, …).

        ``base`` is the server's copy of each field (see the module docstring), not an
        earlier pending edit. Fields already at the new value are left out; nothing to
        change queues nothing.
        """
        unknown = set(changes) - UPDATABLE_TICKET_FIELDS
        if unknown:
            raise EditRefused(
                ErrorCode.VALIDATION_ERROR,
                f"These ticket fields cannot be changed offline: {', '.join(sorted(unknown))}",
            )
        result = Changes()
        with self._write() as conn:
            shown, server_copy = self._ticket_copies(conn, ticket_id)
            delta = {name: value for name, value in changes.items() if shown.get(name) != value}
            if not delta:
                return result
            base = {name: server_copy.get(name) for name in delta}
            self._enqueue(
                conn,
                MutationKind.TICKET_UPDATE,
                ticket_id,
                {"ticketId": ticket_id, "base": base, "changes": delta},
                [("tickets", ticket_id, "set", delta)],
                result,
            )
        return result

    def transition_ticket(
        self,
        ticket_id: str,
        to: str,
        note: str | None = None,
        resolution_notes: str | None = None,
        *,
        capacities: Iterable[Capacity] | None = None,
    ) -> Changes:
        """Move a ticket to status ``to`` if ``common.workflow`` allows it from the status
        shown (with ``capacities`` when given; else any person's). The server checks again
        against its current status when the mutation arrives."""
        result = Changes()
        with self._write() as conn:
            shown, _ = self._ticket_copies(conn, ticket_id)
            try:
                current = TicketStatus(str(shown.get("status")))
                target = TicketStatus(to)
            except ValueError as exc:
                raise EditRefused(ErrorCode.VALIDATION_ERROR, f"Unknown status: {exc}") from exc
            try:
                check(current, target, _ANY_PERSON if capacities is None else capacities)
            except WorkflowError as exc:
                raise EditRefused(exc.code, exc.message) from exc
            shown_fields: dict[str, Any] = {
                "status": target.value,
                "statusCategory": category_of(target),
            }
            if resolution_notes is not None:
                shown_fields["resolutionNotes"] = resolution_notes
            self._enqueue(
                conn,
                MutationKind.TICKET_TRANSITION,
                ticket_id,
                {
                    "ticketId": ticket_id,
                    "from": current.value,
                    "to": target.value,
                    "note": note,
                    "resolutionNotes": resolution_notes,
                },
                [("tickets", ticket_id, "set", shown_fields)],
                result,
            )
        return result

    def add_comment(
        self,
        ticket_id: str,
        body: str,
        internal: bool = False,
        minutes_worked: int | None = None,
    ) -> Changes:
        """Add a comment (``internal``: a staff note), optionally logging time."""
        if not body.strip():
            raise EditRefused(ErrorCode.VALIDATION_ERROR, "A comment needs some text")
        if minutes_worked is not None and minutes_worked < 0:
            raise EditRefused(ErrorCode.VALIDATION_ERROR, "Minutes worked cannot be negative")
        result = Changes()
        with self._write() as conn:
            self._ticket_copies(conn, ticket_id)
            comment_id = str(uuid7())
            now = utc_now()
            row: Row = {
                "id": comment_id,
                "ticketId": ticket_id,
                "authorId": self._user_id(conn),
                "body": body,
                "isInternal": internal,
                "mentionIds": [],
                "minutesWorked": minutes_worked or 0,
                "mergedFromId": None,
                "createdAt": now,
                "updatedAt": now,
                "changePosition": None,
                "deletedAt": None,
            }
            counters = {"internalNoteCount" if internal else "commentCount": 1}
            if minutes_worked:
                counters["minutesWorked"] = minutes_worked
            self._insert_local(conn, "ticket_comments", row)
            self._enqueue(
                conn,
                MutationKind.TICKET_COMMENT,
                ticket_id,
                {
                    "commentId": comment_id,
                    "ticketId": ticket_id,
                    "body": body,
                    "internal": internal,
                    "minutesWorked": minutes_worked,
                },
                [
                    ("ticket_comments", comment_id, "insert", {}),
                    ("tickets", ticket_id, "add", counters),
                ],
                result,
            )
        return result

    def create_ticket(
        self,
        title: str,
        description: str = "",
        *,
        urgency: str | None = None,
        category: str | None = None,
        subcategory: str | None = None,
        site_id: str | None = None,
        building_id: str | None = None,
        room_id: str | None = None,
        asset_ids: Sequence[str] = (),
        requester_id: str | None = None,
    ) -> Changes:
        """Create a ticket offline: a client id and no number ("New (not yet synced)")
        until the server's row comes back. ``requester_id`` defaults to the user."""
        if not title.strip():
            raise EditRefused(ErrorCode.VALIDATION_ERROR, "A ticket needs a title")
        result = Changes()
        with self._write() as conn:
            user_id = self._user_id(conn)
            requester = requester_id or user_id
            if requester is None:
                raise EditRefused(
                    ErrorCode.VALIDATION_ERROR, "Who is the ticket for? No requester given"
                )
            ticket_id = str(uuid7())
            now = utc_now()
            payload = {
                "id": ticket_id,
                "title": title.strip(),
                "description": description,
                "urgency": urgency,
                "category": category,
                "subcategory": subcategory,
                "siteId": site_id,
                "buildingId": building_id,
                "roomId": room_id,
                "assetIds": list(asset_ids),
                "requesterId": requester,
            }
            row = {
                **{k: v for k, v in payload.items() if k != "assetIds"},
                "number": None,
                "ticketType": "incident",
                "status": TicketStatus.NEW.value,
                "statusCategory": category_of(TicketStatus.NEW),
                "priority": None,
                "impact": None,
                "createdById": user_id,
                "assigneeId": None,
                "teamId": None,
                "tags": [],
                "watcherIds": [],
                "commentCount": 0,
                "attachmentCount": 0,
                "createdAt": now,
                "updatedAt": now,
                "changePosition": None,
                "deletedAt": None,
            }
            self._insert_local(conn, "tickets", row)
            self._enqueue(
                conn,
                MutationKind.TICKET_CREATE,
                ticket_id,
                {"ticket": payload},
                [("tickets", ticket_id, "insert", {})],
                result,
            )
        return result

    def use_part(self, ticket_id: str, part_id: str, location_id: str, quantity: int) -> Changes:
        """Record parts used on a ticket: a stock movement, and the stock shown at that
        location goes down at once (the server's level replaces it once judged)."""
        return self._part_movement(MutationKind.PART_USE, ticket_id, part_id, location_id, quantity)

    def return_part(self, ticket_id: str, part_id: str, location_id: str, quantity: int) -> Changes:
        """Unused parts back on the shelf: the opposite movement of ``use_part``."""
        return self._part_movement(
            MutationKind.PART_RETURN, ticket_id, part_id, location_id, quantity
        )

    def _part_movement(
        self, kind: MutationKind, ticket_id: str, part_id: str, location_id: str, quantity: int
    ) -> Changes:
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            raise EditRefused(
                ErrorCode.VALIDATION_ERROR, "The quantity must be a whole number above 0"
            )
        signed = -quantity if kind is MutationKind.PART_USE else quantity
        result = Changes()
        with self._write() as conn:
            self._ticket_copies(conn, ticket_id)
            movement_id = str(uuid7())
            now = utc_now()
            self._insert_local(
                conn,
                "stock_movements",
                {
                    "id": movement_id,
                    "partId": part_id,
                    "locationId": location_id,
                    "kind": "consume" if kind is MutationKind.PART_USE else "return",
                    "quantity": signed,
                    "ticketId": ticket_id,
                    "sourceType": "sync",
                    "sourceId": ticket_id,
                    "actorId": self._user_id(conn),
                    "occurredAt": now,
                    "createdAt": now,
                    "changePosition": None,
                    "deletedAt": None,
                },
            )
            effects: list[tuple[str, str, str, Mapping[str, Any]]] = [
                ("stock_movements", movement_id, "insert", {})
            ]
            level = conn.execute(
                "SELECT id FROM stock_levels WHERE part_id = ? AND location_id = ?",
                (part_id, location_id),
            ).fetchone()
            if level is not None:
                effects.append(("stock_levels", level[0], "add", {"quantity": signed}))
            self._enqueue(
                conn,
                kind,
                ticket_id,
                {
                    "movementId": movement_id,
                    "ticketId": ticket_id,
                    "partId": part_id,
                    "locationId": location_id,
                    "quantity": quantity,
                },
                effects,
                result,
            )
        return result

    def resolve_conflict(self, conflict_id: str, keep: str, value: Any = None) -> Changes:
        """Resolve a recorded conflict: keep ``mine``, the ``server``'s value, or a new
        ``value``. Shown at once; the server's conflict row replaces it."""
        try:
            chosen = Keep(keep)
        except ValueError as exc:
            raise EditRefused(
                ErrorCode.VALIDATION_ERROR, "keep must be 'mine', 'server' or 'value'"
            ) from exc
        result = Changes()
        with self._write() as conn:
            found = conn.execute(
                "SELECT data FROM sync_conflicts WHERE id = ?", (conflict_id,)
            ).fetchone()
            if found is None:
                raise EditRefused(
                    ErrorCode.RESOURCE_NOT_FOUND, "That conflict is not in the replica"
                )
            conflict = _loads(found[0])
            if conflict.get("resolvedAt") is not None:
                raise EditRefused(ErrorCode.RESOURCE_CONFLICT, "That conflict is already resolved")
            ticket_id = conflict.get("ticketId")
            field_name = conflict.get("field")
            payload: dict[str, Any] = {"conflictId": conflict_id, "keep": chosen.value}
            if chosen is Keep.VALUE:
                payload["value"] = value
            effects: list[tuple[str, str, str, Mapping[str, Any]]] = [
                (
                    "sync_conflicts",
                    conflict_id,
                    "set",
                    {"resolvedAt": utc_now(), "resolution": chosen.value},
                )
            ]
            if chosen is not Keep.SERVER and ticket_id and isinstance(field_name, str):
                shown = conflict.get("mine") if chosen is Keep.MINE else value
                if conn.execute("SELECT 1 FROM tickets WHERE id = ?", (ticket_id,)).fetchone():
                    effects.append(("tickets", ticket_id, "set", {field_name: shown}))
            self._enqueue(conn, MutationKind.CONFLICT_RESOLVE, ticket_id, payload, effects, result)
        return result

    # ---------------------------------------------------------------- files and links

    def attach_file(
        self,
        ticket_id: str,
        source: Path | str | bytes,
        file_name: str | None = None,
        mime_type: str | None = None,
        internal: bool = False,
    ) -> Changes:
        """Attach a file offline (guarantee 14). The bytes go to the content store under
        their SHA-256; then, in one transaction, a ``ticket_attachments`` row with a client
        id (not yet synced), an upload in ``upload_queue`` and the ``ticket.attach``
        mutation, which is not sent before the upload has its storage key.

        ``source``: a path, or the bytes (then ``file_name`` is required). ``mime_type``
        defaults to the type the name says (``photo.jpg`` -> ``image/jpeg``)."""
        if isinstance(source, bytes):
            if not file_name:
                raise EditRefused(ErrorCode.VALIDATION_ERROR, "Name the file")
        else:
            source = Path(source)
            if not source.is_file():
                raise EditRefused(ErrorCode.RESOURCE_NOT_FOUND, f"There is no file {source}")
            file_name = file_name or source.name
        name = _file_name(str(file_name))
        if not name:
            raise EditRefused(ErrorCode.VALIDATION_ERROR, "Name the file")
        mime = _mime_type(name, mime_type)
        if mime is None:
            raise EditRefused(
                ErrorCode.VALIDATION_ERROR,
                f"Cannot tell what kind of file {name} is: give its type (image/jpeg, …)",
            )
        with self._read() as conn:
            self._ticket_copies(conn, ticket_id)  # refuse before copying anything
        sha256, size = self.store_file(source)
        if size == 0:
            raise EditRefused(ErrorCode.VALIDATION_ERROR, f"{name} is empty")
        result = Changes()
        with self._write() as conn:
            self._ticket_copies(conn, ticket_id)
            attachment_id = str(uuid7())
            now = utc_now()
            self._insert_local(
                conn,
                "ticket_attachments",
                {
                    "id": attachment_id,
                    "ticketId": ticket_id,
                    "uploadId": None,
                    "uploadedById": self._user_id(conn),
                    "fileName": name,
                    "mimeType": mime,
                    "sizeBytes": size,
                    "sha256": sha256,
                    "isInternal": internal,
                    "createdAt": now,
                    "updatedAt": now,
                    "changePosition": None,
                    "deletedAt": None,
                },
            )
            self._enqueue(
                conn,
                MutationKind.TICKET_ATTACH,
                ticket_id,
                {
                    "attachmentId": attachment_id,
                    "ticketId": ticket_id,
                    "sha256": sha256,
                    "fileName": name,
                    "internal": internal,
                    "storageKey": None,
                },
                [
                    ("ticket_attachments", attachment_id, "insert", {}),
                    ("tickets", ticket_id, "add", {"attachmentCount": 1}),
                ],
                result,
            )
            conn.execute(
                "INSERT INTO upload_queue (attachment_id, mutation_id, ticket_id, sha256, "
                "file_name, mime_type, size_bytes, queued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (attachment_id, result.mutation_id, ticket_id, sha256, name, mime, size, now),
            )
        return result

    def store_file(self, source: Path | str | bytes | Iterable[bytes]) -> tuple[str, int]:
        """Put bytes into the content store (a path, bytes, or chunks); returns their
        SHA-256 and size. The same content is stored once; a partly written file never
        takes the final name."""
        with self.content_writer() as writer:
            for chunk in _chunks_of(source):
                writer.write(chunk)
            return writer.commit()

    def content_writer(self, expect_sha256: str | None = None) -> ContentWriter:
        """A file being written into the content store chunk by chunk (a download):
        ``write`` the chunks, then ``commit()``; leaving the ``with`` block without a
        commit leaves nothing behind. ``expect_sha256``: refuse other content."""
        return ContentWriter(self.files_dir, expect_sha256)

    def record_upload(self, attachment_id: str, storage_key: str) -> Changes:
        """The file is on the server: its ``ticket.attach`` names the storage key and may
        go with the next push (one transaction)."""
        result = Changes()
        with self._write() as conn:
            found = conn.execute(
                "SELECT mutation_id FROM upload_queue WHERE attachment_id = ?", (attachment_id,)
            ).fetchone()
            if found is None:
                return result
            entry = conn.execute(
                "SELECT payload FROM outbox WHERE id = ?", (found["mutation_id"],)
            ).fetchone()
            if entry is not None:
                payload = _loads(entry["payload"])
                payload["storageKey"] = storage_key
                conn.execute(
                    "UPDATE outbox SET payload = ? WHERE id = ?",
                    (_dumps(payload), found["mutation_id"]),
                )
            conn.execute(
                "UPDATE upload_queue SET state = 'uploaded', storage_key = ?, last_error = NULL, "
                "uploaded_at = ? WHERE attachment_id = ?",
                (storage_key, utc_now(), attachment_id),
            )
            result.outbox = True
        return result

    def upload_failed(
        self,
        attachment_id: str,
        error: str,
        *,
        now: float | None = None,
        retry_after: float | None = None,
    ) -> float | None:
        """An upload got no answer, or one worth trying again (5xx, 429, an expired
        link): it waits 1 s doubling to 5 min (jittered) in its own queue. Returns when
        it is due again (epoch seconds)."""
        moment = time.time() if now is None else now
        with self._write() as conn:
            found = conn.execute(
                "SELECT attempts FROM upload_queue WHERE attachment_id = ? AND state = 'waiting'",
                (attachment_id,),
            ).fetchone()
            if found is None:
                return None
            delay = backoff_delay(int(found[0]) + 1, self.rng)
            if retry_after is not None:
                delay = max(delay, retry_after)
            conn.execute(
                "UPDATE upload_queue SET attempts = attempts + 1, next_attempt_at = ?, "
                "last_error = ? WHERE attachment_id = ?",
                (moment + delay, error, attachment_id),
            )
        return moment + delay

    def upload_refused(self, attachment_id: str, error: str) -> Changes:
        """The file can never be uploaded (the server refuses its type or size, the
        ticket is gone, the file was deleted here): its ``ticket.attach`` goes without a
        storage key, so the server rejects it and the user reads why (the verdict keeps
        this reason); the mutations after it are no longer held back."""
        result = Changes()
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE upload_queue SET state = 'failed', last_error = ?, "
                "attempts = attempts + 1 WHERE attachment_id = ? AND state = 'waiting'",
                (error, attachment_id),
            )
            result.outbox = bool(cursor.rowcount)
        return result

    def link_asset(self, ticket_id: str, asset_id: str) -> Changes:
        """Link a device to a ticket (``asset.link``): a ``ticket_assets`` row shows at
        once. Already linked: nothing is queued."""
        if not asset_id:
            raise EditRefused(ErrorCode.VALIDATION_ERROR, "Name the device")
        result = Changes()
        with self._write() as conn:
            self._ticket_copies(conn, ticket_id)
            if self._shown_links(conn, ticket_id, asset_id):
                return result
            link_id = str(uuid7())
            now = utc_now()
            self._insert_local(
                conn,
                "ticket_assets",
                {
                    "id": link_id,
                    "ticketId": ticket_id,
                    "assetId": asset_id,
                    "createdById": self._user_id(conn),
                    "createdAt": now,
                    "updatedAt": now,
                    "changePosition": None,
                    "deletedAt": None,
                },
            )
            self._enqueue(
                conn,
                MutationKind.ASSET_LINK,
                ticket_id,
                {"ticketId": ticket_id, "assetId": asset_id},
                # the server makes its own id for the link: this row goes once judged
                [("ticket_assets", link_id, "insert", {"replaced": True})],
                result,
            )
        return result

    def unlink_asset(self, ticket_id: str, asset_id: str) -> Changes:
        """Unlink a device from a ticket (``asset.unlink``): the link stops showing at
        once (it is marked ``deletedAt`` until the server's tombstone removes it; a
        rejection brings it back). Not linked: nothing is queued."""
        result = Changes()
        with self._write() as conn:
            self._ticket_copies(conn, ticket_id)
            links = self._shown_links(conn, ticket_id, asset_id)
            if not links:
                return result
            now = utc_now()
            self._enqueue(
                conn,
                MutationKind.ASSET_UNLINK,
                ticket_id,
                {"ticketId": ticket_id, "assetId": asset_id},
                [("ticket_assets", link_id, "set", {"deletedAt": now}) for link_id in links],
                result,
            )
        return result

    # ---------------------------------------------------------------- internals

    def _shown_links(self, conn: sqlite3.Connection, ticket_id: str, asset_id: str) -> list[str]:
        return [
            r[0]
            for r in conn.execute(
                "SELECT id FROM ticket_assets WHERE ticket_id = ? AND asset_id = ? "
                "AND json_extract(data, '$.deletedAt') IS NULL ORDER BY id",
                (ticket_id, asset_id),
            )
        ]

    def _user_id(self, conn: sqlite3.Connection) -> str | None:
        value = conn.execute("SELECT user_id FROM sync_state").fetchone()[0]
        return str(value) if value is not None else None

    def _ticket_copies(self, conn: sqlite3.Connection, ticket_id: str) -> tuple[Row, Row]:
        """The ticket as shown and the copy its pending edits were made on."""
        found = conn.execute(
            "SELECT data, server_data FROM tickets WHERE id = ?", (ticket_id,)
        ).fetchone()
        if found is None:
            raise EditRefused(ErrorCode.RESOURCE_NOT_FOUND, "That ticket is not in the replica")
        shown = _loads(found["data"])
        server_copy = _loads(found["server_data"]) if found["server_data"] else shown
        return shown, server_copy

    def _enqueue(
        self,
        conn: sqlite3.Connection,
        kind: MutationKind,
        ticket_id: str | None,
        payload: Mapping[str, Any],
        effects: Sequence[tuple[str, str, str, Mapping[str, Any]]],
        changes: Changes,
    ) -> None:
        """Queue a mutation (next sequence number, new id) and show its effects."""
        state = conn.execute("SELECT device_id, next_seq FROM sync_state").fetchone()
        seq = int(state["next_seq"])
        mutation_id = str(uuid7())
        conn.execute("UPDATE sync_state SET next_seq = ?", (seq + 1,))
        conn.execute(
            "INSERT INTO outbox (seq, id, device_id, kind, ticket_id, at, payload) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                seq,
                mutation_id,
                state["device_id"],
                kind.value,
                ticket_id,
                utc_now(),
                _dumps(payload),
            ),
        )
        for table, row_id, op, fields in effects:
            conn.execute(
                "INSERT INTO outbox_effects (seq, tbl, row_id, op, fields) VALUES (?, ?, ?, ?, ?)",
                (seq, table, row_id, op, _dumps(dict(fields))),
            )
            if op != "insert":
                self._show_effect(conn, table, row_id, op, fields)
            changes.wrote(table, row_id)
        changes.outbox = True
        changes.mutation_id = mutation_id
        changes.seq = seq

    def _insert_local(self, conn: sqlite3.Connection, table: str, row: Row) -> None:
        """A row made here: no change position; its kept copy is the row as created."""
        text = _dumps(row)
        self._store(conn, table, str(row["id"]), None, None, text, text)

    def _show_effect(
        self, conn: sqlite3.Connection, table: str, row_id: str, op: str, fields: Mapping[str, Any]
    ) -> None:
        found = conn.execute(
            f"SELECT change_position, deleted_at, data, server_data FROM {_table_name(table)} "  # noqa: S608
            "WHERE id = ?",
            (row_id,),
        ).fetchone()
        if found is None:
            return
        kept = found["server_data"] or found["data"]
        shown = _overlay(_loads(found["data"]), [(op, fields)])
        self._store(
            conn, table, row_id, found["change_position"], found["deleted_at"], _dumps(shown), kept
        )

    def renumber_after(self, last_sequence: int) -> Changes:
        """Number every pending mutation after ``last_sequence``, in order: the server
        answered ``SEQUENCE_REUSED`` (this replica was restored from a backup and
        reused numbers it had sent before). Mutations the server has judged keep
        their stored verdicts whatever their number; the others are judged anew."""
        changes = Changes()
        with self._write() as conn:
            self._renumber(conn, last_sequence, changes)
        return changes

    def _renumber(self, conn: sqlite3.Connection, last_sequence: int, changes: Changes) -> None:
        pending = [r[0] for r in conn.execute("SELECT seq FROM outbox ORDER BY seq")]
        first = last_sequence + 1
        if pending and pending[0] < first:
            # two steps through negative numbers: no new number meets an old one
            for table in ("outbox", "outbox_effects"):
                conn.execute(f"UPDATE {table} SET seq = -seq")  # noqa: S608
                for offset, old in enumerate(pending):
                    conn.execute(
                        f"UPDATE {table} SET seq = ? WHERE seq = ?",  # noqa: S608
                        (first + offset, -old),
                    )
            changes.outbox = True
        next_seq = int(conn.execute("SELECT next_seq FROM sync_state").fetchone()[0])
        wanted = max(next_seq, first + len(pending))
        if wanted != next_seq:
            conn.execute("UPDATE sync_state SET next_seq = ?", (wanted,))
            changes.state = True

    def _settle_applied(
        self, conn: sqlite3.Connection, last_sequence: int, changes: Changes
    ) -> None:
        """The server has judged every mutation up to ``last_sequence`` (a pull says so;
        their answer may have been lost): the rows it sends already hold their effects,
        so those effects are no longer replayed on top (a part used would count twice).
        Their inserts stay listed, so a verdict still takes back a rejected row made here;
        the mutations stay in the outbox until their verdicts come (a replayed push
        answers them from the server's record)."""
        settled = conn.execute(
            "SELECT DISTINCT tbl, row_id FROM outbox_effects WHERE seq <= ? AND op != 'insert'",
            (last_sequence,),
        ).fetchall()
        if not settled:
            return
        conn.execute(
            "DELETE FROM outbox_effects WHERE seq <= ? AND op != 'insert'", (last_sequence,)
        )
        for table, row_id in settled:
            self._rebuild(conn, table, row_id, changes)

    def _effects_of(
        self, conn: sqlite3.Connection, table: str, row_id: str
    ) -> list[tuple[str, Any]]:
        return [
            (r[0], _loads(r[1]))
            for r in conn.execute(
                "SELECT op, fields FROM outbox_effects WHERE tbl = ? AND row_id = ? ORDER BY seq",
                (table, row_id),
            )
        ]

    def _bake(
        self, conn: sqlite3.Connection, effects: Sequence[sqlite3.Row], kept_by_server: set[str]
    ) -> None:
        """A mutation the server took: its values become part of the kept copy, so the row
        still shows them after the mutation leaves the outbox (until the server's row
        replaces it). Fields the server kept in a conflict are not taken."""
        for e in effects:
            if e["op"] == "insert":
                continue
            table = _table_name(e["tbl"])
            found = conn.execute(
                f"SELECT server_data FROM {table} WHERE id = ?",  # noqa: S608
                (e["row_id"],),
            ).fetchone()
            if found is None or found[0] is None:
                continue
            fields = {k: v for k, v in _loads(e["fields"]).items() if k not in kept_by_server}
            baked = _overlay(_loads(found[0]), [(e["op"], fields)])
            conn.execute(
                f"UPDATE {table} SET server_data = ? WHERE id = ?",  # noqa: S608
                (_dumps(baked), e["row_id"]),
            )

    def _rebuild(self, conn: sqlite3.Connection, table: str, row_id: str, changes: Changes) -> None:
        """Show a row as its kept copy plus the effects still pending."""
        found = conn.execute(
            f"SELECT change_position, deleted_at, data, server_data FROM {_table_name(table)} "  # noqa: S608
            "WHERE id = ?",
            (row_id,),
        ).fetchone()
        if found is None:
            return
        base_text = found["server_data"] or found["data"]
        effects = self._effects_of(conn, table, row_id)
        if effects:
            shown, kept = _dumps(_overlay(_loads(base_text), effects)), base_text
        else:
            shown, kept = base_text, None
        self._store(conn, table, row_id, found["change_position"], found["deleted_at"], shown, kept)
        changes.wrote(table, row_id)

    def _store(
        self,
        conn: sqlite3.Connection,
        table: str,
        row_id: str,
        position: int | None,
        deleted_at: str | None,
        data: str,
        server_data: str | None,
    ) -> None:
        table = _table_name(table)
        if table == "tickets":
            conn.execute(
                "INSERT INTO tickets (id, change_position, deleted_at, data, server_data, fts_id) "
                "VALUES (?, ?, ?, ?, ?, (SELECT coalesce(max(fts_id), 0) + 1 FROM tickets)) "
                "ON CONFLICT (id) DO UPDATE SET change_position = excluded.change_position, "
                "deleted_at = excluded.deleted_at, data = excluded.data, "
                "server_data = excluded.server_data",
                (row_id, position, deleted_at, data, server_data),
            )
            return
        conn.execute(
            f"INSERT INTO {table} (id, change_position, deleted_at, data, server_data) "  # noqa: S608
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "change_position = excluded.change_position, deleted_at = excluded.deleted_at, "
            "data = excluded.data, server_data = excluded.server_data",
            (row_id, position, deleted_at, data, server_data),
        )

    def _write_changes(
        self, conn: sqlite3.Connection, tables: Sequence[TableRows], changes: Changes
    ) -> None:
        for tr in tables:
            if tr.table not in KNOWN_TABLES:
                self._write_unknown(conn, tr, changes)
                continue
            any_effects = (
                conn.execute(
                    "SELECT 1 FROM outbox_effects WHERE tbl = ? LIMIT 1", (tr.table,)
                ).fetchone()
                is not None
            )
            for row in tr.rows:
                self._write_server_row(conn, tr.table, row, any_effects, changes)

    def _write_server_row(
        self,
        conn: sqlite3.Connection,
        table: str,
        row: Row,
        any_effects: bool,
        changes: Changes,
    ) -> None:
        """Upsert one server row by id, with pending edits replayed on top (guarantee 10).

        A row older than the one held (a lower change position, e.g. a push answer that
        crossed a newer pull) is skipped.
        """
        row_id = str(row["id"])
        position = row.get("changePosition")
        found = conn.execute(
            f"SELECT change_position FROM {table} WHERE id = ?",  # noqa: S608
            (row_id,),
        ).fetchone()
        held = found[0] if found is not None else None
        if held is not None and position is not None and position < held:
            return
        if row.get("deletedAt"):
            if found is not None:
                self._remove(conn, table, row_id, changes)
            return
        effects = self._effects_of(conn, table, row_id) if any_effects else []
        text = _dumps(row)
        if effects:
            self._store(conn, table, row_id, position, None, _dumps(_overlay(row, effects)), text)
        else:
            self._store(conn, table, row_id, position, None, text, None)
        changes.wrote(table, row_id)

    def _write_unknown(self, conn: sqlite3.Connection, tr: TableRows, changes: Changes) -> None:
        """A table this version does not know (a newer server): kept as id and JSON, so
        nothing is lost and a later version can take the rows over in a migration."""
        for row in tr.rows:
            row_id = str(row["id"])
            position = row.get("changePosition")
            found = conn.execute(
                "SELECT change_position FROM unknown_rows WHERE tbl = ? AND id = ?",
                (tr.table, row_id),
            ).fetchone()
            held = found[0] if found is not None else None
            if held is not None and position is not None and position < held:
                continue
            if row.get("deletedAt"):
                conn.execute(
                    "DELETE FROM unknown_rows WHERE tbl = ? AND id = ?", (tr.table, row_id)
                )
                changes.deleted(tr.table, row_id)
                continue
            conn.execute(
                "INSERT INTO unknown_rows (tbl, id, change_position, deleted_at, data) "
                "VALUES (?, ?, ?, NULL, ?) ON CONFLICT (tbl, id) DO UPDATE SET "
                "change_position = excluded.change_position, data = excluded.data",
                (tr.table, row_id, position, _dumps(row)),
            )
            changes.wrote(tr.table, row_id)

    def _existing(self, conn: sqlite3.Connection, table: str, ids: Sequence[str]) -> set[str]:
        held: set[str] = set()
        name = _table_name(table)
        for chunk in _chunks(ids):
            marks = ", ".join("?" * len(chunk))
            found = conn.execute(f"SELECT id FROM {name} WHERE id IN ({marks})", chunk)  # noqa: S608
            held.update(r[0] for r in found)
        return held

    def _queue_hydration(self, conn: sqlite3.Connection, ticket_id: str) -> int:
        cursor = conn.execute(
            "INSERT OR IGNORE INTO hydrate_queue (ticket_id, queued_at) VALUES (?, ?)",
            (ticket_id, utc_now()),
        )
        return cursor.rowcount

    def _unmark_removals(self, conn: sqlite3.Connection, ticket_ids: Sequence[str]) -> None:
        """Tickets that are (back) in scope: a waiting removal no longer applies."""
        for chunk in _chunks(ticket_ids):
            conn.execute(
                f"DELETE FROM pending_removals WHERE ticket_id IN ({', '.join('?' * len(chunk))})",  # noqa: S608
                chunk,
            )

    def _apply_scope(self, conn: sqlite3.Connection, scope: Sequence[str], changes: Changes) -> int:
        """The full list of tickets now in scope: drop the others (tickets made here and
        not yet sent stay), hydrate the missing ones."""
        wanted = set(scope)
        held = {
            r[0]: r[1] for r in conn.execute("SELECT id, change_position FROM tickets").fetchall()
        }
        for ticket_id, position in held.items():
            if ticket_id not in wanted and position is not None:
                self._remove(conn, "tickets", ticket_id, changes)
        self._unmark_removals(conn, list(wanted))
        queued = 0
        for ticket_id in scope:
            if ticket_id not in held:
                queued += self._queue_hydration(conn, ticket_id)
        return queued

    def _remove(self, conn: sqlite3.Connection, table: str, row_id: str, changes: Changes) -> None:
        """A row left the scope or was deleted. A ticket with mutations still waiting for
        their verdicts is only marked; ``record_results`` removes it after them."""
        if table not in KNOWN_TABLES:
            conn.execute("DELETE FROM unknown_rows WHERE tbl = ? AND id = ?", (table, row_id))
            changes.deleted(table, row_id)
            return
        if table == "tickets":
            waiting = conn.execute(
                "SELECT 1 FROM outbox WHERE ticket_id = ? LIMIT 1", (row_id,)
            ).fetchone()
            if waiting is not None:
                conn.execute(
                    "INSERT OR IGNORE INTO pending_removals (ticket_id, recorded_at) VALUES (?, ?)",
                    (row_id, utc_now()),
                )
                return
            conn.execute("DELETE FROM pending_removals WHERE ticket_id = ?", (row_id,))
            conn.execute("DELETE FROM hydrate_queue WHERE ticket_id = ?", (row_id,))
        self._delete_row(conn, table, row_id, changes)

    def _delete_row(
        self, conn: sqlite3.Connection, table: str, row_id: str, changes: Changes
    ) -> None:
        """Delete a row; a ticket takes its children, its conflicts and the parts used
        on it with it."""
        cursor = conn.execute(f"DELETE FROM {_table_name(table)} WHERE id = ?", (row_id,))  # noqa: S608
        if cursor.rowcount:
            changes.deleted(table, row_id)
        if table != "tickets":
            return
        # parts used on it travel with it too (the stock levels stay: they are the
        # van's and the closets', counted by the server)
        for child in (*TICKET_CHILD_TABLES, "sync_conflicts", "stock_movements"):
            ids = [
                r[0]
                for r in conn.execute(f"SELECT id FROM {child} WHERE ticket_id = ?", (row_id,))  # noqa: S608
            ]
            if ids:
                conn.execute(f"DELETE FROM {child} WHERE ticket_id = ?", (row_id,))  # noqa: S608
                for child_id in ids:
                    changes.deleted(child, child_id)


def _file_name(name: str) -> str:
    """The last path component, without control characters (the server makes the name
    safe for good; this keeps what the replica shows close to it)."""
    last = re.split(r"[\\/]", name)[-1]
    return "".join(ch for ch in last if ch.isprintable()).strip()


def _mime_type(name: str, given: str | None) -> str | None:
    mime = given or mimetypes.guess_type(name, strict=False)[0]
    if not mime:
        return None
    mime = mime.split(";", 1)[0].strip().lower()
    return _MIME_ALIASES.get(mime, mime) or None


def _chunks_of(source: Path | str | bytes | Iterable[bytes]) -> Iterator[bytes]:
    if isinstance(source, bytes):
        yield source
        return
    if isinstance(source, Path | str):
        with open(source, "rb") as f:
            while chunk := f.read(_FILE_CHUNK):
                yield chunk
        return
    yield from source


def _upload_refusal(file_name: str, error: str | None) -> str:
    return f"The file {file_name} could not be uploaded: {error or 'the server refused it'}"


def category_of(status: TicketStatus) -> str:
    return _category(status).value


def backoff_delay(attempts: int, rng: random.Random | None = None) -> float:
    """Seconds before retry number ``attempts`` (1, 2, …): 1 s doubling to 5 min, ±20 %
    jitter so that many laptops coming back online do not retry in step; never above 5 min."""
    base = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, attempts - 1))
    jitter = (rng or random).uniform(1 - BACKOFF_JITTER, 1 + BACKOFF_JITTER)
    return min(BACKOFF_MAX, base * jitter)
