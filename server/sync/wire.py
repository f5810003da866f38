"""What leaves the server for a replica: each replicated table's wire projection.

A row goes out as camelCase JSON with every column of its table except the
organization id, and except what a role may not read: people are reduced to
what a colleague may know (no password hashes, MFA secrets, lockout counters or
login times), and a requester's tickets, comments, history and attachments follow
``server.tickets.visibility``. This module is the only place a column is let out.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pydantic.alias_generators import to_camel
from sqlalchemy import Column, RowMapping, Table

from server.tickets.visibility import STAFF_ONLY_FIELDS
from server.users.models import User

USERS_TABLE: Table = User.__table__  # type: ignore[assignment]

#: the columns of ``users`` a replica receives
USER_COLUMNS = frozenset(
    {
        "id",
        "email",
        "first_name",
        "last_name",
        "role",
        "is_active",
        "department_id",
        "site_id",
        "job_title",
        "phone",
        "change_position",
        "deleted_at",
        "created_at",
        "updated_at",
    }
)


#: what a requester reads of the other people on their tickets
NAME_COLUMNS = frozenset({"id", "first_name", "last_name", "change_position", "deleted_at"})


@dataclass(frozen=True)
class Projection:
    table: Table
    columns: tuple[Column[Any], ...]
    keys: tuple[str, ...]
    #: columns read as null (a requester's view of a ticket)
    hidden: frozenset[str] = frozenset()

    def rows(self, records: Iterable[RowMapping]) -> list[dict[str, Any]]:
        out = []
        for record in records:
            row = {}
            for column, key in zip(self.columns, self.keys, strict=True):
                value = record[column.name]
                row[key] = None if column.name in self.hidden else plain(value)
            out.append(row)
        return out


def projection(table: Table, *, hidden: frozenset[str] = frozenset()) -> Projection:
    allowed = USER_COLUMNS if table.name == "users" else None
    columns = tuple(
        c
        for c in table.columns
        if c.name != "organization_id" and (allowed is None or c.name in allowed)
    )
    return Projection(table, columns, tuple(to_camel(c.name) for c in columns), hidden)


def ticket_projection(table: Table, *, staff: bool) -> Projection:
    return projection(table, hidden=frozenset() if staff else STAFF_ONLY_FIELDS)


def timestamp(value: datetime) -> str:
    """One fixed format, microseconds always written, so timestamps sort as text."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def plain(value: Any) -> Any:
    """A column value as the wire carries it."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def people_rows(records: Iterable[RowMapping], *, me: uuid.UUID) -> list[dict[str, Any]]:
    """Users for a requester: their own row as staff see it, others by name only."""
    full = projection(USERS_TABLE)
    names = Projection(
        USERS_TABLE,
        tuple(c for c in full.columns if c.name in NAME_COLUMNS),
        tuple(k for c, k in zip(full.columns, full.keys, strict=True) if c.name in NAME_COLUMNS),
    )
    out = []
    for record in records:
        shown = full if record["id"] == me else names
        out.extend(shown.rows([record]))
    return out
