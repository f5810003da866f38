"""Engine, sessions, the declarative base and the conventions every table follows.

Conventions (see docs/architecture.md):
- primary keys are UUIDv7 that clients may generate offline;
- tenant rows carry ``organization_id`` and are scoped centrally (``server.core.tenancy``);
- replicated rows record the change position at which they last changed and are
  deleted by tombstone (``deleted_at``), so "what changed since N" is one index range.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    MetaData,
    String,
    TypeDecorator,
    Uuid,
    create_engine,
    event,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    declared_attr,
    mapped_column,
    sessionmaker,
)

from common.errors import ErrorCode
from common.ids import uuid7
from server.core.errors import Conflict
from server.core.files import private_file


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


def make_engine(url: str, *, echo: bool = False) -> Engine:
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        if path is not None and path.parent.is_dir():
            private_file(path)  # before SQLite makes it (and its WAL) world-readable
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=10,
            max_overflow=20,
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, echo=echo, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so BEGIN can be IMMEDIATE for writers.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A writer takes the write lock up front: a deferred transaction that reads and
        # then writes fails with SQLITE_BUSY when another writer got in between.
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases and in-memory ones."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


class Database:
    """One engine and its session factories."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        writer = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(writer, expire_on_commit=False)

    def session(self, *, write: bool = False) -> Session:
        return (self._writer if write else self._reader)()

    @contextmanager
    def transaction(self, *, tenant: Any) -> Iterator[Session]:
        """A write session for jobs and the CLI, committed on success.

        ``tenant`` is an organization id, or ``ALL_TENANTS`` for platform work.
        """
        from server.core.tenancy import bind_tenant

        session = self.session(write=True)
        bind_tenant(session, tenant)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


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
