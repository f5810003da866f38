"""The declarative base and the conventions every table follows (engines and
sessions are in ``server.core.engine``).

Conventions (see docs/architecture.md):
- primary keys are UUIDv7 that clients may generate offline;
- tenant rows carry ``organization_id`` and are scoped centrally (``server.core.tenancy``);
- replicated rows record the change position at which they last changed and are
  deleted by tombstone (``deleted_at``), so "what changed since N" is one index range.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    String,
    TypeDecorator,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    declared_attr,
    mapped_column,
)

from common.errors import ErrorCode
from common.ids import uuid7
from server.core.errors import Conflict


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        uuid.UUID: Uuid(),
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        list[str]: JSONType,
        list[dict[str, Any]]: JSONType,
    }


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TenantMixin:
    """A row that belongs to one organization; reads and writes are scoped centrally.

    A class may set ``__tenant_optional__ = True`` when some of its rows belong to the
    platform rather than an organization (super admins, platform audit events); such
    rows are only visible to sessions bound to all tenants.
    """

    __tenant_optional__ = False

    @declared_attr
    def organization_id(cls) -> Mapped[uuid.UUID]:
        return mapped_column(
            ForeignKey("organizations.id", ondelete="CASCADE"),
            index=True,
            nullable=cls.__tenant_optional__,
        )


class ReplicatedMixin(TenantMixin):
    """A tenant row that desktop replicas copy: change position and tombstone."""

    change_position: Mapped[int] = mapped_column(BigInteger, default=0)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)

    #: the foreign-key attribute naming the row this one belongs to for sync (a
    #: comment's ``ticket_id``): changing this row also moves that row's change
    #: position in the same flush, so the parent's position is never below its
    #: children's and "parents changed since N" finds every changed child
    __change_parent__: str | None = None

    #: further indexes and constraints of the concrete table
    __extra_table_args__: tuple[Any, ...] = ()

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        name = cls.__tablename__  # type: ignore[attr-defined]
        return (
            Index(f"ix_{name}_org_change", "organization_id", "change_position"),
            *cls.__extra_table_args__,
        )


def live_unique(name: str, *columns: Any) -> Index:
    """A unique index over rows that are not tombstoned, so a deleted name can be reused."""
    where = text("deleted_at IS NULL")
    return Index(name, *columns, unique=True, sqlite_where=where, postgresql_where=where)


def live_index(name: str, *columns: Any, where: str | None = None) -> Index:
    """An index over rows that are not tombstoned (and match ``where``, SQL text):
    what every list reads, and small enough to count a list from the index alone."""
    condition = text("deleted_at IS NULL" + (f" AND {where}" if where else ""))
    return Index(name, *columns, sqlite_where=condition, postgresql_where=condition)


class ChangeCounter(Base):
    """The last change position handed out per organization.

    Positions come from an UPDATE of this row, so a transaction holds its row lock
    until it commits: positions within an organization commit in increasing order,
    and a pull that saw position N can never later meet a commit at or below N.
    """

    __tablename__ = "change_counters"
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(BigInteger, default=0)


class JobLease(Base):
    """Which server process may run a periodic job, so several processes never double-run it."""

    __tablename__ = "job_leases"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime]


def flush_unique(session: Session, *, message: str, field: str) -> None:
    """Flush, turning a unique-index violation into 409 DUPLICATE_RESOURCE on ``field``.

    The flush runs in a savepoint, so the request's transaction stays usable.
    """
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(
            message, code=ErrorCode.DUPLICATE_RESOURCE, details={"field": field}
        ) from exc
