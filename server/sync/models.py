"""The server's side of sync: devices, and the log of tickets leaving a scope."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    event,
    inspect,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from server.assets.models import Asset
from server.core.db import (
    Base,
    IdMixin,
    JSONType,
    ReplicatedMixin,
    TenantMixin,
    TimestampMixin,
    utcnow,
)
from server.inventory.models import StockLocation
from server.tickets.models import Ticket


class SyncDevice(TenantMixin, Base):
    """One replica on one machine (its id is made by the client), owned by one user."""

    __tablename__ = "sync_devices"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    client: Mapped[str] = mapped_column(String(200), default="")
    #: the role the replica's scope was last computed for: a change resends the scope
    scope_role: Mapped[str | None] = mapped_column(String(32))
    #: the home site whose assets the replica holds: a change swaps them
    scope_site_id: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: the last mutation sequence number applied (push)
    last_sequence: Mapped[int] = mapped_column(BigInteger, default=0)
    #: the device's clock minus the server's at its last push (never used to merge)
    clock_skew_seconds: Mapped[int | None] = mapped_column(Integer)
    wipe_requested_at: Mapped[datetime | None]
    wiped_at: Mapped[datetime | None]


class SyncMutation(TenantMixin, Base):
    """A mutation the server judged, kept so a replay gets the same verdict and no
    second effect (docs/sync-protocol.md, guarantee 4)."""

    __tablename__ = "sync_mutations"
    __table_args__ = (UniqueConstraint("device_id", "seq", name="uq_sync_mutations_device_seq"),)

    #: the client's id of the mutation
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    device_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sync_devices.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(40))
    verdict: Mapped[str] = mapped_column(String(16))
    #: the stored answer: code, message, conflicts, the rows it touched
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: when the device says it happened, and when the server judged it
    happened_at: Mapped[datetime | None]
    judged_at: Mapped[datetime] = mapped_column(default=utcnow)


class SyncConflict(IdMixin, TimestampMixin, ReplicatedMixin, Base):
    """A field that a technician and someone else both changed: the server kept its
    value; the conflict waits for a person to keep one side or edit."""

    __tablename__ = "sync_conflicts"
    __change_parent__ = "ticket_id"
    __extra_table_args__ = (Index("ix_sync_conflicts_ticket", "ticket_id"),)

    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    field: Mapped[str] = mapped_column(String(40))
    base: Mapped[Any] = mapped_column(JSONType, nullable=True)
    mine: Mapped[Any] = mapped_column(JSONType, nullable=True)
    server: Mapped[Any] = mapped_column(JSONType, nullable=True)
    device_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("sync_devices.id", ondelete="SET NULL")
    )
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    mutation_id: Mapped[uuid.UUID | None] = mapped_column()
    resolved_at: Mapped[datetime | None]
    #: mine, server or value
    resolution: Mapped[str | None] = mapped_column(String(16))
    resolved_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class SyncCheckpoint(Base):
    """An organization's change position at a moment: the retention job keeps one a
    day, so "older than the retention period" becomes a position."""

    __tablename__ = "sync_checkpoints"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    taken_at: Mapped[datetime] = mapped_column(default=utcnow)


class SyncHorizon(Base):
    """Changes at or below ``position`` may be gone (tombstones purged): a replica
    whose cursor is below it must download its scope again."""

    __tablename__ = "sync_horizons"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(BigInteger, default=0)
    purged_at: Mapped[datetime] = mapped_column(default=utcnow)


class SyncScopeExit(IdMixin, ReplicatedMixin, Base):
    """A row left someone's scope at ``change_position``: a ticket whose assignee,
    team or requester changed away from ``principal_id`` (a user or a team), an
    asset that moved out of a site (``principal_id`` is the site), or a stock
    location handed from a technician or moved out of a site. Pulls of that
    principal's replicas read these above their cursor and send removals."""

    __tablename__ = "sync_scope_exits"
    __extra_table_args__ = (
        Index("ix_sync_scope_exits_principal", "principal_id", "change_position"),
    )

    principal_id: Mapped[uuid.UUID] = mapped_column()
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE")
    )
    asset_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    location_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("stock_locations.id", ondelete="CASCADE")
    )


#: the ticket columns that put a ticket in someone's scope (see server.sync.scope)
SCOPE_COLUMNS = ("assignee_id", "team_id", "requester_id", "created_by_id")


def _log_scope_exits(session: Session, _context: Any, _instances: Any) -> None:
    """When a ticket's assignee, team, requester or filer changes, log an exit for
    the one it left, in the same flush (and so the same transaction) as the change."""
    for obj in list(session.dirty):
        columns: tuple[str, ...]
        if isinstance(obj, Ticket):
            columns, key = SCOPE_COLUMNS, "ticket_id"
        elif isinstance(obj, Asset):
            columns, key = ("site_id",), "asset_id"
        elif isinstance(obj, StockLocation):
            columns, key = ("holder_user_id", "site_id"), "location_id"
        else:
            continue
        state = inspect(obj)
        for name in columns:
            history = state.attrs[name].history
            for old in history.deleted or ():
                if old is not None and old not in (history.added or ()):
                    session.add(
                        SyncScopeExit(
                            organization_id=obj.organization_id, principal_id=old, **{key: obj.id}
                        )
                    )


# Before the tenancy hook, which gives the new exit rows their change positions.
event.listen(Session, "before_flush", _log_scope_exits, insert=True)
